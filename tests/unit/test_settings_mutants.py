"""What surviving mutants of services/alerts/settings.py changed without any other test noticing
(issue 13 acceptance: `make mutate`): the fields a refused setting names, the effective values and
sources `GET /v1/alert-rules` lists, the stored settings an organisation's own instruments keep,
and the rupture parameters the trajectory runs with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from services.alerts import SettingsProblems, validate_override
from services.alerts.settings import (
    AllianceRuptureParams,
    RuptureScales,
    effective_instruments,
    effective_settings,
    params_for,
    resolve_settings,
    risk_thresholds,
    rupture_scales,
    settings_with_fallback,
)
from services.instruments import InstrumentDefinition, builtin_instruments, get_builtin

SRS = get_builtin("srs")
WAI = get_builtin("wai-sr")

# An organisation's symptom measure whose risk item may be made more sensitive (3 → 2).
OWN_RISK = InstrumentDefinition.model_validate(
    {
        "code": "mood-local", "version": "1", "name": "Local mood", "kind": "symptom",
        "respondents": ["client"],
        "items": [
            {"id": "score", "label": "score", "min": 0, "max": 30, "step": 1},
            {"id": "harm", "label": "harm", "min": 0, "max": 4, "step": 1, "in_total": False},
        ],
        "direction": "lower_is_better",
        "risk_items": [{"item": "harm", "threshold": 3, "label": "Harm"}],
        "citation": "test", "license": "test",
    }
)  # fmt: skip
# An organisation's alliance instrument (0-20), which has no default rupture floor.
OWN_ALLIANCE = InstrumentDefinition.model_validate(
    {
        "code": "bond-local", "version": "1", "name": "Local bond scale", "kind": "alliance",
        "respondents": ["client"],
        "items": [{"id": i, "label": i, "min": 0, "max": 10, "step": 1} for i in ("a", "b")],
        "direction": "higher_is_better", "citation": "test", "license": "test",
    }
)  # fmt: skip
CATALOG = {**builtin_instruments(), OWN_RISK.code: OWN_RISK, OWN_ALLIANCE.code: OWN_ALLIANCE}


def problems_of(rule_id: str, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SettingsProblems) as info:
        validate_override(rule_id, body)
    return info.value.problems


# ----- the field a 422 names (DESIGN.md §10.2: "422 naming the field") ----------------------------


def test_a_cutoff_of_the_wrong_type_is_named_without_the_unions_branch_names() -> None:
    """Mutants: the union branches (``float``, ``dict[str,float]``) leaked into the field name."""
    assert problems_of("alliance.low", {"instruments": {"srs": {"cutoff": "abc"}}}) == [
        ("instruments.srs.cutoff", "Input should be a valid number"),
        ("instruments.srs.cutoff", "Input should be a valid dictionary"),
    ]


def test_a_nested_subscale_floor_of_the_wrong_type_is_named_by_its_dotted_path() -> None:
    body = {"instruments": {"wai-sr": {"subscales": {"bond": {"min_drop": "x"}}}}}
    assert problems_of("alliance.rupture", body) == [
        ("instruments.wai-sr.subscales.bond.min_drop", "Input should be a valid number")
    ]


def test_an_instrument_entry_that_is_not_an_object_is_named_by_the_instrument() -> None:
    """Mutant: a problem of the whole entry was named ``instruments.srs.`` (a trailing dot)."""
    assert problems_of("alliance.low", {"instruments": {"srs": 5}}) == [
        ("instruments.srs", "Input should be a valid dictionary or instance of CutoffOverride")
    ]


def test_a_wrong_type_and_a_failed_check_each_say_what_is_wrong() -> None:
    """Mutants: the message of a type error was lost (``None``), and a check's own message."""
    assert problems_of("alliance.rupture", {"params": {"k": "x"}}) == [
        ("params.k", "Input should be a valid number")
    ]
    body = {"params": {"min_session": 6, "high_from_session": 5}}
    assert problems_of("outcome.not_on_track", body) == [
        ("params.high_from_session", "must be at least min_session (6)")
    ]


# ----- stored settings --------------------------------------------------------------------------


def test_stored_values_for_an_organisations_own_instrument_are_kept() -> None:
    """Mutant: stored settings were checked against the built-ins only (``known_only=True``), so an
    organisation's rupture floor for its own instrument was dropped for the defaults."""
    body = {"params": {"k": 2.0}, "instruments": {"bond-local": {"min_drop": 3}}}
    settings, problems = settings_with_fallback({"alliance.rupture": body})
    assert problems == []
    rupture = settings["alliance.rupture"]
    assert rupture.public_params()["k"] == 2.0
    assert rupture.public_instruments() == {"bond-local": {"min_drop": 3.0}}
    assert effective_settings({"alliance.rupture": body})["alliance.rupture"] == rupture


