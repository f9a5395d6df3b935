"""Clinical results that surviving mutants of the pure core changed (issue 13 acceptance: `make
mutate`): each test names the behaviour a mutant broke without any other test noticing."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from services.alerts import AlertState, RuleSetting, SeriesPoint, replay, validate_override
from services.alerts.rules import (
    SERIES_RULES,
    alliance_low,
    alliance_rupture,
    display_name,
    fmt,
    outcome_deterioration,
    outcome_not_on_track,
    risk_item,
    rupture_reported,
    subscale_label,
)
from services.alerts.settings import (
    AllianceLowParams,
    AllianceRuptureParams,
    NoParams,
    NotOnTrackParams,
    RiskItemParams,
    RuptureReportedParams,
)
from services.instruments import InstrumentDefinition, get_builtin
from services.scoring.engine import score
from tests.support import totals

SRS = get_builtin("srs")
ORS = get_builtin("ors")
WAI = get_builtin("wai-sr")
PHQ = get_builtin("phq-9")


def alerts(
    defn: InstrumentDefinition,
    series: list[SeriesPoint],
    overrides: Mapping[str, Mapping[str, object]] | None = None,
) -> list[AlertState]:
    settings: dict[str, RuleSetting] = {
        rule: validate_override(rule, body) for rule, body in (overrides or {}).items()
    }
    return replay(defn, series, "adult", settings)


def test_disabling_one_rule_leaves_the_later_rules_running() -> None:
    """Mutant: ``continue`` → ``break`` in rule_events silenced every rule after a disabled one."""
    series = totals([38.0, 35.0])
    kept = alerts(SRS, series, {"alliance.low": {"enabled": False}})
    assert [a.rule_id for a in kept] == ["alliance.drop"]
    assert [a.rule_id for a in alerts(SRS, series)] == ["alliance.low", "alliance.drop"]


def test_the_organisations_k_raises_the_rupture_threshold() -> None:
    """Mutant: the rule passed the default k, not the organisation's."""
    series = totals([40.0, 44.0, 40.0, 44.0, 38.0])  # SD of the earlier 2.31; drop 6
    assert [a.rule_id for a in alerts(WAI, series)].count("alliance.rupture") == 1
    stricter = alerts(WAI, series, {"alliance.rupture": {"params": {"k": 3.0}}})
    assert [a.rule_id for a in stricter].count("alliance.rupture") == 0  # 3 x 2.31 = 6.93 > 6


def test_a_rupture_after_a_repaired_one_is_raised_and_repaired_too() -> None:
    """Mutant: ``continue`` → ``break`` after a repair dropped every later rupture."""
    series = totals([38.0, 38.0, 38.0, 38.0, 35.0, 38.0, 38.0, 35.0, 38.0])
    ruptures = [a for a in alerts(SRS, series) if a.rule_id == "alliance.rupture"]
    assert [(a.first_session_number, a.status, a.resolution) for a in ruptures] == [
        (5, "resolved", "repaired"),
        (8, "resolved", "repaired"),
    ]


def test_a_second_risk_item_is_checked_when_the_first_is_not_flagged() -> None:
    """Mutant: ``continue`` → ``break`` in risk_item stopped at the first unflagged risk item."""
    two = InstrumentDefinition.model_validate(
        {
            **PHQ.model_dump(),
            "code": "two-risks",
            "name": "Two risk items",
            "risk_items": [
                {"item": "q8", "threshold": 3, "label": "First"},
                {"item": "q9", "threshold": 1, "label": "Second"},
            ],
        }
    )
    answers = {f"q{i}": 0.0 for i in range(1, 10)} | {"q9": 2.0}
    s = score(two, answers)
    (alert,) = alerts(two, [SeriesPoint(1, "sub-1", s.total, s.subscales, answers)])
    assert (alert.rule_id, alert.severity) == ("risk.item", "critical")
    assert alert.evidence["items"] == [
        {"item": "q9", "label": "Second", "answer": 2.0, "threshold": 1.0}
    ]


CHECK = get_builtin("rupture-check")


def test_a_reported_rupture_says_what_was_reported_and_against_which_settings() -> None:
    """Mutants renamed or changed evidence keys and the message's joining word unnoticed."""
    answers = {"tension": 1.0, "intensity": 5.0, "resolution": 1.0}
    (alert,) = alerts(CHECK, [SeriesPoint(1, "sub-1", None, {}, answers)])
    assert alert.evidence == {
        "tension": 1, "intensity": 5.0, "resolution": 1.0, "intensity_min": 4,
        "resolution_max": 3, "sessions": [1],
    }  # fmt: skip
    assert alert.message == (
        "Rupture check: the client reported tension with the therapist in this session that was "
        "strong (intensity 5 of 5) and not resolved by the end of the session (resolution 1 of 5)."
    )


