"""Defects the schema fuzzer (test_schema_fuzz.py) found, each pinned by a focused test."""

from typing import Any

import pytest

from tests.support import Attune
from tests.support.instruments import LOCAL


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


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"min": 1e28, "max": 0, "step": 1}, "body.items.0.min"),
        ({"min": 0, "max": 1, "step": 1e-30}, "body.items.0.step"),
        ({"min": 0, "max": 10**30, "step": 1}, "body.items.0.max"),
    ],
)
async def test_instrument_numbers_out_of_bounds_are_a_422_naming_the_number(
    attune: Attune, item: dict[str, Any], field: str
) -> None:
    """Exact decimal arithmetic on them overflowed (DivisionImpossible): a 500."""
    tenant = await attune.tenant()
    definition = {**LOCAL, "code": "huge", "items": [{"id": "x", "label": "X", **item}]}
    response = await attune.http.post("/v1/instruments", json=definition, headers=tenant.admin)
    assert response.status_code == 422, response.text
    assert any(e["field"].startswith(field) for e in response.json()["errors"]), response.text


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/v1/instruments", "GET, POST"),
        ("PUT", "/v1/episodes/6c3a2f0e-8f0e-4a55-9d7e-0c1d2e3f4a5b", "GET, PATCH"),
        ("DELETE", "/v1/clients", "GET, POST"),
    ],
)
async def test_405_lists_every_method_of_the_path_in_allow(
    attune: Attune, method: str, path: str, allow: str
) -> None:
    """The router named only the methods of the first route whose path matched."""
    tenant = await attune.tenant()
    response = await attune.http.request(method, path, headers=tenant.admin)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == "application/problem+json"
