"""Alert rule settings: registry, defaults, organisation overrides and their validation."""

from __future__ import annotations

import pytest

from services.alerts import (
    RULES,
    SettingsProblems,
    effective_settings,
    settings_with_fallback,
    validate_override,
)
from services.alerts.settings import (
    AllianceRuptureParams,
    NotOnTrackParams,
    RiskItemParams,
    default_setting,
    resolve_settings,
)


def problems_of(rule_id: str, body: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(SettingsProblems) as info:
        validate_override(rule_id, body)
    return info.value.problems


def test_registry_holds_every_rule_of_the_design_table() -> None:
    assert set(RULES) == {
        "alliance.low", "alliance.drop", "alliance.rupture", "rupture.reported", "risk.item",
        "outcome.deterioration", "outcome.not_on_track", "concern.reported", "measurement.overdue",
    }  # fmt: skip
    assert all(spec.version == "1" for spec in RULES.values())


@pytest.mark.parametrize(
    ("rule_id", "severity", "clears"),
    [
        ("alliance.low", "warning", "condition_cleared"),
        ("alliance.drop", "warning", "person"),
        ("alliance.rupture", "warning", "repaired"),
        ("rupture.reported", "warning", "person"),
        ("risk.item", "critical", "person"),
        ("outcome.deterioration", "high", "condition_cleared"),
        ("outcome.not_on_track", "warning", "condition_cleared"),
        ("concern.reported", "high", "person"),
    ],
)
def test_registry_severity_and_clearing(rule_id: str, severity: str, clears: str) -> None:
    spec = RULES[rule_id]  # type: ignore[index]
    assert (spec.severity, spec.clears) == (severity, clears)


def test_disabling_a_rule_is_an_organisation_value() -> None:
    setting = validate_override("alliance.drop", {"enabled": False})
    assert setting.enabled is False
    assert setting.sources["enabled"] == "organization"


def test_unknown_rule_is_refused() -> None:
    assert problems_of("alliance.nope", {}) == [("rule", "unknown rule 'alliance.nope'")]


def test_unknown_parameter_is_named() -> None:
    assert problems_of("alliance.rupture", {"params": {"kk": 2}}) == [
        ("params.kk", "unknown parameter")
    ]


def test_unknown_top_level_field_is_named() -> None:
    assert problems_of("alliance.low", {"severity": "high"}) == [("severity", "unknown field")]


@pytest.mark.parametrize(
    ("rule_id", "params", "field"),
    [
        ("alliance.rupture", {"k": -1}, "params.k"),
        ("alliance.rupture", {"k": 11}, "params.k"),
        ("alliance.rupture", {"repair_window": 0}, "params.repair_window"),
        ("alliance.rupture", {"min_drop": 2}, "params.min_drop"),  # set per instrument now
        ("alliance.drop", {"min_drop": 1}, "params.min_drop"),
        ("rupture.reported", {"intensity_min": 6}, "params.intensity_min"),
        ("rupture.reported", {"resolution_max": 0}, "params.resolution_max"),
        ("outcome.not_on_track", {"min_session": 1}, "params.min_session"),
    ],
)
def test_out_of_range_values_are_named(rule_id: str, params: dict[str, object], field: str) -> None:
    problems = problems_of(rule_id, {"params": params})
    assert [f for f, _ in problems] == [field]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"k": "1.5"}, "params.k"),
        ({"k": True}, "params.k"),
        ({"k": float("nan")}, "params.k"),
        ({"repair_window": 2.5}, "params.repair_window"),
        ({"repair_window": "3"}, "params.repair_window"),
    ],
)
def test_wrong_types_are_named(params: dict[str, object], field: str) -> None:
    assert [f for f, _ in problems_of("alliance.rupture", {"params": params})] == [field]


def test_enabled_must_be_a_boolean() -> None:
    assert problems_of("alliance.low", {"enabled": "no"}) == [("enabled", "must be true or false")]


def test_every_problem_is_listed_at_once() -> None:
    problems = problems_of("alliance.rupture", {"enabled": 1, "params": {"k": -1, "x": 1}})
    assert {f for f, _ in problems} == {"enabled", "params.k", "params.x"}


