"""Every alert rule of DESIGN.md §6 on hand-made series, with the reference examples of
reference/psychometrics.md, boundaries, short histories and missing data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from services.alerts import AlertState, RuleSetting, SeriesPoint, replay, validate_override
from services.alerts.rules import fmt, points
from services.instruments import InstrumentDefinition, builtin_instruments, get_builtin
from services.instruments.schema import Population
from services.scoring.engine import score
from tests.support import totals

SRS = get_builtin("srs")
ORS = get_builtin("ors")
WAI = get_builtin("wai-sr")
PHQ = get_builtin("phq-9")
GAD = get_builtin("gad-7")
CHECK = get_builtin("rupture-check")
CHS = get_builtin("chs")
WAI_EXAMPLE = [48.0, 50.0, 51.0, 49.0, 41.0, 50.0, 52.0]


def variant(defn: InstrumentDefinition, changes: Mapping[str, object]) -> InstrumentDefinition:
    """An organisation's instrument shaped like a built-in (validated, unlike ``model_copy``)."""
    return InstrumentDefinition.model_validate({**defn.model_dump(), **changes})


def answered(
    defn: InstrumentDefinition,
    answers: Sequence[Mapping[str, float]],
    sessions: Sequence[int] | None = None,
) -> list[SeriesPoint]:
    numbers = sessions or range(1, len(answers) + 1)
    out = []
    for n, a in zip(numbers, answers, strict=True):
        s = score(defn, a)
        out.append(SeriesPoint(n, f"sub-{n}", s.total, s.subscales, dict(a)))
    return out


def run(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    rule: str,
    population: Population = "adult",
    overrides: Mapping[str, Mapping[str, object]] | None = None,
) -> list[AlertState]:
    catalog = {**builtin_instruments(), defn.code: defn}
    settings: dict[str, RuleSetting] = {
        rule_id: validate_override(rule_id, body, catalog)
        for rule_id, body in (overrides or {}).items()
    }
    return [a for a in replay(defn, series, population, settings) if a.rule_id == rule]


def srs_items(*values: float) -> dict[str, float]:
    return dict(
        zip(["relationship", "goals_topics", "approach_method", "overall"], values, strict=True)
    )


def phq(*values: int) -> dict[str, float]:
    return {f"q{i}": float(v) for i, v in enumerate(values, start=1)}


def wai(task: Sequence[int], bond: Sequence[int], goal: Sequence[int]) -> dict[str, float]:
    ids = {"task": ["q1", "q2", "q10", "q12"], "bond": ["q3", "q5", "q7", "q9"],
           "goal": ["q4", "q6", "q8", "q11"]}  # fmt: skip
    out: dict[str, float] = {}
    for name, values in (("task", task), ("bond", bond), ("goal", goal)):
        out.update({i: float(v) for i, v in zip(ids[name], values, strict=True)})
    return out


# ----- formatting ---------------------------------------------------------------------------------


def test_numbers_are_formatted_without_float_noise() -> None:
    assert fmt(35.9) == "35.9"
    assert fmt(36.0) == "36"
    assert fmt(35.300000000000004, 2) == "35.3"
    assert fmt(5.747681, 2) == "5.75"
    assert points(1.0) == "1 point"
    assert points(0.5) == "0.5 points"


# ----- alliance.low -------------------------------------------------------------------------------


def test_srs2_total_35_9_is_below_the_cutoff() -> None:
    series = answered(SRS, [srs_items(9.0, 9.0, 9.0, 8.9)])
    (alert,) = run(SRS, series, "alliance.low")
    assert alert.severity == "warning"
    assert alert.status == "open"
    assert alert.instrument == "srs"
    assert alert.subscale is None
    assert alert.message == (
        "SRS total 35.9 is below the cut-off of 36: a possible problem in the working relationship."
    )
    assert alert.evidence["current"] == 35.9
    assert alert.evidence["cutoff"] == 36.0
    assert alert.params == {"cutoff": 36.0}
    assert (alert.rule_id, alert.rule_version, alert.type) == ("alliance.low", "1", "alliance.low")


def test_srs3_total_exactly_36_is_not_below_the_cutoff() -> None:
    assert run(SRS, answered(SRS, [srs_items(9, 9, 9, 9)]), "alliance.low") == []


def test_srs1_total_36_4_is_not_below_the_cutoff() -> None:
    assert run(SRS, answered(SRS, [srs_items(9.2, 8.7, 9.0, 9.5)]), "alliance.low") == []