def test_every_stored_setting_that_no_longer_validates_is_reported() -> None:
    """Mutant: ``problems +=`` → ``problems =`` reported only the last rule's problems."""
    _, problems = settings_with_fallback(
        {"alliance.low": {"params": {"nope": 1}}, "alliance.rupture": {"params": {"k": -1}}}
    )
    assert [field for field, _ in problems] == [
        "alliance.low.params.nope",
        "alliance.rupture.params.k",
    ]


def test_a_stored_setting_that_no_longer_validates_is_refused_on_its_own() -> None:
    """Mutant: ``or`` → ``and`` raised only when an unknown rule came with an invalid one."""
    with pytest.raises(SettingsProblems) as invalid:
        effective_settings({"alliance.rupture": {"params": {"k": -1}}})
    assert [field for field, _ in invalid.value.problems] == ["alliance.rupture.params.k"]
    with pytest.raises(SettingsProblems) as unknown:
        effective_settings({"alliance.nope": {}})
    assert unknown.value.problems == [("alliance.nope", "unknown rule")]


# ----- what GET /v1/alert-rules lists ------------------------------------------------------------


def test_the_listed_organisation_values_leave_out_what_it_did_not_set() -> None:
    """Mutants: ``exclude_none`` / ``exclude_defaults`` off listed unset floors as null and an
    empty ``subscales``."""
    total_only = validate_override("alliance.rupture", {"instruments": {"srs": {"min_drop": 3}}})
    assert total_only.public_instruments() == {"srs": {"min_drop": 3.0}}
    bond_only = validate_override(
        "alliance.rupture", {"instruments": {"wai-sr": {"subscales": {"bond": {"min_drop": 3}}}}}
    )
    assert bond_only.public_instruments() == {"wai-sr": {"subscales": {"bond": {"min_drop": 3.0}}}}


def test_alliance_drop_lists_the_srs_default_and_no_floor_elsewhere() -> None:
    """DESIGN.md §10.2: ``alliance.drop`` runs on the SRS (1 point, OpenFIT) and on another alliance
    instrument only once the organisation gives it a ``min_drop``."""
    default = resolve_settings(None)["alliance.drop"]
    assert effective_instruments(default, CATALOG) == (
        {"bond-local": {"min_drop": None}, "srs": {"min_drop": 1.0}, "wai-sr": {"min_drop": None}},
        {
            "instruments.bond-local.min_drop": "default",
            "instruments.srs.min_drop": "default",
            "instruments.wai-sr.min_drop": "default",
        },
    )
    own = validate_override("alliance.drop", {"instruments": {"wai-sr": {"min_drop": 4}}})
    values, sources = effective_instruments(own, CATALOG)
    assert values["wai-sr"] == {"min_drop": 4.0}
    assert sources["instruments.wai-sr.min_drop"] == "organization"


def test_risk_thresholds_are_listed_for_every_instrument_with_risk_items_and_say_who_set_them() -> (
    None
):
    default = resolve_settings(None)["risk.item"]
    assert effective_instruments(default, CATALOG) == (
        {"mood-local": {"thresholds": {"harm": 3.0}}, "phq-9": {"thresholds": {"q9": 1.0}}},
        {
            "instruments.mood-local.thresholds.harm": "default",
            "instruments.phq-9.thresholds.q9": "default",
        },
    )
    lowered = validate_override(
        "risk.item", {"instruments": {"mood-local": {"thresholds": {"harm": 2}}}}, CATALOG
    )
    values, sources = effective_instruments(lowered, CATALOG)
    assert values["mood-local"] == {"thresholds": {"harm": 2.0}}
    assert sources["instruments.mood-local.thresholds.harm"] == "organization"
    assert sources["instruments.phq-9.thresholds.q9"] == "default"


# ----- the rupture parameters the trajectory runs with (issue 13 finding 7) ----------------------


def test_the_trajectory_runs_with_the_organisations_k_and_repair_window() -> None:
    setting = validate_override(
        "alliance.rupture", {"params": {"k": 2.0, "repair_window": 5}}, CATALOG
    )
    assert rupture_scales(setting, WAI) == RuptureScales(
        k=2.0,
        repair_window=5,
        min_drops={None: 4.0, "task": 2.0, "bond": 2.0, "goal": 2.0},
    )
    # A switched-off rule: no scale takes part, and the rule-wide values are still the org's.
    off = validate_override("alliance.rupture", {"enabled": False, "params": {"k": 2.0}})
    assert rupture_scales(off, SRS) == RuptureScales(k=2.0, repair_window=3, min_drops={None: None})