def test_high_from_session_before_min_session_is_refused() -> None:
    problems = problems_of(
        "outcome.not_on_track", {"params": {"min_session": 6, "high_from_session": 5}}
    )
    assert problems == [("params.high_from_session", "must be at least min_session (6)")]


def test_risk_item_cannot_be_switched_off() -> None:
    ((field, message),) = problems_of("risk.item", {"enabled": False})
    assert field == "enabled"
    assert "cannot be switched off" in message


def test_concern_reported_cannot_be_switched_off() -> None:
    assert [f for f, _ in problems_of("concern.reported", {"enabled": False})] == ["enabled"]


def test_effective_settings_prefixes_problems_with_the_rule_id() -> None:
    with pytest.raises(SettingsProblems) as info:
        effective_settings({"alliance.rupture": {"params": {"k": -1}}, "nope": {}})
    assert {f for f, _ in info.value.problems} == {"alliance.rupture.params.k", "nope"}


def test_settings_problems_is_a_value_error_with_a_readable_message() -> None:
    error = SettingsProblems([("params.k", "too big")])
    assert isinstance(error, ValueError)
    assert str(error) == "params.k: too big"


def test_resolve_settings_fills_missing_rules_with_defaults() -> None:
    custom = validate_override("outcome.not_on_track", {"params": {"min_session": 3}})
    resolved = resolve_settings({"outcome.not_on_track": custom})
    assert resolved["outcome.not_on_track"].params_as(NotOnTrackParams).min_session == 3
    assert resolved["alliance.low"] == default_setting("alliance.low")


def test_params_as_refuses_the_wrong_model() -> None:
    with pytest.raises(TypeError):
        default_setting("alliance.low").params_as(RiskItemParams)


def test_a_stored_override_that_no_longer_validates_gives_way_to_the_defaults() -> None:
    """What the engine uses at run time: one bad stored override must not stop the others, nor
    alert evaluation."""
    settings, problems = settings_with_fallback(
        {
            "alliance.low": {"instruments": {"srs": {"cutoff": 5000}}},
            "alliance.rupture": {"params": {"k": 1.5}},
        }
    )
    assert settings["alliance.low"] == default_setting("alliance.low")
    assert settings["alliance.rupture"].params_as(AllianceRuptureParams).k == 1.5
    assert [field for field, _ in problems] == ["alliance.low.instruments.srs.cutoff"]


def test_default_params_match_the_design() -> None:
    settings = effective_settings({})
    assert settings["alliance.low"].public_params() == {}
    assert settings["alliance.drop"].public_params() == {}
    assert settings["alliance.rupture"].public_params() == {
        "k": 1.0, "repair_window": 3, "repair_days": 21,
    }  # fmt: skip
    assert settings["rupture.reported"].public_params() == {
        "resolution_max": 3, "intensity_min": 4,
    }  # fmt: skip
    assert settings["risk.item"].public_params() == {"escalate_after_hours": 24}
    assert settings["outcome.deterioration"].public_params() == {}
    assert settings["concern.reported"].public_params() == {"escalate_after_hours": 72}
    assert settings["measurement.overdue"].public_params() == {"overdue_days": 21}
    assert settings["outcome.not_on_track"].public_params() == {
        "min_session": 4, "high_from_session": 8,
    }  # fmt: skip
    assert all(s.enabled for s in settings.values())
    assert all(source == "default" for s in settings.values() for source in s.sources.values())


def test_partial_override_merges_over_defaults_and_names_its_sources() -> None:
    settings = effective_settings(
        {"alliance.rupture": {"params": {"k": 1.5}, "instruments": {"srs": {"min_drop": 3}}}}
    )
    rupture = settings["alliance.rupture"]
    params = rupture.params_as(AllianceRuptureParams)
    assert (params.k, params.repair_window) == (1.5, 3)
    assert rupture.sources == {
        "enabled": "default",
        "params.k": "organization",
        "params.repair_window": "default",
        "params.repair_days": "default",
        "instruments.srs.min_drop": "organization",
    }
    assert settings["alliance.low"].sources["enabled"] == "default"


def test_ints_are_accepted_for_float_values() -> None:
    setting = validate_override("alliance.low", {"instruments": {"srs": {"cutoff": 34}}})
    assert setting.public_instruments() == {"srs": {"cutoff": 34.0}}
