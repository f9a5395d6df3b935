"""Expected treatment response (DESIGN.md §10.5): by intake band, the expected score at each session
with a band (10th, 50th and 90th percentile), uploaded by an organisation or fitted from its own
closed episodes.

Method [V]: Finch, Lambert & Schaalje (2001), *Clinical Psychology & Psychotherapy 8*(4), 231-242,
built expected recovery curves for the OQ-45 as a log-linear change over sessions, fitted
separately by intake-score band; a client outside a tolerance band around the curve is "not on
track". Attune's use [D] (reference/psychometrics.md, "Expected treatment response"): per intake
band, ordinary least squares of the score on ln(session) (the fixed part of their hierarchical
model), the 10th/50th/90th percentiles of the residuals at each session added to the curve, the
10th/90th percentile as the failure boundary, the sample size per band and the coverage of
held-out episodes reported, and no extrapolation beyond the sessions the data cover.

Sessions of a curve are counted from the series' first score: curve session 1 is the intake score,
curve session ``n`` the one ``n - 1`` sessions later (:func:`curve_session`) [D]: an instrument
first used at session 9 is compared with the curve from its own start, as the rule of DESIGN.md
§10.3.4 counts time on track from the first observed score.

Pure: no I/O; plain Python (``math``, ``statistics``), fast enough to fit 10,000 episodes of 20
sessions in well under the 5 s of issue 16 (bench/etr.py).
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from services.instruments.schema import NUMBER_LIMIT, Direction, InstrumentDefinition, dec

# [D] Fewer episodes than this in an intake band give percentiles too unstable to judge a client
# by (the 10th percentile of 30 residuals rests on three of them).
MIN_EPISODES_PER_BAND = 30
# [D] A session is listed in a fitted curve only when this many scores of the band fall on it;
# later sessions use the last listed one (no extrapolation: psychometrics.md, ETR).
MIN_SCORES_PER_SESSION = 10
# [D] Bands the fit makes by itself when none are given (equal counts of intake scores).
MAX_DEFAULT_BANDS = 4
# [D] Every 5th episode of each intake band (in the order given, i.e. by episode id) is held out
# for coverage: counted per band, so that no band's training set can be empty.
HOLDOUT_EVERY = 5
# Size limits of an uploaded model (a request is at most 1 MiB anyway).
MAX_BANDS = 50
MAX_SESSIONS = 200

_CONFIG = ConfigDict(extra="forbid", frozen=True)
_Score = Annotated[float, Field(ge=-NUMBER_LIMIT, le=NUMBER_LIMIT, allow_inf_nan=False)]
_Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class ExpectedScore(BaseModel):
    """The expected score at one curve session: median and the 10th/90th percentile."""

    model_config = _CONFIG

    session: Annotated[int, Field(ge=1, le=10_000)]
    p10: _Score
    p50: _Score
    p90: _Score


class IntakeBand(BaseModel):
    """Episodes whose first score lies in ``[intake_min, intake_max]``. ``n_episodes`` and
    ``coverage`` (held-out) are reported for fitted bands."""

    model_config = _CONFIG

    intake_min: _Score
    intake_max: _Score
    sessions: Annotated[list[ExpectedScore], Field(min_length=1, max_length=MAX_SESSIONS)]
    n_episodes: Annotated[int, Field(ge=0)] | None = None
    coverage: _Fraction | None = None


class ExpectedResponse(BaseModel):
    """A model as uploaded and as returned (DESIGN.md §10.5)."""

    model_config = _CONFIG

    bands: Annotated[list[IntakeBand], Field(min_length=1, max_length=MAX_BANDS)]
    source: Literal["uploaded", "fitted"] = "uploaded"
    n_episodes: Annotated[int, Field(ge=0)] | None = None
    coverage: _Fraction | None = None


class Expected(NamedTuple):
    p10: float
    p50: float
    p90: float


# ----- the instrument's scale ---------------------------------------------------------------------


def total_resolution(defn: InstrumentDefinition) -> Decimal:
    """The smallest step between two totals: the finest item step of a sum, 0.0001 for a mean
    (means are reported to 4 places). Two adjacent bands leave no gap when the second starts at
    most this far above the end of the first."""
    if defn.scoring.method == "mean":
        return Decimal("0.0001")
    steps = [dec(it.step) for it in defn.total_items if dec(it.step) > 0]
    return min(steps, default=Decimal("0.0001"))


def scale_problems(defn: InstrumentDefinition) -> list[tuple[str, str]]:
    """Why the instrument cannot have a model: it needs a total and a direction."""
    if defn.total_range is None or defn.direction is None:
        return [("instrument", f"{defn.code} has no total score with a direction to expect")]
    return []


def band_problems(
    defn: InstrumentDefinition, ranges: Sequence[tuple[float, float]], field: str = "bands"
) -> list[tuple[str, str]]:
    """Intake bands, in order, cover the instrument's total range without gaps or overlaps
    (DESIGN.md §10.5). A gap is room for a total between two bands (see
    :func:`total_resolution`)."""
    problems = scale_problems(defn)
    if problems:
        return problems
    total_range = defn.total_range_exact()
    assert total_range is not None
    lo, hi = total_range
    step = total_resolution(defn)
    for i, (start, end) in enumerate(ranges):
        at = f"{field}[{i}]"
        if dec(start) > dec(end):
            problems.append((f"{at}.intake_max", "must not be below intake_min"))
        if i == 0:
            if dec(start) != lo:
                problems.append((f"{at}.intake_min", f"must be {lo}, the lowest total"))
            continue
        previous_end = max(dec(end) for _, end in ranges[:i])
        if dec(start) <= previous_end:
            problems.append(
                (f"{at}.intake_min", f"overlaps the band before (ends at {previous_end})")
            )
        elif dec(start) - previous_end > step:
            problems.append(
                (f"{at}.intake_min", f"leaves a gap after the band before (ends at {previous_end})")
            )
    if ranges and dec(ranges[-1][1]) != hi:
        problems.append(
            (f"{field}[{len(ranges) - 1}].intake_max", f"must be {hi}, the highest total")
        )
    return problems


def model_problems(defn: InstrumentDefinition, model: ExpectedResponse) -> list[tuple[str, str]]:
    """Everything wrong with a model for this instrument, as ``(field, message)`` pairs: bands that
    do not tile the total range, sessions not ascending, percentiles out of order (p10 ≤ p50 ≤ p90)
    or outside the total range."""
    problems = band_problems(defn, [(b.intake_min, b.intake_max) for b in model.bands])
    if scale_problems(defn):
        return problems
    total_range = defn.total_range
    assert total_range is not None
    lo, hi = total_range
    for i, band in enumerate(model.bands):
        previous: int | None = None
        for j, point in enumerate(band.sessions):
            at = f"bands[{i}].sessions[{j}]"
            if previous is not None and point.session <= previous:
                problems.append((f"{at}.session", "sessions must be ascending, each listed once"))
            previous = point.session
            if point.p10 > point.p50:
                problems.append((f"{at}.p10", "must not be above p50 (p10 ≤ p50 ≤ p90)"))
            if point.p50 > point.p90:
                problems.append((f"{at}.p90", "must not be below p50 (p10 ≤ p50 ≤ p90)"))
            for name in ("p10", "p50", "p90"):
                value = getattr(point, name)
                if not lo <= value <= hi:
                    problems.append((f"{at}.{name}", f"must lie within the total range {lo}-{hi}"))
    return problems


# ----- reading a model ----------------------------------------------------------------------------


def curve_session(session_number: int, first_session: int) -> int:
    """The curve session of a score: 1 for the series' first score (see the module's notes)."""
    return session_number - first_session + 1


def band_for(model: ExpectedResponse, intake: float) -> IntakeBand | None:
    """The band of an intake score: the last whose ``intake_min`` is not above it (a prorated total
    between two bands' grids goes with the lower)."""
    found = None
    for band in model.bands:
        if band.intake_min <= intake:
            found = band
    return found


def expected_at(model: ExpectedResponse, intake: float, session: int) -> Expected | None:
    """The expected score at a curve session for a series with this intake score: the listed
    session, else the last listed one before it (sessions past the last use the last; DESIGN.md
    §10.5); ``None`` before the first listed session."""
    band = band_for(model, intake)
    if band is None:
        return None
    found = None
    for point in band.sessions:
        if point.session > session:
            break
        found = point
    return None if found is None else Expected(found.p10, found.p50, found.p90)


def worse_than_expected(value: float, expected: Expected, direction: Direction) -> bool:
    """Outside the tolerance band on the unhealthy side (Finch, Lambert & Schaalje 2001): below the
    10th percentile for higher-is-better, above the 90th for lower-is-better (the p10/p90
    boundary is Attune's choice [D], psychometrics.md "Expected treatment response")."""
    if direction == "higher_is_better":
        return dec(value) < dec(expected.p10)
    return dec(value) > dec(expected.p90)


# ----- fitting ------------------------------------------------------------------------------------


class TooFewEpisodes(ValueError):
    """Not enough closed episodes to fit: ``needed`` per band, ``have`` per band (by band index;
    one entry when the bands were to be made from the data)."""

    def __init__(self, needed: int, have: list[int], message: str) -> None:
        super().__init__(message)
        self.needed = needed
        self.have = have


@dataclass(frozen=True, slots=True)
class Coverage:
    """Share of scores within ``[p10, p90]``: overall, per curve session and per band index."""

    overall: float | None
    by_session: dict[int, float]
    by_band: dict[int, float]
    n_scores: int


Series = Sequence[tuple[int, float]]  # (session_number, total), any order


def _curve_points(series: Series) -> list[tuple[int, float]]:
    ordered = sorted(series)
    first = ordered[0][0]
    return [(curve_session(n, first), float(v)) for n, v in ordered]


def band_index(starts: Sequence[float], intake: float) -> int:
    """Index of the last band starting at or below ``intake`` (0 below the first)."""
    return max(0, bisect_right(starts, intake) - 1)


def default_bands(
    defn: InstrumentDefinition, intakes: Sequence[float]
) -> list[tuple[float, float]]:
    """Up to :data:`MAX_DEFAULT_BANDS` bands of about equal counts of intake scores, each with at
    least :data:`MIN_EPISODES_PER_BAND`, tiling the total range (cuts at observed intake scores,
    the next band one :func:`total_resolution` above)."""
    total_range = defn.total_range_exact()
    assert total_range is not None
    lo, hi = total_range
    n = len(intakes)
    k = max(1, min(MAX_DEFAULT_BANDS, n // MIN_EPISODES_PER_BAND))
    target = n / k
    counts: dict[Decimal, int] = defaultdict(int)
    for v in intakes:
        counts[dec(v)] += 1
    step = total_resolution(defn)
    ranges: list[tuple[float, float]] = []
    start, taken, in_band = lo, 0, 0
    for value in sorted(counts):
        in_band += counts[value]
        taken += counts[value]
        if len(ranges) < k - 1 and in_band >= target and n - taken >= MIN_EPISODES_PER_BAND:
            end = max(value, start)
            if end + step > hi:
                break
            ranges.append((float(start), float(end)))
            start, in_band = end + step, 0
    ranges.append((float(start), float(hi)))
    return ranges


def _quantiles(values: list[float]) -> tuple[float, float, float]:
    """10th, 50th and 90th percentile, linear interpolation between order statistics
    (``statistics.quantiles(method="inclusive")``, numpy's default, R's type 7)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    return cuts[0], cuts[4], cuts[8]


def _clamp(value: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, value))


def fit_band(
    episodes: Sequence[list[tuple[int, float]]],
    lo: float,
    hi: float,
    min_scores: int = MIN_SCORES_PER_SESSION,
) -> tuple[float, float, list[ExpectedScore]]:
    """One band of episodes (each its ``(curve session, score)`` points, intake first).

    The curve: ``score = a + b·ln(session)``, least squares over every score after the intake
    (curve sessions 2, 3, …; the intake picked the band, so it is not a free outcome). The band:
    the 10th/50th/90th percentile of the curve's residuals added to the curve, the percentiles
    smoothed over sessions (:func:`_spread`), as a model's residual spread gives a tolerance band
    around the expected curve (Finch, Lambert & Schaalje 2001). Curve session 1 lists the
    percentiles of the band's intake scores themselves. Sessions are listed from 1 to the last
    with at least ``min_scores`` scores (beyond it the last listed session applies: no
    extrapolation); values are clamped to the total range ``lo``-``hi``. Returns
    ``(a, b, sessions)``."""
    n = sx = sy = sxx = sxy = 0.0
    counts: dict[int, int] = defaultdict(int)
    intakes = []
    for points in episodes:
        intakes.append(points[0][1])
        for s, y in points[1:]:
            x = math.log(s)
            n += 1
            sx += x
            sy += y
            sxx += x * x
            sxy += x * y
            counts[s] += 1
    if n == 0:
        raise ValueError("a band needs scores after the intake")
    denominator = n * sxx - sx * sx
    slope = 0.0 if denominator <= 1e-12 * max(1.0, n * sxx) else (n * sxy - sx * sy) / denominator
    intercept = (sy - slope * sx) / n
    residuals: dict[int, list[float]] = defaultdict(list)
    for points in episodes:
        for s, y in points[1:]:
            residuals[s].append(y - (intercept + slope * math.log(s)))
    spread = _spread(residuals, min_scores)
    i10, i50, i90 = _quantiles(intakes)
    last = max((s for s, c in counts.items() if c >= min_scores), default=max(counts))
    last = min(last, MAX_SESSIONS)
    sessions = [
        ExpectedScore(
            session=1,
            p10=_r(_clamp(i10, lo, hi)),
            p50=_r(_clamp(i50, lo, hi)),
            p90=_r(_clamp(i90, lo, hi)),
        )
    ]
    for s in range(2, last + 1):
        x = math.log(s)
        curve = intercept + slope * x
        q10, q50, q90 = (a + b * x for a, b in spread)
        q50 = min(max(q50, q10), q90)  # the lines could cross between sessions; keep the order
        sessions.append(
            ExpectedScore(
                session=s,
                p10=_r(_clamp(curve + min(q10, q50), lo, hi)),
                p50=_r(_clamp(curve + q50, lo, hi)),
                p90=_r(_clamp(curve + max(q90, q50), lo, hi)),
            )
        )
    return intercept, slope, sessions


def _spread(residuals: dict[int, list[float]], min_scores: int) -> list[tuple[float, float]]:
    """The 10th, 50th and 90th percentile of the residuals as lines in ln(session), ``(a, b)``
    each: each session with at least ``min_scores`` residuals gives its percentiles, and a least
    squares line through them (weighted by the session's count) lets the spread grow or shrink
    over treatment while sparse sessions borrow strength from the others. Without such sessions,
    every residual pooled: a constant."""
    groups = [(s, r) for s, r in sorted(residuals.items()) if len(r) >= min_scores]
    if not groups:
        pooled = _quantiles([v for r in residuals.values() for v in r])
        return [(q, 0.0) for q in pooled]
    weights = [float(len(r)) for _, r in groups]
    xs = [math.log(s) for s, _ in groups]
    per_session = [_quantiles(r) for _, r in groups]
    total = sum(weights)
    mean_x = sum(w * x for w, x in zip(weights, xs, strict=True)) / total
    sxx = sum(w * (x - mean_x) ** 2 for w, x in zip(weights, xs, strict=True))
    lines = []
    for k in range(3):
        ys = [q[k] for q in per_session]
        mean_y = sum(w * y for w, y in zip(weights, ys, strict=True)) / total
        sxy = sum(w * (x - mean_x) * (y - mean_y) for w, x, y in zip(weights, xs, ys, strict=True))
        b = 0.0 if sxx <= 1e-12 else sxy / sxx
        lines.append((mean_y - b * mean_x, b))
    return lines


def _r(value: float) -> float:
    return round(value, 4)


def coverage(model: ExpectedResponse, episodes: Sequence[Series]) -> Coverage:
    """How many of the episodes' scores lie within ``[p10, p90]`` of the model (every score after
    the intake, which is the curve's own starting point)."""
    inside_s: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    inside_b: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    starts = [b.intake_min for b in model.bands]
    for series in episodes:
        points = _curve_points(series)
        if len(points) < 2:
            continue
        intake = points[0][1]
        band = band_index(starts, intake)
        for s, y in points[1:]:
            expected = expected_at(model, intake, s)
            if expected is None:
                continue
            hit = int(expected.p10 <= y <= expected.p90)
            for counter in (inside_s[s], inside_b[band]):
                counter[0] += hit
                counter[1] += 1
    total = sum(c[1] for c in inside_b.values())
    hits = sum(c[0] for c in inside_b.values())
    return Coverage(
        overall=None if total == 0 else hits / total,
        by_session={s: c[0] / c[1] for s, c in sorted(inside_s.items())},
        by_band={b: c[0] / c[1] for b, c in sorted(inside_b.items())},
        n_scores=total,
    )


def _fit(
    defn: InstrumentDefinition,
    ranges: Sequence[tuple[float, float]],
    by_band: Sequence[Sequence[list[tuple[int, float]]]],
) -> ExpectedResponse:
    total_range = defn.total_range
    assert total_range is not None
    lo, hi = total_range
    bands = []
    for (start, end), episodes in zip(ranges, by_band, strict=True):
        _, _, sessions = fit_band(episodes, lo, hi)
        bands.append(
            IntakeBand(
                intake_min=start, intake_max=end, sessions=sessions, n_episodes=len(episodes)
            )
        )
    return ExpectedResponse(bands=bands, source="fitted", n_episodes=sum(len(e) for e in by_band))


def fit(
    defn: InstrumentDefinition,
    episodes: Sequence[Series],
    intake_bands: Sequence[tuple[float, float]] | None = None,
) -> ExpectedResponse:
    """Fit a model from closed episodes (each its series of ``(session_number, total)``; those
    with fewer than two scores take no part). ``intake_bands``: validated with
    :func:`band_problems` by the caller; ``None``: :func:`default_bands`. Raises
    :class:`TooFewEpisodes` when a band has fewer than :data:`MIN_EPISODES_PER_BAND`.

    The returned model is fitted on every episode; its ``coverage`` (overall and per band) is that
    of a model fitted on four in five episodes, measured on the fifth held out."""
    usable = [_curve_points(s) for s in episodes if len(s) >= 2]
    intakes = [points[0][1] for points in usable]
    if intake_bands is None:
        if len(usable) < MIN_EPISODES_PER_BAND:
            raise TooFewEpisodes(
                MIN_EPISODES_PER_BAND,
                [len(usable)],
                f"fitting needs at least {MIN_EPISODES_PER_BAND} closed episodes with two or more "
                f"{defn.code} scores; there are {len(usable)}",
            )
        ranges = default_bands(defn, intakes)
    else:
        ranges = list(intake_bands)
    starts = [start for start, _ in ranges]
    by_band: list[list[list[tuple[int, float]]]] = [[] for _ in ranges]
    for points in usable:
        by_band[band_index(starts, points[0][1])].append(points)
    short = [len(b) for b in by_band]
    if any(n < MIN_EPISODES_PER_BAND for n in short):
        listed = ", ".join(
            f"{_fmt(s)}-{_fmt(e)}: {n}" for (s, e), n in zip(ranges, short, strict=True)
        )
        raise TooFewEpisodes(
            MIN_EPISODES_PER_BAND,
            short,
            f"fitting needs at least {MIN_EPISODES_PER_BAND} closed episodes with two or more "
            f"{defn.code} scores in each intake band; by band ({listed})",
        )
    model = _fit(defn, ranges, by_band)
    last = HOLDOUT_EVERY - 1  # the 5th, 10th, ... episode of each band is held out
    training = [[p for i, p in enumerate(band) if i % HOLDOUT_EVERY != last] for band in by_band]
    held_out = [p for band in by_band for i, p in enumerate(band) if i % HOLDOUT_EVERY == last]
    check = coverage(
        _fit(defn, ranges, training),
        [[(s, y) for s, y in points] for points in held_out],
    )
    bands = [
        band.model_copy(update={"coverage": _round(check.by_band.get(i))})
        for i, band in enumerate(model.bands)
    ]
    return model.model_copy(update={"bands": bands, "coverage": _round(check.overall)})


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _fmt(value: float) -> str:
    return f"{value:g}"
