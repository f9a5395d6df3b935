"""Alert-rule parameters per instrument (DESIGN.md §10.2) and risk never silenced (§10.3.1):
issue 13 findings 1, 5, 6 and 7, each as reported, and the property that no accepted setting
silences a risk answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.alerts import SeriesPoint, SettingsProblems, replay, validate_override
from services.alerts.settings import (
    RULES,
    effective_instruments,
    params_for,
    resolve_settings,
    rupture_scales,
)
from services.instruments import InstrumentDefinition, builtin_instruments, get_builtin
from services.scoring import score
from services.trajectory import build_trajectory
from tests.support import totals
from tests.support.examples import examples

SRS = get_builtin("srs")
WAI = get_builtin("wai-sr")
PHQ = get_builtin("phq-9")

# An organisation's own alliance instrument, on a 0-20 scale.
OWN_ALLIANCE = InstrumentDefinition.model_validate(
    {
        "code": "bond-local", "version": "1", "name": "Local bond scale", "kind": "alliance",
        "respondents": ["client"],
        "items": [{"id": i, "label": i, "min": 0, "max": 10, "step": 1} for i in ("a", "b")],
        "direction": "higher_is_better", "citation": "test", "license": "test",
    }
)  # fmt: skip
# An organisation's symptom measure with two risk items.
OWN_RISK = InstrumentDefinition.model_validate(
    {
        "code": "mood-local", "version": "1", "name": "Local mood", "kind": "symptom",
        "respondents": ["client"],
        "items": [
            {"id": "score", "label": "score", "min": 0, "max": 30, "step": 1},
            {"id": "harm", "label": "harm", "min": 0, "max": 4, "step": 1, "in_total": False},
            {"id": "plan", "label": "plan", "min": 1, "max": 5, "step": 1, "in_total": False},
        ],
        "direction": "lower_is_better",
        "risk_items": [{"item": "harm", "threshold": 3, "label": "Harm"},
                       {"item": "plan", "threshold": 4, "label": "Plan"}],
        "citation": "test", "license": "test",
    }
)  # fmt: skip
CATALOG = {**builtin_instruments(), OWN_ALLIANCE.code: OWN_ALLIANCE, OWN_RISK.code: OWN_RISK}


def problems_of(rule_id: str, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SettingsProblems) as info:
        validate_override(rule_id, body, CATALOG)
    return info.value.problems


def fields_of(rule_id: str, body: Mapping[str, Any]) -> set[str]:
    return {field for field, _ in problems_of(rule_id, body)}


def alerts(defn: InstrumentDefinition, series: Sequence[SeriesPoint], rule: str, **bodies: Any):  # type: ignore[no-untyped-def]
    rule_settings = {r.replace("_", "."): validate_override(r.replace("_", "."), b, CATALOG)
                     for r, b in bodies.items()}  # fmt: skip
    return [a for a in replay(defn, series, "adult", rule_settings) if a.rule_id == rule]


# ----- finding 5: alliance.low's cut-off per instrument ------------------------------------------


@pytest.mark.parametrize("cutoff", [-5, 41, 1000])
def test_an_srs_cutoff_outside_the_totals_range_is_refused(cutoff: float) -> None:
    assert problems_of("alliance.low", {"instruments": {"srs": {"cutoff": cutoff}}}) == [
        ("instruments.srs.cutoff", "outside the total's range 0-40")
    ]


def test_a_cutoff_in_params_is_refused_and_points_to_the_instrument() -> None:
    assert problems_of("alliance.low", {"params": {"cutoff": 36}}) == [
        ("params.cutoff", "set per instrument: instruments.<code>.cutoff")
    ]


def test_the_srs_cutoff_no_longer_reaches_the_wai_sr() -> None:
    """Finding 5: with 36, a WAI-SR total of 35 raised alliance.low though the WAI-SR has no
    published cut-off (Hatcher & Gillaspy 2006)."""
    body = {"instruments": {"srs": {"cutoff": 36}}}
    assert alerts(WAI, totals([35.0]), "alliance.low", alliance_low=body) == []
    assert len(alerts(SRS, totals([35.0]), "alliance.low", alliance_low=body)) == 1


def test_a_population_map_cutoff_is_honoured() -> None:
    body = {"instruments": {"srs": {"cutoff": {"adult": 30, "child": 38}}}}
    series = totals([35.0])
    setting = validate_override("alliance.low", body, CATALOG)
    assert [a.params for a in replay(SRS, series, "child", {"alliance.low": setting})] == [
        {"cutoff": 38.0}
    ]
    assert replay(SRS, series, "adult", {"alliance.low": setting}) == []


def test_an_unknown_population_instrument_or_parameter_is_named() -> None:
    assert fields_of("alliance.low", {"instruments": {"srs": {"cutoff": {"elder": 30}}}}) == {
        "instruments.srs.cutoff.elder"
    }
    assert fields_of("alliance.low", {"instruments": {"nope": {"cutoff": 30}}}) == {
        "instruments.nope"
    }
    assert fields_of("alliance.low", {"instruments": {"srs": {"cut": 30}}}) == {
        "instruments.srs.cut"
    }
    assert fields_of("alliance.low", {"instruments": {"phq-9": {"cutoff": 10}}}) == {
        "instruments.phq-9"
    }


def test_the_wai_sr_takes_part_in_alliance_low_once_the_organisation_gives_it_a_cutoff() -> None:
    body = {"instruments": {"wai-sr": {"cutoff": 40}}}
    (alert,) = alerts(WAI, totals([35.0]), "alliance.low", alliance_low=body)
    assert alert.params == {"cutoff": 40.0}


# ----- finding 6: alliance.drop and alliance.rupture per instrument and subscale -----------------


def test_alliance_drop_runs_on_the_srs_only_by_default() -> None:
    """Finding 6: a WAI-SR 49 → 48 raised a warning with the SRS default of 1 point."""
    assert alerts(WAI, totals([49.0, 48.0]), "alliance.drop") == []
    assert len(alerts(SRS, totals([38.0, 37.0]), "alliance.drop")) == 1  # SRS-4, OpenFIT


def test_another_instrument_takes_part_in_alliance_drop_with_its_own_min_drop() -> None:
    body = {"instruments": {"wai-sr": {"min_drop": 3}}}
    assert alerts(WAI, totals([49.0, 47.0]), "alliance.drop", alliance_drop=body) == []
    (alert,) = alerts(WAI, totals([49.0, 46.0]), "alliance.drop", alliance_drop=body)
    assert alert.params == {"min_drop": 3.0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"srs": {"min_drop": 0}}, "instruments.srs.min_drop"),
        ({"srs": {"min_drop": -1}}, "instruments.srs.min_drop"),
        ({"srs": {"min_drop": 40.5}}, "instruments.srs.min_drop"),
        ({"wai-sr": {"subscales": {"bond": {"min_drop": 17}}}},
         "instruments.wai-sr.subscales.bond.min_drop"),
        ({"wai-sr": {"subscales": {"trust": {"min_drop": 2}}}},
         "instruments.wai-sr.subscales.trust"),
        ({"srs": {"subscales": {"bond": {"min_drop": 2}}}}, "instruments.srs.subscales.bond"),
    ],
)  # fmt: skip
def test_rupture_floors_are_checked_against_each_scale(body: dict[str, Any], field: str) -> None:
    assert fields_of("alliance.rupture", {"instruments": body}) == {field}


def test_one_instruments_rupture_floor_leaves_the_others_and_its_subscales_alone() -> None:
    """Finding 6: one min_drop replaced the floors of the SRS, the WAI-SR total and every WAI-SR
    subscale at once."""
    setting = validate_override(
        "alliance.rupture", {"instruments": {"srs": {"min_drop": 10}}}, CATALOG
    )
    wai = rupture_scales(setting, WAI)
    assert wai.min_drops == {None: 4.0, "task": 2.0, "bond": 2.0, "goal": 2.0}
    assert rupture_scales(setting, SRS).min_drops == {None: 10.0}
    bond = validate_override(
        "alliance.rupture",
        {"instruments": {"wai-sr": {"subscales": {"bond": {"min_drop": 3}}}}},
        CATALOG,
    )
    assert rupture_scales(bond, WAI).min_drops == {None: 4.0, "task": 2.0, "bond": 3.0, "goal": 2.0}


def test_effective_values_and_their_sources_for_every_instrument() -> None:
    setting = validate_override(
        "alliance.rupture",
        {"instruments": {"wai-sr": {"min_drop": 5, "subscales": {"bond": {"min_drop": 3}}}}},
        CATALOG,
    )
    values, sources = effective_instruments(setting, CATALOG)
    assert values["srs"] == {"min_drop": 2.0, "subscales": {}}
    assert values["wai-sr"] == {
        "min_drop": 5.0,
        "subscales": {"task": {"min_drop": 2.0}, "bond": {"min_drop": 3.0},
                      "goal": {"min_drop": 2.0}},
    }  # fmt: skip
    assert values["bond-local"] == {"min_drop": None, "subscales": {}}
    assert sources["instruments.wai-sr.min_drop"] == "organization"
    assert sources["instruments.wai-sr.subscales.bond.min_drop"] == "organization"
    assert sources["instruments.wai-sr.subscales.task.min_drop"] == "default"
    assert sources["instruments.srs.min_drop"] == "default"
    assert "phq-9" not in values
    low, _ = effective_instruments(resolve_settings(None)["alliance.low"], CATALOG)
    assert low == {
        "bond-local": {"cutoff": None},
        "srs": {"cutoff": 36},
        "wai-sr": {"cutoff": None},
    }


# ----- finding 7: the trajectory reads the rule's settings ---------------------------------------


def test_the_trajectory_lists_a_rupture_only_where_the_rule_would_raise_one() -> None:
    """Finding 7: with min_drop 10 no alert is raised for a 38 → 30 SRS fall, yet the trajectory
    listed a rupture there."""
    series = [38.0, 38.0, 39.0, 38.0, 30.0]
    body = {"instruments": {"srs": {"min_drop": 10}}}
    setting = validate_override("alliance.rupture", body, CATALOG)
    assert alerts(SRS, totals(series), "alliance.rupture", alliance_rupture=body) == []
    scales = rupture_scales(setting, SRS)
    trajectory = build_trajectory(
        SRS, [(n, v, {}) for n, v in enumerate(series, start=1)],
        k=scales.k, repair_window=scales.repair_window, min_drops=scales.min_drops,
    )  # fmt: skip
    assert trajectory.summary.ruptures == []
    default = rupture_scales(resolve_settings(None)["alliance.rupture"], SRS)
    listed = build_trajectory(
        SRS, [(n, v, {}) for n, v in enumerate(series, start=1)], min_drops=default.min_drops
    )
    assert [r.session_number for r in listed.summary.ruptures] == [5]
    assert [a.session_number for a in alerts(SRS, totals(series), "alliance.rupture")] == [5]


def test_a_switched_off_rupture_rule_lists_no_rupture() -> None:
    setting = validate_override("alliance.rupture", {"enabled": False}, CATALOG)
    assert rupture_scales(setting, WAI).min_drops == {None: None, "task": None, "bond": None,
                                                       "goal": None}  # fmt: skip


# ----- finding 1: risk thresholds only more sensitive --------------------------------------------


@pytest.mark.parametrize("threshold", [0, 2, 3, 4, -1000, 1000])
def test_phq9_item_9_accepts_no_threshold_but_1(threshold: float) -> None:
    """Finding 1: q9 raised to 3 was accepted (a q9 of 2 then raised nothing); 0 flagged every
    PHQ-9. Simon et al. (2013): any answer ≥ 1 is a risk flag; only lowering is allowed, and above
    the item's minimum."""
    body = {"instruments": {"phq-9": {"thresholds": {"q9": threshold}}}}
    assert fields_of("risk.item", body) == {"instruments.phq-9.thresholds.q9"}


