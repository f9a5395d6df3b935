"""Alert lifecycle over a series: dedup of repeat triggers, auto-clearing, new alerts after
resolution, and the equivalence of the incremental ``step`` with the whole-history ``replay``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.alerts import (
    AlertState,
    Event,
    RuleSetting,
    SeriesPoint,
    apply_events,
    replay,
    step,
    validate_override,
)
from services.instruments import InstrumentDefinition, get_builtin
from services.instruments.schema import Population
from services.scoring.engine import score
from tests.support import totals
from tests.support.examples import examples

SRS = get_builtin("srs")
WAI = get_builtin("wai-sr")
PHQ = get_builtin("phq-9")
ORS = get_builtin("ors")
CHECK = get_builtin("rupture-check")


def one_by_one(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population = "adult",
    settings_: Mapping[str, RuleSetting] | None = None,
) -> list[AlertState]:
    states: list[AlertState] = []
    for i in range(1, len(series) + 1):
        states = step(states, defn, series[:i], population, settings_)
    return states


def open_keys(alerts: Sequence[AlertState]) -> Counter[tuple[str, str, str | None]]:
    return Counter(a.key for a in alerts if a.status == "open")


# ----- dedup and lifecycle ------------------------------------------------------------------------


def test_repeat_trigger_updates_the_open_alert_instead_of_duplicating() -> None:
    alerts = replay(SRS, totals([35.0, 34.0, 33.5]))
    (low,) = [a for a in alerts if a.rule_id == "alliance.low"]
    assert low.status == "open"
    assert (low.first_session_number, low.session_number, low.submission_id) == (1, 3, "sub-3")
    assert low.evidence["current"] == 33.5
    assert "33.5" in low.message


def test_a_new_trigger_after_auto_clear_opens_a_new_alert() -> None:
    alerts = [
        a
        for a in replay(SRS, totals([35.0, 37.0, 35.5, 36.0, 30.0]))
        if a.rule_id == "alliance.low"
    ]
    assert [(a.status, a.first_session_number, a.resolved_session_number) for a in alerts] == [
        ("resolved", 1, 2),
        ("resolved", 3, 4),
        ("open", 5, None),
    ]


def test_at_most_one_open_alert_per_rule_instrument_and_subscale() -> None:
    alerts = replay(SRS, totals([38.0, 36.0, 35.0, 34.0, 33.0, 30.0, 40.0, 30.0]))
    assert max(open_keys(alerts).values()) == 1


def test_replay_is_deterministic() -> None:
    series = totals([48.0, 50.0, 51.0, 49.0, 41.0, 45.0, 46.0, 47.0])
    assert replay(WAI, series) == replay(WAI, series)


def test_severity_rises_but_never_falls_on_update() -> None:
    base = {
        "session_number": 1, "submission_id": "a", "rule_id": "rupture.reported",
        "instrument": "rupture-check", "subscale": None, "action": "raise",
    }  # fmt: skip
    high = Event(**base, severity="high", message="high")  # type: ignore[arg-type]
    low = Event(**{**base, "session_number": 2}, severity="warning", message="low")  # type: ignore[arg-type]
    (alert,) = apply_events([], [high, low])
    assert (alert.severity, alert.message, alert.session_number) == ("high", "low", 2)


def test_clear_for_another_rupture_leaves_the_alert_open() -> None:
    raise_ = Event(5, "a", "alliance.rupture", "wai-sr", None, "raise", message="m")
    clear = Event(6, "b", "alliance.rupture", "wai-sr", None, "clear", resolution="repaired",
                  only_if_session=4)  # fmt: skip
    (alert,) = apply_events([], [raise_, clear])
    assert alert.status == "open"


def test_step_leaves_alerts_of_other_instruments_alone() -> None:
    other = replay(PHQ, totals([9.0, 16.0]))
    states = step(other, SRS, totals([30.0]))
    assert states[: len(other)] == other
    assert [a.rule_id for a in states[len(other) :]] == ["alliance.low"]


def test_step_on_an_empty_series_changes_nothing() -> None:
    assert step([], SRS, []) == []


def test_series_must_be_in_session_order_without_repeats() -> None:
    with pytest.raises(ValueError, match="session order"):
        replay(SRS, totals([30.0, 31.0], sessions=[2, 2]))
    with pytest.raises(ValueError, match="session order"):
        replay(SRS, totals([30.0, 31.0], sessions=[3, 2]))
    with pytest.raises(ValueError, match="start at 1"):
        replay(SRS, totals([30.0], sessions=[0]))


def test_empty_and_single_session_histories() -> None:
    assert replay(WAI, []) == []
    assert replay(WAI, totals([40.0])) == []


def test_rupture_escalates_incrementally_at_the_first_session_after_the_window() -> None:
    series = totals([48.0, 50.0, 51.0, 49.0, 41.0, 45.0, 46.0, 47.0])
    severities = []
    states: list[AlertState] = []
    for i in range(5, len(series) + 1):
        states = step(states, WAI, series[:i])
        (rupture,) = [a for a in states if a.rule_id == "alliance.rupture"]
        severities.append(rupture.severity)
    assert severities == ["warning", "warning", "warning", "high"]


def test_reference_rupture_and_repair_one_by_one() -> None:
    series = totals([48.0, 50.0, 51.0, 49.0, 41.0, 50.0, 52.0])
    states = one_by_one(WAI, series)
    assert states == replay(WAI, series)
    (rupture,) = [a for a in states if a.rule_id == "alliance.rupture"]
    assert (rupture.status, rupture.resolution) == ("resolved", "repaired")


def test_concern_reported_has_no_series_rule() -> None:
    series = totals([10.0, 40.0, 0.0, 40.0])
    assert all(a.rule_id != "concern.reported" for a in replay(SRS, series))


def test_evidence_is_json_able() -> None:
    import json

    series = totals([48.0, 50.0, 51.0, 49.0, 41.0, 45.0, 46.0, 47.0])
    for alert in replay(WAI, series):
        assert json.loads(alert.model_dump_json())["evidence"] == alert.evidence


# ----- property: one by one == all at once --------------------------------------------------------

WAI_IDS = [f"q{i}" for i in range(1, 13)]
PHQ_IDS = [f"q{i}" for i in range(1, 10)]


@st.composite
def session_numbers(draw: st.DrawFn, n: int) -> list[int]:
    gaps = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    out, current = [], 0
    for gap in gaps:
        current += gap
        out.append(current)
    return out


def _scored(
    defn: InstrumentDefinition, sessions: list[int], answers: list[dict[str, float]]
) -> list[SeriesPoint]:
    out = []
    for n, a in zip(sessions, answers, strict=True):
        s = score(defn, a)
        out.append(SeriesPoint(n, f"sub-{n}", s.total, s.subscales, a))
    return out


def _tension(intensity: int, resolution: int) -> dict[str, float]:
    return {"tension": 1.0, "intensity": float(intensity), "resolution": float(resolution)}


@st.composite
def cases(draw: st.DrawFn) -> tuple[InstrumentDefinition, list[SeriesPoint], Population]:
    kind = draw(st.sampled_from(["srs", "wai-sr", "phq-9", "ors", "rupture-check"]))
    n = draw(st.integers(0, 12))
    sessions = draw(session_numbers(n))
    population: Population = draw(st.sampled_from(["adult", "adolescent", "child"]))
    if kind in ("srs", "ors"):
        # 0-40 in steps of 0.1, as the scorer gives them (Decimal-exact floats).
        values = draw(st.lists(st.integers(0, 400), min_size=n, max_size=n))
        defn = SRS if kind == "srs" else ORS
        return defn, totals([v / 10 for v in values], sessions), population
    if kind == "wai-sr":
        rows = draw(
            st.lists(st.lists(st.integers(1, 5), min_size=12, max_size=12), min_size=n, max_size=n)
        )
        answers = [{i: float(v) for i, v in zip(WAI_IDS, row, strict=True)} for row in rows]
        return WAI, _scored(WAI, sessions, answers), population
    if kind == "phq-9":
        rows = draw(
            st.lists(st.lists(st.integers(0, 3), min_size=9, max_size=9), min_size=n, max_size=n)
        )
        answers = [{i: float(v) for i, v in zip(PHQ_IDS, row, strict=True)} for row in rows]
        return PHQ, _scored(PHQ, sessions, answers), population
    checks = draw(
        st.lists(
            st.one_of(
                st.just({"tension": 0.0}),
                st.builds(_tension, st.integers(1, 5), st.integers(1, 5)),
            ),
            min_size=n, max_size=n,
        )
    )  # fmt: skip
    return CHECK, _scored(CHECK, sessions, checks), population


SETTINGS_VARIANTS: list[dict[str, dict[str, object]]] = [
    {},
    {"alliance.rupture": {"params": {"k": 0.5, "repair_window": 1},
                          "instruments": {"srs": {"min_drop": 1}, "wai-sr": {"min_drop": 1}}}},
    {"alliance.rupture": {"params": {"k": 0, "repair_window": 2}},
     "alliance.drop": {"instruments": {"srs": {"min_drop": 0.5}, "wai-sr": {"min_drop": 2}}}},
    {"outcome.not_on_track": {"params": {"min_session": 2, "high_from_session": 3}},
     "alliance.low": {"enabled": False}},
    {"risk.item": {"instruments": {"phq-9": {"thresholds": {"q9": 1}}}},
     "rupture.reported": {"params": {"resolution_max": 2, "intensity_min": 5}}},
]  # fmt: skip


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), variant=st.sampled_from(SETTINGS_VARIANTS))
def test_alerts_are_the_same_one_by_one_or_all_at_once(
    case: tuple[InstrumentDefinition, list[SeriesPoint], Population],
    variant: dict[str, dict[str, object]],
) -> None:
    defn, series, population = case
    rule_settings = {rule_id: validate_override(rule_id, body) for rule_id, body in variant.items()}
    at_once = replay(defn, series, population, rule_settings)
    assert one_by_one(defn, series, population, rule_settings) == at_once
    assert all(n == 1 for n in open_keys(at_once).values())
    for alert in at_once:
        assert (alert.resolution is None) == (alert.status == "open")
        assert alert.first_session_number <= alert.session_number
        if alert.rule_id == "risk.item":
            assert alert.severity == "critical"


# ----- survivors of `make mutate` (issue 13) ------------------------------------------------------


def q9(session: int, answer: float) -> SeriesPoint:
    answers = {f"q{i}": 0.0 for i in range(1, 9)} | {"q9": answer}
    return SeriesPoint(session, f"sub-{session}", answer, {}, answers)


def test_a_late_risk_answer_before_a_handled_alert_opens_an_alert_of_its_own() -> None:
    """DESIGN.md §10.3.2: the person acknowledged the risk alert (first raised at session 1, last
    triggered at 3); session 2 is entered afterwards with q9 = 3. The recompute lets the person's
    alert go and the late answer opens a new critical alert, instead of being folded into the one
    the person has already seen (a mutant dropped ``late_submissions`` from replay)."""
    series = [q9(1, 1.0), q9(2, 3.0), q9(3, 1.0)]
    closed: dict[tuple[str, str, str | None, int], int] = {("risk.item", "phq-9", None, 1): 3}
    alerts = replay(PHQ, series, closed_by_person=closed, late_submissions={"sub-2"})
    assert [(a.first_session_number, a.status, a.resolution, a.severity) for a in alerts] == [
        (1, "resolved", None, "critical"),  # the person's: left with them
        (2, "open", None, "critical"),
    ]
    # Not entered late: every answer up to session 3 is one the person has seen.
    (seen,) = replay(PHQ, series, closed_by_person=closed)
    assert (seen.first_session_number, seen.status) == (1, "open")


def test_a_series_is_judged_on_adult_norms_unless_told_otherwise() -> None:
    """ORS adult cut-off 25 (reference/psychometrics.md): a first score of 20 is in the clinical
    range, so no reliable improvement by the 4th score is not on track."""
    alerts = replay(ORS, totals([20.0, 20.0, 20.0, 21.0]))
    assert [(a.rule_id, a.evidence["population"]) for a in alerts] == [
        ("outcome.not_on_track", "adult")
    ]
    # 26 is above the adult cut-off, below the child one (32).
    assert replay(ORS, totals([26.0, 26.0, 26.0, 26.0])) == []
    assert len(replay(ORS, totals([26.0, 26.0, 26.0, 26.0]), "child")) == 1


def test_deterioration_says_how_far_from_the_first_score_and_against_what() -> None:
    """The evidence and message of ``outcome.deterioration`` (mutants renamed its keys and the
    rounding of the reliable-change points unnoticed). An organisation's measure whose reliable
    change comes from SD and reliability: 1.96 · √2 · 7 · √(1 - .8) = 8.677 points."""
    own = InstrumentDefinition.model_validate(
        {
            "code": "distress-local", "version": "1", "name": "Local distress", "kind": "symptom",
            "respondents": ["client"],
            "items": [{"id": "score", "label": "score", "min": 0, "max": 40, "step": 1}],
            "direction": "lower_is_better",
            "reliable_change": {"sd": 7, "reliability": 0.8},
            "citation": "test", "license": "test",
        }
    )  # fmt: skip
    rc = own.reliable_change_points
    assert rc is not None
    assert round(rc, 3) == 8.677
    (alert,) = replay(own, totals([10.0, 14.0, 19.0], [2, 3, 5]))
    assert (alert.rule_id, alert.severity, alert.status) == (
        "outcome.deterioration",
        "high",
        "open",
    )
    assert alert.evidence == {
        "first": 10.0, "current": 19.0, "worse_by": 9.0, "reliable_change": rc,
        "direction": "lower_is_better", "sessions": [2, 5],
    }  # fmt: skip
    assert alert.message == (
        "Local distress total rose from 10 at the first session to 19 — 9 points worse, at least "
        "the 8.68 points of reliable change."
    )


def test_a_repeat_trigger_records_the_parameters_it_was_judged_by() -> None:
    """The organisation moved the SRS cut-off from 32 to 36 while an ``alliance.low`` alert was
    open: the next low score updates the alert with the cut-off that judged it (a mutant kept
    the old parameters)."""
    strict = {
        "alliance.low": validate_override("alliance.low", {"instruments": {"srs": {"cutoff": 32}}})
    }
    (opened,) = replay(SRS, totals([30.0]), settings=strict)
    assert opened.params == {"cutoff": 32.0}
    (updated,) = step([opened], SRS, totals([30.0, 31.0]))
    assert (updated.session_number, updated.params) == (2, {"cutoff": 36.0})


def test_one_step_judges_on_adult_norms_unless_told_otherwise() -> None:
    states = one_by_one(ORS, totals([20.0, 20.0, 20.0]))
    (alert,) = step(states, ORS, totals([20.0, 20.0, 20.0, 21.0]))
    assert (alert.rule_id, alert.evidence["population"]) == ("outcome.not_on_track", "adult")


def test_a_series_out_of_order_or_before_session_1_is_refused_saying_why() -> None:
    with pytest.raises(
        ValueError, match=r"^a series holds one submission per session, in session order$"
    ):
        replay(SRS, totals([30.0, 31.0], [2, 1]))
    with pytest.raises(ValueError, match=r"^session numbers start at 1$"):
        replay(SRS, totals([30.0], [0]))
