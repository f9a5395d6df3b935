"""Patient, Practitioner and EpisodeOfCare read and search; QuestionnaireResponse search; a
response whose subject is only the client's MRN; ``_sort``, ``_total`` and
``_include=Observation:derived-from`` (DESIGN.md §10.6, issue 17). Reads obey scopes, the
clinician binding and audit exactly as the v1 API's (404 for what the caller may not see)."""

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from services.fhir.codes import EXT_EPISODE, SID_CLIENT
from tests.support import Attune, Tenant, bearer, expect, srs, submit
from tests.support.fhir import FHIR_JSON, fhir, outcome, questionnaire_response

LENIENT = {"Prefer": "handling=lenient"}


def _ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == mode]


def _self_query(bundle: dict[str, Any]) -> list[tuple[str, str]]:
    url = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    return parse_qsl(urlsplit(url).query)


def _next(bundle: dict[str, Any]) -> str | None:
    url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    return None if url is None else url.removeprefix("http://127.0.0.1:8000")


async def _episode(tenant: Tenant, mrn: str, **extra: Any) -> dict[str, Any]:
    client = await tenant.client(external_id=mrn, **extra)
    return await tenant.episode(client_id=client["id"])


async def test_a_patient_reads_as_its_external_id_and_population(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await _episode(tenant, "MRN-1", birth_year=1990, population="adolescent")
    patient = fhir(
        await attune.http.get(f"/fhir/Patient/{episode['client_id']}", headers=tenant.admin), 200
    )
    assert patient["identifier"][0]["system"] == SID_CLIENT
    assert patient["identifier"][0]["value"] == "MRN-1"
    assert patient["identifier"][0]["type"]["coding"][0]["code"] == "MR"
    assert patient["birthDate"] == "1990"
    assert patient["extension"][0]["valueCode"] == "adolescent"
    assert "name" not in patient  # pseudonymous: Attune holds no names


async def test_patients_are_found_by_mrn_in_any_system_and_by_id(attune: Attune) -> None:
    tenant = await attune.tenant()
    first, second = await _episode(tenant, "MRN-1"), await _episode(tenant, "MRN-2")
    h = tenant.admin
    by_mrn = fhir(
        await attune.http.get("/fhir/Patient?identifier=urn:ehr:mrn|MRN-2", headers=h), 200
    )
    assert _ids(by_mrn) == [second["client_id"]]
    bare = fhir(
        await attune.http.get("/fhir/Patient?identifier=MRN-1,MRN-2&_total=accurate", headers=h),
        200,
    )
    assert sorted(_ids(bare)) == sorted([first["client_id"], second["client_id"]])
    assert bare["total"] == 2
    by_id = fhir(await attune.http.get(f"/fhir/Patient?_id={first['client_id']}", headers=h), 200)
    assert _ids(by_id) == [first["client_id"]]
    assert "total" not in by_id


async def test_patient_search_pages_follow_next_links(attune: Attune) -> None:
    tenant = await attune.tenant()
    made = {(await _episode(tenant, f"MRN-{i}"))["client_id"] for i in range(3)}
    seen: list[str] = []
    url: str | None = "/fhir/Patient?_count=2"
    while url is not None:
        bundle = fhir(await attune.http.get(url, headers=tenant.admin), 200)
        seen += _ids(bundle)
        url = _next(bundle)
    assert sorted(seen) == sorted(made)


async def test_practitioners_and_episodes_read_and_search(attune: Attune) -> None:
    tenant = await attune.tenant()
    clinician = await tenant.clinician("Dr Rivera", external_id="staff-7")
    client = await tenant.client(external_id="MRN-9")
    episode = await tenant.episode(client_id=client["id"], clinician_id=clinician["id"])
    h = tenant.admin
    practitioner = fhir(
        await attune.http.get(f"/fhir/Practitioner/{clinician['id']}", headers=h), 200
    )
    assert practitioner["name"] == [{"text": "Dr Rivera"}]
    found = fhir(await attune.http.get("/fhir/Practitioner?identifier=staff-7", headers=h), 200)
    assert _ids(found) == [clinician["id"]]
    care = fhir(await attune.http.get(f"/fhir/EpisodeOfCare/{episode['id']}", headers=h), 200)
    assert care["status"] == "active"
    assert care["patient"]["reference"] == f"Patient/{client['id']}"
    assert care["careManager"]["reference"] == f"Practitioner/{clinician['id']}"
    for query in (
        f"patient=Patient/{client['id']}",
        "patient:identifier=urn:ehr|MRN-9",
        "status=active",
    ):
        bundle = fhir(await attune.http.get(f"/fhir/EpisodeOfCare?{query}", headers=h), 200)
        assert _ids(bundle) == [episode["id"]], query
    expect(
        await attune.http.patch(
            f"/v1/episodes/{episode['id']}", json={"status": "closed"}, headers=h
        ),
        200,
    )
    finished = fhir(await attune.http.get("/fhir/EpisodeOfCare?status=finished", headers=h), 200)
    assert _ids(finished) == [episode["id"]]
    nobody = fhir(
        await attune.http.get("/fhir/EpisodeOfCare?patient:identifier=MRN-none", headers=h), 200
    )
    assert nobody["entry"] == []


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/fhir/Patient?name=Smith", "name"),
        ("/fhir/Patient?_id=not-a-uuid", "_id"),
        ("/fhir/Practitioner?_sort=name", "_sort"),
        ("/fhir/EpisodeOfCare?status=planned", "status"),
        ("/fhir/QuestionnaireResponse?_sort=date", "_sort"),
        ("/fhir/QuestionnaireResponse?questionnaire=nonsense", "questionnaire"),
        ("/fhir/Observation?_include=Observation:subject", "_include"),
        ("/fhir/Observation?_total=exact", "_total"),
    ],
)
async def test_new_parameters_are_strict_unless_lenient(
    attune: Attune, path: str, named: str
) -> None:
    tenant = await attune.tenant()
    problem = outcome(await attune.http.get(path, headers=tenant.admin), 400)
    assert problem["issue"][0]["expression"] == [named]
    lenient = fhir(await attune.http.get(path, headers={**tenant.admin, **LENIENT}), 200)
    assert named not in {name for name, _ in _self_query(lenient)}


