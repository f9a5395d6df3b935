"""The trajectory's rupture list and the ``alliance.rupture`` rule agree (DESIGN.md §10.2, §10.3.7):
both come from services/trajectory/ruptures.find_ruptures, sudden and gradual alike."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.alerts import SeriesPoint, rule_events
from services.instruments import get_builtin
from services.trajectory import build_trajectory
from tests.support.examples import examples

SRS = get_builtin("srs")
WAI = get_builtin("wai-sr")


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    totals=st.lists(st.integers(300, 400).map(lambda t: t / 10), max_size=20),
    gaps=st.lists(st.integers(1, 2), min_size=20, max_size=20),
)
def test_every_srs_rupture_in_the_trajectory_is_a_rupture_alert_and_back(
    totals: list[float], gaps: list[int]
) -> None:
    sessions = [sum(gaps[: i + 1]) for i in range(len(totals))]
    series = [SeriesPoint(n, f"s{n}", t, {}, {}) for n, t in zip(sessions, totals, strict=False)]
    raised = {
        (e.session_number, e.evidence["drop"])
        for e in rule_events(SRS, series, "adult")
        if e.rule_id == "alliance.rupture" and e.action == "raise"
    }
    repaired = {
        e.evidence["repaired_at_session"]
        for e in rule_events(SRS, series, "adult")
        if e.rule_id == "alliance.rupture" and e.action == "clear"
    }
    trajectory = build_trajectory(SRS, [(p.session_number, p.total, {}) for p in series])
    listed = trajectory.summary.ruptures
    assert {(r.session_number, r.drop) for r in listed} == raised
    assert {r.repaired_at_session for r in listed} - {None} == repaired


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(*[st.integers(4, 20)] * 3), max_size=14),
)
def test_wai_sr_subscale_ruptures_agree_with_the_rule(rows: list[tuple[int, int, int]]) -> None:
    series = [
        SeriesPoint(n, f"s{n}", float(t + b + g),
                    {"task": float(t), "bond": float(b), "goal": float(g)}, {})
        for n, (t, b, g) in enumerate(rows, start=1)
    ]  # fmt: skip
    raised = {
        (e.session_number, e.subscale)
        for e in rule_events(WAI, series, "adult")
        if e.rule_id == "alliance.rupture" and e.action == "raise"
    }
    observations = [(p.session_number, p.total, dict(p.subscales)) for p in series]
    listed = build_trajectory(WAI, observations).summary.ruptures
    assert {(r.session_number, r.subscale) for r in listed} == raised