# ----- each value checked against its instrument's scale (DESIGN.md §10.2) -----------------------


def own(
    code: str, kind: str, items: list[tuple[str, int, int]], **extra: Any
) -> InstrumentDefinition:
    """An organisation's instrument: ``items`` as (id, min, max), whole steps."""
    in_total = extra.get("scoring", {}).get("method") != "none"
    return InstrumentDefinition.model_validate(
        {
            "code": code, "version": "1", "name": code, "kind": kind, "respondents": ["client"],
            "items": [{"id": i, "label": i, "min": lo, "max": hi, "step": 1, "in_total": in_total}
                      for i, lo, hi in items],
            "citation": "test", "license": "test", **extra,
        }
    )  # fmt: skip


# Four 1-7 items scored as a mean: the total and the pair subscale run 1-7, a range of 6.
MEAN_ALLIANCE = own(
    "mean-alliance", "alliance", [(i, 1, 7) for i in "abcd"],
    scoring={"method": "mean"}, subscales={"pair": ["a", "b"]}, direction="higher_is_better",
)  # fmt: skip
# An alliance measure whose items are reported one by one: no total to judge.
UNTOTALLED = own("untotalled", "alliance", [("a", 0, 10)], scoring={"method": "none"})
# Items reported one by one (no total), one of them a risk item.
NO_TOTAL_RISK = own(
    "no-total-risk", "symptom", [("a", 0, 3), ("harm", 0, 3)], scoring={"method": "none"},
    risk_items=[{"item": "harm", "threshold": 2, "label": "Harm"}],
)  # fmt: skip
SCALES = {**CATALOG, **{d.code: d for d in (MEAN_ALLIANCE, UNTOTALLED, NO_TOTAL_RISK)}}


def problems_on(rule_id: str, code: str, values: Mapping[str, Any]) -> list[tuple[str, str]]:
    try:
        validate_override(rule_id, {"instruments": {code: values}}, SCALES)
    except SettingsProblems as error:
        return error.problems
    return []


def test_a_floor_may_be_the_whole_range_of_its_scale_and_no_more() -> None:
    """``0 < min_drop ≤ max - min`` of the scale: WAI-SR total 12-60 (48), a WAI-SR subscale 4-20
    (16); the message gives the range, not the sum of its ends."""
    assert problems_on("alliance.rupture", "wai-sr", {"min_drop": 48}) == []
    assert problems_on("alliance.rupture", "wai-sr", {"min_drop": 49}) == [
        ("instruments.wai-sr.min_drop", "must be above 0 and at most the range of the scores (48)")
    ]
    assert (
        problems_on("alliance.rupture", "wai-sr", {"subscales": {"bond": {"min_drop": 16}}}) == []
    )
    assert problems_on(
        "alliance.rupture", "wai-sr", {"subscales": {"bond": {"min_drop": 16.5}}}
    ) == [
        (
            "instruments.wai-sr.subscales.bond.min_drop",
            "must be above 0 and at most the range of the scores (16)",
        )
    ]


def test_a_subscale_of_a_mean_scored_instrument_is_checked_on_the_mean_scale() -> None:
    """Two 1-7 items scored as a mean run 1-7 (a range of 6), not 2-14."""
    assert (
        problems_on("alliance.rupture", "mean-alliance", {"subscales": {"pair": {"min_drop": 6}}})
        == []
    )
    assert problems_on(
        "alliance.rupture", "mean-alliance", {"subscales": {"pair": {"min_drop": 6.5}}}
    ) == [
        (
            "instruments.mean-alliance.subscales.pair.min_drop",
            "must be above 0 and at most the range of the scores (6)",
        )
    ]


def test_a_cutoff_may_lie_at_either_end_of_the_totals_range() -> None:
    assert problems_on("alliance.low", "srs", {"cutoff": 0}) == []
    assert problems_on("alliance.low", "srs", {"cutoff": 40}) == []
    assert problems_on("alliance.low", "srs", {"cutoff": 40.1}) == [
        ("instruments.srs.cutoff", "outside the total's range 0-40")
    ]


def test_a_cutoff_map_needs_known_populations() -> None:
    assert problems_on("alliance.low", "srs", {"cutoff": {}}) == [
        ("instruments.srs.cutoff", "a cut-off map needs at least one population")
    ]
    assert problems_on("alliance.low", "srs", {"cutoff": {"elder": 30}}) == [
        (
            "instruments.srs.cutoff.elder",
            "unknown population (expected one of adult, adolescent, child)",
        )
    ]


