"""Defects the schema fuzzer (test_schema_fuzz.py) found, each pinned by a focused test."""

from typing import Any

import pytest

from tests.api.test_instruments_api import LOCAL
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
