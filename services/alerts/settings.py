"""Alert rules as data (DESIGN.md §6): the registry of rule ids, their defaults and the
organisation's overrides.

Every threshold is a per-organisation setting. An organisation stores, per rule, an override body
``{"enabled": bool, "params": {...}}`` (both keys optional; ``params`` may be partial and is merged
over the defaults). :func:`validate_override` checks one body and :func:`effective_settings` merges
the stored bodies over the defaults, remembering where each value came from.

Two rules cannot be switched off [D]:

- ``risk.item``: risk answers always raise a critical alert (PHQ-9 item 9 ≥ 1; Simon et al. 2013).
  ``enabled: false`` is *refused* by :func:`validate_override` (a 422 naming ``enabled``), and the
  rule engine ignores ``enabled`` for this rule even if a disabled setting is built by hand. The
  threshold of a risk item may be raised or lowered (``params.thresholds``), but never above the
  item's maximum: the engine caps it there, so a threshold can make the rule stricter or looser but
  never silent.
- ``concern.reported``: a client's concern about their clinician must reach a supervisor; an
  organisation cannot hide it by configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from services.instruments.registry import builtin_instruments
from services.instruments.schema import Kind, dec

RuleId = Literal[
    "alliance.low",
    "alliance.drop",
    "alliance.rupture",
    "rupture.reported",
    "risk.item",
    "outcome.deterioration",
    "outcome.not_on_track",
    "concern.reported",
    "measurement.overdue",
]
Severity = Literal["warning", "high", "critical"]
Clearing = Literal["condition_cleared", "repaired", "person"]
Source = Literal["default", "organization"]

SEVERITY_RANK: dict[Severity, int] = {"warning": 0, "high": 1, "critical": 2}

_PARAMS_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SettingsProblems(ValueError):
    """Every problem of one override body, as ``(field, message)`` pairs (``params.k``, …); the HTTP
    layer turns them into a 422 naming the field."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))


# ----- parameters, one model per rule -------------------------------------------------------------


class NoParams(BaseModel):
    """``outcome.deterioration`` (uses the instrument's reliable-change points)."""

    model_config = _PARAMS_CONFIG


class AllianceLowParams(BaseModel):
    """``cutoff``: overrides the instrument's cut-off for the population (SRS: 36); ``None`` = use
    the definition's."""

    model_config = _PARAMS_CONFIG

    cutoff: Annotated[float | None, Field(ge=-1000, le=1000)] = None


class AllianceDropParams(BaseModel):
    """A fall of at least ``min_drop`` points from the previous session's total (OpenFIT: 1)."""

    model_config = _PARAMS_CONFIG

    min_drop: Annotated[float, Field(gt=0, le=1000)] = 1.0


class AllianceRuptureParams(BaseModel):
    """Drop ≥ max(k · SD of the earlier scores, min_drop); ``min_drop`` ``None`` = Attune's default
    per instrument and subscale (SRS total 2, WAI-SR total 4, WAI-SR subscale 2; see
    :func:`services.trajectory.ruptures.default_min_drop`). Organisation-defined alliance
    instruments take part only when ``min_drop`` is set."""

    model_config = _PARAMS_CONFIG

    k: Annotated[float, Field(ge=0, le=10)] = 1.0
    min_drop: Annotated[float | None, Field(gt=0, le=1000)] = None
    repair_window: Annotated[int, Field(ge=1, le=52)] = 3
    # The sweep raises an open rupture to high when no later session came within repair_days: a
    # rupture left unrepaired is a known precursor of dropout (DESIGN.md §10.3.6).
    repair_days: Annotated[int, Field(ge=1, le=365)] = 21


class RuptureReportedParams(BaseModel):
    """rupture-check: tension = 1 and resolution ≤ ``resolution_max``, or intensity ≥
    ``intensity_min``."""

    model_config = _PARAMS_CONFIG

    resolution_max: Annotated[int, Field(ge=1, le=5)] = 3
    intensity_min: Annotated[int, Field(ge=1, le=5)] = 4


RiskThreshold = Annotated[float, Field(ge=-1000, le=1000)]


class RiskItemParams(BaseModel):
    """Threshold overrides by instrument code and item id: ``{"phq-9": {"q9": 2}}``. Items that are
    not risk items of the instrument's definition are ignored (and refused for built-ins)."""

    model_config = _PARAMS_CONFIG

    thresholds: dict[str, dict[str, RiskThreshold]] = Field(default_factory=dict)
    # The sweep escalates an open risk alert nobody acknowledged within this many hours
    # (DESIGN.md §10.3.6). Only sooner, never later: risk is never silenced (§10.3.1).
    escalate_after_hours: Annotated[int, Field(ge=1, le=24)] = 24