def test_phq9_item_9_threshold_1_is_accepted() -> None:
    body = {"instruments": {"phq-9": {"thresholds": {"q9": 1}}}}
    assert validate_override("risk.item", body, CATALOG).sources == {
        "enabled": "default",
        "params.escalate_after_hours": "default",
        "instruments.phq-9.thresholds.q9": "organization",
    }


def test_organisation_risk_thresholds_are_bounded_by_their_definition() -> None:
    ok = {"instruments": {"mood-local": {"thresholds": {"harm": 1, "plan": 2}}}}
    params = params_for(validate_override("risk.item", ok, CATALOG), OWN_RISK)
    assert params is not None
    assert params.model_dump()["thresholds"] == {"harm": 1.0, "plan": 2.0}
    for item, value in (("harm", 0), ("harm", 4), ("plan", 1), ("plan", 5), ("harm", -1000)):
        body = {"instruments": {"mood-local": {"thresholds": {item: value}}}}
        assert fields_of("risk.item", body) == {f"instruments.mood-local.thresholds.{item}"}
    assert fields_of(
        "risk.item", {"instruments": {"mood-local": {"thresholds": {"score": 9}}}}
    ) == {"instruments.mood-local.thresholds.score"}


def test_risk_item_cannot_be_switched_off_nor_take_rule_wide_thresholds() -> None:
    assert fields_of("risk.item", {"enabled": False}) == {"enabled"}
    assert fields_of("risk.item", {"params": {"thresholds": {"phq-9": {"q9": 1}}}}) == {
        "params.thresholds"
    }


