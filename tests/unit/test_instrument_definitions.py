"""Instrument definitions: the built-ins encode reference/psychometrics.md; bad definitions are
refused with a message naming the field."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.instruments import DefinitionProblems, InstrumentDefinition, builtin_instruments
from services.instruments import get_builtin as builtin
from services.instruments.schema import dec

# The example of DESIGN.md §5, verbatim apart from the elided citation.
DESIGN_EXAMPLE: dict[str, Any] = {
    "code": "bdi-local",
    "version": "1",
    "name": "Local depression inventory",
    "kind": "symptom",
    "respondents": ["client"],
    "items": [{"id": "score", "label": "Total score", "min": 0, "max": 63, "step": 1}],
    "subscales": {},
    "direction": "lower_is_better",
    "cutoff": 14,
    "reliable_change": 7,
    "bands": [
        {"max": 13, "label": "minimal"},
        {"max": 19, "label": "mild"},
        {"max": 63, "label": "severe"},
    ],
    "risk_items": [],
    "citation": "…",
    "license": "used under the organisation's own licence",
}

# A small multi-item definition to break in many ways.
THREE_ITEMS: dict[str, Any] = {
    "code": "local-three",
    "version": "1",
    "name": "Three items",
    "kind": "other",
    "respondents": ["client"],
    "items": [
        {"id": "a", "label": "A", "min": 0, "max": 4, "step": 1},
        {"id": "b", "label": "B", "min": 0, "max": 4, "step": 1},
        {"id": "c", "label": "C", "min": 0, "max": 4, "step": 1},
    ],
    "subscales": {"first": ["a", "b"], "second": ["c"]},
    "direction": "higher_is_better",
    "cutoff": 6,
    "bands": [{"max": 6, "label": "low"}, {"max": 12, "label": "high"}],
    "risk_items": [{"item": "a", "threshold": 1, "label": "A raised"}],
    "citation": "test",
    "license": "test",
}


def test_design_example_definition_validates() -> None:
    defn = InstrumentDefinition.model_validate(DESIGN_EXAMPLE)
    assert defn.total_range == (0.0, 63.0)
    assert defn.reliable_change_points == 7.0
    assert defn.scoring.method == "sum"
    assert defn.scoring.max_missing_prorated == 0


def test_definition_round_trips_through_json() -> None:
    for defn in builtin_instruments().values():
        again = InstrumentDefinition.model_validate_json(defn.model_dump_json())
        assert again == defn


def test_integral_numbers_stay_integers_in_json() -> None:
    dumped = InstrumentDefinition.model_validate(DESIGN_EXAMPLE).model_dump(mode="json")
    assert dumped["items"][0]["min"] == 0
    assert isinstance(dumped["items"][0]["min"], int)


def test_all_seven_builtins_load() -> None:
    assert set(builtin_instruments()) == {
        "srs",
        "ors",
        "wai-sr",
        "phq-9",
        "gad-7",
        "chs",
        "rupture-check",
    }


def test_get_builtin_unknown_code_raises_key_error() -> None:
    with pytest.raises(KeyError, match="no built-in instrument"):
        builtin("bdi-ii")


def test_srs_facts() -> None:
    srs = builtin("srs")
    assert (srs.version, srs.kind, srs.direction, srs.cutoff) == (
        "3.0",
        "alliance",
        "higher_is_better",
        36,
    )
    assert [i.id for i in srs.items] == [
        "relationship",
        "goals_topics",
        "approach_method",
        "overall",
    ]
    assert all((i.min, i.max, i.step, i.reverse) == (0, 10, 0.1, False) for i in srs.items)
    assert srs.total_range == (0.0, 40.0)
    assert srs.reliable_change_points is None


def test_ors_facts() -> None:
    ors = builtin("ors")
    assert ors.kind == "outcome"
    assert ors.direction == "higher_is_better"
    assert [i.id for i in ors.items] == ["individually", "interpersonally", "socially", "overall"]
    assert all((i.min, i.max, i.step) == (0, 10, 0.1) for i in ors.items)
    # Client self-report norms only: the sources give no collateral norms (psychometrics.md).
    assert ors.cutoff == {"client": {"adult": 25, "adolescent": 28, "child": 32}}
    assert ors.reliable_change_points == 5.0


def test_wai_sr_facts() -> None:
    wai = builtin("wai-sr")
    assert wai.kind == "alliance"
    assert [i.id for i in wai.items] == [f"q{n}" for n in range(1, 13)]
    assert all((i.min, i.max, i.step, i.reverse) == (1, 5, 1, False) for i in wai.items)
    assert wai.subscales == {
        "task": ["q1", "q2", "q10", "q12"],
        "bond": ["q3", "q5", "q7", "q9"],
        "goal": ["q4", "q6", "q8", "q11"],
    }
    assert wai.cutoff is None
    assert wai.scoring.max_missing_prorated == 0
    assert wai.total_range == (12.0, 60.0)


def test_phq9_facts() -> None:
    phq = builtin("phq-9")
    assert (phq.kind, phq.direction, phq.cutoff, phq.reliable_change) == (
        "symptom",
        "lower_is_better",
        10,
        6,
    )
    assert [i.id for i in phq.total_items] == [f"q{n}" for n in range(1, 10)]
    difficulty = phq.item("difficulty")
    assert (difficulty.required, difficulty.in_total, difficulty.min, difficulty.max) == (
        False,
        False,
        0,
        3,
    )
    assert [(b.max, b.label) for b in phq.bands] == [
        (4, "minimal"),
        (9, "mild"),
        (14, "moderate"),
        (19, "moderately severe"),
        (27, "severe"),
    ]
    assert [(r.item, r.threshold) for r in phq.risk_items] == [("q9", 1)]
    assert (phq.loinc, phq.total_loinc) == ("44249-1", "44261-6")
    assert [phq.item(f"q{n}").loinc for n in range(1, 10)] == [
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
    ]
    answers = [(a.value, a.loinc) for a in phq.item("q9").answer_loinc]
    assert answers == [(0, "LA6568-5"), (1, "LA6569-3"), (2, "LA6570-1"), (3, "LA6571-9")]
    assert phq.total_range == (0.0, 27.0)


def test_gad7_facts() -> None:
    gad = builtin("gad-7")
    assert (gad.kind, gad.direction, gad.cutoff, gad.reliable_change) == (
        "symptom",
        "lower_is_better",
        8,
        4,
    )
    assert [(b.max, b.label) for b in gad.bands] == [
        (4, "minimal"),
        (9, "mild"),
        (14, "moderate"),
        (21, "severe"),
    ]
    assert (gad.loinc, gad.total_loinc) == ("69737-5", "70274-6")
    assert [i.loinc for i in gad.items] == [
        "69725-0",
        "68509-9",
        "69733-4",
        "69734-2",
        "69735-9",
        "69689-8",
        "69736-7",
    ]
    assert gad.total_range == (0.0, 21.0)


def test_chs_facts() -> None:
    chs = builtin("chs")
    assert (chs.kind, chs.direction) == ("humility", "higher_is_better")
    assert [i.id for i in chs.items if i.reverse] == ["q3", "q6", "q8", "q10", "q11"]
    assert chs.total_range == (12.0, 60.0)


def test_rupture_check_has_conditional_items_and_no_total() -> None:
    rc = builtin("rupture-check")
    assert rc.kind == "rupture"
    assert rc.scoring.method == "none"
    assert rc.total_range is None
    tension, intensity, resolution = rc.items
    assert (tension.id, tension.min, tension.max, tension.when) == ("tension", 0, 1, None)
    for item in (intensity, resolution):
        assert (item.min, item.max, item.required) == (1, 5, True)
        assert item.when is not None
        assert (item.when.item, item.when.equals) == ("tension", 1)


@pytest.mark.parametrize("code", ["srs", "ors", "wai-sr", "chs"])
def test_licensed_instruments_ship_only_short_neutral_labels(code: str) -> None:
    for item in builtin(code).items:
        assert len(item.label) <= 30, item.label


def test_reliable_change_from_sd_and_reliability() -> None:
    data = {**DESIGN_EXAMPLE, "reliable_change": {"sd": 10.5, "reliability": 0.961}}
    points = InstrumentDefinition.model_validate(data).reliable_change_points
    assert points == pytest.approx(5.747681, abs=1e-6)
    assert points == pytest.approx(1.96 * math.sqrt(2) * 10.5 * math.sqrt(1 - 0.961))


def test_definition_problems_are_available_as_a_structured_list() -> None:
    data = copy.deepcopy(THREE_ITEMS)
    data["items"][1]["id"] = "a"
    with pytest.raises(ValidationError) as info:
        InstrumentDefinition.model_validate(data)
    cause = info.value.errors()[0]["ctx"]["error"]
    assert isinstance(cause, DefinitionProblems)
    assert cause.problems == [("items[1].id", "duplicate item id 'a'")]


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(key: str) -> Mutation:
    return lambda d: d.pop(key) and None


INVALID: list[tuple[str, Mutation, str]] = [
    ("duplicate item ids", _set("items.1.id", "a"), "items[1].id: duplicate item id 'a'"),
    ("min greater than max", _set("items.0.min", 5), "items[0].min: min (5) must be less than"),
    ("min equal to max", _set("items.0.max", 0), "items[0].min"),
    ("zero step", _set("items.0.step", 0), "items[0].step: step must be positive"),
    ("negative step", _set("items.0.step", -1), "items[0].step: step must be positive"),
    ("range not a multiple of step", _set("items.0.step", 3), "items[0].step: max - min (4)"),
    (
        "subscale with unknown item",
        _set("subscales.second", ["z"]),
        "subscales.second: unknown item",
    ),
    (
        "overlapping subscales",
        _set("subscales.second", ["c", "a"]),
        "subscales.second: item 'a' is also in subscale 'first'",
    ),
    ("item twice in a subscale", _set("subscales.first", ["a", "a"]), "listed twice"),
    ("empty subscale", _set("subscales.second", []), "subscales.second: a subscale needs"),
    ("bad subscale name", _set("subscales", {"First": ["a"]}), "subscales.First"),
    (
        "bands not ascending",
        _set(
            "bands", [{"max": 6, "label": "x"}, {"max": 5, "label": "y"}, {"max": 12, "label": "z"}]
        ),
        "bands[1].max: band limits must be strictly ascending",
    ),
    (
        "bands not covering the total range",
        _set("bands", [{"max": 6, "label": "low"}, {"max": 11, "label": "high"}]),
        "bands[1].max: the last band must end at the maximum total 12",
    ),
    (
        "band beyond the total range",
        _set("bands", [{"max": 6, "label": "low"}, {"max": 13, "label": "high"}]),
        "bands[1].max: outside the total range",
    ),
    ("duplicate band labels", _set("bands.1.label", "low"), "bands: duplicate band label"),
    ("risk item unknown", _set("risk_items.0.item", "z"), "risk_items[0].item: unknown item 'z'"),
    (
        "risk threshold above the item's range",
        _set("risk_items.0.threshold", 5),
        "risk_items[0].threshold: must lie above the minimum",
    ),
    (
        "risk threshold below the item's range",
        _set("risk_items.0.threshold", -1),
        "risk_items[0].threshold",
    ),
    (
        "condition naming an unknown item",
        _set("items.2.when", {"item": "z", "equals": 1}),
        "unknown",
    ),
    (
        "condition naming the item itself",
        _set("items.2.when", {"item": "c", "equals": 1}),
        "items[2].when.item: an item cannot be conditional on itself",
    ),
    (
        "condition value not a valid answer",
        _set("items.2.when", {"item": "a", "equals": 9}),
        "items[2].when.equals",
    ),
    ("reliability of 1", _set("reliable_change", {"sd": 3, "reliability": 1}), "reliability"),
    ("reliability of 0", _set("reliable_change", {"sd": 3, "reliability": 0}), "reliability"),
    ("reliability above 1", _set("reliable_change", {"sd": 3, "reliability": 1.2}), "reliability"),
    (
        "non-positive sd",
        _set("reliable_change", {"sd": 0, "reliability": 0.8}),
        "reliable_change.sd",
    ),
    ("non-positive rc points", _set("reliable_change", 0), "reliable_change: must be positive"),
    (
        "unknown cut-off population",
        _set("cutoff", {"adult": 6, "elderly": 7}),
        "cutoff.elderly: unknown population",
    ),
    ("empty cut-off map", _set("cutoff", {}), "cutoff: a cut-off map needs"),
    ("cut-off outside the total range", _set("cutoff", 13), "cutoff: outside the total range"),
    ("code not a slug", _set("code", "BDI"), "code"),
    ("item id not a slug", _set("items.0.id", "Q-1"), "items.0.id"),
    ("unknown field", _set("colour", "red"), "colour"),
    ("boolean as a number", _set("items.0.max", True), "items.0.max"),
    ("numeric string as a number", _set("items.0.max", "4"), "items.0.max"),
    ("NaN as a number", _set("items.0.max", float("nan")), "items.0.max"),
    ("no items", _set("items", []), "items"),
    ("no respondents", _set("respondents", []), "respondents"),
    ("unknown respondent", _set("respondents", ["teacher"]), "respondents"),
    ("duplicate respondents", _set("respondents", ["client", "client"]), "respondents: duplicate"),
    ("unknown kind", _set("kind", "mood"), "kind"),
    ("missing direction with a total", _delete("direction"), "direction: required"),
    (
        "optional item in the total",
        _set("items.2.required", False),
        "items[2].in_total: an item counted in the total must be required",
    ),
    (
        "proration covering a whole subscale",
        _set("scoring", {"method": "sum", "max_missing_prorated": 1}),
        "must be less than the smallest subscale (1 items)",
    ),
    (
        "subscale with an item outside the total",
        _set("items.2.in_total", False),
        "subscales.second: item 'c' is not counted in the total",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "message"), [(m, msg) for _, m, msg in INVALID], ids=[n for n, _, _ in INVALID]
)
def test_invalid_definition_is_refused_naming_the_field(mutate: Mutation, message: str) -> None:
    data = copy.deepcopy(THREE_ITEMS)
    mutate(data)
    with pytest.raises(ValidationError) as info:
        InstrumentDefinition.model_validate(data)
    assert message in str(info.value)


def test_three_items_base_definition_is_valid() -> None:
    InstrumentDefinition.model_validate(THREE_ITEMS)


def test_chained_conditions_are_refused() -> None:
    data = copy.deepcopy(builtin("rupture-check").model_dump(mode="json"))
    data["items"][2]["when"] = {"item": "intensity", "equals": 1}
    with pytest.raises(ValidationError, match=r"items\[2\]\.when\.item: 'intensity' is itself"):
        InstrumentDefinition.model_validate(data)


def test_definition_without_total_refuses_total_rules() -> None:
    data = copy.deepcopy(builtin("rupture-check").model_dump(mode="json"))
    data["cutoff"] = 1
    data["items"][0]["in_total"] = True
    with pytest.raises(ValidationError) as info:
        InstrumentDefinition.model_validate(data)
    text = str(info.value)
    assert "cutoff: not allowed when scoring.method is 'none'" in text
    assert "items[0].in_total: must be false" in text


def test_proration_limit_must_leave_an_answered_item() -> None:
    data = {**DESIGN_EXAMPLE, "scoring": {"method": "sum", "max_missing_prorated": 1}}
    with pytest.raises(ValidationError, match=r"scoring\.max_missing_prorated: must be less than"):
        InstrumentDefinition.model_validate(data)


def test_mean_scoring_range_is_the_item_range() -> None:
    data = copy.deepcopy(THREE_ITEMS)
    data["scoring"] = {"method": "mean"}
    data["cutoff"] = 2
    data["bands"] = [{"max": 2, "label": "low"}, {"max": 4, "label": "high"}]
    assert InstrumentDefinition.model_validate(data).total_range == (0.0, 4.0)


@given(st.lists(st.one_of(st.integers(), st.floats(allow_nan=False)), min_size=1, max_size=5))
def test_a_numbers_decimal_is_its_text_also_when_an_equal_number_was_converted_first(
    numbers: list[int | float],
) -> None:
    """dec() keeps the numbers it converted: 1 and 1.0, 0.0 and -0.0 are equal keys but
    different texts ("1", "1.0", "0.0", "-0.0"), and each must keep its own."""
    for value in [*numbers, *(-v for v in numbers), *(float(v) for v in numbers)]:
        assert str(dec(value)) == str(Decimal(str(value)))
