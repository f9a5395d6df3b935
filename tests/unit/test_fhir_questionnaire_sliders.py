"""Questionnaire items carry the standard slider extensions (DESIGN.md §10.6), so off-the-shelf
form renderers draw them: questionnaire-itemControl ``slider``, minValue/maxValue, and the step as
questionnaire-sliderStepValue (an integer) or, for a decimal grid, maxDecimalPlaces."""

from fhir.resources.R4B.questionnaire import Questionnaire

from services.fhir.codes import EXT_STEP
from services.fhir.questionnaire import to_questionnaire
from services.fhir.shapes import Extension, QuestionnaireItem
from services.fhir.shapes import Questionnaire as QuestionnaireJson
from services.instruments import registry

ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
SLIDER_STEP = "http://hl7.org/fhir/StructureDefinition/questionnaire-sliderStepValue"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
DECIMALS = "http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces"


def _extensions(item: QuestionnaireItem) -> dict[str, Extension]:
    return {e["url"]: e for e in item.get("extension", [])}


def _builtin(code: str) -> QuestionnaireJson:
    definition = registry.get_builtin(code)
    questionnaire = to_questionnaire(definition)
    Questionnaire.model_validate(questionnaire)
    return questionnaire


def test_a_visual_analogue_item_is_a_decimal_slider_with_one_decimal() -> None:
    item = _builtin("srs")["item"][0]
    found = _extensions(item)
    assert item["type"] == "decimal"
    assert found[ITEM_CONTROL]["valueCodeableConcept"]["coding"][0]["code"] == "slider"
    assert found[MIN_VALUE] == {"url": MIN_VALUE, "valueDecimal": 0.0}
    assert found[MAX_VALUE] == {"url": MAX_VALUE, "valueDecimal": 10.0}
    assert found[DECIMALS]["valueInteger"] == 1
    assert EXT_STEP not in found  # the standard extensions say it all


def test_a_likert_item_is_an_integer_slider_with_its_step() -> None:
    item = _builtin("phq-9")["item"][0]
    found = _extensions(item)
    assert item["type"] == "integer"
    assert found[ITEM_CONTROL]["valueCodeableConcept"]["coding"][0]["code"] == "slider"
    assert found[SLIDER_STEP] == {"url": SLIDER_STEP, "valueInteger": 1}
    assert (found[MIN_VALUE]["valueInteger"], found[MAX_VALUE]["valueInteger"]) == (0, 3)
    assert EXT_STEP not in found
