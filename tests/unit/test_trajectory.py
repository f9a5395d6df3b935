"""Trajectory of one series (DESIGN.md §7): points and summary."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from services.instruments import get_builtin as builtin
from services.trajectory import build_trajectory

NO_SUBSCALES: Mapping[str, float] = {}


def totals(*values: float) -> list[tuple[int, float | None, Mapping[str, float]]]:
    return [(n, v, NO_SUBSCALES) for n, v in enumerate(values, start=1)]


def test_ors_adult_points_and_recovered_classification() -> None:
    trajectory = build_trajectory(builtin("ors"), totals(19.0, 21.0, 26.0), "adult")
    points = [p.model_dump() for p in trajectory.points]
    assert [(p["change_from_previous"], p["change_from_first"]) for p in points] == [
        (None, 0.0),
        (2.0, 2.0),
        (5.0, 7.0),
    ]
    assert [p["reliable_change"] for p in points] == ["none", "none", "improved"]
    assert [p["clinical"] for p in points] == [True, True, False]
    assert trajectory.summary.classification == "recovered"
    assert (trajectory.summary.first_session, trajectory.summary.latest_session) == (1, 3)
    assert trajectory.summary.n_points == 3


def test_population_picks_the_cutoff() -> None:
    trajectory = build_trajectory(builtin("ors"), totals(19.0, 30.0), "child")
    assert [p.clinical for p in trajectory.points] == [True, True]
    assert trajectory.summary.classification == "improved"


def test_changes_are_exact_for_tenth_points() -> None:
    trajectory = build_trajectory(builtin("ors"), totals(25.1, 30.1, 30.4))
    assert [p.change_from_previous for p in trajectory.points] == [None, 5.0, 0.3]
    assert trajectory.points[1].reliable_change == "improved"


def test_phq9_sudden_gain_uses_reliable_change_points_as_criterion_1() -> None:
    trajectory = build_trajectory(builtin("phq-9"), totals(20, 19, 18, 11, 10, 9, 9))
    gains = [g.model_dump() for g in trajectory.summary.sudden_gains]
    assert gains == [{"from_session": 3, "to_session": 4, "change": -7.0}]
    assert trajectory.summary.sudden_losses == []
    assert trajectory.summary.classification == "recovered"
    assert trajectory.summary.ruptures == []  # not an alliance instrument


def test_phq9_deterioration() -> None:
    trajectory = build_trajectory(builtin("phq-9"), totals(8, 12, 15))
    assert trajectory.points[-1].reliable_change == "deteriorated"
    assert trajectory.summary.classification == "deteriorated"


def test_missing_sessions_keep_their_positions_for_sudden_gains() -> None:
    obs = [(1, 20.0, NO_SUBSCALES), (3, 20.0, NO_SUBSCALES), (4, 10.0, NO_SUBSCALES)]
    obs += [(5, 5.0, NO_SUBSCALES), (6, 12.0, NO_SUBSCALES)]
    trajectory = build_trajectory(builtin("phq-9"), obs)
    assert [(g.from_session, g.to_session) for g in trajectory.summary.sudden_gains] == [(3, 4)]
    assert [p.session_number for p in trajectory.points] == [1, 3, 4, 5, 6]
    assert trajectory.points[1].change_from_previous == 0.0


def test_instrument_without_reliable_change_has_no_classification_or_sudden_gains() -> None:
    trajectory = build_trajectory(builtin("srs"), totals(30.0, 38.0, 39.0, 39.5))
    assert trajectory.summary.classification is None
    assert trajectory.summary.sudden_gains == []
    assert all(p.reliable_change is None for p in trajectory.points)
    assert [p.clinical for p in trajectory.points] == [True, False, False, False]


def test_single_point_has_no_classification() -> None:
    trajectory = build_trajectory(builtin("ors"), totals(19.0))
    assert trajectory.summary.classification is None
    assert trajectory.points[0].reliable_change == "none"


def test_srs_total_rupture_with_default_min_drop_2() -> None:
    trajectory = build_trajectory(builtin("srs"), totals(38.0, 38.0, 38.0, 36.0, 38.0))
    ruptures = [r.model_dump() for r in trajectory.summary.ruptures]
    assert ruptures == [
        {"session_number": 4, "subscale": None, "drop": 2.0, "repaired_at_session": 5}
    ]


def test_wai_sr_reference_example_on_totals() -> None:
    trajectory = build_trajectory(builtin("wai-sr"), totals(48, 50, 51, 49, 41, 50, 52))
    assert [(r.session_number, r.subscale, r.drop, r.repaired_at_session)
            for r in trajectory.summary.ruptures] == [(5, None, 8.0, 6)]  # fmt: skip


def wai(session: int, task: float, bond: float, goal: float) -> tuple[int, float, dict[str, float]]:
    return (session, task + bond + goal, {"task": task, "bond": bond, "goal": goal})


def test_wai_sr_subscale_only_rupture() -> None:
    # bond falls 3 (>= 2) while task rises, so the total falls only 2 (< 4)
    obs = [wai(1, 16, 16, 16), wai(2, 16, 16, 16), wai(3, 16, 16, 16), wai(4, 17, 13, 16)]
    trajectory = build_trajectory(builtin("wai-sr"), obs)
    assert [(r.session_number, r.subscale, r.drop, r.repaired_at_session)
            for r in trajectory.summary.ruptures] == [(4, "bond", 3.0, None)]  # fmt: skip
    assert trajectory.points[-1].subscales == {"task": 17.0, "bond": 13.0, "goal": 16.0}


def test_min_drop_overrides_by_subscale() -> None:
    obs = [wai(1, 16, 16, 16), wai(2, 16, 16, 16), wai(3, 16, 16, 16), wai(4, 17, 13, 16)]
    trajectory = build_trajectory(builtin("wai-sr"), obs, min_drops={"bond": 4, None: 2})
    assert [(r.session_number, r.subscale) for r in trajectory.summary.ruptures] == [(4, None)]


def test_rupture_check_trajectory_has_no_totals() -> None:
    obs: list[tuple[int, float | None, Mapping[str, float]]] = [(1, None, {}), (2, None, {})]
    trajectory = build_trajectory(builtin("rupture-check"), obs)
    assert [p.total for p in trajectory.points] == [None, None]
    assert trajectory.summary.classification is None
    assert trajectory.summary.n_points == 2


def test_empty_series() -> None:
    trajectory = build_trajectory(builtin("ors"), [])
    assert trajectory.points == []
    assert trajectory.summary.first_session is None
    assert trajectory.summary.n_points == 0


def test_observations_are_sorted_and_duplicates_refused() -> None:
    trajectory = build_trajectory(builtin("ors"), [(2, 21.0, {}), (1, 19.0, {})])
    assert [p.session_number for p in trajectory.points] == [1, 2]
    with pytest.raises(ValueError, match="one observation per session"):
        build_trajectory(builtin("ors"), [(1, 21.0, {}), (1, 19.0, {})])
    with pytest.raises(ValueError, match="start at 1"):
        build_trajectory(builtin("ors"), [(0, 21.0, {})])


def test_json_shape_matches_the_design() -> None:
    dumped = build_trajectory(builtin("ors"), totals(19.0, 26.0)).model_dump(mode="json")
    assert set(dumped) == {"instrument", "cutoff", "points", "summary"}
    assert dumped["instrument"] == "ors"
    assert set(dumped["points"][0]) == {
        "session_number",
        "occurred_at",
        "total",
        "subscales",
        "change_from_previous",
        "change_from_first",
        "reliable_change",
        "clinical",
        "rci",
        "expected",
    }
    assert set(dumped["summary"]) == {
        "classification",
        "sudden_gains",
        "sudden_losses",
        "ruptures",
        "first_session",
        "latest_session",
        "n_points",
        "on_track",
        "se",
        "s_diff",
        "cutoffs",
        "paired_caseness",
    }
