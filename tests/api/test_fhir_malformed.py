"""A QuestionnaireResponse whose items are malformed is refused with an OperationOutcome naming
the element, never a server error: what is not valid FHIR R4 is a 400 (the R4B model names the
element), and a valid one whose answer cannot be scored is a 422 naming the item."""

import copy
from typing import Any

import pytest

from tests.support import Attune, items
from tests.support.fhir import FHIR_JSON, outcome, questionnaire_response

_PHQ = items("q", 1, 1, 1, 1, 1, 1, 1, 1, 1)


def _expressions(body: dict[str, Any]) -> set[str]:
    return {e for issue in body["issue"] for e in issue.get("expression", [])}


@pytest.mark.parametrize(
    ("first_item", "expression"),
    [
        ("q1", "QuestionnaireResponse.item.0"),
        ({"answer": [{"valueInteger": 1}]}, "QuestionnaireResponse.item.0.linkId"),
        ({"linkId": 1, "answer": [{"valueInteger": 1}]}, "QuestionnaireResponse.item.0.linkId"),
        ({"linkId": "q1", "answer": {"valueInteger": 1}}, "QuestionnaireResponse.item.0.answer"),
        ({"linkId": "q1", "answer": ["one"]}, "QuestionnaireResponse.item.0.answer.0"),
        (
            {"linkId": "q1", "answer": [{"valueInteger": 1, "valueDecimal": 1.0}]},
            "QuestionnaireResponse.item.0.answer.0",
        ),
        (
            {"linkId": "q1", "answer": [{"valueCoding": {"code": 1}}]},
            "QuestionnaireResponse.item.0.answer.0.valueCoding.code",
        ),
        (
            {"linkId": "q1", "answer": [{"valueCoding": {"system": 7, "code": "1"}}]},
            "QuestionnaireResponse.item.0.answer.0.valueCoding.system",
        ),
    ],
)
async def test_a_malformed_item_is_a_400_naming_its_element(
    attune: Attune, first_item: object, expression: str
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    body = questionnaire_response(episode["id"], "phq-9", 1, _PHQ)
    body["item"][0] = copy.deepcopy(first_item)
    response = await attune.http.post(
        "/fhir/QuestionnaireResponse", json=body, headers={**tenant.admin, **FHIR_JSON}
    )
    assert expression in _expressions(outcome(response, 400))


@pytest.mark.parametrize("answer", [{"valueInteger": "1"}, {"valueDecimal": "1.5"}])
async def test_an_answer_the_r4b_model_coerces_is_refused_naming_its_item(
    attune: Attune, answer: dict[str, object]
) -> None:
    """The R4B model accepts a number sent as a string; the submission schema, which judges the
    answer as posted, does not."""
    tenant = await attune.tenant()
    episode = await tenant.episode()
    body = questionnaire_response(episode["id"], "phq-9", 1, _PHQ)
    body["item"][0]["answer"] = [answer]
    response = await attune.http.post(
        "/fhir/QuestionnaireResponse", json=body, headers={**tenant.admin, **FHIR_JSON}
    )
    assert _expressions(outcome(response, 422)) == {"QuestionnaireResponse.item.where(linkId='q1')"}
