"""Defects the schema fuzzer (test_schema_fuzz.py) found, each pinned by a focused test."""

from tests.support import Attune


async def test_a_body_that_is_not_utf8_is_a_422_naming_the_body(attune: Attune) -> None:
    """FastAPI answered it with an undocumented 400 that named nothing."""
    tenant = await attune.tenant()
    response = await attune.http.post(
        "/v1/clinicians",
        content=b'{"display_name": "\xff"}',
        headers={**tenant.admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": "body", "message": "not valid UTF-8", "type": "json_invalid"}
    ]
