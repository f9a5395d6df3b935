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
from typing import Any

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
from services.instruments import InstrumentDefinition, Item
from services.instruments.schema import dec


def canonical(code: str) -> str:
    return f"{QUESTIONNAIRE}/{code}"


def versioned_canonical(code: str, version: str) -> str:
    return f"{canonical(code)}|{version}"


def is_whole(item: Item) -> bool:
    return all(dec(v) == dec(v).to_integral_value() for v in (item.min, item.max, item.step))


def typed_value(item: Item, value: int | float | Decimal) -> dict[str, Any]:
    """``{"valueInteger": …}`` or ``{"valueDecimal": …}`` as the item's type says."""
    number = dec(value)
    if is_whole(item) and number == number.to_integral_value():
        return {"valueInteger": int(number)}
    return {"valueDecimal": float(number)}


_SLIDER = {
    "url": EXT_ITEM_CONTROL,
    "valueCodeableConcept": {
        "coding": [{"system": ITEM_CONTROL_SYSTEM, "code": "slider", "display": "Slider"}]
    },
}


def _step(item: Item) -> list[dict[str, Any]]:
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


def _item(definition: InstrumentDefinition, item: Item) -> dict[str, Any]:
    kind = "integer" if is_whole(item) else "decimal"
    value_key = "valueInteger" if kind == "integer" else "valueDecimal"

    def bound(value: int | float) -> Any:
        return int(dec(value)) if kind == "integer" else float(dec(value))

    out: dict[str, Any] = {
        "linkId": item.id,
        "text": item.label,
        "type": kind,
        "required": item.required and item.when is None,
        "extension": [
            _SLIDER,
            {"url": EXT_MIN_VALUE, value_key: bound(item.min)},
            {"url": EXT_MAX_VALUE, value_key: bound(item.max)},
            *_step(item),
        ],
    }
    if item.loinc:
        out["code"] = [{"system": LOINC, "code": item.loinc}]
    if item.when is not None:
        trigger = next(i for i in definition.items if i.id == item.when.item)
        answer = typed_value(trigger, item.when.equals)
        [(key, value)] = answer.items()
        out["enableWhen"] = [
            {"question": trigger.id, "operator": "=", key.replace("value", "answer"): value}
        ]
        out["required"] = item.required
    return out


def to_questionnaire(definition: InstrumentDefinition) -> dict[str, Any]:
    out: dict[str, Any] = {
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
