"""Trajectory and scoring results that surviving mutants changed unnoticed (issue 13 acceptance:
`make mutate`); each test names the behaviour a mutant broke."""

from __future__ import annotations

import pytest

from services.instruments import InstrumentDefinition, get_builtin
from services.scoring.engine import InvalidAnswers, score, validate_answers
from services.trajectory import SuddenChange, build_trajectory, find_sudden_changes

ORS = get_builtin("ors")
PHQ = get_builtin("phq-9")
WAI = get_builtin("wai-sr")
CHECK = get_builtin("rupture-check")


def wai(task: float, bond: float, goal: float) -> tuple[float, dict[str, float]]:
    return task + bond + goal, {"task": task, "bond": bond, "goal": goal}


def test_a_gain_of_exactly_a_quarter_of_the_score_before_is_sudden() -> None:
    """Tang & DeRubeis criterion 2 is ``≥ 25 %`` (psychometrics.md): 28 → 21 is exactly 25 %."""
    gains, _ = find_sudden_changes([28, 28, 28, 21, 21, 21], direction="lower_is_better", cutoff=7)
    assert gains == [SuddenChange(from_session=3, to_session=4, change=-7.0)]


def test_a_rise_below_the_cutoff_is_no_sudden_gain_on_a_higher_is_better_scale() -> None:
    """Mutant: the healthy direction's sign doubled for higher-is-better scales (ORS +4 < 5)."""
    below, _ = find_sudden_changes([20, 20, 20, 24, 24, 24], direction="higher_is_better", cutoff=5)
    assert below == []
    gains, _ = find_sudden_changes([20, 20, 20, 26, 26, 26], direction="higher_is_better", cutoff=5)
    assert gains == [SuddenChange(from_session=3, to_session=4, change=6.0)]


def test_the_trajectory_lists_sudden_losses() -> None:
    trajectory = build_trajectory(PHQ, [(n, t, {}) for n, t in enumerate([8, 8, 8, 16, 16, 16], 1)])
    assert [(c.from_session, c.to_session, c.change) for c in trajectory.summary.sudden_losses] == [
        (3, 4, 8.0)
    ]
    assert trajectory.summary.sudden_gains == []


def test_the_trajectory_uses_the_given_k_and_repair_window() -> None:
    """Mutants: ``k`` and ``repair_window`` not passed on to find_ruptures."""
    # drop 6, SD of the earlier 2.31
    totals: list[tuple[int, float | None, dict[str, float]]] = [
        (n, t, {}) for n, t in enumerate([40.0, 44.0, 40.0, 44.0, 38.0], 1)
    ]
    assert len(build_trajectory(WAI, totals).summary.ruptures) == 1
    assert build_trajectory(WAI, totals, k=3.0).summary.ruptures == []  # 6.93 > 6
    slow: list[tuple[int, float | None, dict[str, float]]] = [
        (n, t, {}) for n, t in enumerate([48.0, 50.0, 51.0, 49.0, 41.0, 45.0, 50.0], 1)
    ]
    (repaired,) = build_trajectory(WAI, slow).summary.ruptures
    assert repaired.repaired_at_session == 7
    (open_,) = build_trajectory(WAI, slow, repair_window=1).summary.ruptures
    assert open_.repaired_at_session is None


def test_subscales_take_part_when_the_total_has_no_min_drop() -> None:
    """Mutant: ``continue`` → ``break`` when the total has no min_drop dropped every subscale."""
    own = InstrumentDefinition.model_validate(
        {**WAI.model_dump(), "code": "my-wai", "name": "Mine"}
    )
    rows = [wai(16, 16, 16)] * 4 + [wai(16, 12, 16)]
    observations = [(n, t, s) for n, (t, s) in enumerate(rows, start=1)]
    assert build_trajectory(own, observations).summary.ruptures == []  # no defaults for it
    (bond,) = build_trajectory(own, observations, min_drops={"bond": 2.0}).summary.ruptures
    assert (bond.session_number, bond.subscale, bond.drop) == (5, "bond", 4.0)


def test_ruptures_are_listed_by_session_then_total_before_subscales() -> None:
    rows = [wai(16, 16, 16)] * 4 + [wai(16, 16, 13), wai(16, 12, 13)]
    observations = [(n, t, s) for n, (t, s) in enumerate(rows, start=1)]
    listed = build_trajectory(WAI, observations).summary.ruptures
    assert [(r.session_number, r.subscale) for r in listed] == [(5, "goal"), (6, None), (6, "bond")]


