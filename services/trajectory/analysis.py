"""An episode's trajectory on one instrument (DESIGN.md §7): per-session points plus a summary with
the Jacobson & Truax classification, sudden gains/losses and (alliance instruments) rupture-repair
sequences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from services.instruments.schema import Cutoff, InstrumentDefinition, Population, dec
from services.scoring.engine import cutoff_for, in_clinical_range, population_value
from services.trajectory.etr import (
    Expected,
    ExpectedResponse,
    curve_session,
    expected_at,
    worse_than_expected,
)
from services.trajectory.pairs import PairedOutcome
from services.trajectory.reliable_change import (
    Classification,
    clinical_cutoffs,
    jacobson_truax,
    reliable_direction,
    standard_errors,
)
from services.trajectory.ruptures import (
    DEFAULT_K,
    DEFAULT_REPAIR_WINDOW,
    default_min_drop,
    find_ruptures,
)
from services.trajectory.sudden_gains import find_sudden_changes

_CONFIG = ConfigDict(extra="forbid", frozen=True)


class Observation(NamedTuple):
    """One scored submission: a plain ``(session_number, total, subscales)`` tuple works as well;
    ``occurred_at`` is when its session took place, where the submission or session said so."""

    session_number: int
    total: float | None
    subscales: Mapping[str, float]
    occurred_at: datetime | None = None


# An observation as callers may pass one: with or without its session's date.
ObservationLike = (
    tuple[int, float | None, Mapping[str, float]]
    | tuple[int, float | None, Mapping[str, float], datetime | None]
)


class ExpectedOut(BaseModel):
    model_config = _CONFIG

    p10: float
    p50: float
    p90: float


class CutoffsOut(BaseModel):
    """Jacobson & Truax (1991) cut-offs a, b, c; each null without the norms it needs."""

    model_config = _CONFIG

    a: float | None
    b: float | None
    c: float | None


class TrajectoryPoint(BaseModel):
    model_config = _CONFIG

    session_number: int
    # When the session took place (the submission's ``occurred_at``, else its session's), if known.
    occurred_at: datetime | None = None
    total: float | None
    subscales: dict[str, float]
    change_from_previous: float | None
    change_from_first: float | None
    # Reliable change from the first score: null when the instrument has no reliable-change points.
    reliable_change: Literal["improved", "deteriorated", "none"] | None
    clinical: bool | None
    # Reliable-change index from the first score, (score - first) / S_diff (Jacobson & Truax
    # 1991); null without a reliable-change norm.
    rci: float | None = None
    # The expected response at this session for the client's intake band (DESIGN.md §10.5); null
    # without a model that applies.
    expected: ExpectedOut | None = None


class SuddenChangeOut(BaseModel):
    model_config = _CONFIG

    from_session: int
    to_session: int
    change: float


class RuptureOut(BaseModel):
    model_config = _CONFIG

    session_number: int
    subscale: str | None
    drop: float
    repaired_at_session: int | None


class TrajectorySummary(BaseModel):
    model_config = _CONFIG

    classification: Classification | None
    sudden_gains: list[SuddenChangeOut]
    sudden_losses: list[SuddenChangeOut]
    ruptures: list[RuptureOut]
    first_session: int | None
    latest_session: int | None
    n_points: int
    # The latest score against the expected response (not worse than the failure boundary: p10
    # for higher-is-better, p90 for lower-is-better); null without a model or a second score.
    on_track: bool | None = None
    # Standard error of measurement and of a difference (Jacobson & Truax 1991).
    se: float | None = None
    s_diff: float | None = None
    cutoffs: CutoffsOut | None = None
    # PHQ-9 with GAD-7 in one episode (NHS Talking Therapies), on either's trajectory.
    paired_caseness: PairedOutcome | None = None


class Trajectory(BaseModel):
    model_config = _CONFIG

    instrument: str
    # The cut-off the clinical flags were judged by, for the series' population and respondent
    # (``null``: the instrument has none for them, so no point is flagged).
    cutoff: float | None = None
    points: list[TrajectoryPoint]
    summary: TrajectorySummary


def _diff(a: float, b: float) -> float:
    return float(dec(a) - dec(b))


def _points(
    defn: InstrumentDefinition,
    observations: Sequence[Observation],
    cutoff: float | None,
    expected: ExpectedResponse | None,
) -> list[TrajectoryPoint]:
    rc_points = defn.reliable_change_points
    errors = standard_errors(defn.respondent_reliable_change)
    first: float | None = None
    first_session = 0
    previous: float | None = None
    points = []
    for obs in observations:
        total = obs.total
        point = TrajectoryPoint(
            session_number=obs.session_number,
            occurred_at=obs.occurred_at,
            total=total,
            subscales=dict(obs.subscales),
            change_from_previous=None
            if total is None or previous is None
            else _diff(total, previous),
            change_from_first=None if total is None or first is None else _diff(total, first),
            reliable_change=None,
            clinical=None,
        )
        if total is not None and defn.direction is not None:
            if first is None:
                first, first_session = total, obs.session_number
            at = curve_session(obs.session_number, first_session)
            band = None if expected is None else expected_at(expected, first, at)
            point = point.model_copy(
                update={
                    "change_from_first": _diff(total, first),
                    "reliable_change": None
                    if rc_points is None
                    else reliable_direction(first, total, rc_points, defn.direction),
                    "clinical": None
                    if cutoff is None
                    else in_clinical_range(total, cutoff, defn.direction),
                    "rci": None
                    if errors is None
                    else round(_diff(total, first) / errors.s_diff, 4),
                    "expected": None if band is None else ExpectedOut(**band._asdict()),
                }
            )
            previous = total
        points.append(point)
    return points


def _on_track(defn: InstrumentDefinition, scored: Sequence[TrajectoryPoint]) -> bool | None:
    """The latest score within or better than the expected band's failure boundary (Finch,
    Lambert & Schaalje 2001; p10/p90 [D]); ``None`` without a model for it or a second score."""
    if len(scored) < 2 or defn.direction is None:
        return None
    latest = scored[-1]
    if latest.expected is None or latest.total is None:
        return None
    band = latest.expected
    return not worse_than_expected(
        latest.total, Expected(band.p10, band.p50, band.p90), defn.direction
    )


def _ruptures(
    defn: InstrumentDefinition,
    observations: Sequence[Observation],
    *,
    k: float,
    repair_window: int,
    min_drops: Mapping[str | None, float | None],
    as_of_session: int | None,
) -> list[RuptureOut]:
    """Alliance instruments only; evaluated on the total and on each subscale, so a fall in one part
    (goals, tasks or bond) shows even when the total hides it."""
    if defn.kind != "alliance":
        return []
    found: list[RuptureOut] = []
    for subscale in [None, *defn.subscales]:
        min_drop = min_drops.get(subscale, default_min_drop(defn, subscale))
        if min_drop is None:
            continue
        series = [
            (o.session_number, o.total if subscale is None else o.subscales.get(subscale))
            for o in observations
        ]
        observed = [(s, v) for s, v in series if v is not None]
        for r in find_ruptures(
            observed,
            min_drop=min_drop,
            k=k,
            repair_window=repair_window,
            as_of_session=as_of_session,
        ):
            found.append(RuptureOut(
                session_number=r.session_number,
                subscale=subscale,
                drop=r.drop,
                repaired_at_session=r.repaired_at_session,
            ))  # fmt: skip
    return sorted(found, key=lambda r: (r.session_number, r.subscale or ""))


def build_trajectory(
    defn: InstrumentDefinition,
    observations: Sequence[ObservationLike],
    population: Population = "adult",
    *,
    cutoff: Cutoff | None = None,
    k: float = DEFAULT_K,
    repair_window: int = DEFAULT_REPAIR_WINDOW,
    min_drops: Mapping[str | None, float | None] | None = None,
    as_of_session: int | None = None,
    expected: ExpectedResponse | None = None,
    paired: PairedOutcome | None = None,
) -> Trajectory:
    """Trajectory of one series (one episode, instrument, respondent). ``min_drops`` overrides
    :func:`default_min_drop` by subscale (``None`` = total; a ``None`` floor: that scale is not
    looked at), as the organisation's ``alliance.rupture`` setting says
    (:func:`services.alerts.settings.rupture_scales`); ``as_of_session`` says how far the episode
    has gone, for rupture repair windows (default: the last observation). ``cutoff`` (a number or
    a population map) judges the clinical range in place of the definition's for the rating
    respondent: the organisation's ``alliance.low`` cut-off, so the trajectory agrees with the
    alerts (DESIGN.md §10.2). ``expected``: the organisation's expected-response model for the
    series (DESIGN.md §10.5); ``paired``: the episode's PHQ-9 + GAD-7 outcome
    (:func:`services.trajectory.pairs.paired_outcome`)."""
    obs = sorted((Observation(*o) for o in observations), key=lambda o: o.session_number)
    sessions = [o.session_number for o in obs]
    if len(set(sessions)) != len(sessions):
        raise ValueError("one observation per session")
    if any(s < 1 for s in sessions):
        raise ValueError("session numbers start at 1")
    used_cutoff = (
        cutoff_for(defn, population) if cutoff is None else population_value(cutoff, population)
    )
    points = _points(defn, obs, used_cutoff, expected)
    scored = [p for p in points if p.total is not None]
    rc_points = defn.reliable_change_points
    classification: Classification | None = None
    gains: list[SuddenChangeOut] = []
    losses: list[SuddenChangeOut] = []
    if rc_points is not None and defn.direction is not None and scored:
        first, latest = scored[0].total, scored[-1].total
        assert first is not None
        assert latest is not None
        if len(scored) >= 2:
            classification = jacobson_truax(first, latest, rc_points, used_cutoff, defn.direction)
        # Criterion 1 cut-off: the instrument's reliable-change points (reference/psychometrics.md).
        by_session: list[float | None] = [None] * sessions[-1]
        for p in scored:
            by_session[p.session_number - 1] = p.total
        g, lo = find_sudden_changes(by_session, direction=defn.direction, cutoff=rc_points)
        gains = [SuddenChangeOut(**vars(c)) for c in g]
        losses = [SuddenChangeOut(**vars(c)) for c in lo]
    errors = standard_errors(defn.respondent_reliable_change)
    norms = defn.respondent_norms
    cutoffs = None if defn.direction is None else clinical_cutoffs(norms, defn.direction)
    ruptures = _ruptures(
        defn,
        obs,
        k=k,
        repair_window=repair_window,
        min_drops=min_drops or {},
        as_of_session=as_of_session,
    )
    return Trajectory(
        instrument=defn.code,
        cutoff=used_cutoff,
        points=points,
        summary=TrajectorySummary(
            classification=classification,
            sudden_gains=gains,
            sudden_losses=losses,
            ruptures=ruptures,
            first_session=sessions[0] if sessions else None,
            latest_session=sessions[-1] if sessions else None,
            n_points=len(points),
            on_track=_on_track(defn, scored),
            se=None if errors is None else round(errors.se, 6),
            s_diff=None if errors is None else round(errors.s_diff, 6),
            cutoffs=None if cutoffs is None else CutoffsOut(**cutoffs._asdict()),
            paired_caseness=paired,
        ),
    )