def test_alliance_low_auto_clears_when_a_later_score_reaches_the_cutoff() -> None:
    (alert,) = run(SRS, totals([35.9, 35.0, 36.0]), "alliance.low")
    assert alert.status == "resolved"
    assert alert.resolution == "condition_cleared"
    assert alert.resolved_session_number == 3
    assert alert.session_number == 2  # updated by the repeat trigger
    assert alert.first_session_number == 1


def test_alliance_low_cutoff_can_be_overridden() -> None:
    overrides = {"alliance.low": {"instruments": {"srs": {"cutoff": 35}}}}
    assert run(SRS, totals([35.9]), "alliance.low", overrides=overrides) == []
    (alert,) = run(SRS, totals([34.9]), "alliance.low", overrides=overrides)
    assert alert.params == {"cutoff": 35.0}


def test_alliance_low_needs_a_cutoff() -> None:
    assert run(WAI, totals([12.0, 13.0]), "alliance.low") == []


def test_alliance_low_only_for_alliance_instruments() -> None:
    assert run(ORS, totals([10.0]), "alliance.low") == []


def test_disabled_rule_produces_nothing() -> None:
    overrides = {"alliance.low": {"enabled": False}}
    assert run(SRS, totals([20.0]), "alliance.low", overrides=overrides) == []


# ----- alliance.drop ------------------------------------------------------------------------------


def test_srs4_drop_of_one_point_fires_although_above_the_cutoff() -> None:
    (alert,) = run(SRS, totals([38.0, 37.0]), "alliance.drop")
    assert alert.severity == "warning"
    assert alert.message == "SRS total fell from 38 to 37 — 1 point since the previous session."
    assert alert.evidence == {
        "previous": 38.0, "current": 37.0, "drop": 1.0, "threshold": 1.0, "sessions": [1, 2],
    }  # fmt: skip
    assert run(SRS, totals([38.0, 37.0]), "alliance.low") == []


def test_alliance_drop_just_under_the_threshold_does_not_fire() -> None:
    assert run(SRS, totals([38.0, 37.1]), "alliance.drop") == []


def test_alliance_drop_is_exact_in_decimal() -> None:
    # 35.3 - 34.3 is 0.9999999999999964 in binary floats.
    (alert,) = run(SRS, totals([35.3, 34.3]), "alliance.drop")
    assert alert.evidence["drop"] == 1.0


def test_alliance_drop_needs_a_previous_score() -> None:
    assert run(SRS, totals([20.0]), "alliance.drop") == []


def test_alliance_drop_stays_open_and_updates_on_repeat_drops() -> None:
    (alert,) = run(SRS, totals([38.0, 37.0, 39.0, 36.5]), "alliance.drop")
    assert alert.status == "open"
    assert (alert.first_session_number, alert.session_number) == (2, 4)
    assert alert.evidence["previous"] == 39.0
    assert alert.message.startswith("SRS total fell from 39 to 36.5 — 2.5 points")


def test_alliance_drop_compares_with_the_previous_observed_session() -> None:
    (alert,) = run(SRS, totals([38.0, 37.0], sessions=[1, 4]), "alliance.drop")
    assert alert.evidence["sessions"] == [1, 4]


# ----- alliance.rupture ---------------------------------------------------------------------------


def test_wai_reference_rupture_at_5_repaired_at_6() -> None:
    (alert,) = run(WAI, totals(WAI_EXAMPLE), "alliance.rupture")
    assert alert.status == "resolved"
    assert alert.resolution == "repaired"
    assert alert.session_number == 5
    assert alert.resolved_session_number == 6
    assert alert.severity == "warning"
    assert alert.message == (
        "WAI-SR total fell from 49 to 41 — 8 points, more than this client's usual variation."
    )
    ev = alert.evidence
    assert (ev["previous"], ev["current"], ev["drop"], ev["threshold"]) == (49.0, 41.0, 8.0, 4.0)
    assert ev["earlier_sd"] == pytest.approx(1.291, abs=1e-3)
    assert ev["sessions"] == [4, 5]
    assert ev["repaired_at_session"] == 6
    assert ev["repair_score"] == 50.0
    assert alert.params == {"k": 1.0, "min_drop": 4.0, "repair_window": 3}


