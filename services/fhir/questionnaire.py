"""An instrument definition as a FHIR Questionnaire.

Items keep their ids as ``linkId``; a numeric item is ``integer`` when its range and step are
whole numbers, else ``decimal``, drawn as a slider (HL7's ``questionnaire-itemControl``) over its
range (``minValue``/``maxValue``) in its steps: ``questionnaire-sliderStepValue`` for a whole step,
``maxDecimalPlaces`` for a step of 0.1, 0.01, … (sliderStepValue is an integer), and Attune's
``step`` extension only for a grid neither can say. LOINC codes of items (PHQ-9, GAD-7) are
item codes; a conditional item (``when``) becomes ``enableWhen``. Licensed instruments carry only
their short neutral labels (DESIGN.md §5), as everywhere else.
"""

from decimal import Decimal
from typing import Literal

from services.fhir.codes import (
    EXT_ITEM_CONTROL,
    EXT_MAX_DECIMAL_PLACES,
    EXT_MAX_VALUE,
    EXT_MIN_VALUE,
    EXT_SLIDER_STEP,
    EXT_STEP,
    ITEM_CONTROL_SYSTEM,
    LOINC,
    QUESTIONNAIRE,
)
from services.fhir.shapes import (
    Answer,
    EnableWhen,
    Extension,
    Questionnaire,
    QuestionnaireItem,
)
from services.instruments import InstrumentDefinition, Item
from services.instruments.schema import dec


def canonical(code: str) -> str:
    return f"{QUESTIONNAIRE}/{code}"


def versioned_canonical(code: str, version: str) -> str:
    return f"{canonical(code)}|{version}"


def is_whole(item: Item) -> bool:
    return all(dec(v) == dec(v).to_integral_value() for v in (item.min, item.max, item.step))


def typed_value(item: Item, value: int | float | Decimal) -> Answer:
    """``{"valueInteger": …}`` or ``{"valueDecimal": …}`` as the item's type says."""
    number = dec(value)
    if is_whole(item) and number == number.to_integral_value():
        return {"valueInteger": int(number)}
    return {"valueDecimal": float(number)}


_SLIDER: Extension = {
    "url": EXT_ITEM_CONTROL,
    "valueCodeableConcept": {
        "coding": [{"system": ITEM_CONTROL_SYSTEM, "code": "slider", "display": "Slider"}]
    },
}


def _step(item: Item) -> list[Extension]:
    step = dec(item.step)
    if step == step.to_integral_value():
        return [{"url": EXT_SLIDER_STEP, "valueInteger": int(step)}]
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # a finite number (the schema refuses others)
    places = -exponent
    if step.normalize() == Decimal(1).scaleb(-places):  # 0.1, 0.01, …
        return [{"url": EXT_MAX_DECIMAL_PLACES, "valueInteger": places}]
    return [
        {"url": EXT_MAX_DECIMAL_PLACES, "valueInteger": places},
        {"url": EXT_STEP, "valueDecimal": float(step)},
    ]


def _bound(url: str, kind: Literal["integer", "decimal"], value: int | float) -> Extension:
    """minValue or maxValue, typed as the item is."""
    if kind == "integer":
        return {"url": url, "valueInteger": int(dec(value))}
    return {"url": url, "valueDecimal": float(dec(value))}


def _enable_when(question: str, answer: Answer) -> EnableWhen:
    """``enableWhen`` on the trigger's answer, its value[x] named answer[x]."""
    if "valueInteger" in answer:
        return {"question": question, "operator": "=", "answerInteger": answer["valueInteger"]}
    return {"question": question, "operator": "=", "answerDecimal": answer["valueDecimal"]}


def _item(definition: InstrumentDefinition, item: Item) -> QuestionnaireItem:
    kind: Literal["integer", "decimal"] = "integer" if is_whole(item) else "decimal"
    out: QuestionnaireItem = {
        "linkId": item.id,
        "text": item.label,
        "type": kind,
        "required": item.required and item.when is None,
        "extension": [
            _SLIDER,
            _bound(EXT_MIN_VALUE, kind, item.min),
            _bound(EXT_MAX_VALUE, kind, item.max),
            *_step(item),
        ],
    }
    if item.loinc:
        out["code"] = [{"system": LOINC, "code": item.loinc}]
    if item.when is not None:
        trigger = next(i for i in definition.items if i.id == item.when.item)
        out["enableWhen"] = [_enable_when(trigger.id, typed_value(trigger, item.when.equals))]
        out["required"] = item.required
    return out


def to_questionnaire(definition: InstrumentDefinition) -> Questionnaire:
    out: Questionnaire = {
        "resourceType": "Questionnaire",
        "id": definition.code,
        "url": canonical(definition.code),
        "version": definition.version,
        "name": _computable_name(definition.code),
        "title": definition.name,
        "status": "active",
        "subjectType": ["Patient"],
        "description": definition.citation,
        "copyright": definition.license,
        "item": [_item(definition, item) for item in definition.items],
    }
    if definition.loinc:
        out["code"] = [{"system": LOINC, "code": definition.loinc}]
    return out


def _computable_name(code: str) -> str:
    """A name as FHIR wants one (``[A-Z]([A-Za-z0-9_]){0,254}``): ``phq-9`` → ``Phq9``."""
    parts = [p for p in code.replace("_", "-").split("-") if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts)
    return name if name[:1].isalpha() else f"I{name}"