class ConcernReportedParams(BaseModel):
    """An open concern nobody acknowledged within ``escalate_after_hours`` is escalated by the
    sweep (DESIGN.md §10.3.6); sooner, never later than the default."""

    model_config = _PARAMS_CONFIG

    escalate_after_hours: Annotated[int, Field(ge=1, le=72)] = 72


class MeasurementOverdueParams(BaseModel):
    """An active episode with no measurement for ``overdue_days`` days (DESIGN.md §10.3.6)."""

    model_config = _PARAMS_CONFIG

    overdue_days: Annotated[int, Field(ge=1, le=365)] = 21


class NotOnTrackParams(BaseModel):
    """Evaluated from session ``min_session`` on; severity high from ``high_from_session``."""

    model_config = _PARAMS_CONFIG

    min_session: Annotated[int, Field(ge=2, le=200)] = 4
    high_from_session: Annotated[int, Field(ge=2, le=200)] = 8

    @field_validator("high_from_session")
    @classmethod
    def _not_before_min_session(cls, value: int, info: ValidationInfo) -> int:
        min_session = info.data.get("min_session")
        if isinstance(min_session, int) and value < min_session:
            raise ValueError(f"must be at least min_session ({min_session})")
        return value


# ----- the registry -------------------------------------------------------------------------------

ALL_KINDS: frozenset[Kind] = frozenset(
    ("alliance", "outcome", "symptom", "rupture", "humility", "other")
)


@dataclass(frozen=True)
class RuleSpec:
    id: RuleId
    version: str
    severity: Severity
    clears: Clearing
    kinds: frozenset[Kind]
    params_model: type[BaseModel]
    can_disable: bool
    summary: str


RULES: dict[RuleId, RuleSpec] = {
    spec.id: spec
    for spec in (
        RuleSpec(
            "alliance.low", "1", "warning", "condition_cleared", frozenset({"alliance"}),
            AllianceLowParams, True,
            "Total on the clinical side of the instrument's cut-off (SRS < 36).",
        ),
        RuleSpec(
            "alliance.drop", "1", "warning", "person", frozenset({"alliance"}),
            AllianceDropParams, True,
            "Total fell at least min_drop points from the previous session (OpenFIT).",
        ),
        RuleSpec(
            "alliance.rupture", "1", "warning", "repaired", frozenset({"alliance"}),
            AllianceRuptureParams, True,
            "Within-client statistical rupture on the total or a subscale; high once unrepaired "
            "after repair_window sessions.",
        ),
        RuleSpec(
            "rupture.reported", "1", "warning", "person", frozenset({"rupture"}),
            RuptureReportedParams, True,
            "The client reported tension that was not resolved, or was strong (high if both).",
        ),
        RuleSpec(
            "risk.item", "1", "critical", "person", ALL_KINDS, RiskItemParams, False,
            "A risk item at or above its threshold (PHQ-9 item 9 ≥ 1), whatever the total.",
        ),
        RuleSpec(
            "outcome.deterioration", "1", "high", "condition_cleared",
            frozenset({"outcome", "symptom"}), NoParams, True,
            "Worse than the first score by at least the reliable-change points.",
        ),
        RuleSpec(
            "outcome.not_on_track", "1", "warning", "condition_cleared",
            frozenset({"outcome", "symptom"}), NotOnTrackParams, True,
            "Started in the clinical range and, by min_session, not reliably improved.",
        ),
        RuleSpec(
            "concern.reported", "1", "high", "person", frozenset(), ConcernReportedParams, False,
            "A client raised a concern through an invitation (raised by the API, not by scores).",
        ),
        RuleSpec(
            "measurement.overdue", "1", "warning", "condition_cleared", frozenset(),
            MeasurementOverdueParams, True,
            "An active episode with no measurement for overdue_days days (raised by the sweep); "
            "cleared by the next submission or by closing the episode.",
        ),
    )
}  # fmt: skip
_BY_NAME: dict[str, RuleSpec] = {spec.id: spec for spec in RULES.values()}


P = TypeVar("P", bound=BaseModel)