def test_wai_reference_ending_at_41_is_an_open_warning() -> None:
    (alert,) = run(WAI, totals(WAI_EXAMPLE[:5]), "alliance.rupture")
    assert (alert.status, alert.severity, alert.resolution) == ("open", "warning", None)


def test_rupture_unrepaired_after_the_window_becomes_high() -> None:
    series = totals([*WAI_EXAMPLE[:5], 45.0, 46.0, 47.0])
    (alert,) = run(WAI, series, "alliance.rupture")
    assert (alert.status, alert.severity) == ("open", "high")
    assert alert.session_number == 5
    assert alert.evidence["unrepaired"] is True
    assert alert.evidence["repair_window_end"] == 8
    assert alert.message.endswith("Not back to the earlier level of 49 within 3 sessions.")


def test_rupture_still_inside_the_window_stays_warning() -> None:
    (alert,) = run(WAI, totals([*WAI_EXAMPLE[:5], 45.0, 46.0]), "alliance.rupture")
    assert (alert.status, alert.severity) == ("open", "warning")


def test_repair_on_the_last_session_of_the_window_counts() -> None:
    (alert,) = run(WAI, totals([*WAI_EXAMPLE[:5], 45.0, 46.0, 49.0]), "alliance.rupture")
    assert (alert.status, alert.resolution, alert.severity) == ("resolved", "repaired", "warning")


def test_repair_after_the_window_does_not_resolve() -> None:
    (alert,) = run(WAI, totals([*WAI_EXAMPLE[:5], 45.0, 46.0, 47.0, 50.0]), "alliance.rupture")
    assert (alert.status, alert.severity) == ("open", "high")


def test_missed_sessions_use_up_the_window() -> None:
    (alert,) = run(WAI, totals([*WAI_EXAMPLE[:5], 50.0], sessions=[1, 2, 3, 4, 5, 9]),
                   "alliance.rupture")  # fmt: skip
    assert (alert.status, alert.severity) == ("open", "high")


def test_repair_window_is_a_setting() -> None:
    series = totals([*WAI_EXAMPLE[:5], 45.0, 46.0, 47.0, 50.0])
    overrides = {"alliance.rupture": {"params": {"repair_window": 4}}}
    (alert,) = run(WAI, series, "alliance.rupture", overrides=overrides)
    assert alert.resolution == "repaired"
    assert alert.params["repair_window"] == 4


def test_rupture_needs_three_earlier_scores() -> None:
    assert run(WAI, totals([50.0, 51.0, 30.0]), "alliance.rupture") == []


def test_rupture_drop_exactly_at_the_threshold_fires() -> None:
    assert len(run(WAI, totals([48.0, 48.0, 48.0, 48.0, 44.0]), "alliance.rupture")) == 1
    assert run(WAI, totals([48.0, 48.0, 48.0, 48.0, 45.0]), "alliance.rupture") == []


def test_srs_rupture_uses_min_drop_2() -> None:
    (alert,) = run(SRS, totals([38.0, 38.0, 38.0, 36.0]), "alliance.rupture")
    assert alert.message.startswith("SRS total fell from 38 to 36 — 2 points")
    assert run(SRS, totals([38.0, 38.0, 38.0, 36.1]), "alliance.rupture") == []


def test_subscale_only_rupture_names_the_subscale() -> None:
    steady = wai([3, 3, 3, 3], [4, 4, 4, 4], [3, 3, 3, 3])
    fall = wai([4, 4, 4, 3], [2, 2, 2, 2], [4, 4, 4, 3])  # bond 16 → 8, total 40 → 38
    series = answered(WAI, [steady, steady, steady, steady, fall])
    (alert,) = run(WAI, series, "alliance.rupture")
    assert alert.subscale == "bond"
    assert alert.message == (
        "Bond (WAI-SR) fell from 16 to 8 — 8 points, more than this client's usual variation."
    )
    assert alert.evidence["previous"] == 16.0
    assert alert.evidence["current"] == 8.0
    assert alert.evidence["drop"] == 8.0
    assert alert.evidence["threshold"] == 2.0
    assert alert.evidence["earlier_sd"] == 0.0
    assert alert.params == {"k": 1.0, "min_drop": 2.0, "repair_window": 3}