def test_the_latest_session_alone_is_judged_after_a_submission() -> None:
    """Mutant: ``or`` → ``and`` in rupture_reported re-raised earlier sessions on every step."""
    from services.alerts import rule_events

    strong = {"tension": 1.0, "intensity": 5.0, "resolution": 1.0}
    series = [
        SeriesPoint(1, "s1", None, {}, strong),
        SeriesPoint(2, "s2", None, {}, {"tension": 0}),
    ]
    assert rule_events(CHECK, series, "adult", since=2) == []
    assert [e.session_number for e in rule_events(CHECK, series, "adult")] == [1]


def test_a_rule_given_another_rules_parameters_refuses_them() -> None:
    """Mutants of the check that each rule gets its own parameter model: a wrong model must fail
    loudly, naming both, rather than run a rule on another rule's thresholds."""
    with pytest.raises(TypeError, match="expected AllianceLowParams, got RiskItemParams"):
        SERIES_RULES["alliance.low"](SRS, totals([30.0]), "adult", RiskItemParams(), 0)
    events = SERIES_RULES["alliance.low"](
        SRS, totals([30.0]), "adult", AllianceLowParams(cutoff=36), 0
    )
    assert [(e.rule_id, e.action, e.session_number) for e in events] == [
        ("alliance.low", "raise", 1)
    ]


def test_a_reported_rupture_with_an_unanswered_part_says_so_in_its_evidence() -> None:
    """An organisation's rupture check may leave intensity or resolution unanswered: the alert is
    still raised on the part that was answered, and the evidence says the other is missing (a
    mutant read the missing answer as a number and failed)."""
    unresolved = SeriesPoint(1, "sub-1", None, {}, {"tension": 1.0, "resolution": 2.0})
    strong = SeriesPoint(2, "sub-2", None, {}, {"tension": 1.0, "intensity": 4.0})
    events = SERIES_RULES["rupture.reported"](
        CHECK, [unresolved, strong], "adult", RuptureReportedParams(), 0
    )
    assert [(e.severity, e.evidence["intensity"], e.evidence["resolution"]) for e in events] == [
        ("warning", None, 2.0),
        ("warning", 4.0, None),
    ]


def _alliance_lower_is_better(cutoff: object) -> InstrumentDefinition:
    """An organisation's alliance scale on which a higher total is worse."""
    return InstrumentDefinition.model_validate(
        {**SRS.model_dump(), "code": "org-strain", "name": "Strain scale",
         "direction": "lower_is_better", "cutoff": cutoff}
    )  # fmt: skip


def test_a_low_alliance_on_a_lower_is_better_scale_is_at_or_above_its_cutoff() -> None:
    """Mutants: the message said "below" (or garbled "at or above") for a scale where higher is
    worse, telling the clinician the opposite of what was found."""
    strain = _alliance_lower_is_better(10)
    (event,) = alliance_low(strain, totals([12.0]), "adult", AllianceLowParams(cutoff=10))
    assert event.message.startswith("Strain scale total 12 is at or above the cut-off of 10:")


def test_no_low_alliance_alert_for_a_population_without_a_cutoff() -> None:
    """Mutant: a cut-off given for adults only was read for a child's series as no cut-off at all
    and the rule ran on, judging against nothing."""
    adults_only = AllianceLowParams(cutoff={"adult": 36})
    assert alliance_low(SRS, totals([20.0]), "child", adults_only) == []
    assert len(alliance_low(SRS, totals([20.0]), "adult", adults_only)) == 1


def test_a_subscale_with_a_two_word_name_is_labelled_in_words() -> None:
    """Mutants: ``low_mood`` kept its underscore in alert messages."""
    assert subscale_label("low_mood") == "Low mood"
    assert subscale_label("bond") == "Bond"


def test_a_reported_rupture_after_a_mild_resolved_one_is_still_raised() -> None:
    """Mutant: ``continue`` → ``break`` in rupture_reported stopped at the first session whose
    reported tension was mild and resolved, so later strong ruptures raised nothing."""
    mild = {"tension": 1.0, "intensity": 1.0, "resolution": 5.0}
    strong = {"tension": 1.0, "intensity": 5.0, "resolution": 5.0}
    series = [SeriesPoint(1, "sub-1", None, {}, mild), SeriesPoint(2, "sub-2", None, {}, strong)]
    events = rupture_reported(CHECK, series, "adult", RuptureReportedParams())
    assert [(e.session_number, e.severity) for e in events] == [(2, "warning")]