async def test_reads_obey_tenant_binding_and_scope(attune: Attune) -> None:
    tenant, other = await attune.tenant(), await attune.tenant("Other")
    mine, theirs = await tenant.clinician("Dr Mine"), await tenant.clinician("Dr Theirs")
    my_episode = await tenant.episode(clinician_id=mine["id"])
    their_episode = await tenant.episode(clinician_id=theirs["id"])
    await submit(tenant, their_episode["id"], "srs", 1, srs(9, 9, 9, 9))
    bound = bearer(await tenant.key("clients:read", "submissions:read", clinician_id=mine["id"]))
    for path in (
        f"/fhir/Patient/{their_episode['client_id']}",
        f"/fhir/EpisodeOfCare/{their_episode['id']}",
    ):
        outcome(await attune.http.get(path, headers=bound), 404)
        outcome(await attune.http.get(path, headers=other.admin), 404)
    outcome(await attune.http.get(f"/fhir/Practitioner/{mine['id']}", headers=other.admin), 404)
    for search in ("/fhir/Patient", "/fhir/EpisodeOfCare", "/fhir/QuestionnaireResponse"):
        bundle = fhir(await attune.http.get(search, headers=bound), 200)
        assert their_episode["client_id"] not in str(bundle), search
        assert their_episode["id"] not in str(bundle), search
    patient = await attune.http.get(f"/fhir/Patient/{my_episode['client_id']}", headers=bound)
    fhir(patient, 200)
    responses_only = bearer(await tenant.key("submissions:read"))
    outcome(
        await attune.http.get(f"/fhir/Patient/{my_episode['client_id']}", headers=responses_only),
        403,
    )
    outcome(await attune.http.get("/fhir/Practitioner", headers=responses_only), 403)
    clients_only = bearer(await tenant.key("clients:read"))
    outcome(await attune.http.get("/fhir/QuestionnaireResponse", headers=clients_only), 403)