class RuleSetting(BaseModel):
    """The effective setting of one rule. ``sources`` says where each value came from, keyed
    ``enabled`` and ``params.<name>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: RuleId
    enabled: bool = True
    params: BaseModel
    sources: dict[str, Source] = Field(default_factory=dict)

    def params_as(self, model: type[P]) -> P:
        if not isinstance(self.params, model):
            raise TypeError(f"{self.rule_id}: params are not {model.__name__}")
        return self.params


def default_setting(rule_id: RuleId) -> RuleSetting:
    spec = RULES[rule_id]
    params = spec.params_model()
    sources: dict[str, Source] = {"enabled": "default"}
    sources.update({f"params.{name}": "default" for name in type(params).model_fields})
    return RuleSetting(rule_id=rule_id, enabled=True, params=params, sources=sources)


def _pydantic_problems(error: ValidationError, prefix: str) -> list[tuple[str, str]]:
    problems = []
    for err in error.errors():
        loc = ".".join(str(part) for part in err["loc"])
        field = f"{prefix}.{loc}" if loc else prefix
        if err["type"] == "extra_forbidden":
            message = "unknown parameter"
        elif err["type"] == "value_error":
            message = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        else:
            message = err["msg"]
        problems.append((field, message))
    return problems


def _risk_threshold_problems(params: RiskItemParams) -> list[tuple[str, str]]:
    """Built-in instruments are checked against their definition; organisation-defined ones are
    unknown here (the engine caps their thresholds at the item's maximum)."""
    builtins = builtin_instruments()
    problems: list[tuple[str, str]] = []
    for code, items in params.thresholds.items():
        defn = builtins.get(code)
        if defn is None:
            continue
        risk_ids = {r.item for r in defn.risk_items}
        for item_id, value in items.items():
            field = f"params.thresholds.{code}.{item_id}"
            if item_id not in risk_ids:
                problems.append((field, f"not a risk item of '{code}'"))
                continue
            item = defn.item(item_id)
            if not dec(item.min) <= dec(value) <= dec(item.max):
                problems.append((field, f"outside the item's range {item.min}-{item.max}"))
    return problems


def validate_override(rule_id: str, body: Mapping[str, Any]) -> RuleSetting:
    """The effective setting of ``rule_id`` under one override body, or :class:`SettingsProblems`
    listing every problem (unknown rule, unknown field or parameter, wrong type, out of range,
    disabling a rule that cannot be switched off)."""
    spec = _BY_NAME.get(rule_id)
    if spec is None:
        raise SettingsProblems([("rule", f"unknown rule '{rule_id}'")])
    if not isinstance(body, Mapping):
        raise SettingsProblems([("body", "must be an object")])
    problems: list[tuple[str, str]] = []
    for key in body:
        if key not in ("enabled", "params"):
            problems.append((str(key), "unknown field"))
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(("enabled", "must be true or false"))
        enabled = True
    elif not enabled and not spec.can_disable:
        problems.append(
            (
                "enabled",
                f"{rule_id} cannot be switched off"
                + ("; change params.thresholds instead" if spec.id == "risk.item" else ""),
            )
        )
    raw_params = body.get("params", {})
    params: BaseModel | None = None
    if not isinstance(raw_params, Mapping):
        problems.append(("params", "must be an object"))
    else:
        merged = {**spec.params_model().model_dump(), **raw_params}
        try:
            params = spec.params_model.model_validate(merged)
        except ValidationError as error:
            problems += _pydantic_problems(error, "params")
    if isinstance(params, RiskItemParams):
        problems += _risk_threshold_problems(params)
    if problems or params is None:
        raise SettingsProblems(problems)
    sources: dict[str, Source] = {"enabled": "organization" if "enabled" in body else "default"}
    given = raw_params if isinstance(raw_params, Mapping) else {}
    for name in spec.params_model.model_fields:
        sources[f"params.{name}"] = "organization" if name in given else "default"
    return RuleSetting(rule_id=spec.id, enabled=enabled, params=params, sources=sources)


def settings_with_fallback(
    overrides: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[RuleId, RuleSetting], list[tuple[str, str]]]:
    """Every rule's setting, the stored overrides merged over the defaults; a stored override
    that no longer validates gives way to the rule's defaults, and its problems (fields prefixed
    with the rule id) are returned beside the settings."""
    problems: list[tuple[str, str]] = []
    result: dict[RuleId, RuleSetting] = {}
    for rule_id in RULES:
        body = overrides.get(rule_id)
        if body is None:
            result[rule_id] = default_setting(rule_id)
            continue
        try:
            result[rule_id] = validate_override(rule_id, body)
        except SettingsProblems as error:
            problems += [(f"{rule_id}.{field}", message) for field, message in error.problems]
            result[rule_id] = default_setting(rule_id)
    return result, problems


def effective_settings(overrides: Mapping[str, Mapping[str, Any]]) -> dict[RuleId, RuleSetting]:
    """Every rule's setting: the organisation's stored overrides merged over the defaults. Raises
    :class:`SettingsProblems` (fields prefixed with the rule id) when a stored override no longer
    validates."""
    problems = [(rule_id, "unknown rule") for rule_id in overrides if rule_id not in _BY_NAME]
    result, invalid = settings_with_fallback(overrides)
    if problems or invalid:
        raise SettingsProblems(problems + invalid)
    return result


def resolve_settings(settings: Mapping[str, RuleSetting] | None) -> dict[RuleId, RuleSetting]:
    """``settings`` completed with the defaults of the rules it does not mention."""
    given = settings or {}
    return {rule_id: given.get(rule_id) or default_setting(rule_id) for rule_id in RULES}