def test_the_default_population_is_adult() -> None:
    (point,) = build_trajectory(ORS, [(1, 24.0, {})]).points  # adult cut-off 25
    assert point.clinical is True


def test_a_session_without_a_total_has_no_change_from_the_first() -> None:
    points = build_trajectory(ORS, [(1, 20.0, {}), (2, None, {}), (3, 26.0, {})]).points
    assert [(p.change_from_first, p.reliable_change) for p in points] == [
        (0.0, "none"), (None, None), (6.0, "improved"),
    ]  # fmt: skip


def test_bad_observations_are_refused_saying_why() -> None:
    with pytest.raises(ValueError, match=r"^one observation per session$"):
        build_trajectory(ORS, [(1, 20.0, {}), (1, 21.0, {})])
    with pytest.raises(ValueError, match=r"^session numbers start at 1$"):
        build_trajectory(ORS, [(0, 20.0, {})])


def test_every_item_after_an_unexpected_or_absent_one_is_still_checked() -> None:
    """Mutants: ``continue`` → ``break`` in validate_answers stopped at a conditional item."""
    both = validate_answers(CHECK, {"tension": 0, "intensity": 3, "resolution": 9})
    assert [(p.item, p.code) for p in both] == [
        ("intensity", "unexpected"),
        ("resolution", "unexpected"),
    ]
    after_absent = validate_answers(CHECK, {"tension": 0, "resolution": 3})
    assert [(p.item, p.code) for p in after_absent] == [("resolution", "unexpected")]


def test_refused_answers_read_as_one_message_naming_each_item() -> None:
    """Mutants of InvalidAnswers' text: what a log line or a CLI shows of a refused submission."""
    with pytest.raises(InvalidAnswers) as info:
        score(ORS, {"individually": 11.0, "interpersonally": 5.0, "socially": 5.0})
    assert str(info.value) == (
        "individually: 11.0 is outside the range 0-10; overall: a required answer is missing"
    )


def test_two_observations_of_one_session_with_the_same_total_are_refused() -> None:
    """Mutant: sorting the observations as whole tuples compared their subscale maps on a tie,
    a TypeError instead of the refusal."""
    with pytest.raises(ValueError, match="one observation per session"):
        build_trajectory(
            WAI, [(1, 32.0, {"task": 11.0}), (2, 30.0, {"task": 10.0}), (2, 30.0, {"task": 9.0})]
        )


def test_a_rupture_of_the_total_is_listed_before_those_of_its_subscales() -> None:
    """Mutant: the sort key of the total ("" → "XXXX") put it after a subscale whose name sorts
    before it; the order a reader sees is total first, then each subscale."""
    defn = InstrumentDefinition.model_validate(
        {
            **WAI.model_dump(),
            "code": "alliance-local",
            "name": "Local alliance",
            "subscales": {"1_agreement": WAI.subscales["task"] + WAI.subscales["goal"],
                          "bond": WAI.subscales["bond"]},
        }
    )  # fmt: skip
    steady = {"1_agreement": 30.0, "bond": 15.0}
    fallen = {"1_agreement": 20.0, "bond": 10.0}
    observations = [(n, 45.0, steady) for n in (1, 2, 3, 4)] + [(5, 30.0, fallen)]
    ruptures = build_trajectory(
        defn, observations, min_drops={None: 4.0, "1_agreement": 2.0, "bond": 2.0}
    ).summary.ruptures
    assert [(r.session_number, r.subscale) for r in ruptures] == [
        (5, None), (5, "1_agreement"), (5, "bond"),
    ]  # fmt: skip


def test_a_mean_difference_exactly_at_the_critical_t_is_no_sudden_gain() -> None:
    """Tang & DeRubeis criterion 3 wants the difference of the window means *larger than* critical
    t x pooled SD (reference/psychometrics.md): 11 - 8.224 = 2.776 x 1.0 exactly is not; a little
    more is."""
    at_t = [10.0, 11.0, 12.0, 7.224, 8.224, 9.224]
    assert find_sudden_changes(at_t, direction="lower_is_better", cutoff=4) == ([], [])
    beyond = [10.0, 11.0, 12.0, 7.2, 8.2, 9.2]
    gains, _ = find_sudden_changes(beyond, direction="lower_is_better", cutoff=4)
    assert gains == [SuddenChange(from_session=3, to_session=4, change=-4.8)]