async def test_reads_and_searches_are_audited(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await _episode(tenant, "MRN-A")
    await attune.http.get(f"/fhir/Patient/{episode['client_id']}", headers=tenant.admin)
    await attune.http.get("/fhir/Patient?identifier=MRN-A", headers=tenant.admin)
    await attune.http.get(f"/fhir/EpisodeOfCare/{episode['id']}", headers=tenant.admin)
    events = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)["items"]
    actions = [(e["action"], e["resource_id"]) for e in events]
    assert ("client.read", episode["client_id"]) in actions
    assert ("episode.read", episode["id"]) in actions
    listed = next(e for e in events if e["action"] == "client.list")
    assert "identifier" in listed["details"]["filters"]
    assert "MRN-A" not in str([e for e in events if e["action"] != "client.list"])


async def _post(attune: Attune, tenant: Tenant, resource: dict[str, Any]) -> Any:
    return await attune.http.post(
        "/fhir/QuestionnaireResponse", json=resource, headers={**tenant.admin, **FHIR_JSON}
    )


def _mrn_only(subject: dict[str, Any], session: int, **fields: Any) -> dict[str, Any]:
    resource = questionnaire_response(
        "unused", "srs", session, srs(9, 9, 9, 9), subject=subject, **fields
    )
    resource["extension"] = [e for e in resource["extension"] if e["url"] != EXT_EPISODE]
    return resource


@pytest.mark.parametrize(
    "subject",
    [
        {"identifier": {"system": "urn:ehr:mrn", "value": "MRN-5"}},
        {"reference": "Patient?identifier=urn:ehr:mrn|MRN-5"},
        {"type": "Patient", "identifier": {"value": "MRN-5"}},
    ],
)
async def test_a_response_naming_its_subject_by_mrn_lands_on_the_active_episode(
    attune: Attune, subject: dict[str, Any]
) -> None:
    tenant = await attune.tenant()
    episode = await _episode(tenant, "MRN-5")
    posted = fhir(await _post(attune, tenant, _mrn_only(subject, 1)), 201)
    assert posted["subject"] == {"reference": f"Patient/{episode['client_id']}"}
    stored = expect(
        await attune.http.get(f"/v1/submissions/{posted['id']}", headers=tenant.admin), 200
    )
    assert stored["episode_id"] == episode["id"]


async def test_an_mrn_subject_that_cannot_be_placed_is_named(attune: Attune) -> None:
    tenant = await attune.tenant()
    unknown = outcome(
        await _post(attune, tenant, _mrn_only({"identifier": {"value": "NOPE"}}, 1)), 422
    )
    assert unknown["issue"][0]["expression"] == ["QuestionnaireResponse.subject"]
    client = await tenant.client(external_id="MRN-6")
    await tenant.episode(client_id=client["id"])
    await tenant.episode(client_id=client["id"])
    twice = outcome(
        await _post(attune, tenant, _mrn_only({"identifier": {"value": "MRN-6"}}, 1)), 422
    )
    assert twice["issue"][0]["expression"] == [f"QuestionnaireResponse.extension('{EXT_EPISODE}')"]
    other = await attune.tenant("Other")
    await _episode(other, "MRN-OTHER")
    foreign = _mrn_only({"identifier": {"value": "MRN-OTHER"}}, 1)
    outcome(await _post(attune, tenant, foreign), 422)


