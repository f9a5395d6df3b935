"""The FHIR R4 facade (DESIGN.md §8): every resource parses with the R4B models; a
QuestionnaireResponse is scored as a submission; Observations and DetectedIssues are found by
search; errors are OperationOutcomes."""

import copy
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.alerts import lifecycle as alert_lifecycle
from services.fhir.codes import EXT_EPISODE, EXT_SESSION_NUMBER
from services.kernel.config import Settings
from tests.support import Attune, bearer, expect, items, srs, submit
from tests.support.fhir import FHIR_JSON, fhir, outcome, questionnaire_response


async def test_capability_statement_is_public_and_lists_the_resources(attune: Attune) -> None:
    body = fhir(await attune.http.get("/fhir/metadata"), 200)
    assert body["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert types == {
        "Patient", "Practitioner", "EpisodeOfCare", "Questionnaire", "QuestionnaireResponse",
        "Observation", "DetectedIssue",
    }  # fmt: skip
    assert body["rest"][0]["operation"][0]["name"] == "export"


async def test_every_instrument_is_a_questionnaire_with_canonical_url_and_version(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    bundle = fhir(await attune.http.get("/fhir/Questionnaire", headers=tenant.admin), 200)
    by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    assert set(by_id) >= {"srs", "ors", "wai-sr", "phq-9", "gad-7", "chs", "rupture-check"}
    phq = fhir(await attune.http.get("/fhir/Questionnaire/phq-9", headers=tenant.admin), 200)
    assert phq["url"].endswith("/Questionnaire/phq-9")
    assert phq["version"] == "1"
    q9 = next(i for i in phq["item"] if i["linkId"] == "q9")
    assert q9["type"] == "integer"
    assert q9["code"] == [{"system": "http://loinc.org", "code": "44260-8"}]
    bounds = {e["url"].rsplit("/", 1)[-1]: e for e in q9["extension"]}
    assert bounds["minValue"]["valueInteger"] == 0
    assert bounds["maxValue"]["valueInteger"] == 3
    srs_items = by_id["srs"]["item"]
    assert {i["type"] for i in srs_items} == {"decimal"}
    rupture = {i["linkId"]: i for i in by_id["rupture-check"]["item"]}
    assert rupture["intensity"]["enableWhen"] == [
        {"question": "tension", "operator": "=", "answerInteger": 1}
    ]


async def test_posted_response_is_scored_and_its_observation_found_by_search(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    body = questionnaire_response(
        episode["id"],
        "phq-9",
        1,
        items("q", 2, 2, 1, 1, 0, 1, 1, 0, 1),
        subject={"reference": f"Patient/{episode['client_id']}"},
        authored="2026-11-20T15:00:00+01:00",
    )
    response = await attune.http.post(
        "/fhir/QuestionnaireResponse", json=body, headers={**tenant.admin, **FHIR_JSON}
    )
    created = fhir(response, 201)
    assert response.headers["location"].endswith(f"/fhir/QuestionnaireResponse/{created['id']}")
    assert created["status"] == "completed"
    assert created["subject"] == {"reference": f"Patient/{episode['client_id']}"}

    # The same submission the v1 API shows: scored, with the risk alert raised.
    sub = expect(
        await attune.http.get(f"/v1/submissions/{created['id']}", headers=tenant.admin), 200
    )
    assert (sub["scores"]["total"], sub["scores"]["band"]) == (9.0, "mild")
    assert sub["occurred_at"] == "2026-11-20T14:00:00Z"

    bundle = fhir(
        await attune.http.get(
            f"/fhir/Observation?subject=Patient/{episode['client_id']}&code=http://loinc.org|44261-6",
            headers=tenant.admin,
        ),
        200,
    )
    assert bundle["type"] == "searchset"
    [entry] = bundle["entry"]
    observation = entry["resource"]
    assert observation["id"] == f"{created['id']}-total"
    assert observation["valueQuantity"]["value"] == 9.0
    assert observation["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{created['id']}"}]
    assert observation["category"][0]["coding"][0]["code"] == "survey"
    assert observation["effectiveDateTime"] == "2026-11-20T14:00:00Z"
    read = fhir(
        await attune.http.get(f"/fhir/Observation/{observation['id']}", headers=tenant.admin), 200
    )
    assert read == observation

    again = fhir(
        await attune.http.get(f"/fhir/QuestionnaireResponse/{created['id']}", headers=tenant.admin),
        200,
    )
    assert again == created

    issues = fhir(
        await attune.http.get(
            f"/fhir/DetectedIssue?patient={episode['client_id']}", headers=tenant.admin
        ),
        200,
    )
    [issue] = [e["resource"] for e in issues["entry"]]
    assert issue["code"]["coding"][0]["code"] == "risk.item"
    assert issue["severity"] == "high"
    assert issue["status"] == "preliminary"
    assert {"reference": f"Observation/{created['id']}-total"} in issue["evidence"][0]["detail"]


async def _post(attune: Attune, headers: dict[str, str], body: dict[str, Any]) -> httpx.Response:
    return await attune.http.post(
        "/fhir/QuestionnaireResponse", json=body, headers={**headers, **FHIR_JSON}
    )


async def test_same_identifier_again_returns_the_first_response_without_a_second_submission(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    body = questionnaire_response(eid, "srs", 1, srs(9.1, 8.4, 9.0, 8.8), identifier="visit-1")
    first = fhir(await _post(attune, tenant.admin, body), 201)
    assert first["identifier"] == {"system": "urn:ehr:responses", "value": "visit-1"}
    # A retry, even one whose answers changed, finds the response the identifier created.
    retry = questionnaire_response(eid, "srs", 2, srs(1, 1, 1, 1), identifier="visit-1")
    response = await _post(attune, tenant.admin, retry)
    assert fhir(response, 200) == first
    assert response.headers["location"].endswith(f"/QuestionnaireResponse/{first['id']}")
    # If-None-Exist names the identifier of a conditional create as well.
    conditional = questionnaire_response(eid, "srs", 3, srs(9, 9, 9, 9))
    response = await attune.http.post(
        "/fhir/QuestionnaireResponse",
        json=conditional,
        headers={
            **tenant.admin,
            **FHIR_JSON,
            "If-None-Exist": "identifier=urn:ehr:responses|visit-1",
        },
    )
    assert fhir(response, 200) == first
    listed = expect(
        await attune.http.get(f"/v1/episodes/{eid}/submissions", headers=tenant.admin), 200
    )
    assert [s["id"] for s in listed["items"]] == [first["id"]]
    # Identifiers are per organization: another tenant's identical one is its own.
    other = await attune.tenant()
    other_eid = (await other.episode())["id"]
    mine = questionnaire_response(other_eid, "srs", 1, srs(9, 9, 9, 9), identifier="visit-1")
    assert fhir(await _post(attune, other.admin, mine), 201)["id"] != first["id"]


async def test_concurrent_posts_with_one_identifier_create_exactly_one_submission(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    body = questionnaire_response(eid, "srs", 1, srs(9.1, 8.4, 9.0, 8.8), identifier="race-1")
    headers = {**tenant.admin, **FHIR_JSON}
    responses = await attune.post_from_two_apps(
        settings, "/fhir/QuestionnaireResponse", body, headers, 20
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 1, statuses
    assert set(statuses) <= {200, 201}, [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["id"] for r in responses}) == 1
    listed = expect(
        await attune.http.get(f"/v1/episodes/{eid}/submissions", headers=tenant.admin), 200
    )
    assert len(listed["items"]) == 1


@pytest.mark.parametrize(
    ("content", "expression"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"resourceType": "Observation", "status": "final"}', "resourceType"),
        (b'{"resourceType": "QuestionnaireResponse", "status": "completed", "foo": 1}',
         "QuestionnaireResponse.foo"),
        (b'{"resourceType": "QuestionnaireResponse", "status": "completed", "item": "x"}',
         "QuestionnaireResponse.item"),
    ],
)  # fmt: skip
async def test_input_that_is_not_a_questionnaire_response_gets_400_operation_outcome(
    attune: Attune, content: bytes, expression: str | None
) -> None:
    tenant = await attune.tenant()
    response = await attune.http.post(
        "/fhir/QuestionnaireResponse", content=content, headers={**tenant.admin, **FHIR_JSON}
    )
    body = outcome(response, 400)
    if expression is not None:
        assert expression in {e for i in body["issue"] for e in i.get("expression", [])}, body


async def test_a_response_that_cannot_be_scored_gets_422_naming_each_problem(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    eid = episode["id"]

    def expressions(body: dict[str, Any]) -> set[str]:
        return {e for i in body["issue"] for e in i.get("expression", [])}

    unplaced = questionnaire_response(eid, "srs", 1, srs(9, 9, 9, 9), status="in-progress")
    unplaced["extension"] = []
    body = outcome(await _post(attune, tenant.admin, unplaced), 422)
    assert {
        "QuestionnaireResponse.status",
        f"QuestionnaireResponse.extension('{EXT_EPISODE}')",
        f"QuestionnaireResponse.extension('{EXT_SESSION_NUMBER}')",
    } <= expressions(body)
    out_of_range = questionnaire_response(eid, "srs", 1, srs(11, 9, 9, 9))
    body = outcome(await _post(attune, tenant.admin, out_of_range), 422)
    assert expressions(body) == {"QuestionnaireResponse.item.where(linkId='relationship')"}
    unknown = questionnaire_response(eid, "nope", 1, srs(9, 9, 9, 9))
    body = outcome(await _post(attune, tenant.admin, unknown), 422)
    assert expressions(body) == {"QuestionnaireResponse.questionnaire"}
    old_version = questionnaire_response(eid, "srs", 1, srs(9, 9, 9, 9))
    old_version["questionnaire"] += "|1.0"
    outcome(await _post(attune, tenant.admin, old_version), 422)
    other_client = (await tenant.client())["id"]
    wrong_subject = questionnaire_response(
        eid, "srs", 1, srs(9, 9, 9, 9), subject={"reference": f"Patient/{other_client}"}
    )
    body = outcome(await _post(attune, tenant.admin, wrong_subject), 422)
    assert expressions(body) == {"QuestionnaireResponse.subject"}
    nested = questionnaire_response(eid, "srs", 1, {})
    nested["item"] = [{"linkId": "g", "item": [{"linkId": "relationship"}]}]
    outcome(await _post(attune, tenant.admin, nested), 422)
    # Nothing of it was stored.
    listed = expect(
        await attune.http.get(f"/v1/episodes/{eid}/submissions", headers=tenant.admin), 200
    )
    assert listed["items"] == []


async def test_auth_and_routing_errors_under_fhir_are_operation_outcomes(attune: Attune) -> None:
    tenant = await attune.tenant()
    reader = bearer(await tenant.key("clients:read"))
    response = await attune.http.get("/fhir/Observation")
    assert outcome(response, 401)["issue"][0]["code"] == "login"
    assert response.headers["www-authenticate"] == "Bearer"
    assert outcome(await attune.http.get("/fhir/Observation", headers=reader), 403)
    assert outcome(await attune.http.get("/fhir/Encounter", headers=tenant.admin), 404)
    missing = f"/fhir/QuestionnaireResponse/{uuid.uuid4()}"
    assert outcome(await attune.http.get(missing, headers=tenant.admin), 404)
    assert outcome(await attune.http.get("/fhir/Observation/x", headers=tenant.admin), 404)
    bad_count = await attune.http.get("/fhir/Observation?_count=0", headers=tenant.admin)
    assert outcome(bad_count, 400)["issue"][0]["expression"] == ["_count"]
    assert outcome(await attune.http.get("/fhir/Observation?date=soon", headers=tenant.admin), 400)
    for search in (
        "Observation?code=phq%00",
        "DetectedIssue?code=risk%00",
        "Observation?_cursor=x",
    ):
        assert outcome(await attune.http.get(f"/fhir/{search}", headers=tenant.admin), 400)
    big = b'{"resourceType": "QuestionnaireResponse", "text": "' + b"x" * (1024 * 1024) + b'"}'
    response = await attune.http.post(
        "/fhir/QuestionnaireResponse", content=big, headers={**tenant.admin, **FHIR_JSON}
    )
    assert outcome(response, 413)["issue"][0]["code"] == "too-costly"

    async def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 100_000

    response = await attune.http.post(
        "/fhir/QuestionnaireResponse", content=chunks(), headers={**tenant.admin, **FHIR_JSON}
    )
    outcome(response, 413)
    # The rest of the API keeps problem+json.
    response = await attune.http.get("/v1/nothing-here", headers=tenant.admin)
    assert response.headers["content-type"] == "application/problem+json"


async def test_subscales_are_observations_of_their_own_and_codes_select_them(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    eid, cid = episode["id"], episode["client_id"]
    wai = await submit(tenant, eid, "wai-sr", 1, items("q", 4, 4, 5, 3, 5, 4, 5, 4, 4, 4, 3, 4))
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))

    async def ids(query: str) -> list[str]:
        bundle = fhir(
            await attune.http.get(f"/fhir/Observation?{query}", headers=tenant.admin), 200
        )
        return [e["resource"]["id"] for e in bundle["entry"]]

    w = wai["id"]
    assert await ids(f"subject={cid}&code=wai-sr") == [
        f"{w}-total", f"{w}-bond", f"{w}-goal", f"{w}-task"
    ]  # fmt: skip
    assert await ids(f"subject={cid}&code=wai-sr.bond") == [f"{w}-bond"]
    score = "https://w3id.org/attune/fhir/CodeSystem/score"
    assert await ids(f"subject=Patient/{cid}&code={score}|wai-sr.total") == [f"{w}-total"]
    assert len(await ids(f"subject={cid}")) == 5
    assert await ids(f"subject={cid}&code=http://loinc.org|44261-6") == []
    bond = fhir(await attune.http.get(f"/fhir/Observation/{w}-bond", headers=tenant.admin), 200)
    assert bond["valueQuantity"]["value"] == 19.0
    assert bond["code"]["coding"][0]["code"] == "wai-sr.bond"


async def test_search_pages_follow_next_links_through_every_observation(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    eid, cid = episode["id"], episode["client_id"]
    for session in (1, 2, 3):
        await submit(tenant, eid, "wai-sr", session, items("q", *[4] * 12))
        await submit(tenant, eid, "srs", session, srs(9, 9, 9, 9))
    url: str | None = f"/fhir/Observation?subject={cid}&_count=3"
    seen: list[str] = []
    pages = 0
    while url is not None:
        bundle = fhir(await attune.http.get(url, headers=tenant.admin), 200)
        pages += 1
        assert len(bundle["entry"]) <= 3
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert len(seen) == len(set(seen)) == 15  # 3 sessions of (4 WAI-SR scores + 1 SRS total)
    assert pages == 5


async def test_date_searches_use_the_session_time(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    eid, cid = episode["id"], episode["client_id"]
    for session, day in ((1, "2026-10-01"), (2, "2026-11-01"), (3, "2026-11-15")):
        await submit(
            tenant, eid, "srs", session, srs(9, 9, 9, 9), occurred_at=f"{day}T10:00:00+00:00"
        )

    async def sessions(query: str) -> list[int]:
        bundle = fhir(
            await attune.http.get(f"/fhir/Observation?subject={cid}&{query}", headers=tenant.admin),
            200,
        )
        found = []
        for entry in bundle["entry"]:
            ext = {e["url"]: e for e in entry["resource"]["extension"]}
            found.append(ext[EXT_SESSION_NUMBER]["valuePositiveInt"])
        return found

    assert await sessions("date=2026-11") == [2, 3]
    assert await sessions("date=ge2026-11-01&date=lt2026-11-15") == [2]
    assert await sessions("date=le2026-10-01") == [1]
    assert await sessions("date=gt2026-11-01T10:00:00Z") == [3]


async def test_voided_submission_is_entered_in_error_everywhere(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    created = await submit(tenant, episode["id"], "phq-9", 1, items("q", *[1] * 9))
    expect(
        await attune.http.post(
            f"/v1/submissions/{created['id']}/void", json={"reason": "wrong client"},
            headers=tenant.admin,
        ),
        200,
    )  # fmt: skip
    sid = created["id"]
    qr = fhir(
        await attune.http.get(f"/fhir/QuestionnaireResponse/{sid}", headers=tenant.admin), 200
    )
    assert qr["status"] == "entered-in-error"
    obs = fhir(await attune.http.get(f"/fhir/Observation/{sid}-total", headers=tenant.admin), 200)
    assert obs["status"] == "entered-in-error"
    issues = fhir(
        await attune.http.get(
            f"/fhir/DetectedIssue?patient={episode['client_id']}", headers=tenant.admin
        ),
        200,
    )
    [issue] = [e["resource"] for e in issues["entry"]]
    # A void never retracts a critical alert (DESIGN.md §10.3.3): it stays for a person.
    assert issue["status"] == "preliminary"


async def test_detected_issue_status_follows_the_alert_lifecycle(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    low = await submit(tenant, episode["id"], "srs", 1, srs(5, 5, 5, 5))
    alert_id = low["alerts"][0]["id"]
    path = f"/fhir/DetectedIssue/{alert_id}"
    issue = fhir(await attune.http.get(path, headers=tenant.admin), 200)
    assert (issue["status"], issue["severity"]) == ("preliminary", "moderate")
    assert issue["evidence"][0]["detail"][0] == {"reference": f"Observation/{low['id']}-total"}
    assert "mitigation" not in issue
    expect(
        await attune.http.post(f"/v1/alerts/{alert_id}/acknowledge", json={}, headers=tenant.admin),
        200,
    )
    issue = fhir(await attune.http.get(path, headers=tenant.admin), 200)
    assert issue["status"] == "final"
    assert [m["action"]["text"] for m in issue["mitigation"]] == ["acknowledged"]
    expect(
        await attune.http.post(
            f"/v1/alerts/{alert_id}/resolve", json={"resolution": "discussed"}, headers=tenant.admin
        ),
        200,
    )
    issue = fhir(await attune.http.get(path, headers=tenant.admin), 200)
    assert [m["action"]["text"] for m in issue["mitigation"]] == ["acknowledged", "discussed"]


async def test_concerns_are_detected_issues_only_for_keys_that_may_read_them(
    attune: Attune, app: FastAPI
) -> None:
    tenant = await attune.tenant()
    clinician = await tenant.clinician()
    episode = await tenant.episode(clinician_id=clinician["id"])
    async with app.state.sessionmaker() as session:
        await alert_lifecycle.raise_concern(
            session,
            org_id=uuid.UUID(tenant.org_id),
            episode_id=uuid.UUID(episode["id"]),
            session_number=1,
            category="boundaries",
        )
        await session.commit()
    await submit(tenant, episode["id"], "srs", 1, srs(5, 5, 5, 5))
    supervisor = bearer(await tenant.key("alerts:read", "concerns:read"))
    reader = bearer(await tenant.key("alerts:read"))
    own_clinician = bearer(
        await tenant.key("alerts:read", "concerns:read", clinician_id=clinician["id"])
    )

    async def types(headers: dict[str, str]) -> list[str]:
        bundle = fhir(await attune.http.get("/fhir/DetectedIssue", headers=headers), 200)
        return sorted(e["resource"]["code"]["coding"][0]["code"] for e in bundle["entry"])

    assert await types(supervisor) == ["alliance.low", "concern.reported"]
    assert await types(reader) == ["alliance.low"]
    assert await types(own_clinician) == ["alliance.low"]
    concern = next(
        e["resource"]["id"]
        for e in fhir(await attune.http.get("/fhir/DetectedIssue", headers=supervisor), 200)[
            "entry"
        ]
        if e["resource"]["code"]["coding"][0]["code"] == "concern.reported"
    )
    outcome(await attune.http.get(f"/fhir/DetectedIssue/{concern}", headers=reader), 404)
    outcome(await attune.http.get(f"/fhir/DetectedIssue/{concern}", headers=own_clinician), 404)


async def test_a_clinician_bound_key_sees_only_its_caseload(attune: Attune) -> None:
    tenant = await attune.tenant()
    mine, theirs = await tenant.clinician("Dr Me"), await tenant.clinician("Dr Them")
    my_episode = await tenant.episode(clinician_id=mine["id"])
    their_episode = await tenant.episode(clinician_id=theirs["id"])
    key = bearer(await tenant.key("submissions:read", "submissions:write", clinician_id=mine["id"]))
    theirs_sub = await submit(tenant, their_episode["id"], "srs", 1, srs(9, 9, 9, 9))
    outcome(
        await attune.http.get(f"/fhir/QuestionnaireResponse/{theirs_sub['id']}", headers=key), 404
    )
    outcome(await attune.http.get(f"/fhir/Observation/{theirs_sub['id']}-total", headers=key), 404)
    body = questionnaire_response(their_episode["id"], "srs", 2, srs(9, 9, 9, 9))
    outcome(await _post(attune, key, body), 404)
    # Naming a wrong subject tells nothing about an episode outside the caseload either.
    body["subject"] = {"reference": f"Patient/{my_episode['client_id']}"}
    outcome(await _post(attune, key, body), 404)
    body = questionnaire_response(my_episode["id"], "srs", 1, srs(9, 9, 9, 9))
    mine_qr = fhir(await _post(attune, key, body), 201)
    bundle = fhir(await attune.http.get("/fhir/Observation", headers=key), 200)
    assert [e["resource"]["id"] for e in bundle["entry"]] == [f"{mine_qr['id']}-total"]


async def test_reads_and_writes_through_fhir_are_audited(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    created = fhir(
        await _post(attune, tenant.admin, questionnaire_response(eid, "srs", 1, srs(9, 9, 9, 9))),
        201,
    )
    await attune.http.get(f"/fhir/QuestionnaireResponse/{created['id']}", headers=tenant.admin)
    await attune.http.get("/fhir/Observation", headers=tenant.admin)
    events = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)["items"]
    actions = [e["action"] for e in events]
    assert {"submission.create", "submission.read", "observation.search"} <= set(actions)


ABSURD: list[Any] = [
    "bad\x00nul", "x" * 100_000, 10**40, -1, 1.5e308, True, None, [], {"nested": [1]}, "",
    "2026-11-20T15:00:00", "0001-01-01T00:00:00+14:00",
]  # fmt: skip


async def test_absurd_values_anywhere_in_a_response_never_cause_a_server_error(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    valid = questionnaire_response(
        episode["id"], "srs", 1, srs(9, 9, 9, 9), identifier="absurd",
        subject={"reference": f"Patient/{episode['client_id']}"}, authored="2026-11-20T15:00:00Z",
        source={"type": "RelatedPerson", "display": "mother"},
    )  # fmt: skip
    paths: list[tuple[Any, ...]] = [
        ("status",), ("questionnaire",), ("identifier",), ("identifier", "value"),
        ("identifier", "system"), ("subject",), ("subject", "reference"), ("authored",),
        ("source",), ("source", "display"), ("extension",), ("extension", 0, "valueReference"),
        ("extension", 1, "valuePositiveInt"), ("item",), ("item", 0, "linkId"),
        ("item", 0, "answer"), ("item", 0, "answer", 0, "valueDecimal"),
    ]  # fmt: skip
    for path in paths:
        for value in ABSURD:
            body = copy.deepcopy(valid)
            target = body
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            response = await _post(attune, tenant.admin, body)
            assert response.status_code < 500, (path, repr(value)[:40], response.text[:300])
            if response.status_code >= 400:
                outcome(response, response.status_code)
