"""Instrument definitions as data (DESIGN.md §5).

One pydantic model describes every instrument, built-in or organisation-defined; the same JSON shape
is served by ``GET /v1/instruments/{code}`` and accepted by ``POST /v1/instruments``. Cross-field
rules are checked once, at validation time, so the scorer can trust a definition.

Numbers (``min``, ``max``, ``step``, cut-offs, band limits, thresholds) are compared as
``Decimal(str(x))`` so that a 0.1 step is exact: 9.1 lies on the grid 0, 0.1, …, 10.

A definition that breaks a rule raises one ``ValueError`` (wrapped by pydantic in a
``ValidationError``) whose message lists every problem as ``field: message``; the structured list is
on the original exception, ``DefinitionProblems.problems``, reachable as ``error["ctx"]["error"]``
in ``ValidationError.errors()``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Annotated, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    model_validator,
)

# Bounds on every number of a definition: far beyond any real scale, and small enough that the
# exact decimal arithmetic below (grid checks, totals, rounding) never exceeds Decimal's 28 digits.
NUMBER_LIMIT = 1_000_000
MAX_DECIMAL_PLACES = 6


def _finite(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _few_places(value: int | float) -> int | float:
    exponent = Decimal(str(value)).as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        raise ValueError(f"at most {MAX_DECIMAL_PLACES} decimal places")
    return value


_Bounded = Field(ge=-NUMBER_LIMIT, le=NUMBER_LIMIT)
# JSON numbers only: no bools, no numeric strings, no NaN/Infinity. Ints stay ints (``"min": 0``).
Number = Annotated[
    Annotated[StrictInt, _Bounded] | Annotated[StrictFloat, _Bounded],
    AfterValidator(_finite),
    AfterValidator(_few_places),
]

Kind = Literal["alliance", "outcome", "symptom", "rupture", "humility", "other"]
Respondent = Literal["client", "clinician", "collateral"]
Direction = Literal["higher_is_better", "lower_is_better"]
Population = Literal["adult", "adolescent", "child"]
POPULATIONS: tuple[Population, ...] = ("adult", "adolescent", "child")
RESPONDENTS: tuple[Respondent, ...] = ("client", "clinician", "collateral")

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True)
_SLUG = re.compile(r"^[a-z0-9_]{1,64}$")

# Jacobson & Truax (1991), JCCP 59(1), 12-19: a change is reliable when |RC| > 1.96.
RC_Z = 1.96


def dec(value: int | float | Decimal) -> Decimal:
    """Exact decimal of a JSON number: ``Decimal(str(9.1)) == Decimal("9.1")``."""
    if isinstance(value, Decimal):
        return value
    if not value or value != value:  # 0.0 and -0.0 are one key but two texts; NaN is no key
        return Decimal(str(value))
    return _decimal_of(value)


@lru_cache(maxsize=4096, typed=True)  # typed: 1 and 1.0 are two texts ("1", "1.0")
def _decimal_of(value: int | float) -> Decimal:
    """A submission converts the same few numbers (item bounds and steps, answers, cut-offs)
    forty times over; Decimal is immutable, so each is converted once."""
    return Decimal(str(value))


class DefinitionProblems(ValueError):
    """Every cross-field problem of one definition, as ``(field, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))


class Condition(BaseModel):
    """``{"item": "tension", "equals": 1}``: the conditional item is present (and, if ``required``,
    required) exactly when the named item's answer equals ``equals``; otherwise it must be
    absent."""

    model_config = _MODEL_CONFIG

    item: str
    equals: Number


class AnswerCode(BaseModel):
    """A LOINC answer code for one item value (e.g. PHQ-9: 0 → LA6568-5)."""

    model_config = _MODEL_CONFIG

    value: Number
    loinc: Annotated[str, Field(pattern=r"^LA\d{1,8}-\d$")]


LoincCode = Annotated[str, Field(pattern=r"^\d{1,8}-\d$")]


class ItemDisplay(BaseModel):
    """An organisation's own wording of an item in one language, shown by the rating page in
    place of the neutral label: the licensed wording Attune does not ship (DESIGN.md §10.4).
    ``min_label``/``max_label`` name the two ends of a scale (a visual-analogue line's anchors)."""

    model_config = _MODEL_CONFIG

    text: Annotated[str, Field(min_length=1, max_length=1000)]
    min_label: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    max_label: Annotated[str, Field(min_length=1, max_length=200)] | None = None


