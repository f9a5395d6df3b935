"""Alert rules (DESIGN.md §6): pure functions over an episode's series of one instrument plus the
organisation's settings. No database, no HTTP."""

from services.alerts.model import AlertState, Event, SeriesPoint
from services.alerts.replay import apply_events, replay, step
from services.alerts.rules import display_name, rule_events
from services.alerts.settings import (
    RULES,
    RuleId,
    RuleSetting,
    RuleSpec,
    SettingsProblems,
    Severity,
    default_setting,
    effective_settings,
    resolve_settings,
    settings_with_fallback,
    validate_override,
)

__all__ = [
    "RULES",
    "AlertState",
    "Event",
    "RuleId",
    "RuleSetting",
    "RuleSpec",
    "SeriesPoint",
    "SettingsProblems",
    "Severity",
    "apply_events",
    "default_setting",
    "display_name",
    "effective_settings",
    "replay",
    "resolve_settings",
    "rule_events",
    "settings_with_fallback",
    "step",
    "validate_override",
]