def test_subscale_and_total_ruptures_are_separate_alerts() -> None:
    steady = wai([4, 4, 4, 4], [4, 4, 4, 4], [4, 4, 4, 4])
    fall = wai([3, 3, 3, 3], [2, 2, 2, 2], [4, 4, 4, 4])  # task -4, bond -8, total -12
    series = answered(WAI, [steady] * 4 + [fall])
    alerts = run(WAI, series, "alliance.rupture")
    assert sorted((a.subscale or "") for a in alerts) == ["", "bond", "task"]


def test_new_rupture_while_open_updates_the_alert() -> None:
    series = totals([50.0, 50.0, 50.0, 50.0, 44.0, 44.0, 30.0])
    (alert,) = run(WAI, series, "alliance.rupture")
    assert (alert.first_session_number, alert.session_number) == (5, 7)
    assert alert.evidence["previous"] == 44.0
    assert alert.status == "open"


def test_repair_of_an_earlier_rupture_does_not_clear_a_later_one() -> None:
    # rupture at 5 (50 → 44), a second at 7 (48 → 38) takes the alert over; 50 at 8 repairs both.
    series = totals([50.0, 50.0, 50.0, 50.0, 44.0, 48.0, 38.0, 47.0])
    (alert,) = run(WAI, series, "alliance.rupture")
    assert alert.session_number == 7
    assert alert.status == "open"
    assert run(WAI, totals([50.0, 50.0, 50.0, 50.0, 44.0, 48.0, 38.0, 48.0]),
               "alliance.rupture")[0].resolution == "repaired"  # fmt: skip


def test_organisation_alliance_instrument_needs_min_drop_for_ruptures() -> None:
    own = variant(SRS, {"code": "my-alliance", "name": "My alliance scale"})
    assert run(own, totals([38.0, 38.0, 38.0, 30.0]), "alliance.rupture") == []
    overrides = {"alliance.rupture": {"instruments": {"my-alliance": {"min_drop": 3}}}}
    (alert,) = run(own, totals([38.0, 38.0, 38.0, 30.0]), "alliance.rupture", overrides=overrides)
    assert alert.message.startswith("My alliance scale total fell from 38 to 30")


def test_lower_is_better_alliance_instrument_ruptures_on_a_rise() -> None:
    own = variant(
        SRS, {"code": "tension-scale", "name": "Tension scale", "direction": "lower_is_better"}
    )
    overrides = {"alliance.rupture": {"instruments": {"tension-scale": {"min_drop": 2}}}}
    (alert,) = run(own, totals([10.0, 10.0, 10.0, 15.0, 10.0]), "alliance.rupture",
                   overrides=overrides)  # fmt: skip
    assert alert.message.startswith("Tension scale total rose from 10 to 15 — 5 points")
    assert alert.resolution == "repaired"


# ----- rupture.reported ---------------------------------------------------------------------------


def check(
    tension: int, intensity: int | None = None, resolution: int | None = None
) -> dict[str, float]:
    out: dict[str, float] = {"tension": tension}
    if intensity is not None:
        out["intensity"] = intensity
    if resolution is not None:
        out["resolution"] = resolution
    return out


def test_unresolved_tension_is_a_warning() -> None:
    (alert,) = run(CHECK, answered(CHECK, [check(1, 2, 3)]), "rupture.reported")
    assert alert.severity == "warning"
    assert alert.message == (
        "Rupture check: the client reported tension with the therapist in this session that was "
        "not resolved by the end of the session (resolution 3 of 5)."
    )


def test_strong_tension_is_a_warning_even_if_resolved() -> None:
    (alert,) = run(CHECK, answered(CHECK, [check(1, 4, 5)]), "rupture.reported")
    assert alert.severity == "warning"
    assert "strong (intensity 4 of 5)" in alert.message


def test_strong_and_unresolved_tension_is_high() -> None:
    (alert,) = run(CHECK, answered(CHECK, [check(1, 5, 1)]), "rupture.reported")
    assert alert.severity == "high"
    assert alert.evidence["intensity"] == 5.0
    assert alert.evidence["resolution"] == 1.0


def test_mild_resolved_tension_and_no_tension_raise_nothing() -> None:
    series = answered(CHECK, [check(1, 3, 4), check(0)])
    assert run(CHECK, series, "rupture.reported") == []


def test_rupture_reported_thresholds_are_settings() -> None:
    overrides = {"rupture.reported": {"params": {"resolution_max": 4, "intensity_min": 3}}}
    (alert,) = run(
        CHECK, answered(CHECK, [check(1, 3, 4)]), "rupture.reported", overrides=overrides
    )
    assert alert.severity == "high"