# A language tag: "en", "es", "es-MX".
LanguageTag = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]


class Item(BaseModel):
    model_config = _MODEL_CONFIG

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]
    # Short and neutral for licensed measures (SRS, ORS, WAI-SR, CHS); official wording only where
    # the licence allows it (PHQ-9, GAD-7: Pfizer, no permission required).
    label: Annotated[str, Field(min_length=1, max_length=300)]
    min: Number
    max: Number
    step: Number
    reverse: bool = False
    required: bool = True
    when: Condition | None = None
    in_total: bool = True
    loinc: LoincCode | None = None
    answer_loinc: list[AnswerCode] = Field(default_factory=list)
    # By language: the wording the rating page shows; absent, it shows ``label``.
    display: Annotated[dict[LanguageTag, ItemDisplay], Field(max_length=20)] | None = None

    def reverse_score(self, value: Decimal) -> Decimal:
        """Reverse keying as ``min + max - x`` (DESIGN.md §5; CHS: ``6 - x`` for 1-5 items)."""
        return dec(self.min) + dec(self.max) - value

    def accepts(self, value: Decimal) -> bool:
        """In range and on the step grid that starts at ``min``."""
        lo, hi = dec(self.min), dec(self.max)
        return lo <= value <= hi and (value - lo) % dec(self.step) == 0


class Scoring(BaseModel):
    """``sum`` (total = sum of the in-total items), ``mean`` (total = their mean) or ``none`` (no
    total: the items are reported one by one, e.g. rupture-check). ``max_missing_prorated``: how
    many missing in-total items may be filled by proration (mean of the answered ones); 0 = reject
    (DESIGN.md §5)."""

    model_config = _MODEL_CONFIG

    method: Literal["sum", "mean", "none"] = "sum"
    max_missing_prorated: Annotated[int, Field(ge=0)] = 0


class Band(BaseModel):
    model_config = _MODEL_CONFIG

    max: Number
    label: Annotated[str, Field(min_length=1, max_length=100)]


class ReliableChangeFromNorms(BaseModel):
    """Jacobson & Truax (1991): minimal reliable change = 1.96 · √2 · SD · √(1 - r)."""

    model_config = _MODEL_CONFIG

    sd: Number
    reliability: Number


class NormGroup(BaseModel):
    """Mean and SD of a reference group's totals."""

    model_config = _MODEL_CONFIG

    mean: Number
    sd: Number

    @model_validator(mode="after")
    def _positive_sd(self) -> NormGroup:
        if dec(self.sd) <= 0:
            raise ValueError("sd must be positive")
        return self


class Norms(BaseModel):
    """Totals of a clinical (dysfunctional) and a functional (healthy) reference group, from which
    Jacobson & Truax (1991) derive the cut-offs a, b and c; either may be missing."""

    model_config = _MODEL_CONFIG

    clinical: NormGroup | None = None
    functional: NormGroup | None = None


# A cut-off: one number, or a map by population (``{"adult": 25, "child": 32}``).
Cutoff = Number | dict[str, Number]
# A reliable change: points, or SD and reliability.
ReliableChange = Number | ReliableChangeFromNorms


class RiskItem(BaseModel):
    """An item whose raw answer at or above ``threshold`` is flagged whatever the total."""

    model_config = _MODEL_CONFIG

    item: str
    threshold: Number
    label: Annotated[str, Field(min_length=1, max_length=200)]


