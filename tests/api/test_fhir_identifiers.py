"""Issue 14 finding 1 (DESIGN.md §10.8): a repeated QuestionnaireResponse ``identifier`` returns
the earlier resource only to a caller allowed to read it (scope and clinician binding); others
get 409 naming no id, and learn nothing of its content."""

from typing import Any

import httpx

from tests.support import Attune, Tenant, bearer, expect, srs
from tests.support.fhir import FHIR_JSON, fhir, outcome, questionnaire_response


async def _post(attune: Attune, headers: dict[str, str], body: dict[str, Any]) -> httpx.Response:
    return await attune.http.post(
        "/fhir/QuestionnaireResponse", json=body, headers={**headers, **FHIR_JSON}
    )


async def _first(attune: Attune, tenant: Tenant, clinician_id: str) -> tuple[str, dict[str, Any]]:
    eid = (await tenant.episode(clinician_id=clinician_id))["id"]
    body = questionnaire_response(eid, "srs", 1, srs(9.1, 8.4, 9.0, 8.8), identifier="visit-9")
    return eid, fhir(await _post(attune, tenant.admin, body), 201)


def _assert_nothing_of(response: httpx.Response, first: dict[str, Any]) -> None:
    assert first["id"] not in response.text
    assert "9.1" not in response.text
    assert first["subject"]["reference"] not in response.text


async def test_a_write_only_key_gets_409_not_another_response(attune: Attune) -> None:
    tenant = await attune.tenant()
    clinician = (await tenant.clinician())["id"]
    _, first = await _first(attune, tenant, clinician)
    writer = bearer(await tenant.key("submissions:write"))
    other_eid = (await tenant.episode())["id"]
    mine = questionnaire_response(other_eid, "srs", 1, srs(5, 5, 5, 5), identifier="visit-9")
    response = await _post(attune, writer, mine)
    outcome(response, 409)
    _assert_nothing_of(response, first)
    # Not silently dropped either: the 409 says so, and nothing was stored for the writer.
    listed = expect(
        await attune.http.get(f"/v1/episodes/{other_eid}/submissions", headers=tenant.admin), 200
    )
    assert listed["items"] == []


async def test_another_clinicians_key_gets_409_naming_no_id(attune: Attune) -> None:
    tenant = await attune.tenant()
    x = (await tenant.clinician("Dr X"))["id"]
    y = (await tenant.clinician("Dr Y"))["id"]
    _, first = await _first(attune, tenant, x)
    key_y = bearer(await tenant.key("submissions:read", "submissions:write", clinician_id=y))
    eid_y = (await tenant.episode(clinician_id=y))["id"]
    mine = questionnaire_response(eid_y, "srs", 1, srs(5, 5, 5, 5), identifier="visit-9")
    response = await _post(attune, key_y, mine)
    outcome(response, 409)
    _assert_nothing_of(response, first)
    # With a made-up episode, too: the identifier is judged before anything else is disclosed.
    made_up = questionnaire_response(
        "7f0c5a52-5d4e-4d5a-9a57-8d1b0f1e2a33", "srs", 1, srs(5, 5, 5, 5), identifier="visit-9"
    )
    response = await _post(attune, key_y, made_up)
    assert response.status_code in (404, 409)
    _assert_nothing_of(response, first)


async def test_a_caller_allowed_to_read_the_response_gets_it_again(attune: Attune) -> None:
    tenant = await attune.tenant()
    x = (await tenant.clinician("Dr X"))["id"]
    eid, first = await _first(attune, tenant, x)
    key_x = bearer(await tenant.key("submissions:read", "submissions:write", clinician_id=x))
    again = questionnaire_response(eid, "srs", 1, srs(9.1, 8.4, 9.0, 8.8), identifier="visit-9")
    assert fhir(await _post(attune, key_x, again), 200) == first
    unbound = bearer(await tenant.key("submissions:read", "submissions:write"))
    assert fhir(await _post(attune, unbound, again), 200) == first
