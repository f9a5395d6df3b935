"""Scoring: worked examples of reference/psychometrics.md, bands, answer problems, proration, and
properties that must hold for every valid answer set."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.instruments import InstrumentDefinition, Item, builtin_instruments
from services.instruments import get_builtin as builtin
from services.instruments.schema import dec
from services.scoring import InvalidAnswers, cutoff_for, in_clinical_range, score, validate_answers


def answers_for(code: str, values: list[float]) -> dict[str, object]:
    defn = builtin(code)
    return {item.id: v for item, v in zip(defn.total_items, values, strict=True)}


def answers_summing_to(code: str, total: int) -> dict[str, object]:
    """Integer answers that add up to ``total`` (greedy from the first item)."""
    out: dict[str, object] = {}
    left = total
    for item in builtin(code).total_items:
        value = min(int(item.max), left)
        out[item.id] = value
        left -= value
    assert left == 0
    return out


# ----- worked examples (reference/psychometrics.md) -----------------------------------------------


@pytest.mark.parametrize(
    ("case", "values", "total", "below"),
    [
        ("SRS-1", [9.2, 8.7, 9.0, 9.5], 36.4, False),
        ("SRS-2", [9.0, 9.0, 9.0, 8.9], 35.9, True),
        ("SRS-3", [9, 9, 9, 9], 36.0, False),
    ],
)
def test_srs_worked_examples_against_cutoff_36(
    case: str, values: list[float], total: float, below: bool
) -> None:
    scores = score(builtin("srs"), answers_for("srs", values))
    assert scores.total == total, case
    assert scores.below_cutoff is below
    assert scores.clinical is below  # higher is better: below the cut-off is the problem side


def test_srs_design_example_total_is_exact_decimal() -> None:
    answers = {"relationship": 9.1, "goals_topics": 8.4, "approach_method": 9.0, "overall": 8.8}
    scores = score(builtin("srs"), answers)
    assert scores.total == 35.3
    assert scores.mean == 8.825
    assert scores.subscales == {}
    assert scores.band is None


def test_ors1_adult_19_is_clinical() -> None:
    scores = score(builtin("ors"), answers_for("ors", [4.5, 6.0, 5.5, 3.0]), "adult")
    assert scores.total == 19.0
    assert scores.clinical is True
    assert scores.below_cutoff is True


def test_ors_adult_25_is_not_clinical() -> None:
    scores = score(builtin("ors"), answers_for("ors", [6.2, 6.3, 6.2, 6.3]), "adult")
    assert scores.total == 25.0
    assert scores.clinical is False
    assert scores.below_cutoff is False


def test_ors3_child_30_is_clinical_with_cors_cutoff_32() -> None:
    scores = score(builtin("ors"), answers_for("ors", [7.5, 7.5, 7.5, 7.5]), "child")
    assert scores.total == 30.0
    assert scores.clinical is True
    assert score(builtin("ors"), answers_for("ors", [7.5] * 4), "adult").clinical is False


@pytest.mark.parametrize(("values", "clinical"), [([7.0, 7.0, 7.0, 6.9], True), ([7.0] * 4, False)])
def test_ors_adolescent_cutoff_28(values: list[float], clinical: bool) -> None:
    assert score(builtin("ors"), answers_for("ors", values), "adolescent").clinical is clinical


def test_wai1_subscales_total_and_mean() -> None:
    scores = score(builtin("wai-sr"), answers_for("wai-sr", [4, 4, 5, 3, 5, 4, 5, 4, 4, 4, 3, 4]))
    assert scores.subscales == {"task": 16.0, "bond": 19.0, "goal": 14.0}
    assert scores.total == 49.0
    assert scores.mean == 4.0833
    assert scores.clinical is None  # no published cut-off
    assert scores.below_cutoff is None


def test_phq1_mild_with_item9_risk_flag() -> None:
    scores = score(builtin("phq-9"), answers_for("phq-9", [2, 2, 1, 1, 0, 1, 1, 0, 1]))
    assert scores.total == 9.0
    assert scores.band == "mild"
    assert scores.risk_flags == ["q9"]
    assert scores.clinical is False  # caseness is >= 10


def test_gad1_mild_not_a_case() -> None:
    scores = score(builtin("gad-7"), answers_for("gad-7", [1, 1, 2, 1, 0, 1, 0]))
    assert scores.total == 6.0
    assert scores.band == "mild"
    assert scores.clinical is False


def test_gad7_case_at_8() -> None:
    assert score(builtin("gad-7"), answers_summing_to("gad-7", 8)).clinical is True
    assert score(builtin("gad-7"), answers_summing_to("gad-7", 7)).clinical is False


def test_phq9_case_at_10() -> None:
    assert score(builtin("phq-9"), answers_summing_to("phq-9", 10)).clinical is True
    assert score(builtin("phq-9"), answers_summing_to("phq-9", 9)).clinical is False


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately severe"),
        (19, "moderately severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_band_boundaries(total: int, band: str) -> None:
    assert score(builtin("phq-9"), answers_summing_to("phq-9", total)).band == band


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_band_boundaries(total: int, band: str) -> None:
    assert score(builtin("gad-7"), answers_summing_to("gad-7", total)).band == band


def test_phq9_item9_flag_is_raised_whatever_the_total() -> None:
    answers = {**answers_summing_to("phq-9", 0), "q9": 3}
    scores = score(builtin("phq-9"), answers)
    assert scores.band == "minimal"
    assert scores.risk_flags == ["q9"]


def test_phq9_item9_zero_raises_no_flag() -> None:
    assert score(builtin("phq-9"), answers_summing_to("phq-9", 20)).risk_flags == []


def test_phq9_difficulty_is_optional_and_not_in_the_total() -> None:
    answers = answers_summing_to("phq-9", 12)
    with_difficulty = score(builtin("phq-9"), {**answers, "difficulty": 3})
    assert with_difficulty.total == 12.0
    assert with_difficulty.items["difficulty"] == 3.0
    assert score(builtin("phq-9"), answers).total == 12.0


def test_chs_reverse_items_are_scored_six_minus_x() -> None:
    chs = builtin("chs")
    all_fives = score(chs, {f"q{n}": 5 for n in range(1, 13)})
    assert all_fives.total == 7 * 5 + 5 * 1
    assert all_fives.items["q3"] == 1.0
    assert all_fives.items["q1"] == 5.0
    all_ones = score(chs, {f"q{n}": 1 for n in range(1, 13)})
    assert all_ones.total == 7 * 1 + 5 * 5
    mixed = score(chs, {f"q{n}": (2 if n in (3, 6, 8, 10, 11) else 4) for n in range(1, 13)})
    assert mixed.total == 60 - 12  # every item scores 4


def test_integral_totals_are_returned_as_float() -> None:
    scores = score(builtin("phq-9"), answers_summing_to("phq-9", 9))
    assert type(scores.total) is float
    assert scores.model_dump(mode="json")["total"] == 9.0


def test_cutoff_for_population() -> None:
    ors = builtin("ors")
    assert [cutoff_for(ors, p) for p in ("adult", "adolescent", "child")] == [25.0, 28.0, 32.0]
    assert cutoff_for(builtin("srs"), "child") == 36.0
    assert cutoff_for(builtin("wai-sr"), "adult") is None


def test_cutoff_map_without_the_population_gives_no_cutoff() -> None:
    data = builtin("ors").model_dump(mode="json")
    data["cutoff"] = {"adult": 25}
    ors = InstrumentDefinition.model_validate(data)
    assert cutoff_for(ors, "child") is None
    assert score(ors, answers_for("ors", [1, 1, 1, 1]), "child").clinical is None


def test_in_clinical_range_follows_direction() -> None:
    assert in_clinical_range(24.9, 25, "higher_is_better")
    assert not in_clinical_range(25.0, 25, "higher_is_better")
    assert in_clinical_range(10, 10, "lower_is_better")
    assert not in_clinical_range(9, 10, "lower_is_better")


# ----- rupture-check ------------------------------------------------------------------------------


def test_rupture_check_with_tension_requires_intensity_and_resolution() -> None:
    rc = builtin("rupture-check")
    problems = validate_answers(rc, {"tension": 1})
    assert [(p.item, p.code) for p in problems] == [
        ("intensity", "missing"),
        ("resolution", "missing"),
    ]


def test_rupture_check_without_tension_forbids_intensity_and_resolution() -> None:
    rc = builtin("rupture-check")
    problems = validate_answers(rc, {"tension": 0, "intensity": 2, "resolution": 5})
    assert [(p.item, p.code) for p in problems] == [
        ("intensity", "unexpected"),
        ("resolution", "unexpected"),
    ]
    assert validate_answers(rc, {"tension": 0}) == []


def test_rupture_check_scores_expose_items_and_no_total() -> None:
    scores = score(builtin("rupture-check"), {"tension": 1, "intensity": 4, "resolution": 2})
    assert scores.total is None
    assert scores.mean is None
    assert scores.band is None
    assert scores.clinical is None
    assert scores.items == {"tension": 1.0, "intensity": 4.0, "resolution": 2.0}


def test_rupture_check_missing_tension_reports_only_tension() -> None:
    problems = validate_answers(builtin("rupture-check"), {"intensity": 3})
    assert [(p.item, p.code) for p in problems] == [("tension", "missing")]


def test_rupture_check_invalid_tension_leaves_the_condition_undecided() -> None:
    problems = validate_answers(builtin("rupture-check"), {"tension": 0.5, "intensity": 3})
    assert [(p.item, p.code) for p in problems] == [("tension", "off_step")]


# ----- answer problems ----------------------------------------------------------------------------

SRS_OK: dict[str, object] = {
    "relationship": 9.1,
    "goals_topics": 8.4,
    "approach_method": 9.0,
    "overall": 8.8,
}


def test_unknown_item_is_reported() -> None:
    problems = validate_answers(builtin("srs"), {**SRS_OK, "mood": 3})
    assert [(p.item, p.code) for p in problems] == [("mood", "unknown_item")]


def test_missing_required_item_is_reported() -> None:
    answers = {k: v for k, v in SRS_OK.items() if k != "overall"}
    problems = validate_answers(builtin("srs"), answers)
    assert [(p.item, p.code) for p in problems] == [("overall", "missing")]


@pytest.mark.parametrize(
    "bad",
    ["8", "", True, False, None, [8], {"v": 8}, float("nan"), float("inf"), float("-inf")],
    ids=repr,
)
def test_wrong_types_and_non_finite_values_are_reported(bad: object) -> None:
    problems = validate_answers(builtin("srs"), {**SRS_OK, "overall": bad})
    assert [(p.item, p.code) for p in problems] == [("overall", "wrong_type")]


@pytest.mark.parametrize("bad", [-0.1, 10.1, 11, -1])
def test_out_of_range_is_reported(bad: float) -> None:
    problems = validate_answers(builtin("srs"), {**SRS_OK, "overall": bad})
    assert [(p.item, p.code) for p in problems] == [("overall", "out_of_range")]


@pytest.mark.parametrize(("code", "item", "bad"), [("srs", "overall", 8.45), ("phq-9", "q1", 1.5)])
def test_off_step_is_reported(code: str, item: str, bad: float) -> None:
    defn = builtin(code)
    answers = {it.id: it.min for it in defn.total_items} | {item: bad}
    problems = validate_answers(defn, answers)
    assert [(p.item, p.code) for p in problems] == [(item, "off_step")]


def test_all_problems_are_returned_one_per_item_in_item_order() -> None:
    answers = {"zzz": 1, "overall": "9", "approach_method": 12, "relationship": 8.45, "aaa": 2}
    problems = validate_answers(builtin("srs"), answers)
    assert [(p.item, p.code) for p in problems] == [
        ("relationship", "off_step"),
        ("goals_topics", "missing"),
        ("approach_method", "out_of_range"),
        ("overall", "wrong_type"),
        ("aaa", "unknown_item"),
        ("zzz", "unknown_item"),
    ]
    assert all(p.message for p in problems)


def test_score_raises_with_every_problem() -> None:
    with pytest.raises(InvalidAnswers) as info:
        score(builtin("srs"), {"overall": 11})
    assert [p.item for p in info.value.problems] == [
        "relationship",
        "goals_topics",
        "approach_method",
        "overall",
    ]


def test_decimal_and_integer_answers_are_numbers() -> None:
    answers = {**SRS_OK, "overall": Decimal("8.8"), "relationship": 9}
    assert score(builtin("srs"), answers).total == 35.2


# ----- proration ----------------------------------------------------------------------------------

PRORATED: dict[str, Any] = {
    "code": "local-four",
    "version": "1",
    "name": "Four items",
    "kind": "symptom",
    "respondents": ["client"],
    "items": [{"id": i, "label": i, "min": 0, "max": 3, "step": 1} for i in "abcd"],
    "scoring": {"method": "sum", "max_missing_prorated": 1},
    "direction": "lower_is_better",
    "citation": "test",
    "license": "test",
}


def test_one_missing_item_is_prorated_and_rounded_to_the_item_grid() -> None:
    defn = InstrumentDefinition.model_validate(PRORATED)
    scores = score(defn, {"a": 1, "b": 2, "c": 2})
    assert scores.total == 7.0  # 5/3 x 4 = 6.67 -> 7
    assert scores.mean == 1.6667
    assert scores.prorated == ["d"]


def test_too_many_missing_items_are_reported_for_each_missing_item() -> None:
    defn = InstrumentDefinition.model_validate(PRORATED)
    problems = validate_answers(defn, {"a": 1, "c": 2})
    assert [(p.item, p.code) for p in problems] == [
        ("b", "too_many_missing"),
        ("d", "too_many_missing"),
    ]


def test_tenth_point_items_prorate_to_a_tenth() -> None:
    data = copy.deepcopy(builtin("ors").model_dump(mode="json"))
    data["scoring"]["max_missing_prorated"] = 1
    defn = InstrumentDefinition.model_validate(data)
    scores = score(defn, {"individually": 5.0, "interpersonally": 6.1, "socially": 7.0})
    assert scores.total == 24.1  # 18.1 / 3 x 4 = 24.133…


def test_mean_scoring_reports_the_item_mean_as_total() -> None:
    data = copy.deepcopy(PRORATED)
    data["scoring"] = {"method": "mean"}
    defn = InstrumentDefinition.model_validate(data)
    scores = score(defn, {"a": 1, "b": 2, "c": 2, "d": 3})
    assert scores.total == 2.0
    assert score(defn, {"a": 1, "b": 0, "c": 0, "d": 0}).total == 0.25


# ----- properties ---------------------------------------------------------------------------------


def on_step_value(item: Item) -> st.SearchStrategy[float]:
    steps = int((dec(item.max) - dec(item.min)) / dec(item.step))
    return st.integers(0, steps).map(lambda k: float(dec(item.min) + k * dec(item.step)))


def valid_answers(code: str) -> st.SearchStrategy[dict[str, float]]:
    defn = builtin(code)
    return st.fixed_dictionaries({it.id: on_step_value(it) for it in defn.total_items})


@given(valid_answers("wai-sr"))
def test_wai_sr_total_is_the_sum_of_its_subscales(answers: dict[str, float]) -> None:
    scores = score(builtin("wai-sr"), answers)
    assert scores.total == sum(scores.subscales.values())


@given(
    st.sampled_from(
        [it for d in builtin_instruments().values() for it in d.items]
        + [Item(id="x", label="x", min=-2.5, max=7.5, step=0.5)]
    ).flatmap(lambda it: st.tuples(st.just(it), on_step_value(it)))
)
def test_reverse_keying_is_an_involution_within_the_range(pair: tuple[Item, float]) -> None:
    item, value = pair
    once = item.reverse_score(dec(value))
    assert item.accepts(once)
    assert item.reverse_score(once) == dec(value)


SCORED = ["srs", "ors", "wai-sr", "phq-9", "gad-7", "chs"]


@given(st.sampled_from(SCORED).flatmap(lambda c: st.tuples(st.just(c), valid_answers(c))))
def test_any_valid_answer_set_scores_within_the_total_range(
    pair: tuple[str, dict[str, float]],
) -> None:
    code, answers = pair
    defn = builtin(code)
    assert validate_answers(defn, answers) == []
    total = score(defn, answers).total
    assert defn.total_range is not None
    assert total is not None
    assert defn.total_range[0] <= total <= defn.total_range[1]


@given(st.integers(0, 100))
def test_every_tenth_from_0_to_10_is_accepted(k: int) -> None:
    value = k / 10
    assert validate_answers(builtin("srs"), {**SRS_OK, "overall": value}) == []


@given(st.integers(0, 1000).filter(lambda k: k % 10 != 0))
def test_hundredths_off_the_tenth_grid_are_rejected(k: int) -> None:
    problems = validate_answers(builtin("srs"), {**SRS_OK, "overall": k / 100})
    assert [p.code for p in problems] == ["off_step"]


@given(st.lists(st.integers(0, 100), min_size=4, max_size=4))
def test_tenth_step_totals_equal_the_exact_decimal_sum(ks: list[int]) -> None:
    values = [k / 10 for k in ks]
    total = score(builtin("srs"), answers_for("srs", values)).total
    assert total == float(sum(Decimal(str(v)) for v in values))


def test_a_prorated_total_halfway_between_two_steps_rounds_up() -> None:
    """Two of three items answered 1 and 2: 3/2 x 3 = 4.5, rounded half up to 5 (mutants: the
    context's default rounding, half to even, gave 4)."""
    data = copy.deepcopy(PRORATED)
    data["items"] = data["items"][:3]
    defn = InstrumentDefinition.model_validate(data)
    assert score(defn, {"a": 1, "b": 2}).total == 5.0


def test_scores_are_judged_on_adult_norms_unless_told_otherwise() -> None:
    """Mutants: the default population garbled, so no cut-off was found and an adult's ORS of 24
    (cut-off 25) was not flagged clinical."""
    answers = {"individually": 6.0, "interpersonally": 6.0, "socially": 6.0, "overall": 6.0}
    scores = score(builtin("ors"), answers)
    assert (scores.total, scores.clinical, scores.below_cutoff) == (24.0, True, True)


def test_a_missing_item_outside_the_total_does_not_count_against_proration() -> None:
    """Mutant: ``and`` → ``or`` counted the missing non-total item ``e`` among the prorated ones,
    so the one missing total item ``d`` was reported as one too many instead of prorated."""
    data = copy.deepcopy(PRORATED)
    data["items"] = [*data["items"], {"id": "e", "label": "e", "min": 0, "max": 3, "step": 1,
                                      "in_total": False}]  # fmt: skip
    defn = InstrumentDefinition.model_validate(data)
    problems = validate_answers(defn, {"a": 1, "b": 2, "c": 2})
    assert [(p.item, p.code) for p in problems] == [("e", "missing")]


def test_answer_problems_say_why_in_words() -> None:
    """Mutants: the messages of a blank risk item and of too many missing items left out or
    garbled (they reach the caller as the problem's detail)."""
    phq = builtin("phq-9")
    blank_q9 = validate_answers(phq, {f"q{i}": 0 for i in range(1, 9)})
    assert [(p.item, p.message) for p in blank_q9] == [("q9", "a risk item is always required")]
    too_many = validate_answers(InstrumentDefinition.model_validate(PRORATED), {"a": 1, "c": 2})
    assert [p.message for p in too_many] == [
        "missing; 2 items are missing but at most 1 may be prorated"
    ] * 2
    check = validate_answers(builtin("rupture-check"), {"tension": 0, "intensity": 2, "nope": 1})
    assert [(p.item, p.message) for p in check] == [
        ("intensity", "must be absent unless 'tension' is 1"),
        ("nope", "not an item of this instrument"),
    ]