def test_a_low_alliance_alert_carries_its_direction_and_session_as_evidence() -> None:
    """Mutants: the evidence keys ``direction`` and ``sessions`` renamed (the alert's evidence is
    part of the API contract and of what the clinician sees)."""
    (_, low) = alliance_low(SRS, totals([38.0, 35.0]), "adult", AllianceLowParams(cutoff=36))
    assert low.evidence == {
        "current": 35.0,
        "cutoff": 36.0,
        "population": "adult",
        "direction": "higher_is_better",
        "sessions": [2],
    }


def test_a_subscale_with_a_floor_is_watched_when_the_total_and_other_subscales_have_none() -> None:
    """Mutant: ``continue`` → ``break`` in alliance_rupture stopped at the first scale without a
    ``min_drop`` (here the WAI-SR total and Task), so the Bond floor was never checked."""
    bond_only = AllianceRuptureParams(min_drop=None, subscale_min_drop={"bond": 2.0})
    series = [
        SeriesPoint(n, f"sub-{n}", None, {"bond": b}, {})
        for n, b in enumerate([16.0, 16.0, 16.0, 16.0, 12.0], 1)
    ]
    (event,) = alliance_rupture(WAI, series, "adult", bond_only)
    assert (event.subscale, event.session_number) == ("bond", 5)


def test_a_gradual_rupture_is_described_from_the_level_before_the_decline() -> None:
    """Mutant: a gradual decline described from the score before its last step (50 → 47), not
    from where it began (51), so message and evidence named the wrong level and sessions."""
    series = totals([50.0, 50.0, 51.0, 50.0, 47.0])
    (event,) = alliance_rupture(WAI, series, "adult", AllianceRuptureParams(min_drop=4.0))
    assert event.message.startswith("WAI-SR total fell from 51 to 47 over 2 sessions — 4 points")
    assert (event.evidence["previous"], event.evidence["sessions"]) == (51.0, [3, 4, 5])


def test_a_rupture_reports_its_threshold_and_sd_to_four_places_and_its_repair_window() -> None:
    """Mutants: threshold or SD rounded to a whole number or to five places, the evidence key
    ``repair_window`` renamed. SD of 48, 50, 51 is 1.527525…, of 48, 50, 51, 49 1.290994…"""
    series = totals([48.0, 50.0, 51.0, 49.0, 47.0])
    events = alliance_rupture(WAI, series, "adult", AllianceRuptureParams(min_drop=1.0))
    assert [e.evidence for e in events] == [
        {
            "previous": 51.0, "current": 49.0, "drop": 2.0, "threshold": 1.5275,
            "earlier_sd": 1.5275, "pattern": "sudden", "sessions": [3, 4], "repair_window": 3,
        },
        {
            "previous": 49.0, "current": 47.0, "drop": 2.0, "threshold": 1.291,
            "earlier_sd": 1.291, "pattern": "sudden", "sessions": [4, 5], "repair_window": 3,
        },
    ]  # fmt: skip


def test_an_unrepaired_subscale_rupture_escalates_to_high_at_the_end_of_its_window() -> None:
    """Mutants of the escalation event: its action, its subscale or its ``only_if_session``
    dropped or garbled (no unit test looked at the event itself)."""
    series = [
        SeriesPoint(n, f"sub-{n}", None, {"bond": b}, {})
        for n, b in enumerate([16.0, 16.0, 16.0, 16.0, 12.0, 12.0, 12.0, 12.0], 1)
    ]
    bond_only = AllianceRuptureParams(min_drop=None, subscale_min_drop={"bond": 2.0})
    (_, escalation) = alliance_rupture(WAI, series, "adult", bond_only)
    assert (
        escalation.session_number, escalation.action, escalation.subscale, escalation.severity,
        escalation.only_if_session, escalation.evidence,
    ) == (
        8, "escalate", "bond", "high", 5, {"unrepaired": True, "repair_window_end": 8}
    )  # fmt: skip
    assert escalation.message.endswith("Not back to the earlier level of 16 within 3 sessions.")


def test_an_earlier_ruptures_escalation_leaves_a_later_rupture_at_warning() -> None:
    """Mutant: the escalation without ``only_if_session`` raised to high the alert that a later
    rupture (session 7, its window still open) had taken over."""
    series = totals([38.0, 38.0, 38.0, 38.0, 34.0, 34.0, 30.0, 30.0])
    (rupture,) = [a for a in alerts(SRS, series) if a.rule_id == "alliance.rupture"]
    assert (rupture.session_number, rupture.severity, rupture.status) == (7, "warning", "open")