def test_rupture_reported_stays_open_and_severity_does_not_fall() -> None:
    series = answered(CHECK, [check(1, 5, 1), check(0), check(1, 2, 2)])
    (alert,) = run(CHECK, series, "rupture.reported")
    assert (alert.status, alert.severity, alert.session_number) == ("open", "high", 3)


# ----- risk.item ----------------------------------------------------------------------------------


def test_phq1_item_9_answered_1_is_critical_whatever_the_total() -> None:
    (alert,) = run(PHQ, answered(PHQ, [phq(2, 2, 1, 1, 0, 1, 1, 0, 1)]), "risk.item")
    assert alert.severity == "critical"
    assert alert.status == "open"
    assert alert.message == (
        "PHQ-9: Thoughts of self-harm (item 9) answered 1, at or above the risk threshold of 1. "
        "Follow up whatever the total score."
    )
    assert alert.evidence["total"] == 9.0
    assert alert.evidence["items"] == [
        {"item": "q9", "label": "Thoughts of self-harm (item 9)", "answer": 1.0, "threshold": 1.0}
    ]
    assert alert.params == {"thresholds": {"q9": 1.0}}


def test_risk_item_is_not_suppressed_by_a_minimal_total() -> None:
    (alert,) = run(PHQ, answered(PHQ, [phq(0, 0, 0, 0, 0, 0, 0, 0, 1)]), "risk.item")
    assert alert.evidence["total"] == 1.0


def test_item_9_at_zero_raises_nothing() -> None:
    assert run(PHQ, answered(PHQ, [phq(3, 3, 3, 3, 3, 3, 3, 3, 0)]), "risk.item") == []


def test_risk_item_ignores_a_disabled_setting() -> None:
    disabled = RuleSetting(
        rule_id="risk.item", enabled=False, params=validate_override("risk.item", {}).params
    )
    series = answered(PHQ, [phq(0, 0, 0, 0, 0, 0, 0, 0, 2)])
    alerts = replay(PHQ, series, "adult", {"risk.item": disabled})
    assert [a.rule_id for a in alerts] == ["risk.item"]


def test_a_lowered_risk_threshold_of_an_organisation_instrument_fires_earlier() -> None:
    own = variant(PHQ, {"code": "my-phq", "name": "My PHQ"})
    own = variant(own, {"risk_items": [{"item": "q9", "threshold": 2, "label": "Item 9"}]})
    series = answered(own, [phq(0, 0, 0, 0, 0, 0, 0, 0, 1)])
    assert run(own, series, "risk.item") == []
    overrides = {"risk.item": {"instruments": {"my-phq": {"thresholds": {"q9": 1}}}}}
    (alert,) = run(own, series, "risk.item", overrides=overrides)
    assert alert.params == {"thresholds": {"q9": 1.0}}
    assert alert.message.startswith("My PHQ: ")


def test_repeated_risk_answers_update_one_open_alert() -> None:
    series = answered(PHQ, [phq(0, 0, 0, 0, 0, 0, 0, 0, 1), phq(0, 0, 0, 0, 0, 0, 0, 0, 0),
                            phq(0, 0, 0, 0, 0, 0, 0, 0, 2)])  # fmt: skip
    (alert,) = run(PHQ, series, "risk.item")
    assert (alert.status, alert.first_session_number, alert.session_number) == ("open", 1, 3)
    assert alert.submission_id == "sub-3"


def test_organisation_defined_risk_items_take_part() -> None:
    own = InstrumentDefinition.model_validate(
        {
            "code": "bdi-local", "version": "1", "name": "Local depression inventory",
            "kind": "other", "respondents": ["client"],
            "items": [{"id": "score", "label": "Total", "min": 0, "max": 63, "step": 1},
                      {"id": "harm", "label": "Self-harm", "min": 0, "max": 3, "step": 1}],
            "direction": "lower_is_better",
            "risk_items": [{"item": "harm", "threshold": 2, "label": "Self-harm item"}],
            "citation": "local", "license": "own",
        }
    )  # fmt: skip
    series = answered(own, [{"score": 3, "harm": 1}, {"score": 3, "harm": 2}])
    (alert,) = run(own, series, "risk.item")
    assert alert.session_number == 2
    assert alert.message.startswith("Local depression inventory: Self-harm item answered 2")


