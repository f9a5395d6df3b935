"""Acceptance: a FHIR client library (fhirpy) speaks to the facade over real HTTP. Its
QuestionnaireResponse is scored, and the Observation it yields is found by its search. The full
EHR flow (issue 17) authenticates with SMART Backend Services, knows the client by MRN only, and
reads back with ``_sort=-date`` and ``_include``; every resource parses with fhir.resources."""

from typing import Any

import httpx
from fhirpy import AsyncFHIRClient

from services.fhir.codes import EXT_EPISODE, EXT_SESSION_NUMBER, QUESTIONNAIRE
from tests.support import Attune, expect, items, srs
from tests.support.fhir import parses
from tests.support.smart import register, token_form


async def test_fhirpy_posts_a_response_and_finds_its_observation(
    attune: Attune, served: str
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    client = AsyncFHIRClient(f"{served}/fhir", authorization=f"Bearer {tenant.admin_key}")

    questionnaire = await client.reference("Questionnaire", "gad-7").to_resource()
    assert questionnaire["url"] == f"{QUESTIONNAIRE}/gad-7"
    answers = items("q", 2, 2, 1, 1, 1, 0, 1)
    response = client.resource(
        "QuestionnaireResponse",
        status="completed",
        questionnaire=f"{questionnaire['url']}|{questionnaire['version']}",
        subject={"reference": f"Patient/{episode['client_id']}"},
        extension=[
            {
                "url": EXT_EPISODE,
                "valueReference": {"reference": f"EpisodeOfCare/{episode['id']}"},
            },
            {"url": EXT_SESSION_NUMBER, "valuePositiveInt": 1},
        ],
        item=[
            {"linkId": link_id, "answer": [{"valueInteger": value}]}
            for link_id, value in answers.items()
        ],
    )
    await response.save()
    assert response.id is not None

    submission = expect(
        await attune.http.get(f"/v1/submissions/{response.id}", headers=tenant.admin), 200
    )
    assert submission["scores"]["total"] == 8.0

    found = await (
        client.resources("Observation")
        .search(subject=f"Patient/{episode['client_id']}", code="http://loinc.org|70274-6")
        .fetch_all()
    )
    assert [o.id for o in found] == [f"{response.id}-total"]
    observation = found[0].serialize()  # type: ignore[no-untyped-call]
    parses(observation)
    assert observation["valueQuantity"]["value"] == 8.0
    assert observation["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{response.id}"}]


def _parsed(resource: Any) -> dict[str, Any]:
    """A fhirpy resource as plain JSON, checked against its FHIR R4B model."""
    return parses(resource.serialize() if hasattr(resource, "serialize") else dict(resource))


async def test_an_ehr_runs_the_whole_flow_with_fhirpy_and_a_smart_token(
    attune: Attune, served: str
) -> None:
    tenant = await attune.tenant()
    clinician = await tenant.clinician("Dr Rivera", external_id="staff-1")
    client = await tenant.client(external_id="MRN-4711")
    episode = await tenant.episode(client_id=client["id"], clinician_id=clinician["id"])
    signer = await register(tenant, "clients:read", "submissions:read", "submissions:write")

    # SMART Backend Services: discover the token URL, sign an assertion with our own key.
    async with httpx.AsyncClient(base_url=served) as http:
        config = expect(await http.get("/fhir/.well-known/smart-configuration"), 200)
        token_url = config["token_endpoint"]
        assert token_url == f"{served}/auth/token"
        issued = expect(
            await http.post(
                token_url,
                data=token_form(
                    signer.assertion(aud=token_url),
                    "system/Patient.rs system/EpisodeOfCare.rs system/Practitioner.rs "
                    "system/Questionnaire.rs system/QuestionnaireResponse.crs "
                    "system/Observation.rs",
                ),
            ),
            200,
        )
    assert issued["token_type"] == "bearer"
    fhir = AsyncFHIRClient(f"{served}/fhir", authorization=f"Bearer {issued['access_token']}")

    # The EHR knows its patient by MRN.
    patient = await fhir.resources("Patient").search(identifier="urn:ehr:mrn|MRN-4711").get()
    assert patient.id == client["id"]
    care = await fhir.resources("EpisodeOfCare").search(patient=f"Patient/{patient.id}").get()
    assert care["careManager"]["reference"] == f"Practitioner/{clinician['id']}"
    practitioner = await fhir.reference("Practitioner", clinician["id"]).to_resource()
    questionnaire = await fhir.reference("Questionnaire", "srs").to_resource()
    controls = {e["url"] for e in questionnaire["item"][0]["extension"]}
    assert "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl" in controls

    # Three sessions, posted out of order, each naming the subject by MRN only.
    posted = {}
    for session, day, overall in (
        (1, "2026-11-02", 9.0),
        (3, "2026-11-16", 6.0),
        (2, "2026-11-09", 8.0),
    ):
        response = fhir.resource(
            "QuestionnaireResponse",
            status="completed",
            questionnaire=f"{questionnaire['url']}|{questionnaire['version']}",
            subject={"identifier": {"system": "urn:ehr:mrn", "value": "MRN-4711"}},
            authored=f"{day}T15:00:00+00:00",
            identifier={"system": "urn:ehr:visits", "value": f"visit-{session}"},
            extension=[{"url": EXT_SESSION_NUMBER, "valuePositiveInt": session}],
            item=[
                {"linkId": link_id, "answer": [{"valueDecimal": value}]}
                for link_id, value in srs(9.0, 9.0, 9.0, overall).items()
            ],
        )
        await response.save()
        posted[session] = response.id
    stored = expect(
        await attune.http.get(f"/v1/submissions/{posted[3]}", headers=tenant.admin), 200
    )
    assert stored["episode_id"] == episode["id"]

    # Newest first, with the responses they were derived from, and a total.
    bundle = await (
        fhir.resources("Observation")
        .search(subject=f"Patient/{patient.id}", code="srs.total", _total="accurate")
        .sort("-date")
        .include("Observation", "derived-from")
        .fetch_raw()
    )
    matches = [e.resource for e in bundle.entry if e.search.mode == "match"]
    included = [e.resource for e in bundle.entry if e.search.mode == "include"]
    assert [o.id for o in matches] == [f"{posted[s]}-total" for s in (3, 2, 1)]
    assert [o["valueQuantity"]["value"] for o in matches] == [33.0, 35.0, 36.0]
    assert {r.id for r in included} == set(posted.values())
    assert bundle.total == 3
    newest_first = await (
        fhir.resources("QuestionnaireResponse")
        .search(patient=patient.id)
        .sort("-authored")
        .limit(1)
    ).fetch_all()  # follows the next links, page by page
    assert [r.id for r in newest_first] == [posted[s] for s in (3, 2, 1)]
    scores = await fhir.resources("Observation").search(subject=f"Patient/{patient.id}").fetch_all()

    for resource in (
        patient,
        care,
        practitioner,
        questionnaire,
        *matches,
        *included,
        *newest_first,
        *scores,
    ):
        _parsed(resource)
    for entry in bundle.entry:
        _parsed(entry.resource)
