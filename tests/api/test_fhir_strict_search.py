"""Issue 14 finding 3, DESIGN.md §10.6 strict search: an unknown parameter or modifier, or a value
the server cannot apply → 400 OperationOutcome naming it, unless ``Prefer: handling=lenient``;
then it is ignored and left out of the ``self`` link, which shows exactly the filters applied."""

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support import Attune, Tenant, expect, srs, submit
from tests.support.fhir import fhir, outcome

LENIENT = {"Prefer": "handling=lenient"}


async def _two_patients(tenant: Tenant) -> tuple[dict[str, Any], dict[str, Any]]:
    first = await tenant.episode()
    second = await tenant.episode()
    await submit(tenant, first["id"], "srs", 1, srs(5, 5, 5, 5))
    await submit(tenant, second["id"], "srs", 1, srs(5, 5, 5, 5))
    return first, second


def _self_query(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    url = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    return parse_qsl(urlsplit(url).query)


def _subjects(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["subject"]["reference"] for e in bundle.get("entry", [])}


def _issues(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["status"] for e in bundle.get("entry", [])]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("subjct={client}", "subjct"),
        ("subject:missing=false", "subject:missing"),
        ("subject:Practitioner={client}", "subject:Practitioner"),
        ("code:text=srs", "code:text"),
        ("date=yesterday", "date"),
        ("subject=Patient/not-a-uuid", "subject"),
        ("_count=0", "_count"),
        ("_count=5&_count=6", "_count"),
        ("_sort=code", "_sort"),
    ],
)
async def test_observation_search_refuses_what_it_cannot_apply(
    attune: Attune, query: str, named: str
) -> None:
    tenant = await attune.tenant()
    first, _ = await _two_patients(tenant)
    url = "/fhir/Observation?" + query.format(client=first["client_id"])
    problem = outcome(await attune.http.get(url, headers=tenant.admin), 400)
    assert problem["issue"][0]["expression"] == [named], problem
    # Prefer: handling=strict is the default spelled out.
    strict = {**tenant.admin, "Prefer": "handling=strict"}
    outcome(await attune.http.get(url, headers=strict), 400)


async def test_lenient_search_ignores_what_it_cannot_apply_and_says_so_in_the_self_link(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    first, second = await _two_patients(tenant)
    url = f"/fhir/Observation?subjct={first['client_id']}&date=yesterday&_count=10"
    bundle = fhir(await attune.http.get(url, headers={**tenant.admin, **LENIENT}), 200)
    assert _self_query(bundle) == [("_count", "10")]
    assert _subjects(bundle) == {
        f"Patient/{first['client_id']}",
        f"Patient/{second['client_id']}",
    }


async def test_the_self_link_shows_exactly_the_filters_applied(attune: Attune) -> None:
    tenant = await attune.tenant()
    first, _ = await _two_patients(tenant)
    url = f"/fhir/Observation?subject=Patient/{first['client_id']}&code=srs&_count=5"
    bundle = fhir(await attune.http.get(url, headers=tenant.admin), 200)
    assert _self_query(bundle) == [
        ("subject", f"Patient/{first['client_id']}"), ("code", "srs"), ("_count", "5"),
    ]  # fmt: skip
    assert _subjects(bundle) == {f"Patient/{first['client_id']}"}


async def test_a_patient_type_modifier_filters_by_that_patient(attune: Attune) -> None:
    tenant = await attune.tenant()
    first, _ = await _two_patients(tenant)
    url = f"/fhir/Observation?subject:Patient={first['client_id']}"
    bundle = fhir(await attune.http.get(url, headers=tenant.admin), 200)
    assert _subjects(bundle) == {f"Patient/{first['client_id']}"}
    assert _self_query(bundle) == [("subject:Patient", first["client_id"])]


async def test_subject_and_patient_together_both_apply(attune: Attune) -> None:
    tenant = await attune.tenant()
    first, second = await _two_patients(tenant)
    both = f"/fhir/Observation?subject={first['client_id']}&patient={second['client_id']}"
    assert fhir(await attune.http.get(both, headers=tenant.admin), 200).get("entry", []) == []
    same = f"/fhir/Observation?subject={first['client_id']}&patient={first['client_id']}"
    bundle = fhir(await attune.http.get(same, headers=tenant.admin), 200)
    assert _subjects(bundle) == {f"Patient/{first['client_id']}"}


async def test_detected_issue_status_filters(attune: Attune) -> None:
    tenant = await attune.tenant()
    await _two_patients(tenant)
    alerts = expect(await attune.http.get("/v1/alerts", headers=tenant.admin), 200)["items"]
    acknowledged = alerts[0]["id"]
    expect(
        await attune.http.post(
            f"/v1/alerts/{acknowledged}/acknowledge", json={}, headers=tenant.admin
        ),
        200,
    )
    found = fhir(
        await attune.http.get("/fhir/DetectedIssue?status=preliminary", headers=tenant.admin), 200
    )
    assert _issues(found) == ["preliminary"] * (len(alerts) - 1)
    found = fhir(
        await attune.http.get("/fhir/DetectedIssue?status=final", headers=tenant.admin), 200
    )
    assert [e["resource"]["id"] for e in found["entry"]] == [acknowledged]
    both = fhir(
        await attune.http.get("/fhir/DetectedIssue?status=preliminary,final", headers=tenant.admin),
        200,
    )
    assert len(both["entry"]) == len(alerts)
    problem = outcome(
        await attune.http.get("/fhir/DetectedIssue?status=open", headers=tenant.admin), 400
    )
    assert problem["issue"][0]["expression"] == ["status"]


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/DetectedIssue?severity=high",
        "/fhir/DetectedIssue?patient:missing=true",
        "/fhir/Questionnaire?title=PHQ",
        "/fhir/Questionnaire?url:below=http://x",
    ],
)
async def test_other_searches_refuse_unknown_parameters_too(attune: Attune, path: str) -> None:
    tenant = await attune.tenant()
    problem = outcome(await attune.http.get(path, headers=tenant.admin), 400)
    assert problem["issue"][0]["expression"] == [path.split("?")[1].split("=")[0]]
    lenient = fhir(await attune.http.get(path, headers={**tenant.admin, **LENIENT}), 200)
    assert _self_query(lenient) == []