# ----- the property: no accepted setting silences a risk answer -----------------------------------

RISK_INSTRUMENTS = {"phq-9": PHQ, "mood-local": OWN_RISK}


def _answers(defn: InstrumentDefinition) -> st.SearchStrategy[dict[str, float]]:
    return st.fixed_dictionaries(
        {
            it.id: st.integers(int(it.min), int(it.max)).map(float)
            for it in defn.items
            if it.required and it.when is None
        }
    )


@st.composite
def risk_cases(draw: st.DrawFn) -> tuple[InstrumentDefinition, list[SeriesPoint], dict[str, Any]]:
    code = draw(st.sampled_from(sorted(RISK_INSTRUMENTS)))
    defn = RISK_INSTRUMENTS[code]
    answers = draw(st.lists(_answers(defn), min_size=1, max_size=8))
    sessions = sorted(draw(st.sets(st.integers(1, 20), min_size=len(answers),
                                   max_size=len(answers))))  # fmt: skip
    series = []
    for n, a in zip(sessions, answers, strict=True):
        s = score(defn, a)
        series.append(SeriesPoint(n, f"sub-{n}", s.total, s.subscales, a))
    # Any body at all: the property is about those the API accepts.
    thresholds = draw(
        st.dictionaries(
            st.sampled_from([r.item for r in defn.risk_items] + ["q1", "score"]),
            st.one_of(st.integers(-3, 6), st.floats(-3, 6, allow_nan=False)),
            max_size=2,
        )
    )
    body: dict[str, Any] = {"instruments": {code: {"thresholds": thresholds}}}
    if draw(st.booleans()):
        body["enabled"] = draw(st.booleans())
    return defn, series, body


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=risk_cases(), others_off=st.booleans())
def test_no_accepted_setting_silences_a_risk_answer(
    case: tuple[InstrumentDefinition, list[SeriesPoint], dict[str, Any]], others_off: bool
) -> None:
    """DESIGN.md §10.3.1 and issue 13's acceptance: for any series and any setting the API
    accepts, a risk answer at or above the definition's threshold always yields an open critical
    alert for that submission or a newer one."""
    defn, series, body = case
    try:
        risk = validate_override("risk.item", body, CATALOG)
    except SettingsProblems:
        return  # refused: the API answers 422 and nothing is stored
    rule_settings = {"risk.item": risk}
    if others_off:
        rule_settings |= {
            rule_id: validate_override(rule_id, {"enabled": False}, CATALOG)
            for rule_id, spec in RULES.items()
            if spec.can_disable
        }
    result = replay(defn, series, "adult", rule_settings)
    open_critical = [
        a for a in result if a.rule_id == "risk.item" and a.status == "open"
        and a.severity == "critical"
    ]  # fmt: skip
    for point in series:
        if any(point.answers[r.item] >= r.threshold for r in defn.risk_items):
            assert any(a.session_number >= point.session_number for a in open_critical), point


def test_an_organisation_cutoff_judges_self_report_ratings_only() -> None:
    """DESIGN.md §10.3.5: an organisation's alliance.low cut-off is a self-report norm, like a
    plain cut-off in a definition, so a collateral series of the same instrument is not judged on
    it."""
    family = InstrumentDefinition.model_validate(
        {**OWN_ALLIANCE.model_dump(), "code": "family-alliance",
         "respondents": ["client", "collateral"]}
    )  # fmt: skip
    catalog = {**CATALOG, family.code: family}
    body = {"instruments": {"family-alliance": {"cutoff": 15}}}
    setting = validate_override("alliance.low", body, catalog)
    own = params_for(setting, family.for_respondent("client"))
    assert own is not None
    assert own.model_dump() == {"cutoff": 15}
    assert params_for(setting, family.for_respondent("collateral")) is None