def test_instruments_without_risk_items_raise_no_risk_alert() -> None:
    assert run(GAD, answered(GAD, [{f"q{i}": 3.0 for i in range(1, 8)}]), "risk.item") == []


# ----- outcome.deterioration ----------------------------------------------------------------------


def test_phq9_deterioration_by_6_points_is_high() -> None:
    (alert,) = run(PHQ, totals([9.0, 12.0, 15.0]), "outcome.deterioration")
    assert alert.severity == "high"
    assert alert.session_number == 3
    assert alert.message == (
        "PHQ-9 total rose from 9 at the first session to 15 — 6 points worse, at least the "
        "6 points of reliable change."
    )
    assert alert.evidence["reliable_change"] == 6.0
    assert alert.evidence["sessions"] == [1, 3]


def test_phq9_worse_by_5_is_not_reliable() -> None:
    assert run(PHQ, totals([9.0, 14.0]), "outcome.deterioration") == []


def test_ors_deterioration_is_a_fall_of_5() -> None:
    (alert,) = run(ORS, totals([30.0, 25.0]), "outcome.deterioration")
    assert alert.message.startswith("ORS total fell from 30 at the first session to 25")
    assert run(ORS, totals([30.0, 25.1]), "outcome.deterioration") == []


def test_gad7_deterioration_uses_4_points() -> None:
    assert len(run(GAD, totals([5.0, 9.0]), "outcome.deterioration")) == 1


def test_deterioration_clears_when_no_longer_true_and_reopens_as_new() -> None:
    alerts = run(PHQ, totals([9.0, 15.0, 12.0, 16.0]), "outcome.deterioration")
    assert [(a.status, a.resolution, a.first_session_number) for a in alerts] == [
        ("resolved", "condition_cleared", 2),
        ("open", None, 4),
    ]
    assert alerts[0].resolved_session_number == 3


def test_deterioration_needs_reliable_change_points() -> None:
    assert run(CHS, totals([50.0, 20.0]), "outcome.deterioration") == []


def test_deterioration_with_norm_based_reliable_change() -> None:
    own = variant(GAD, {"code": "my-anx", "name": "My anxiety scale",
                "reliable_change": {"sd": 10.5, "reliability": 0.961}}  # 5.747681 points
    )  # fmt: skip
    assert run(own, totals([5.0, 10.7]), "outcome.deterioration") == []
    (alert,) = run(own, totals([5.0, 10.8]), "outcome.deterioration")
    assert "at least the 5.75 points of reliable change" in alert.message


# ----- outcome.not_on_track -----------------------------------------------------------------------


def test_not_on_track_at_the_4th_score_is_a_warning() -> None:
    (alert,) = run(ORS, totals([19.0, 20.0, 21.0, 22.0]), "outcome.not_on_track")
    assert alert.severity == "warning"
    assert alert.session_number == 4
    assert alert.message == (
        "ORS total is 22 at session 4, 3 points better than the first score of 19 and still in "
        "the clinical range; a reliable improvement needs 5 points. Not on track."
    )


def test_not_on_track_is_not_judged_before_the_4th_score() -> None:
    assert run(ORS, totals([19.0, 19.0, 19.0]), "outcome.not_on_track") == []


def test_not_on_track_becomes_high_from_the_8th_score() -> None:
    alerts = run(ORS, totals([19.0] * 8), "outcome.not_on_track")
    (alert,) = alerts
    assert (alert.severity, alert.first_session_number, alert.session_number) == ("high", 4, 8)


def test_not_on_track_needs_a_clinical_start() -> None:
    assert run(ORS, totals([25.0, 25.0, 25.0, 25.0]), "outcome.not_on_track") == []  # 25 not < 25
    assert len(run(ORS, totals([24.9, 24.9, 24.9, 24.9]), "outcome.not_on_track")) == 1
    # Started clinical but 25.0 at the 4th score is out of the clinical range: on track.
    assert run(ORS, totals([24.9, 25.0, 25.0, 25.0]), "outcome.not_on_track") == []


def test_not_on_track_uses_the_population_cutoff() -> None:
    # ORS-3: a child at 30.0 is in the clinical range (CORS cut-off 32); an adult is not.
    series = totals([30.0, 30.0, 30.0, 30.0])
    assert len(run(ORS, series, "outcome.not_on_track", population="child")) == 1
    assert run(ORS, series, "outcome.not_on_track", population="adult") == []


