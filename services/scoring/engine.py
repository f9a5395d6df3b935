"""Answer validation and scoring of one submission (DESIGN.md §4-§5). Pure: no I/O.

Arithmetic is done in ``Decimal(str(x))`` so that 9.1 + 8.4 + 9.0 + 8.8 is 35.3, not 35.299999….
Totals and subscales are returned as ``float`` always, integral ones too (PHQ-9 total 9 → ``9.0``),
so a client sees one JSON number type per field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.instruments.schema import (
    Cutoff,
    Direction,
    InstrumentDefinition,
    Item,
    Population,
    dec,
    round_mean,
)

ProblemCode = Literal[
    "unknown_item",
    "missing",
    "wrong_type",
    "out_of_range",
    "off_step",
    "unexpected",
    "too_many_missing",
]


@dataclass(frozen=True)
class AnswerProblem:
    item: str
    code: ProblemCode
    message: str


class InvalidAnswers(ValueError):
    """Raised by :func:`score` when :func:`validate_answers` finds problems."""

    def __init__(self, problems: Sequence[AnswerProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.item}: {p.message}" for p in self.problems))


class Scores(BaseModel):
    """Scores of one submission.

    ``items``: every answered item's scored value (after reverse keying) — the only content for
    instruments without a total (rupture-check). ``prorated``: in-total items that were missing and
    filled by proration.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    total: float | None
    mean: float | None
    subscales: dict[str, float]
    band: str | None
    below_cutoff: bool | None
    clinical: bool | None
    risk_flags: list[str]
    items: dict[str, float]
    prorated: list[str]


# ----- helpers shared with trajectory analytics and alert rules -----------------------------------


def cutoff_for(defn: InstrumentDefinition, population: Population) -> float | None:
    """The cut-off for a population and the respondent the definition judges
    (:meth:`~services.instruments.schema.InstrumentDefinition.for_respondent`); ``None`` when the
    instrument has none for that respondent, or its map lacks that population (no clinical
    judgement is better than borrowing another population's or another respondent's norm:
    DESIGN.md §10.3.5)."""
    return population_value(defn.respondent_cutoff, population)


def population_value(cutoff: Cutoff | None, population: Population) -> float | None:
    """A plain cut-off (a number, or a map by population) for one population."""
    if cutoff is None:
        return None
    if isinstance(cutoff, dict):
        value = cutoff.get(population)
        return None if value is None else float(value)
    return float(cutoff)


def in_clinical_range(total: float, cutoff: float, direction: Direction) -> bool:
    """Clinical side of a cut-off. Higher-is-better: below it (ORS 25.0 is not clinical for an
    adult, OpenFIT ``ORS >= cut-off``; SRS ``< 36``, OpenFIT). Lower-is-better: at or above it
    (PHQ-9 caseness ≥ 10, GAD-7 ≥ 8; NHS Talking Therapies)."""
    if direction == "higher_is_better":
        return dec(total) < dec(cutoff)
    return dec(total) >= dec(cutoff)


# ----- validation ---------------------------------------------------------------------------------


