"""Sudden gains and losses (Tang & DeRubeis 1999, JCCP 67(6), 894-904), with the Lutz et al. (2013)
critical t for missing neighbours, as implemented by the suddengains R package.

The series is indexed by session: ``values[0]`` is session 1; ``None`` marks a session without a
score.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.instruments.schema import Direction, dec

# Critical t (two-tailed, .05) by the number of values in the (pre, post) windows; Lutz et al.
# (2013): 3+3 → df 4, one side with 2 → df 3, both with 2 → df 2. A side with fewer than 2 values →
# undetermined.
_CRITICAL_T: dict[tuple[int, int], float] = {
    (3, 3): 2.776,
    (2, 3): 3.182,
    (3, 2): 3.182,
    (2, 2): 4.303,
}


@dataclass(frozen=True)
class SuddenChange:
    """``change`` is ``value[to] - value[from]``, signed like ``change_from_previous``."""

    from_session: int
    to_session: int
    change: float


def pooled_sd(pre: Sequence[float], post: Sequence[float]) -> float:
    """Pooled SD of two windows: √(((n1-1)·s1² + (n2-1)·s2²) / (n1 + n2 - 2)), s = sample SD."""
    n1, n2 = len(pre), len(post)
    s1, s2 = statistics.variance(pre), statistics.variance(post)
    return math.sqrt(((n1 - 1) * s1 + (n2 - 1) * s2) / (n1 + n2 - 2))


def critical_t(n_pre: int, n_post: int) -> float | None:
    """Critical t for the window sizes, or ``None`` when the test is undetermined."""
    return _CRITICAL_T.get((n_pre, n_post))


def _window(values: Sequence[float | None], start: int, stop: int) -> list[float]:
    return [v for v in values[max(start, 0) : stop] if v is not None]


def _is_sudden(values: Sequence[float | None], n: int, sign: int, cutoff: Decimal) -> bool:
    """Interval from 0-based position ``n`` to ``n + 1``; ``sign`` +1 tests a fall in score, -1 a
    rise."""
    before, after = values[n], values[n + 1]
    if before is None or after is None:
        return False
    change = (dec(before) - dec(after)) * sign
    # 1. At least the cut-off (T&D: 7 BDI points; Attune: the instrument's reliable-change points).
    if change < cutoff:
        return False
    # 2. At least 25 % of the pre-change score.
    if change < Decimal("0.25") * dec(before):
        return False
    # 3. Mean of x[N-2..N] vs mean of x[N+1..N+3] larger than t x pooled SD.
    pre, post = _window(values, n - 2, n + 1), _window(values, n + 1, n + 4)
    t = critical_t(len(pre), len(post))
    if t is None:
        return False
    diff = (statistics.fmean(pre) - statistics.fmean(post)) * sign
    return diff > t * pooled_sd(pre, post)


def find_sudden_changes(
    values: Sequence[float | None], *, direction: Direction, cutoff: float
) -> tuple[list[SuddenChange], list[SuddenChange]]:
    """(gains, losses). A gain is the T&D test in the healthy direction (a fall on a lower-is-better
    scale, a rise on a higher-is-better one, with criterion 2 taken relative to x[N] either way); a
    loss is the same test in the unhealthy direction."""
    healthy_fall = 1 if direction == "lower_is_better" else -1
    gains: list[SuddenChange] = []
    losses: list[SuddenChange] = []
    limit = dec(cutoff)
    for n in range(len(values) - 1):
        for sign, found in ((healthy_fall, gains), (-healthy_fall, losses)):
            if _is_sudden(values, n, sign, limit):
                before, after = values[n], values[n + 1]
                assert before is not None
                assert after is not None
                found.append(SuddenChange(n + 1, n + 2, float(dec(after) - dec(before))))
    return gains, losses