async def test_responses_are_searched_and_sorted_newest_first(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await _episode(tenant, "MRN-7")
    other = await _episode(tenant, "MRN-8")
    made = []
    for session, day in ((1, "2026-11-02"), (2, "2026-11-16"), (3, "2026-11-09")):
        resource = questionnaire_response(
            episode["id"],
            "srs",
            session,
            srs(9, 9, 9, 9),
            authored=f"{day}T10:00:00+00:00",
            identifier=f"visit-{session}",
        )
        made.append(fhir(await _post(attune, tenant, resource), 201)["id"])
    await submit(tenant, other["id"], "srs", 1, srs(9, 9, 9, 9))
    h = tenant.admin
    newest = fhir(
        await attune.http.get(
            f"/fhir/QuestionnaireResponse?patient=Patient/{episode['client_id']}&_sort=-authored&_total=accurate",
            headers=h,
        ),
        200,
    )
    assert _ids(newest) == [made[1], made[2], made[0]]
    assert newest["total"] == 3
    oldest = fhir(
        await attune.http.get(
            "/fhir/QuestionnaireResponse?patient:identifier=MRN-7&_sort=authored", headers=h
        ),
        200,
    )
    assert _ids(oldest) == [made[0], made[2], made[1]]
    november = "authored=ge2026-11-05&authored=lt2026-11-10"
    assert _ids(
        fhir(await attune.http.get(f"/fhir/QuestionnaireResponse?{november}", headers=h), 200)
    ) == [made[2]]
    by_identifier = fhir(
        await attune.http.get(
            "/fhir/QuestionnaireResponse?identifier=urn:ehr:responses|visit-2", headers=h
        ),
        200,
    )
    assert _ids(by_identifier) == [made[1]]
    by_form = fhir(
        await attune.http.get(
            "/fhir/QuestionnaireResponse?questionnaire=https://w3id.org/attune/fhir/Questionnaire/srs&_count=500",
            headers=h,
        ),
        200,
    )
    assert len(_ids(by_form)) == 4
    # Pages in sorted order: newest first, one at a time, nothing lost or repeated.
    seen: list[str] = []
    url: str | None = (
        f"/fhir/QuestionnaireResponse?patient={episode['client_id']}&_sort=-authored&_count=1"
    )
    while url is not None:
        page = fhir(await attune.http.get(url, headers=h), 200)
        seen += _ids(page)
        url = _next(page)
    assert seen == [made[1], made[2], made[0]]


async def test_observations_sort_by_date_include_their_responses_and_count(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await _episode(tenant, "MRN-10")
    made = []
    for session, day in ((1, "2026-10-01"), (2, "2026-10-20"), (3, "2026-10-10")):
        resource = questionnaire_response(
            episode["id"],
            "wai-sr",
            session,
            {f"q{i}": 4 for i in range(1, 13)},
            authored=f"{day}T10:00:00+00:00",
        )
        made.append(fhir(await _post(attune, tenant, resource), 201)["id"])
    h = tenant.admin
    base = f"/fhir/Observation?subject=Patient/{episode['client_id']}&code=wai-sr.total"
    bundle = fhir(
        await attune.http.get(
            f"{base}&_sort=-date&_include=Observation:derived-from&_total=accurate", headers=h
        ),
        200,
    )
    assert _ids(bundle) == [f"{made[1]}-total", f"{made[2]}-total", f"{made[0]}-total"]
    dates = [
        e["resource"]["effectiveDateTime"]
        for e in bundle["entry"]
        if e["search"]["mode"] == "match"
    ]
    assert dates == sorted(dates, reverse=True)
    assert sorted(_ids(bundle, "include")) == sorted(made)
    assert bundle["total"] == 3
    assert ("_include", "Observation:derived-from") in _self_query(bundle)
    every_score = fhir(
        await attune.http.get(
            f"/fhir/Observation?subject=Patient/{episode['client_id']}&_total=accurate&_count=2",
            headers=h,
        ),
        200,
    )
    assert every_score["total"] == 12  # total + goal, task, bond for each of three responses
    seen: list[str] = []
    url: str | None = f"{base}&_sort=date&_count=2"
    while url is not None:
        page = fhir(await attune.http.get(url, headers=h), 200)
        seen += _ids(page)
        url = _next(page)
    assert seen == [f"{made[0]}-total", f"{made[2]}-total", f"{made[1]}-total"]