def _as_number(value: object) -> Decimal | None:
    """The exact decimal of a finite int/float; ``None`` for anything else (bool is not a number
    here)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    return dec(value)


def _condition_holds(
    defn: InstrumentDefinition, item: Item, answers: Mapping[str, object]
) -> bool | None:
    """True/False for a conditional item; ``None`` when it cannot be decided (the item it depends on
    is missing or invalid — that item gets its own problem)."""
    assert item.when is not None
    target = defn.item(item.when.item)
    raw = answers.get(target.id)
    value = _as_number(raw)
    if value is None or _value_problem(target, raw) is not None:
        return None
    return value == dec(item.when.equals)


def _value_problem(item: Item, raw: object) -> AnswerProblem | None:
    value = _as_number(raw)
    if value is None:
        return AnswerProblem(item.id, "wrong_type", f"must be a finite number, got {raw!r}")
    if not dec(item.min) <= value <= dec(item.max):
        return AnswerProblem(
            item.id, "out_of_range", f"{raw} is outside the range {item.min}-{item.max}"
        )
    if not item.accepts(value):
        return AnswerProblem(
            item.id, "off_step", f"{raw} is not on the step {item.step} from {item.min}"
        )
    return None


def _missing_items(defn: InstrumentDefinition, answers: Mapping[str, object]) -> list[Item]:
    risk = _risk_ids(defn)
    missing = []
    for item in defn.items:
        if item.id in answers:
            continue
        if item.id in risk:
            needed = True  # DESIGN.md §10.3.1: a risk item is always asked
        elif item.when is None:
            needed = item.required
        else:
            needed = item.required and _condition_holds(defn, item, answers) is True
        if needed:
            missing.append(item)
    return missing


def _risk_ids(defn: InstrumentDefinition) -> set[str]:
    return {r.item for r in defn.risk_items}


def validate_answers(
    defn: InstrumentDefinition, answers: Mapping[str, object]
) -> list[AnswerProblem]:
    """Every problem with a set of answers, at most one per item, in the definition's item order;
    unknown keys follow, sorted. An empty list means :func:`score` will accept the answers."""
    problems: list[AnswerProblem] = []
    missing = _missing_items(defn, answers)
    # Proration covers only in-total items (the rest are never prorated), up to the definition's
    # limit.
    # Risk items never are (DESIGN.md §10.3.1): a blank risk answer must not be filled in.
    risk = _risk_ids(defn)
    proratable = [it for it in missing if it.in_total and it.id not in risk]
    limit = defn.scoring.max_missing_prorated
    too_many = limit > 0 and len(proratable) > limit
    missing_ids = {it.id for it in missing}
    for item in defn.items:
        if item.id in missing_ids:
            if item.id in risk:
                problems.append(AnswerProblem(item.id, "missing", "a risk item is always required"))
            elif item.in_total and too_many:
                problems.append(
                    AnswerProblem(
                        item.id,
                        "too_many_missing",
                        f"missing; {len(proratable)} items are missing but at most {limit} "
                        "may be prorated",
                    )
                )
            elif not item.in_total or limit == 0:
                problems.append(AnswerProblem(item.id, "missing", "a required answer is missing"))
            continue
        if item.id not in answers:
            continue
        if item.when is not None and _condition_holds(defn, item, answers) is False:
            problems.append(
                AnswerProblem(
                    item.id,
                    "unexpected",
                    f"must be absent unless '{item.when.item}' is {item.when.equals}",
                )
            )
            continue
        problem = _value_problem(item, answers[item.id])
        if problem is not None:
            problems.append(problem)
    known = {it.id for it in defn.items}
    for key in sorted(str(k) for k in answers if k not in known):
        problems.append(AnswerProblem(key, "unknown_item", "not an item of this instrument"))
    return problems


# ----- scoring ------------------------------------------------------------------------------------


def _quantum(items: Sequence[Item]) -> Decimal:
    """Finest decimal place used by the items' grids: a prorated total is rounded to it (to a whole
    point for PHQ-9, to 0.1 for SRS) so it looks like a total that could have been answered."""
    places = max(max(_places(dec(it.min)), _places(dec(it.step))) for it in items)
    return Decimal(1).scaleb(-places)


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _aggregate(
    defn: InstrumentDefinition, items: Sequence[Item], scored: Mapping[str, Decimal]
) -> Decimal:
    """Sum (or mean) of the items, prorating missing ones as the mean of the answered ones x
    count."""
    answered = [scored[it.id] for it in items if it.id in scored]
    mean = sum(answered, Decimal(0)) / len(answered)
    if defn.scoring.method == "mean":
        return round_mean(mean)
    if len(answered) == len(items):
        return sum(answered, Decimal(0))
    return (mean * len(items)).quantize(_quantum(items), rounding=ROUND_HALF_UP)


def _band(defn: InstrumentDefinition, total: Decimal) -> str | None:
    for band in defn.bands:
        if total <= dec(band.max):
            return band.label
    return None


def score(
    defn: InstrumentDefinition,
    answers: Mapping[str, object],
    population: Population = "adult",
    *,
    respondent: str | None = None,
) -> Scores:
    """Scores of valid answers; raises :class:`InvalidAnswers` listing every problem otherwise.
    The clinical flags follow ``respondent``'s norms (default: the respondent ``defn`` judges, the
    client unless it is a :meth:`~InstrumentDefinition.for_respondent` view)."""
    if respondent is not None:
        defn = defn.for_respondent(respondent)
    problems = validate_answers(defn, answers)
    if problems:
        raise InvalidAnswers(problems)
    scored: dict[str, Decimal] = {}
    for item in defn.items:
        value = _as_number(answers.get(item.id))
        if value is not None:
            scored[item.id] = item.reverse_score(value) if item.reverse else value
    risk_flags = [
        r.item
        for r in defn.risk_items
        if (raw := _as_number(answers.get(r.item))) is not None and raw >= dec(r.threshold)
    ]
    total_items = defn.total_items
    items_out = {k: float(v) for k, v in scored.items()}
    if not defn.has_total:
        return Scores(
            total=None, mean=None, subscales={}, band=None, below_cutoff=None, clinical=None,
            risk_flags=risk_flags, items=items_out, prorated=[],
        )  # fmt: skip
    total = _aggregate(defn, total_items, scored)
    answered = [scored[it.id] for it in total_items if it.id in scored]
    mean = round_mean(sum(answered, Decimal(0)) / len(answered))
    subscales = {
        name: float(_aggregate(defn, [defn.item(i) for i in ids], scored))
        for name, ids in defn.subscales.items()
    }
    cutoff = cutoff_for(defn, population)
    assert (
        defn.direction is not None
    )  # guaranteed by the definition's validation when there is a total
    return Scores(
        total=float(total),
        mean=float(mean),
        subscales=subscales,
        band=_band(defn, total),
        below_cutoff=None if cutoff is None else total < dec(cutoff),
        clinical=None
        if cutoff is None
        else in_clinical_range(float(total), cutoff, defn.direction),
        risk_flags=risk_flags,
        items=items_out,
        prorated=[it.id for it in total_items if it.id not in scored],
    )