@pytest.mark.parametrize(
    ("latest", "words"),
    [
        (15.0, "15 at session 4, no change from the first score of 15"),
        (17.0, "17 at session 4, 2 points worse than the first score of 15"),
        (14.5, "14.5 at session 4, 0.5 points better than the first score of 15"),
    ],
)
def test_not_on_track_says_how_far_from_the_first_score(latest: float, words: str) -> None:
    """Mutants of ``_change_text``: no change read as better or worse, half a point as no change,
    a worsening given a minus sign, the words garbled."""
    events = outcome_not_on_track(
        PHQ, totals([15.0, 15.0, 15.0, latest]), "adult", NotOnTrackParams()
    )
    assert events[-1].message.startswith(f"PHQ-9 total is {words} and still in the clinical range")


def _mood(reliable_change: object) -> InstrumentDefinition:
    """An organisation's copy of the PHQ-9 with reliable change of its own."""
    return InstrumentDefinition.model_validate(
        {**PHQ.model_dump(), "code": "org-mood", "name": "Mood", "reliable_change": reliable_change}
    )


def test_not_on_track_gives_reliable_change_to_two_places_and_its_whole_evidence() -> None:
    """Mutants: the reliable change of 5.747681 (SD 10.5, r .961) written as 6 or 5.748, an
    evidence key renamed."""
    series = totals([15.0, 15.0, 15.0, 17.0])
    (*_, event) = outcome_not_on_track(
        _mood({"sd": 10.5, "reliability": 0.961}), series, "adult", NotOnTrackParams()
    )
    assert event.message.endswith("a reliable improvement needs 5.75 points. Not on track.")
    assert event.evidence == {
        "first": 15.0, "current": 17.0, "improvement": -2.0, "reliable_change": 5.747681202015299,
        "cutoff": 10.0, "population": "adult", "direction": "lower_is_better", "sessions": [1, 4],
    }  # fmt: skip


def test_no_not_on_track_alert_without_reliable_change() -> None:
    """Mutant: ``or`` → ``and`` ran the rule on an instrument without reliable change."""
    series = totals([15.0, 15.0, 15.0, 17.0])
    assert outcome_not_on_track(_mood(None), series, "adult", NotOnTrackParams()) == []


def test_deterioration_on_a_higher_is_better_scale_is_counted_as_points_worse() -> None:
    """Mutant: the direction left out, so an ORS fall of 6 read as minus 6 points worse."""
    (_, event) = outcome_deterioration(ORS, totals([20.0, 14.0]), "adult", NoParams())
    assert event.message.startswith("ORS total fell from 20 at the first session to 14 — 6 points")
    assert event.evidence["worse_by"] == 6.0


def test_two_flagged_risk_items_are_both_named_even_without_a_total() -> None:
    """Mutants: the two items' texts joined with a garbled separator, the evidence key
    ``sessions`` renamed, a missing total read as a number (a crash: no risk alert at all)."""
    two = InstrumentDefinition.model_validate(
        {**PHQ.model_dump(), "code": "two-risks", "name": "Two risk items",
         "risk_items": [{"item": "q8", "threshold": 3, "label": "First"},
                        {"item": "q9", "threshold": 1, "label": "Second"}]}
    )  # fmt: skip
    answers = {f"q{i}": 0.0 for i in range(1, 10)} | {"q8": 3.0, "q9": 1.0}
    params = RiskItemParams(thresholds={"q8": 3.0, "q9": 1.0})
    (event,) = risk_item(two, [SeriesPoint(1, "sub-1", None, {}, answers)], "adult", params)
    assert event.message == (
        "Two risk items: First answered 3, at or above the risk threshold of 3; Second answered "
        "1, at or above the risk threshold of 1. Follow up whatever the total score."
    )
    assert event.evidence == {
        "items": [
            {"item": "q8", "label": "First", "answer": 3.0, "threshold": 3.0},
            {"item": "q9", "label": "Second", "answer": 1.0, "threshold": 1.0},
        ],
        "total": None,
        "sessions": [1],
    }


def test_alerts_name_a_builtin_by_its_short_name_and_an_organisations_copy_by_its_own() -> None:
    """Mutants of display_name: an equal copy of a built-in, or a collateral view of it, named by
    its long name; an organisation's instrument that reuses the code ``srs`` named "SRS"."""
    ours = InstrumentDefinition.model_validate({**SRS.model_dump(), "name": "Our alliance scale"})
    assert display_name(SRS) == "SRS"
    assert display_name(SRS.model_copy()) == "SRS"
    assert display_name(ORS.for_respondent("collateral")) == "ORS"
    assert display_name(ours) == "Our alliance scale"


def test_a_tiny_fraction_is_written_out_in_full() -> None:
    """Mutant: ``format(d, "f")`` → ``format(d)`` wrote 1E-7."""
    assert fmt(0.0000001) == "0.0000001"
    assert fmt(35.9) == "35.9"