def test_every_bad_subscale_and_risk_item_is_named_at_once() -> None:
    """Mutants: ``continue`` → ``break`` stopped at the first unknown name, and ``problems =``
    kept only the last subscale's."""
    subscales = {
        "nope": {"min_drop": 1},
        "bond": {"min_drop": 0},
        "task": {"min_drop": 99},
        "x": {},
    }
    assert problems_on("alliance.rupture", "wai-sr", {"subscales": subscales}) == [
        ("instruments.wai-sr.subscales.nope", "'wai-sr' has no subscale 'nope'"),
        (
            "instruments.wai-sr.subscales.bond.min_drop",
            "must be above 0 and at most the range of the scores (16)",
        ),
        (
            "instruments.wai-sr.subscales.task.min_drop",
            "must be above 0 and at most the range of the scores (16)",
        ),
        ("instruments.wai-sr.subscales.x", "'wai-sr' has no subscale 'x'"),
    ]
    thresholds = {"q1": 1, "q9": 2, "q2": 1}
    assert problems_on("risk.item", "phq-9", {"thresholds": thresholds}) == [
        ("instruments.phq-9.thresholds.q1", "not a risk item of 'phq-9'"),
        (
            "instruments.phq-9.thresholds.q9",
            "must lie above the item's minimum (0) and at most the definition's threshold (1): a "
            "risk threshold may only be lowered",
        ),
        ("instruments.phq-9.thresholds.q2", "not a risk item of 'phq-9'"),
    ]


def test_score_rules_need_a_total_but_risk_thresholds_do_not() -> None:
    assert problems_on("alliance.low", "untotalled", {"cutoff": 5}) == [
        ("instruments.untotalled", "alliance.low needs an instrument with a total")
    ]
    assert problems_on("risk.item", "no-total-risk", {"thresholds": {"harm": 1}}) == []


# ----- the body as a whole ------------------------------------------------------------------------


def test_a_body_that_is_not_an_object_is_refused_as_the_body() -> None:
    assert problems_of("alliance.low", []) == [("body", "must be an object")]  # type: ignore[arg-type]


def test_refusing_to_switch_off_risk_points_to_lowering_its_thresholds() -> None:
    assert problems_of("risk.item", {"enabled": False}) == [
        ("enabled", "risk.item cannot be switched off; lower instruments.<code>.thresholds instead")
    ]
    assert problems_of("concern.reported", {"enabled": False}) == [
        ("enabled", "concern.reported cannot be switched off")
    ]


def test_every_problem_is_in_the_errors_text() -> None:
    error = SettingsProblems([("params.k", "too big"), ("enabled", "must be true or false")])
    assert str(error) == "params.k: too big; enabled: must be true or false"


def test_each_value_the_organisation_set_is_sourced_by_its_own_path() -> None:
    """A cut-off map is one value; subscale floors and risk thresholds one each."""
    low = validate_override(
        "alliance.low", {"instruments": {"srs": {"cutoff": {"adult": 30, "child": 28}}}}
    )
    assert low.sources == {"enabled": "default", "instruments.srs.cutoff": "organization"}
    floors = {"min_drop": 5, "subscales": {"bond": {"min_drop": 3}, "goal": {"min_drop": 2.5}}}
    body = {"instruments": {"wai-sr": floors}}
    rupture = validate_override("alliance.rupture", body)
    assert {k: v for k, v in rupture.sources.items() if k.startswith("instruments.")} == {
        "instruments.wai-sr.min_drop": "organization",
        "instruments.wai-sr.subscales.bond.min_drop": "organization",
        "instruments.wai-sr.subscales.goal.min_drop": "organization",
    }
    two = own(
        "two-risks", "symptom", [("a", 0, 3), ("harm", 0, 4), ("plan", 0, 4)],
        direction="lower_is_better",
        risk_items=[{"item": "harm", "threshold": 3, "label": "Harm"},
                    {"item": "plan", "threshold": 3, "label": "Plan"}],
    )  # fmt: skip
    risk = validate_override(
        "risk.item", {"instruments": {"two-risks": {"thresholds": {"harm": 2, "plan": 1}}}},
        {"two-risks": two},
    )  # fmt: skip
    assert risk.sources == {
        "enabled": "default",
        "params.escalate_after_hours": "default",
        "instruments.two-risks.thresholds.harm": "organization",
        "instruments.two-risks.thresholds.plan": "organization",
    }