class _Views(dict[str, "InstrumentDefinition"]):
    """A definition's cache of its respondent views (and a view's link to its definition): never
    part of what makes two definitions equal."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Views)

    __hash__ = None


class InstrumentDefinition(BaseModel):
    model_config = _MODEL_CONFIG

    code: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    version: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Kind
    respondents: Annotated[list[Respondent], Field(min_length=1)]
    items: Annotated[list[Item], Field(min_length=1)]
    subscales: dict[str, list[str]] = Field(default_factory=dict)
    scoring: Scoring = Field(default_factory=Scoring)
    # Optional only for ``scoring.method == "none"``, where there is no total to be better or worse.
    direction: Direction | None = None
    # Norms (DESIGN.md §10.3.5): a plain value, or a map by respondent (``{"client": …,
    # "collateral": …}``) whose values are plain values; see :meth:`for_respondent`.
    cutoff: Cutoff | dict[str, Cutoff] | None = None
    bands: list[Band] = Field(default_factory=list)
    reliable_change: ReliableChange | dict[Respondent, ReliableChange] | None = None
    # The client's self-report norms, for the Jacobson & Truax cut-offs (DESIGN.md §10.5, §7).
    norms: Norms | None = None
    risk_items: list[RiskItem] = Field(default_factory=list)
    citation: Annotated[str, Field(min_length=1)]
    license: Annotated[str, Field(min_length=1)]
    loinc: LoincCode | None = None
    total_loinc: LoincCode | None = None

    # Whose ratings this view of the definition judges (see :meth:`for_respondent`); ``None``: the
    # definition as stored, read as the client's.
    _rated_by: Respondent | None = PrivateAttr(default=None)
    _views: _Views = PrivateAttr(default_factory=lambda: _Views())

    # ----- norms per respondent (DESIGN.md §10.3.5) -------------------------------------------

    def for_respondent(self, respondent: str) -> InstrumentDefinition:
        """This definition as it judges one respondent's ratings: :attr:`respondent_cutoff` and
        :attr:`reliable_change_points` give that respondent's norms, or ``None`` where the
        definition has none for them, so a collateral rating is never judged on the client's
        self-report norms (reference/psychometrics.md, "Safety invariants"). Views are cached, so
        a built-in's view is always the same object."""
        base = self if self._read_private("_rated_by") is None else self._base()
        views = cast("_Views", base._read_private("_views"))
        view = views.get(respondent)
        if view is None:
            view = base.model_copy()
            view._rated_by = respondent  # type: ignore[assignment]
            view._views = _Views({"": base})
            views[respondent] = view
        return view

    def _read_private(self, name: str) -> object:
        # Straight from pydantic's store: read as an attribute, a private attribute goes through
        # a failed lookup and pydantic's __getattr__, and these are read several times for every
        # submission.
        private = self.__pydantic_private__
        assert private is not None  # set by pydantic for a model with private attributes
        return private[name]

    def _base(self) -> InstrumentDefinition:
        return cast("_Views", self._read_private("_views"))[""]

    @property
    def rated_by(self) -> Respondent:
        return cast("Respondent | None", self._read_private("_rated_by")) or "client"

    @property
    def plain_norm_applies(self) -> bool:
        """Whether a plain (not respondent-keyed) norm judges the rating respondent: the client's
        self-report norm when the client rates the instrument, else its raters' [D]."""
        return self.rated_by == "client" or "client" not in self.respondents

    def _norm_for(self, value: object) -> object:
        """The rating respondent's norm: from a map by respondent, or a plain norm. A plain norm is
        the client's self-report norm when the client rates the instrument, else the norm of its
        raters [D: DESIGN.md §10.3.5; reference/psychometrics.md "Safety invariants"]."""
        if value is None:
            return None
        respondent = self.rated_by
        if isinstance(value, dict) and _respondent_keyed(value):
            return value.get(respondent)
        return value if self.plain_norm_applies else None

    @property
    def respondent_cutoff(self) -> Cutoff | None:
        """The cut-off (number or population map) for the rating respondent, or ``None``."""
        return cast("Cutoff | None", self._norm_for(self.cutoff))

    @property
    def respondent_reliable_change(self) -> ReliableChange | None:
        return cast("ReliableChange | None", self._norm_for(self.reliable_change))

    @property
    def respondent_norms(self) -> Norms | None:
        """The reference-group norms, which are the client's self-report norms: ``None`` for
        another respondent's ratings unless the client does not rate the instrument."""
        return self.norms if self.plain_norm_applies else None

    # ----- derived values -------------------------------------------------------------------------

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    @property
    def total_items(self) -> list[Item]:
        """Items counted in the total (none when ``scoring.method == "none"``)."""
        return [it for it in self.items if it.in_total]

    @property
    def has_total(self) -> bool:
        return self.scoring.method != "none"

    def total_range_exact(self) -> tuple[Decimal, Decimal] | None:
        """Possible total range; reverse keying maps an item's range onto itself, so it does not
        matter."""
        items = self.total_items
        if not self.has_total or not items:
            return None
        lo = sum((dec(it.min) for it in items), Decimal(0))
        hi = sum((dec(it.max) for it in items), Decimal(0))
        if self.scoring.method == "mean":
            n = Decimal(len(items))
            return round_mean(lo / n), round_mean(hi / n)
        return lo, hi

    @property
    def total_range(self) -> tuple[float, float] | None:
        exact = self.total_range_exact()
        return None if exact is None else (float(exact[0]), float(exact[1]))

    @property
    def reliable_change_points(self) -> float | None:
        """Points of change that count as reliable for the rating respondent (see
        :meth:`for_respondent`): the given number, or 1.96 · √2 · SD · √(1 - r) (Jacobson & Truax
        1991; √2 from Christensen & Mendoza 1986); ``None`` without a norm for that respondent."""
        return reliable_change_points(self.respondent_reliable_change)

    # ----- cross-field validation -----------------------------------------------------------------

    @model_validator(mode="after")
    def _check(self) -> InstrumentDefinition:
        problems: list[tuple[str, str]] = []
        problems += self._item_problems()
        if not problems:  # the rest relies on well-formed items
            problems += self._scoring_problems()
            problems += self._subscale_problems()
            problems += self._total_rule_problems()
            problems += self._risk_problems()
        if len(set(self.respondents)) != len(self.respondents):
            problems.append(("respondents", "duplicate respondent"))
        if problems:
            raise DefinitionProblems(problems)
        return self

    def _item_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        seen: set[str] = set()
        for i, it in enumerate(self.items):
            where = f"items[{i}]"
            if it.id in seen:
                problems.append((f"{where}.id", f"duplicate item id '{it.id}'"))
            seen.add(it.id)
            lo, hi, step = dec(it.min), dec(it.max), dec(it.step)
            if lo >= hi:
                problems.append(
                    (f"{where}.min", f"min ({it.min}) must be less than max ({it.max})")
                )
            if step <= 0:
                problems.append((f"{where}.step", f"step must be positive, got {it.step}"))
            elif (hi - lo) % step != 0:
                problems.append(
                    (
                        f"{where}.step",
                        f"max - min ({hi - lo}) is not a multiple of step ({it.step})",
                    )
                )
            codes = [dec(a.value) for a in it.answer_loinc]
            if len(set(codes)) != len(codes):
                problems.append((f"{where}.answer_loinc", "duplicate value"))
        by_id = {it.id: it for it in self.items}
        for i, it in enumerate(self.items):
            where = f"items[{i}]"
            for j, code in enumerate(it.answer_loinc):
                if step_ok(it) and not it.accepts(dec(code.value)):
                    problems.append(
                        (f"{where}.answer_loinc[{j}].value", f"{code.value} is not a valid answer")
                    )
            if it.when is None:
                continue
            target = by_id.get(it.when.item)
            if it.when.item == it.id:
                problems.append((f"{where}.when.item", "an item cannot be conditional on itself"))
            elif target is None:
                problems.append((f"{where}.when.item", f"unknown item '{it.when.item}'"))
            elif target.when is not None:
                problems.append(
                    (
                        f"{where}.when.item",
                        f"'{target.id}' is itself conditional; chains are not allowed",
                    )
                )
            elif step_ok(target) and not target.accepts(dec(it.when.equals)):
                problems.append(
                    (
                        f"{where}.when.equals",
                        f"{it.when.equals} is not a valid answer to '{target.id}'",
                    )
                )
        return problems

    def _scoring_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        totals = self.total_items
        if not self.has_total:
            for i, it in enumerate(self.items):
                if it.in_total:
                    problems.append(
                        (f"items[{i}].in_total", "must be false when scoring.method is 'none'")
                    )
            for field, value in (
                ("direction", self.direction),
                ("cutoff", self.cutoff),
                ("reliable_change", self.reliable_change),
            ):
                if value is not None:
                    problems.append((field, "not allowed when scoring.method is 'none'"))
            if self.bands:
                problems.append(("bands", "not allowed when scoring.method is 'none'"))
            if self.subscales:
                problems.append(("subscales", "not allowed when scoring.method is 'none'"))
            if self.scoring.max_missing_prorated:
                problems.append(("scoring.max_missing_prorated", "must be 0 without a total"))
            return problems
        if self.direction is None:
            problems.append(("direction", "required when the instrument has a total"))
        if not totals:
            problems.append(("items", "at least one item must be in the total"))
        for i, it in enumerate(self.items):
            # A total is only comparable across sessions if every counted item is always asked.
            if it.in_total and (not it.required or it.when is not None):
                problems.append(
                    (
                        f"items[{i}].in_total",
                        "an item counted in the total must be required and unconditional "
                        "(set in_total false, or allow gaps with scoring.max_missing_prorated)",
                    )
                )
        limit = self.scoring.max_missing_prorated
        if totals and limit >= len(totals):
            problems.append(
                (
                    "scoring.max_missing_prorated",
                    f"must be less than the number of items in the total ({len(totals)})",
                )
            )
        smallest = min((len(v) for v in self.subscales.values() if v), default=None)
        if smallest is not None and limit >= smallest:
            problems.append(
                (
                    "scoring.max_missing_prorated",
                    f"must be less than the smallest subscale ({smallest} items), "
                    "or a subscale could be entirely missing",
                )
            )
        return problems

    def _subscale_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        by_id = {it.id: it for it in self.items}
        owner: dict[str, str] = {}
        for name, ids in self.subscales.items():
            where = f"subscales.{name}"
            if not _SLUG.fullmatch(name):
                problems.append((where, "subscale names use lowercase letters, digits and _"))
            if not ids:
                problems.append((where, "a subscale needs at least one item"))
            for item_id in ids:
                it = by_id.get(item_id)
                if it is None:
                    problems.append((where, f"unknown item '{item_id}'"))
                elif not it.in_total:
                    problems.append((where, f"item '{item_id}' is not counted in the total"))
                elif item_id in owner:
                    other = owner[item_id]
                    msg = (
                        f"item '{item_id}' listed twice"
                        if other == name
                        else f"item '{item_id}' is also in subscale '{other}'; "
                        "subscales must not overlap"
                    )
                    problems.append((where, msg))
                else:
                    owner[item_id] = name
        return problems

    def _total_rule_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        span = self.total_range_exact()
        if span is None:
            return problems
        lo, hi = span
        problems += self._norm_problems("cutoff", self.cutoff, _cutoff_problems(lo, hi))
        previous: Decimal | None = None
        for i, band in enumerate(self.bands):
            limit = dec(band.max)
            if not lo <= limit <= hi:
                problems.append((f"bands[{i}].max", f"outside the total range {lo}-{hi}"))
            elif previous is not None and limit <= previous:
                problems.append((f"bands[{i}].max", "band limits must be strictly ascending"))
            previous = limit
        if self.bands and dec(self.bands[-1].max) != hi:
            problems.append(
                (
                    f"bands[{len(self.bands) - 1}].max",
                    f"the last band must end at the maximum total {hi}",
                )
            )
        labels = [b.label for b in self.bands]
        if len(set(labels)) != len(labels):
            problems.append(("bands", "duplicate band label"))
        problems += self._norm_problems(
            "reliable_change", self.reliable_change, _reliable_change_problems(lo, hi)
        )
        return problems

    def _norm_problems(
        self, field: str, value: object, check: Callable[[str, object], list[tuple[str, str]]]
    ) -> list[tuple[str, str]]:
        """A plain norm, or a map by respondent (each a respondent of this instrument) of plain
        norms; ``check`` judges one plain norm."""
        if not isinstance(value, dict) or not value:
            return [] if value is None else check(field, value)
        keys = set(value)
        if not _respondent_keyed(value):
            if keys & set(RESPONDENTS) or field == "reliable_change":
                return [(field, "keys must be respondents, or (cut-offs only) populations")]
            return check(field, value)
        problems: list[tuple[str, str]] = []
        for respondent, norm in value.items():
            if respondent not in self.respondents:
                problems.append((f"{field}.{respondent}", "not a respondent of this instrument"))
            else:
                problems += check(f"{field}.{respondent}", norm)
        return problems

    def _risk_problems(self) -> list[tuple[str, str]]:
        """DESIGN.md §10.3.1, risk is never silenced: a risk item is always asked and never
        prorated, and its threshold lies above the item's minimum (a threshold at the minimum would
        flag every answer; PHQ-9 item 9: ≥ 1, Simon et al. 2013)."""
        problems: list[tuple[str, str]] = []
        by_id = {it.id: it for it in self.items}
        seen: set[str] = set()
        for i, risk in enumerate(self.risk_items):
            it = by_id.get(risk.item)
            if it is None:
                problems.append((f"risk_items[{i}].item", f"unknown item '{risk.item}'"))
                continue
            if risk.item in seen:
                problems.append((f"risk_items[{i}].item", f"duplicate risk item '{risk.item}'"))
            seen.add(risk.item)
            if not it.required or it.when is not None:
                problems.append(
                    (
                        f"risk_items[{i}].item",
                        "a risk item must be required and unconditional: it is asked every time",
                    )
                )
            if it.in_total and self.scoring.max_missing_prorated > 0:
                problems.append(
                    (
                        "scoring.max_missing_prorated",
                        f"proration could fill in the risk item '{it.id}'; risk items are never "
                        "prorated (set 0, or keep the risk item out of the total)",
                    )
                )
            if not dec(it.min) < dec(risk.threshold) <= dec(it.max):
                problems.append(
                    (
                        f"risk_items[{i}].threshold",
                        f"must lie above the minimum of '{it.id}' and at most its maximum "
                        f"({it.min}-{it.max}]",
                    )
                )
        return problems