def test_phq9_not_on_track_is_direction_aware() -> None:
    assert len(run(PHQ, totals([12.0, 11.0, 10.0, 10.0]), "outcome.not_on_track")) == 1
    assert run(PHQ, totals([12.0, 10.0, 9.0, 6.0]), "outcome.not_on_track") == []
    assert run(PHQ, totals([12.0, 11.0, 10.0, 9.0]), "outcome.not_on_track") == []  # not a case
    assert run(PHQ, totals([9.0, 9.0, 9.0, 9.0]), "outcome.not_on_track") == []  # not a case


def test_improvement_exactly_at_the_reliable_change_is_on_track() -> None:
    assert run(ORS, totals([19.0, 20.0, 21.0, 24.0]), "outcome.not_on_track") == []


def test_not_on_track_clears_on_reliable_improvement() -> None:
    (alert,) = run(ORS, totals([19.0, 19.0, 19.0, 19.0, 24.0]), "outcome.not_on_track")
    assert (alert.status, alert.resolution, alert.resolved_session_number) == (
        "resolved", "condition_cleared", 5,
    )  # fmt: skip


def test_leaving_the_clinical_range_clears_not_on_track_without_reliable_change() -> None:
    """DESIGN.md §10.3.4: cleared by reliable improvement **or** leaving the clinical range."""
    (alert,) = run(ORS, totals([23.0, 23.0, 23.0, 23.0, 26.0]), "outcome.not_on_track")
    assert (alert.status, alert.resolution, alert.resolved_session_number) == (
        "resolved", "condition_cleared", 5,
    )  # fmt: skip


def test_not_on_track_raises_again_when_the_client_falls_back_into_the_clinical_range() -> None:
    alerts = run(ORS, totals([23.0, 23.0, 23.0, 23.0, 26.0, 24.0]), "outcome.not_on_track")
    assert [(a.status, a.first_session_number) for a in alerts] == [
        ("resolved", 4), ("open", 6),
    ]  # fmt: skip


def test_not_on_track_counts_observed_scores_not_session_numbers() -> None:
    """Issue 13 finding 4: an ORS first entered at session 9 is not judged on its first score, and
    is high only from its 8th."""
    assert run(ORS, totals([19.0, 19.0], sessions=[1, 4]), "outcome.not_on_track") == []
    assert run(ORS, totals([19.0], sessions=[9]), "outcome.not_on_track") == []
    late = run(ORS, totals([19.0] * 8, sessions=range(9, 17)), "outcome.not_on_track")
    (alert,) = late
    assert (alert.first_session_number, alert.session_number, alert.severity) == (12, 16, "high")
    seven = run(ORS, totals([19.0] * 7, sessions=range(9, 16)), "outcome.not_on_track")
    assert seven[0].severity == "warning"


def test_missing_totals_do_not_count_as_scores() -> None:
    series = [*totals([19.0, 19.0, 19.0]), SeriesPoint(4, "sub-4", None, {}, {})]
    assert run(ORS, series, "outcome.not_on_track") == []


def test_not_on_track_settings() -> None:
    overrides = {"outcome.not_on_track": {"params": {"min_session": 2, "high_from_session": 3}}}
    (alert,) = run(ORS, totals([19.0, 19.0, 19.0]), "outcome.not_on_track", overrides=overrides)
    assert (alert.first_session_number, alert.severity) == (2, "high")
    skipped = run(ORS, totals([19.0] * 3, [1, 5, 9]), "outcome.not_on_track", overrides=overrides)
    assert [(a.first_session_number, a.severity) for a in skipped] == [(5, "high")]


def test_not_on_track_needs_a_cutoff() -> None:
    own = variant(GAD, {"code": "no-cut", "name": "No cut", "cutoff": None})
    assert run(own, totals([15.0] * 5), "outcome.not_on_track") == []


def test_outcome_rules_do_not_apply_to_alliance_instruments() -> None:
    assert run(SRS, totals([30.0] * 8), "outcome.not_on_track") == []


# ----- messages -----------------------------------------------------------------------------------


def test_messages_carry_no_identifiers() -> None:
    series = answered(PHQ, [phq(3, 3, 3, 3, 3, 3, 3, 3, 3)] + [phq(3, 3, 3, 3, 3, 3, 3, 3, 3)] * 4)
    for alert in replay(PHQ, series):
        assert "sub-" not in alert.message
