"""Helpers for the FHIR facade's tests: QuestionnaireResponses as an EHR would post them, and a
check that every resource parses with the FHIR R4B models."""

from typing import Any

import httpx
from fhir.resources.R4B import get_fhir_model_class

from services.fhir.codes import EXT_EPISODE, EXT_SESSION_NUMBER, QUESTIONNAIRE
from tests.support import expect

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def questionnaire_response(
    episode_id: str,
    instrument: str,
    session_number: int,
    answers: dict[str, Any],
    *,
    identifier: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    def answer(value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        return {"valueInteger": value} if isinstance(value, int) else {"valueDecimal": value}

    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": f"{QUESTIONNAIRE}/{instrument}",
        "extension": [
            {"url": EXT_EPISODE, "valueReference": {"reference": f"EpisodeOfCare/{episode_id}"}},
            {"url": EXT_SESSION_NUMBER, "valuePositiveInt": session_number},
        ],
        "item": [{"linkId": k, "answer": [answer(v)]} for k, v in answers.items()],
        **fields,
    }
    if identifier is not None:
        resource["identifier"] = {"system": "urn:ehr:responses", "value": identifier}
    return resource


def parses(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource, after checking it parses with its FHIR R4B model (bundles: every entry)."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    for entry in resource.get("entry", []):
        parses(entry["resource"])
    return resource


def fhir(response: httpx.Response, status: int) -> dict[str, Any]:
    """The FHIR body of a response with `status`, checked for media type and R4B validity."""
    body = expect(response, status)
    assert response.headers["content-type"].startswith("application/fhir+json"), response.headers
    return parses(body)


def outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    body = fhir(response, status)
    assert body["resourceType"] == "OperationOutcome", body
    return body