def _respondent_keyed(value: Mapping[str, object]) -> bool:
    """A norm map keyed by respondent (rather than by population)."""
    return bool(value) and all(key in RESPONDENTS for key in value)


def reliable_change_points(rc: ReliableChange | None) -> float | None:
    """Points of change that count as reliable: the given number, or 1.96 · √2 · SD · √(1 - r)
    (Jacobson & Truax 1991; √2 from Christensen & Mendoza 1986)."""
    if rc is None:
        return None
    if isinstance(rc, ReliableChangeFromNorms):
        return RC_Z * math.sqrt(2) * float(rc.sd) * math.sqrt(1 - float(rc.reliability))
    return float(rc)


def _cutoff_problems(lo: Decimal, hi: Decimal) -> Callable[[str, object], list[tuple[str, str]]]:
    def check(field: str, cutoff: object) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if isinstance(cutoff, dict):
            if not cutoff:
                problems.append((field, "a cut-off map needs at least one population"))
            for population, value in cutoff.items():
                if population not in POPULATIONS:
                    problems.append(
                        (
                            f"{field}.{population}",
                            f"unknown population (expected one of {', '.join(POPULATIONS)})",
                        )
                    )
                elif not lo <= dec(value) <= hi:
                    problems.append((f"{field}.{population}", f"outside the total range {lo}-{hi}"))
        elif not lo <= dec(cast("float", cutoff)) <= hi:  # a Number, validated
            problems.append((field, f"outside the total range {lo}-{hi}"))
        return problems

    return check


def _reliable_change_problems(
    lo: Decimal, hi: Decimal
) -> Callable[[str, object], list[tuple[str, str]]]:
    def check(field: str, rc: object) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if isinstance(rc, ReliableChangeFromNorms):
            if dec(rc.sd) <= 0:
                problems.append((f"{field}.sd", "must be positive"))
            if not 0 < dec(rc.reliability) < 1:
                problems.append((f"{field}.reliability", "must be between 0 and 1 (exclusive)"))
        elif not 0 < dec(cast("float", rc)) <= hi - lo:  # a Number, validated
            problems.append((field, f"must be positive and at most the range {hi - lo}"))
        return problems

    return check


def step_ok(item: Item) -> bool:
    """Whether ``item.step`` can be used for grid checks (positive; its own problem is reported)."""
    return dec(item.step) > 0


_FOUR_PLACES = Decimal("0.0001")


def round_mean(value: Decimal) -> Decimal:
    """Item means are reported to 4 decimal places, half up (WAI-SR 49/12 → 4.0833)."""
    return value.quantize(_FOUR_PLACES, rounding=ROUND_HALF_UP)
