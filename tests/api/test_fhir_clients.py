"""Acceptance: a FHIR client library (fhirpy) speaks to the facade over real HTTP. Its
QuestionnaireResponse is scored, and the Observation it yields is found by its search."""

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fhirpy import AsyncFHIRClient

from api.app import create_app
from services.fhir.codes import EXT_EPISODE, EXT_SESSION_NUMBER, QUESTIONNAIRE
from services.kernel.config import Settings
from tests.support import Attune, expect, items
from tests.support.fhir import parses


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a free local port, in a thread of its own; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


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
