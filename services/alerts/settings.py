"""Alert rules as data (DESIGN.md §6, §10.2): the registry of rule ids, their defaults and the
organisation's overrides.

Every threshold is a per-organisation setting. An organisation stores, per rule, an override body
``{"enabled": bool, "params": {...}, "instruments": {code: {...}}}`` (every key optional):

- ``params``: rule-wide parameters (``k``, ``repair_window``, …), partial and merged over the
  defaults;
- ``instruments``: the parameters whose meaning depends on one instrument's scale (DESIGN.md §10.2):
  ``cutoff`` for ``alliance.low`` (a number or a population map), ``min_drop`` for
  ``alliance.drop`` and ``alliance.rupture`` (and per subscale under ``subscales``), ``thresholds``
  ``{item: value}`` for ``risk.item``. Each value is checked against that instrument's scale.

:func:`validate_override` checks one body (against the organisation's instruments when given);
:func:`effective_settings` merges the stored bodies over the defaults, remembering where each value
came from; :func:`params_for` gives one instrument's effective parameters of one rule, the single
lookup the alert rules and the trajectory share (issue 13 finding 7).

Two rules cannot be switched off [D]:

- ``risk.item`` (DESIGN.md §10.3.1, risk is never silenced): risk answers always raise a critical
  alert (PHQ-9 item 9 ≥ 1; Simon et al. 2013, reference/psychometrics.md). ``enabled: false`` is
  refused, and the rule engine ignores ``enabled`` for this rule even if a disabled setting is built
  by hand. A risk threshold may only be made more sensitive: above the item's minimum and at most
  the definition's threshold (PHQ-9 item 9: only 1). :func:`params_for` enforces the same bounds on
  whatever is stored, so no setting can silence a risk item.
- ``concern.reported``: a client's concern about their clinician must reach a supervisor; an
  organisation cannot hide it by configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from services.instruments.registry import builtin_instruments
from services.instruments.schema import (
    POPULATIONS,
    Cutoff,
    InstrumentDefinition,
    Kind,
    dec,
    round_mean,
)
from services.trajectory.ruptures import default_min_drop

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
#
# A rule's parameter model holds its rule-wide parameters and, named in ``per_instrument``, the
# parameters that are set per instrument (under ``instruments.<code>``, never in ``params``): what
# the rule receives is the model with those filled in for the series' instrument by
# :func:`params_for`.


class NoParams(BaseModel):
    """``outcome.deterioration`` (uses the instrument's reliable-change points)."""

    model_config = _PARAMS_CONFIG
    per_instrument: ClassVar[frozenset[str]] = frozenset()


class AllianceLowParams(BaseModel):
    """``cutoff`` (per instrument): the instrument's cut-off (a number or a population map) for the
    rating respondent, or the organisation's for that instrument (:func:`params_for`)."""

    model_config = _PARAMS_CONFIG
    per_instrument: ClassVar[frozenset[str]] = frozenset({"cutoff"})

    cutoff: Cutoff | None = None


class AllianceDropParams(BaseModel):
    """A fall of at least ``min_drop`` (per instrument) points from the previous session's total
    (OpenFIT: 1 point on the SRS)."""

    model_config = _PARAMS_CONFIG
    per_instrument: ClassVar[frozenset[str]] = frozenset({"min_drop"})

    min_drop: float = 1.0


class AllianceRuptureParams(BaseModel):
    """Drop ≥ max(k · SD of the earlier scores, min_drop). ``min_drop`` (the total's) and
    ``subscale_min_drop`` are per instrument (:func:`params_for`; defaults SRS total 2, WAI-SR total
    4, WAI-SR subscale 2, :func:`services.trajectory.ruptures.default_min_drop`); a series without
    one takes no part (organisation-defined alliance instruments until the organisation sets
    one)."""

    model_config = _PARAMS_CONFIG
    per_instrument: ClassVar[frozenset[str]] = frozenset({"min_drop", "subscale_min_drop"})

    k: Annotated[float, Field(ge=0, le=10)] = 1.0
    min_drop: float | None = None
    subscale_min_drop: dict[str, float] = Field(default_factory=dict)
    repair_window: Annotated[int, Field(ge=1, le=52)] = 3
    # The sweep raises an open rupture to high when no later session came within repair_days: a
    # rupture left unrepaired is a known precursor of dropout (DESIGN.md §10.3.6).
    repair_days: Annotated[int, Field(ge=1, le=365)] = 21


class RuptureReportedParams(BaseModel):
    """rupture-check: tension = 1 and resolution ≤ ``resolution_max``, or intensity ≥
    ``intensity_min``."""

    model_config = _PARAMS_CONFIG
    per_instrument: ClassVar[frozenset[str]] = frozenset()

    resolution_max: Annotated[int, Field(ge=1, le=5)] = 3
    intensity_min: Annotated[int, Field(ge=1, le=5)] = 4


class RiskItemParams(BaseModel):
    """``thresholds`` (per instrument): the threshold of each risk item of the instrument, never
    above the definition's (:func:`risk_thresholds`)."""

    model_config = _PARAMS_CONFIG
    per_instrument: ClassVar[frozenset[str]] = frozenset({"thresholds"})

    thresholds: dict[str, float] = Field(default_factory=dict)
    # The sweep escalates an open risk alert nobody acknowledged within this many hours
    # (DESIGN.md §10.3.6). Only sooner, never later: risk is never silenced (§10.3.1).
    escalate_after_hours: Annotated[int, Field(ge=1, le=24)] = 24


class ConcernReportedParams(BaseModel):
    """An open concern nobody acknowledged within ``escalate_after_hours`` is escalated by the
    sweep (DESIGN.md §10.3.6); sooner, never later than the default."""

    model_config = _PARAMS_CONFIG
    per_instrument: ClassVar[frozenset[str]] = frozenset()

    escalate_after_hours: Annotated[int, Field(ge=1, le=72)] = 72


class MeasurementOverdueParams(BaseModel):
    """An active episode with no measurement for ``overdue_days`` days (DESIGN.md §10.3.6)."""

    model_config = _PARAMS_CONFIG
    per_instrument: ClassVar[frozenset[str]] = frozenset()

    overdue_days: Annotated[int, Field(ge=1, le=365)] = 21


class NotOnTrackParams(BaseModel):
    """Evaluated from session ``min_session`` on; severity high from ``high_from_session``."""

    model_config = _PARAMS_CONFIG
    per_instrument: ClassVar[frozenset[str]] = frozenset()

    min_session: Annotated[int, Field(ge=2, le=200)] = 4
    high_from_session: Annotated[int, Field(ge=2, le=200)] = 8

    @field_validator("high_from_session")
    @classmethod
    def _not_before_min_session(cls, value: int, info: ValidationInfo) -> int:
        min_session = info.data.get("min_session")
        if isinstance(min_session, int) and value < min_session:
            raise ValueError(f"must be at least min_session ({min_session})")
        return value


# ----- per-instrument parameters, as an organisation sets them (DESIGN.md §10.2) -----------------

_Value = Annotated[float, Field(allow_inf_nan=False)]


class CutoffOverride(BaseModel):
    model_config = _PARAMS_CONFIG

    cutoff: _Value | dict[str, _Value] | None = None


class SubscaleMinDrop(BaseModel):
    model_config = _PARAMS_CONFIG

    min_drop: _Value | None = None


class DropOverride(BaseModel):
    model_config = _PARAMS_CONFIG

    min_drop: _Value | None = None


class RuptureOverride(BaseModel):
    model_config = _PARAMS_CONFIG

    min_drop: _Value | None = None
    subscales: dict[str, SubscaleMinDrop] = Field(default_factory=dict)


class ThresholdsOverride(BaseModel):
    model_config = _PARAMS_CONFIG

    thresholds: dict[str, _Value] = Field(default_factory=dict)


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
    instrument_model: type[BaseModel] | None = None


RULES: dict[RuleId, RuleSpec] = {
    spec.id: spec
    for spec in (
        RuleSpec(
            "alliance.low", "1", "warning", "condition_cleared", frozenset({"alliance"}),
            AllianceLowParams, True,
            "Total on the clinical side of the instrument's cut-off (SRS < 36); instruments "
            "without a cut-off take part once the organisation gives them one.",
            CutoffOverride,
        ),
        RuleSpec(
            "alliance.drop", "1", "warning", "person", frozenset({"alliance"}),
            AllianceDropParams, True,
            "Total fell at least min_drop points from the previous session (OpenFIT; SRS 1 point); "
            "other instruments take part once the organisation gives them a min_drop.",
            DropOverride,
        ),
        RuleSpec(
            "alliance.rupture", "1", "warning", "repaired", frozenset({"alliance"}),
            AllianceRuptureParams, True,
            "Within-client statistical rupture on the total or a subscale; high once unrepaired "
            "after repair_window sessions.",
            RuptureOverride,
        ),
        RuleSpec(
            "rupture.reported", "1", "warning", "person", frozenset({"rupture"}),
            RuptureReportedParams, True,
            "The client reported tension that was not resolved, or was strong (high if both).",
        ),
        RuleSpec(
            "risk.item", "1", "critical", "person", ALL_KINDS, RiskItemParams, False,
            "A risk item at or above its threshold (PHQ-9 item 9 ≥ 1), whatever the total; a "
            "threshold may only be lowered.",
            ThresholdsOverride,
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

# DESIGN.md §10.2: ``alliance.drop`` runs on the SRS by default, 1 point (OpenFIT, [V] in
# reference/psychometrics.md); another alliance instrument takes part once the organisation gives
# it a ``min_drop``.
DEFAULT_DROP_MIN: dict[str, float] = {"srs": 1.0}


P = TypeVar("P", bound=BaseModel)


class RuleSetting(BaseModel):
    """The effective setting of one rule. ``params``: rule-wide values (the per-instrument fields
    of the model at their placeholders); ``instruments``: the organisation's per-instrument values
    by instrument code; ``sources`` says where each value came from, keyed ``enabled``,
    ``params.<name>`` and ``instruments.<code>.<name>`` (organisation values only; see
    :func:`effective_instruments` for every instrument's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: RuleId
    enabled: bool = True
    params: BaseModel
    instruments: dict[str, BaseModel] = Field(default_factory=dict)
    sources: dict[str, Source] = Field(default_factory=dict)

    def params_as(self, model: type[P]) -> P:
        if not isinstance(self.params, model):
            raise TypeError(f"{self.rule_id}: params are not {model.__name__}")
        return self.params

    def public_params(self) -> dict[str, JsonValue]:
        """The rule-wide parameters, as the API shows them."""
        per_instrument = _per_instrument(type(self.params))
        return {
            name: value
            for name, value in self.params.model_dump(mode="json").items()
            if name not in per_instrument
        }

    def public_instruments(self) -> dict[str, dict[str, JsonValue]]:
        """The organisation's per-instrument values, as stored (``None`` values left out)."""
        return {
            code: model.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
            for code, model in self.instruments.items()
        }


def _per_instrument(model: type[BaseModel]) -> frozenset[str]:
    value: object = getattr(model, "per_instrument", frozenset())
    return value if isinstance(value, frozenset) else frozenset()


def _rule_wide(model: type[BaseModel]) -> list[str]:
    return [n for n in model.model_fields if n not in _per_instrument(model)]


def default_setting(rule_id: RuleId) -> RuleSetting:
    spec = RULES[rule_id]
    params = spec.params_model()
    sources: dict[str, Source] = {"enabled": "default"}
    sources.update({f"params.{name}": "default" for name in _rule_wide(type(params))})
    return RuleSetting(rule_id=rule_id, enabled=True, params=params, sources=sources)


def _pydantic_problems(error: ValidationError, prefix: str) -> list[tuple[str, str]]:
    problems = []
    for err in error.errors():
        # A union's branch name (``float``, ``dict[str,float]``) is no part of the field's name.
        parts = [str(p) for p in err["loc"] if not str(p).startswith(("float", "dict["))]
        loc = ".".join(parts)
        field = f"{prefix}.{loc}" if loc else prefix
        if err["type"] == "extra_forbidden":
            message = "unknown parameter"
        elif err["type"] == "value_error":
            # pydantic keeps a validator's ValueError in ctx: its text without "Value error, ".
            message = str(err["ctx"]["error"])
        else:
            message = err["msg"]
        if (field, message) not in problems:
            problems.append((field, message))
    return problems


# ----- checking per-instrument values against the instrument's scale -----------------------------


def _span(defn: InstrumentDefinition, items: list[str] | None = None) -> tuple[Decimal, Decimal]:
    """The range of the total (``items=None``) or of a subscale's score."""
    if items is None:
        span = defn.total_range_exact()
        assert span is not None  # checked by the caller: the instrument has a total
        return span
    lo = sum((dec(defn.item(i).min) for i in items), Decimal(0))
    hi = sum((dec(defn.item(i).max) for i in items), Decimal(0))
    if defn.scoring.method == "mean":
        n = Decimal(len(items))
        return round_mean(lo / n), round_mean(hi / n)
    return lo, hi


def _min_drop_problems(
    field: str, value: float | None, span: tuple[Decimal, Decimal]
) -> list[tuple[str, str]]:
    lo, hi = span
    if value is not None and not 0 < dec(value) <= hi - lo:
        # A mean scale's range is exact to 4 places: say 6, not 6.0000.
        widest = format((hi - lo).normalize(), "f")
        return [(field, f"must be above 0 and at most the range of the scores ({widest})")]
    return []


def instrument_problems(
    spec: RuleSpec, code: str, override: BaseModel, defn: InstrumentDefinition
) -> list[tuple[str, str]]:
    """What is wrong with one instrument's values of one rule, fields relative to
    ``instruments.<code>`` (DESIGN.md §10.2): the rule must apply to the instrument, and each value
    must mean something on its scale."""
    where = f"instruments.{code}"
    if defn.kind not in spec.kinds:
        return [(where, f"{spec.id} does not apply to {defn.kind} instruments")]
    if spec.id != "risk.item" and (not defn.has_total or defn.direction is None):
        return [(where, f"{spec.id} needs an instrument with a total")]
    problems: list[tuple[str, str]] = []
    if isinstance(override, CutoffOverride) and override.cutoff is not None:
        lo, hi = _span(defn)
        values = override.cutoff if isinstance(override.cutoff, dict) else {"": override.cutoff}
        if isinstance(override.cutoff, dict) and not override.cutoff:
            problems.append((f"{where}.cutoff", "a cut-off map needs at least one population"))
        for population, value in values.items():
            field = f"{where}.cutoff" + (f".{population}" if population else "")
            if population and population not in POPULATIONS:
                problems.append(
                    (field, f"unknown population (expected one of {', '.join(POPULATIONS)})")
                )
            elif not lo <= dec(value) <= hi:
                problems.append((field, f"outside the total's range {lo}-{hi}"))
    elif isinstance(override, DropOverride):
        problems += _min_drop_problems(f"{where}.min_drop", override.min_drop, _span(defn))
    elif isinstance(override, RuptureOverride):
        problems += _min_drop_problems(f"{where}.min_drop", override.min_drop, _span(defn))
        for name, sub in override.subscales.items():
            field = f"{where}.subscales.{name}"
            if name not in defn.subscales:
                problems.append((field, f"'{code}' has no subscale '{name}'"))
                continue
            span = _span(defn, defn.subscales[name])
            problems += _min_drop_problems(f"{field}.min_drop", sub.min_drop, span)
    elif isinstance(override, ThresholdsOverride):
        risk = {r.item: r for r in defn.risk_items}
        for item_id, value in override.thresholds.items():
            field = f"{where}.thresholds.{item_id}"
            if item_id not in risk:
                problems.append((field, f"not a risk item of '{code}'"))
                continue
            item, defined = defn.item(item_id), risk[item_id].threshold
            # §10.3.1: only more sensitive, and above the minimum (a threshold at the minimum
            # would flag every answer); PHQ-9 item 9: only 1 (Simon et al. 2013).
            if not dec(item.min) < dec(value) <= dec(defined):
                problems.append(
                    (
                        field,
                        f"must lie above the item's minimum ({item.min}) and at most the "
                        f"definition's threshold ({defined}): a risk threshold may only be "
                        "lowered",
                    )
                )
    return problems


def validate_override(
    rule_id: str,
    body: Mapping[str, object],
    definitions: Mapping[str, InstrumentDefinition] | None = None,
    *,
    known_only: bool = True,
) -> RuleSetting:
    """The effective setting of ``rule_id`` under one override body, or :class:`SettingsProblems`
    listing every problem (unknown rule, unknown field or parameter, wrong type, out of range,
    disabling a rule that cannot be switched off, a per-instrument value that means nothing on that
    instrument's scale). ``definitions``: the instruments the organisation can use, by code
    (built-ins when ``None``); ``known_only=False`` lets other codes through unchecked (stored
    settings, whose organisation instruments are checked when used: :func:`params_for`)."""
    spec = _BY_NAME.get(rule_id)
    if spec is None:
        raise SettingsProblems([("rule", f"unknown rule '{rule_id}'")])
    if not isinstance(body, Mapping):
        raise SettingsProblems([("body", "must be an object")])
    catalog = builtin_instruments() if definitions is None else definitions
    problems: list[tuple[str, str]] = []
    for key in body:
        if key not in ("enabled", "params", "instruments"):
            problems.append((str(key), "unknown field"))
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(("enabled", "must be true or false"))  # refused below: never used
    elif not enabled and not spec.can_disable:
        problems.append(
            (
                "enabled",
                f"{rule_id} cannot be switched off"
                + (
                    "; lower instruments.<code>.thresholds instead"
                    if spec.id == "risk.item"
                    else ""
                ),
            )
        )
    raw_params = body.get("params", {})
    params: BaseModel | None = None
    per_instrument = _per_instrument(spec.params_model)
    if not isinstance(raw_params, Mapping):
        problems.append(("params", "must be an object"))
    else:
        for name in raw_params:
            if name in per_instrument:
                problems.append(
                    (f"params.{name}", f"set per instrument: instruments.<code>.{name}")
                )
        given = {k: v for k, v in raw_params.items() if k not in per_instrument}
        merged = {**spec.params_model().model_dump(), **given}
        try:
            params = spec.params_model.model_validate(merged)
        except ValidationError as error:
            problems += _pydantic_problems(error, "params")
    instruments: dict[str, BaseModel] = {}
    raw_instruments = body.get("instruments", {})
    if not isinstance(raw_instruments, Mapping):
        problems.append(("instruments", "must be an object"))
    elif raw_instruments and spec.instrument_model is None:
        problems.append(("instruments", f"{rule_id} has no per-instrument parameters"))
    elif spec.instrument_model is not None:
        for code, raw in raw_instruments.items():
            where = f"instruments.{code}"
            defn = catalog.get(str(code))
            if defn is None and known_only:
                problems.append((where, "unknown instrument"))
                continue
            try:
                override = spec.instrument_model.model_validate(raw)
            except ValidationError as error:
                problems += _pydantic_problems(error, where)
                continue
            if defn is not None:
                problems += instrument_problems(spec, str(code), override, defn)
            instruments[str(code)] = override
    if problems or params is None:
        raise SettingsProblems(problems)
    sources: dict[str, Source] = {"enabled": "organization" if "enabled" in body else "default"}
    given_params = raw_params if isinstance(raw_params, Mapping) else {}
    for name in _rule_wide(spec.params_model):
        sources[f"params.{name}"] = "organization" if name in given_params else "default"
    for code, override in instruments.items():
        for path in _value_paths(override.model_dump(exclude_none=True, exclude_defaults=True)):
            sources[f"instruments.{code}.{path}"] = "organization"
    return RuleSetting(
        rule_id=spec.id,
        enabled=enabled is True,  # a bool by now: anything else was refused above
        params=params,
        instruments=instruments,
        sources=sources,
    )


def _value_paths(value: Mapping[str, object], prefix: str = "") -> list[str]:
    """``{"min_drop": 4, "subscales": {"bond": {"min_drop": 2}}}`` → ``min_drop``,
    ``subscales.bond.min_drop``; a cut-off map is one value, thresholds one per item."""
    out: list[str] = []
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, Mapping) and (
            key in ("subscales", "thresholds") or prefix == "subscales."
        ):
            out += _value_paths(item, f"{path}.")
        else:
            out.append(path)
    return out


# ----- one instrument's effective parameters: what the rules and the trajectory read --------------


def alliance_cutoff(
    setting: RuleSetting, defn: InstrumentDefinition
) -> tuple[Cutoff | None, Source]:
    """``alliance.low``'s cut-off for ``defn``'s series: the organisation's for the instrument (a
    self-report norm, so it judges the ratings a plain norm judges: DESIGN.md §10.3.5), else the
    definition's for the rating respondent (SRS 36; the WAI-SR has none: Hatcher & Gillaspy 2006,
    reference/psychometrics.md)."""
    override = _valid_override(setting, defn)
    has_own = isinstance(override, CutoffOverride) and override.cutoff is not None
    if has_own and defn.plain_norm_applies:
        assert isinstance(override, CutoffOverride)
        return override.cutoff, "organization"
    return defn.respondent_cutoff, "default"


def drop_min(setting: RuleSetting, defn: InstrumentDefinition) -> tuple[float | None, Source]:
    """``alliance.drop``'s ``min_drop`` for ``defn``: the organisation's, else the default (SRS 1
    point, OpenFIT), else ``None`` (the instrument takes no part)."""
    override = _valid_override(setting, defn)
    if isinstance(override, DropOverride) and override.min_drop is not None:
        return override.min_drop, "organization"
    return DEFAULT_DROP_MIN.get(defn.code) if defn.kind == "alliance" else None, "default"


def rupture_min_drop(
    setting: RuleSetting, defn: InstrumentDefinition, subscale: str | None
) -> tuple[float | None, Source]:
    """``alliance.rupture``'s floor for the total (``subscale=None``) or one subscale of ``defn``:
    the organisation's for that scale, else Attune's default (DESIGN.md §6: SRS total 2, WAI-SR
    total 4, WAI-SR subscale 2), else ``None`` (that scale takes no part). An instrument's value
    never stands in for its subscales': they are on another scale (issue 13 finding 6)."""
    override = _valid_override(setting, defn)
    if isinstance(override, RuptureOverride):
        value = override.min_drop
        if subscale is not None:
            sub = override.subscales.get(subscale)
            value = None if sub is None else sub.min_drop
        if value is not None:
            return value, "organization"
    return default_min_drop(defn, subscale), "default"


def risk_thresholds(defn: InstrumentDefinition, wanted: Mapping[str, float]) -> dict[str, float]:
    """The threshold of each risk item of ``defn``: the ``wanted`` one (the organisation's) where it
    is more sensitive than the definition's and above the item's minimum, else the definition's
    (DESIGN.md §10.3.1: whatever is stored, a risk item can never be silenced)."""
    out: dict[str, float] = {}
    for risk in defn.risk_items:
        threshold = dec(risk.threshold)
        value = wanted.get(risk.item)
        if value is not None and dec(defn.item(risk.item).min) < dec(value) <= threshold:
            threshold = dec(value)
        out[risk.item] = float(threshold)
    return out


def _wanted_thresholds(setting: RuleSetting, defn: InstrumentDefinition) -> Mapping[str, float]:
    override = setting.instruments.get(defn.code)
    return override.thresholds if isinstance(override, ThresholdsOverride) else {}


def _valid_override(setting: RuleSetting, defn: InstrumentDefinition) -> BaseModel | None:
    """The organisation's values for ``defn``, if they still mean something on its scale (a later
    version of an organisation's instrument may have another range: then its defaults apply)."""
    override = setting.instruments.get(defn.code)
    if override is None:
        return None
    spec = RULES[setting.rule_id]
    return None if instrument_problems(spec, defn.code, override, defn) else override


def params_for(setting: RuleSetting, defn: InstrumentDefinition) -> BaseModel | None:
    """The parameters ``setting``'s rule runs with on ``defn``'s series: the rule-wide values plus
    the instrument's own, or ``None`` when the instrument takes no part in the rule (no cut-off for
    ``alliance.low``, no ``min_drop`` for ``alliance.drop``, none on any scale for
    ``alliance.rupture``). The alert rules and the trajectory both read this (issue 13
    finding 7)."""
    params = setting.params
    if isinstance(params, AllianceLowParams):
        cutoff, _ = alliance_cutoff(setting, defn)
        return None if cutoff is None else params.model_copy(update={"cutoff": cutoff})
    if isinstance(params, AllianceDropParams):
        min_drop, _ = drop_min(setting, defn)
        return None if min_drop is None else params.model_copy(update={"min_drop": min_drop})
    if isinstance(params, AllianceRuptureParams):
        total, _ = rupture_min_drop(setting, defn, None)
        subscales = {
            name: value
            for name in defn.subscales
            if (value := rupture_min_drop(setting, defn, name)[0]) is not None
        }
        if total is None and not subscales:
            return None
        return params.model_copy(update={"min_drop": total, "subscale_min_drop": subscales})
    if isinstance(params, RiskItemParams):
        thresholds = risk_thresholds(defn, _wanted_thresholds(setting, defn))
        return params.model_copy(update={"thresholds": thresholds})
    return params


@dataclass(frozen=True)
class RuptureScales:
    """What ``alliance.rupture`` runs with on one instrument: ``min_drops`` by scale (``None`` =
    the total), a ``None`` floor meaning the scale takes no part."""

    k: float
    repair_window: int
    min_drops: dict[str | None, float | None]


def rupture_scales(setting: RuleSetting, defn: InstrumentDefinition) -> RuptureScales:
    """``alliance.rupture``'s parameters on ``defn`` as the trajectory uses them (DESIGN.md §10.2:
    a rupture the trajectory lists is one the rule would raise): the same :func:`params_for`, and
    no scale at all when the organisation switched the rule off."""
    params = params_for(setting, defn) if setting.enabled else None
    scales: list[str | None] = [None, *defn.subscales]
    if (
        not isinstance(params, AllianceRuptureParams)
        or defn.kind not in RULES[setting.rule_id].kinds
    ):
        base = setting.params_as(AllianceRuptureParams)
        return RuptureScales(base.k, base.repair_window, dict.fromkeys(scales))
    min_drops: dict[str | None, float | None] = {None: params.min_drop}
    min_drops.update({name: params.subscale_min_drop.get(name) for name in defn.subscales})
    return RuptureScales(params.k, params.repair_window, min_drops)


def effective_instruments(
    setting: RuleSetting, definitions: Mapping[str, InstrumentDefinition]
) -> tuple[dict[str, dict[str, object]], dict[str, Source]]:
    """Every instrument's effective per-instrument values of ``setting``'s rule and where each came
    from (``instruments.<code>.<name>`` → ``default`` | ``organization``), for
    ``GET /v1/alert-rules``; a ``null`` value: the instrument takes no part."""
    spec = RULES[setting.rule_id]
    values: dict[str, dict[str, object]] = {}
    sources: dict[str, Source] = {}
    if spec.instrument_model is None:
        return values, sources
    for code in sorted(definitions):
        defn = definitions[code]
        if defn.kind not in spec.kinds:
            continue
        where = f"instruments.{code}"
        if spec.id == "alliance.low" and defn.has_total:
            cutoff, sources[f"{where}.cutoff"] = alliance_cutoff(setting, defn)
            values[code] = {"cutoff": cutoff}
        elif spec.id == "alliance.drop" and defn.has_total:
            min_drop, sources[f"{where}.min_drop"] = drop_min(setting, defn)
            values[code] = {"min_drop": min_drop}
        elif spec.id == "alliance.rupture" and defn.has_total:
            total, sources[f"{where}.min_drop"] = rupture_min_drop(setting, defn, None)
            subscales: dict[str, dict[str, float | None]] = {}
            for name in defn.subscales:
                value, sources[f"{where}.subscales.{name}.min_drop"] = rupture_min_drop(
                    setting, defn, name
                )
                subscales[name] = {"min_drop": value}
            values[code] = {"min_drop": total, "subscales": subscales}
        elif spec.id == "risk.item" and defn.risk_items:
            thresholds = risk_thresholds(defn, _wanted_thresholds(setting, defn))
            for risk in defn.risk_items:
                changed = dec(thresholds[risk.item]) != dec(risk.threshold)
                sources[f"{where}.thresholds.{risk.item}"] = (
                    "organization" if changed else "default"
                )
            values[code] = {"thresholds": thresholds}
    return values, sources


def settings_with_fallback(
    overrides: Mapping[str, Mapping[str, object]],
) -> tuple[dict[RuleId, RuleSetting], list[tuple[str, str]]]:
    """Every rule's setting, the stored overrides merged over the defaults; a stored override
    that no longer validates gives way to the rule's defaults, and its problems (fields prefixed
    with the rule id) are returned beside the settings. Per-instrument values are checked against
    the built-ins here, and against any instrument when they are used (:func:`params_for`)."""
    problems: list[tuple[str, str]] = []
    result: dict[RuleId, RuleSetting] = {}
    for rule_id in RULES:
        body = overrides.get(rule_id)
        if body is None:
            result[rule_id] = default_setting(rule_id)
            continue
        try:
            result[rule_id] = validate_override(rule_id, body, known_only=False)
        except SettingsProblems as error:
            problems += [(f"{rule_id}.{field}", message) for field, message in error.problems]
            result[rule_id] = default_setting(rule_id)
    return result, problems


def effective_settings(overrides: Mapping[str, Mapping[str, object]]) -> dict[RuleId, RuleSetting]:
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
