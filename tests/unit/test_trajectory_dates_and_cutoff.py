"""Trajectory points carry when their session took place, and the trajectory names the cut-off it
judged the clinical range by (issue 15, DESIGN.md §10.4): a chart draws that line."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from services.instruments import get_builtin as builtin
from services.trajectory import build_trajectory

NO_SUBSCALES: Mapping[str, float] = {}


def test_points_carry_the_date_of_their_session_when_one_is_known() -> None:
    when = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    trajectory = build_trajectory(
        builtin("ors"),
        [(1, 19.0, NO_SUBSCALES, when), (2, 21.0, NO_SUBSCALES, None), (3, 26.0, NO_SUBSCALES)],
    )
    assert [p.occurred_at for p in trajectory.points] == [when, None, None]
    assert trajectory.points[0].model_dump(mode="json")["occurred_at"] == "2026-11-20T15:00:00Z"


def test_the_trajectory_reports_the_population_cutoff_it_used() -> None:
    ors = builtin("ors")
    points = [(1, 26.0, NO_SUBSCALES)]
    assert build_trajectory(ors, points, "adult").cutoff == 25.0
    assert build_trajectory(ors, points, "child").cutoff == 32.0
    assert build_trajectory(builtin("srs"), points).cutoff == 36.0
    # The WAI-SR has no published cut-off (Hatcher & Gillaspy 2006): none is invented.
    assert build_trajectory(builtin("wai-sr"), [(1, 40.0, {})]).cutoff is None


def test_a_collateral_series_has_no_cutoff_borrowed_from_the_clients_norms() -> None:
    # DESIGN.md §10.3.5: ORS norms are the client's own ratings.
    trajectory = build_trajectory(builtin("ors").for_respondent("collateral"), [(1, 10.0, {})])
    assert trajectory.cutoff is None
    assert trajectory.points[0].clinical is None


def test_a_given_cutoff_replaces_the_definitions_for_clinical_flags_and_report() -> None:
    # An organisation's alliance.low cut-off for the SRS (DESIGN.md §10.2) judges the series.
    trajectory = build_trajectory(builtin("srs"), [(1, 35.0, {}), (2, 38.0, {})], cutoff=34)
    assert trajectory.cutoff == 34.0
    assert [p.clinical for p in trajectory.points] == [False, False]
    by_population = build_trajectory(
        builtin("ors"), [(1, 27.0, {})], "adolescent", cutoff={"adolescent": 30, "adult": 20}
    )
    assert by_population.cutoff == 30.0
    assert by_population.points[0].clinical is True
