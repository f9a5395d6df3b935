"""Risk is never silenced by a definition (DESIGN.md §10.3.1, issue 13 finding 3): a risk item is
always asked and never prorated, and its threshold lies above the item's minimum."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from services.instruments import InstrumentDefinition
from services.instruments import get_builtin as builtin
from services.scoring import InvalidAnswers, score, validate_answers


def phq9_clone(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(builtin("phq-9").model_dump(mode="json", exclude_none=True))
    data.update(code="phq-9-local", **changes)
    return data


def problems_of(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        InstrumentDefinition.model_validate(data)
    return str(info.value)


def test_a_phq9_clone_whose_proration_could_fill_in_item_9_is_refused() -> None:
    text = problems_of(phq9_clone(scoring={"method": "sum", "max_missing_prorated": 2}))
    assert "scoring.max_missing_prorated" in text
    assert "risk item 'q9'" in text


def test_an_optional_risk_item_is_refused() -> None:
    data = phq9_clone()
    data["items"][9]["in_total"] = False  # the 'difficulty' item, made a risk item
    data["risk_items"].append({"item": "difficulty", "threshold": 2, "label": "Difficulty"})
    assert "risk_items[1].item: a risk item must be required and unconditional" in problems_of(data)


def test_a_conditional_risk_item_is_refused() -> None:
    data = copy.deepcopy(builtin("rupture-check").model_dump(mode="json", exclude_none=True))
    data.update(code="rupture-local")
    data["risk_items"] = [{"item": "intensity", "threshold": 5, "label": "Strong tension"}]
    assert "risk_items[0].item: a risk item must be required and unconditional" in problems_of(data)


@pytest.mark.parametrize("threshold", [0, -1, 4])
def test_a_risk_threshold_at_or_below_the_items_minimum_or_above_its_maximum_is_refused(
    threshold: int,
) -> None:
    data = phq9_clone()
    data["risk_items"][0]["threshold"] = threshold
    assert "risk_items[0].threshold" in problems_of(data)


def test_proration_of_other_items_stays_allowed_when_the_risk_item_is_outside_the_total() -> None:
    data = {
        "code": "mood-four", "version": "1", "name": "Mood", "kind": "symptom",
        "respondents": ["client"],
        "items": [
            *({"id": i, "label": i, "min": 0, "max": 3, "step": 1} for i in "abcd"),
            {"id": "harm", "label": "harm", "min": 0, "max": 3, "step": 1, "in_total": False},
        ],
        "scoring": {"method": "sum", "max_missing_prorated": 1},
        "direction": "lower_is_better",
        "risk_items": [{"item": "harm", "threshold": 1, "label": "Harm"}],
        "citation": "test", "license": "test",
    }  # fmt: skip
    defn = InstrumentDefinition.model_validate(data)
    assert score(defn, {"a": 1, "b": 1, "c": 1, "harm": 2}).risk_flags == ["harm"]
    problems = validate_answers(defn, {"a": 1, "b": 1, "c": 1, "d": 1})
    assert [(p.item, p.code) for p in problems] == [("harm", "missing")]


def test_a_submission_without_the_risk_item_is_refused_naming_it() -> None:
    answers: dict[str, object] = {f"q{i}": 0 for i in range(1, 9)}
    with pytest.raises(InvalidAnswers) as info:
        score(builtin("phq-9"), answers)
    assert [(p.item, p.code) for p in info.value.problems] == [("q9", "missing")]


def test_the_builtin_phq9_item_9_threshold_is_1() -> None:
    """Simon et al. (2013): any answer ≥ 1 to item 9 is a risk flag (reference/psychometrics.md)."""
    phq = builtin("phq-9")
    assert [(r.item, r.threshold) for r in phq.risk_items] == [("q9", 1)]
    assert score(phq, {**{f"q{i}": 0 for i in range(1, 9)}, "q9": 1}).risk_flags == ["q9"]