def test_a_drop_floor_is_checked_on_the_totals_range() -> None:
    """SRS 0-40: the message names the range as a plain number (40, not 4E+1)."""
    assert problems_on("alliance.drop", "srs", {"min_drop": 40}) == []
    assert problems_on("alliance.drop", "srs", {"min_drop": 41}) == [
        ("instruments.srs.min_drop", "must be above 0 and at most the range of the scores (40)")
    ]


@pytest.mark.parametrize(
    ("rule_id", "body", "problem"),
    [
        ("alliance.rupture", {"params": 3}, ("params", "must be an object")),
        ("alliance.low", {"instruments": [1]}, ("instruments", "must be an object")),
        (
            "rupture.reported",
            {"instruments": {"rupture-check": {}}},
            ("instruments", "rupture.reported has no per-instrument parameters"),
        ),
        (
            "alliance.low",
            {"instruments": {"nope": {"cutoff": 3}}},
            ("instruments.nope", "unknown instrument"),
        ),
    ],
)
def test_each_part_of_the_body_that_is_not_what_it_should_be_is_named(
    rule_id: str, body: Mapping[str, Any], problem: tuple[str, str]
) -> None:
    assert problems_of(rule_id, body) == [problem]


def test_problems_of_every_part_and_every_instrument_are_listed_together() -> None:
    """Mutants stopped at the first bad instrument (``break``) or kept only the last part's
    problems (``problems =``), so a setting could be refused for one reason and then again."""
    body = {
        "params": {"k": -1},
        "instruments": {
            "nope": {"min_drop": 1},
            "srs": {"min_drop": "x"},
            "wai-sr": {"min_drop": 99},
            "bond-local": {"min_drop": 3},
        },
    }
    with pytest.raises(SettingsProblems) as info:
        validate_override("alliance.rupture", body, CATALOG)
    assert [field for field, _ in info.value.problems] == [
        "params.k",
        "instruments.nope",
        "instruments.srs.min_drop",
        "instruments.wai-sr.min_drop",
    ]


def test_a_stored_value_that_no_longer_fits_its_instrument_gives_way_to_the_default() -> None:
    """A later version of an organisation's instrument may have another range: a stored rupture
    floor of 15 means nothing on a 0-10 scale, so the instrument takes no part again (mutants
    used the stale value)."""
    stored, _ = settings_with_fallback(
        {"alliance.rupture": {"instruments": {"bond-local": {"min_drop": 15}}}}
    )
    narrower = own(
        "bond-local", "alliance", [("a", 0, 5), ("b", 0, 5)], direction="higher_is_better"
    )
    assert params_for(stored["alliance.rupture"], OWN_ALLIANCE) is not None  # 0-20: 15 fits
    assert params_for(stored["alliance.rupture"], narrower) is None


def test_an_instrument_with_subscale_floors_alone_takes_part_in_ruptures() -> None:
    setting = validate_override(
        "alliance.rupture",
        {"instruments": {"mean-alliance": {"subscales": {"pair": {"min_drop": 1}}}}},
        SCALES,
    )
    params = params_for(setting, MEAN_ALLIANCE)
    assert isinstance(params, AllianceRuptureParams)
    assert (params.min_drop, params.subscale_min_drop) == (None, {"pair": 1.0})


def test_a_stored_risk_threshold_at_the_items_minimum_is_not_used() -> None:
    """DESIGN.md §10.3.1: a threshold at the minimum would flag every answer; whatever is
    stored, PHQ-9 item 9 stays at 1."""
    assert risk_thresholds(get_builtin("phq-9"), {"q9": 0}) == {"q9": 1.0}
    assert risk_thresholds(OWN_RISK, {"harm": 0}) == {"harm": 3.0}
    assert risk_thresholds(OWN_RISK, {"harm": 1}) == {"harm": 1.0}


def test_the_listed_cutoffs_say_who_set_them() -> None:
    setting = validate_override("alliance.low", {"instruments": {"srs": {"cutoff": 34}}})
    values, sources = effective_instruments(setting, CATALOG)
    assert (values["srs"], values["wai-sr"]) == ({"cutoff": 34.0}, {"cutoff": None})
    assert (sources["instruments.srs.cutoff"], sources["instruments.wai-sr.cutoff"]) == (
        "organization", "default",
    )  # fmt: skip


def test_parameters_of_another_model_are_refused_naming_the_rule() -> None:
    with pytest.raises(TypeError, match=r"alliance\.low: params are not AllianceRuptureParams"):
        resolve_settings(None)["alliance.low"].params_as(AllianceRuptureParams)
