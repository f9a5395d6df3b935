"""Rupture-repair sequences in session-by-session alliance scores (higher is better).

Stiles et al. (2004, J Counseling Psychology 51(1), 81-92) and Strauss et al. (2006, JCCP 74(2),
337-345): a drop in a client's alliance ratings followed by a return, with 1-SD / 2-SD thresholds.
Gumz et al. (2012, BMC Med Res Methodol 12:10): guard against over-reading tiny dips in very stable
courses, hence the ``min_drop`` floor. Attune's rule [D] (reference/psychometrics.md; DESIGN.md §6
``alliance.rupture``):

    with ≥ 3 earlier scores, rupture at t when
    score[t-1] - score[t] ≥ max(k · SD(earlier scores, last 5), min_drop)

- "earlier scores" are the *observed* scores before t (sessions without a score are skipped), at
  most the last 5; SD is the sample SD (n - 1), so 48, 50, 51, 49 → 1.291;
- ``score[t-1]`` is the preceding observed score;
- repaired at the first later observed session within ``repair_window`` session *numbers* (t+1 …
  t+window) whose score is ≥ score[t-1]: a missed session uses up part of the window, as calendar
  time does;
- gradual declines (DESIGN.md §10.3.7; Gumz et al. 2012 found a decline over more than one
  session the second most common pattern, lasting up to six sessions): when no single step is a
  rupture, a run of two to six falling steps whose sum reaches the threshold for a fall from where
  it began (same ``max(k · SD, min_drop)``, the SD of the scores up to that level) is one, at the
  session where the sum first reaches it; the level before the decline is the repair target; a
  run of more than six falling steps is not (it is measured from where it began, not from a
  sliding start, so one decline is one rupture);
- ``window_passed`` once the series has reached session t + window (``as_of_session``, default: the
  last observed session); an unrepaired rupture with the window passed is ``unrepaired``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from services.instruments.schema import InstrumentDefinition, dec

MIN_EARLIER = 3
SD_WINDOW = 5
# Gradual declines (DESIGN.md §10.3.7): Gumz et al. (2012) saw declines lasting up to six sessions.
MIN_DECLINE_STEPS = 2
MAX_DECLINE_STEPS = 6
DEFAULT_K = 1.0
DEFAULT_REPAIR_WINDOW = 3

# DESIGN.md §6 ``alliance.rupture`` defaults (per-organisation settings may override them): SRS
# total 2 points, WAI-SR total 4, any WAI-SR subscale 2.
_TOTAL_MIN_DROP = {"srs": 2.0, "wai-sr": 4.0}
_SUBSCALE_MIN_DROP = {"wai-sr": 2.0}


def default_min_drop(defn: InstrumentDefinition, subscale: str | None = None) -> float | None:
    """Default ``min_drop`` for the total (``subscale=None``) or a subscale of an alliance
    instrument; ``None`` when Attune has no default (organisation-defined instruments: set one
    explicitly)."""
    if defn.kind != "alliance":
        return None
    if subscale is None:
        return _TOTAL_MIN_DROP.get(defn.code)
    if subscale not in defn.subscales:
        raise KeyError(f"'{defn.code}' has no subscale '{subscale}'")
    return _SUBSCALE_MIN_DROP.get(defn.code)


Pattern = Literal["sudden", "gradual"]


@dataclass(frozen=True)
class Rupture:
    """``previous``: the level before the fall (the score just before a sudden drop, the score
    where a gradual decline began), which a repair must reach again; ``start_session``: its
    session."""

    session_number: int
    drop: float
    threshold: float
    previous: float
    current: float
    earlier_sd: float
    repaired_at_session: int | None
    window_passed: bool
    pattern: Pattern = "sudden"
    start_session: int | None = None

    @property
    def unrepaired(self) -> bool:
        """Open and past its repair window (the alert rule raises its severity then)."""
        return self.repaired_at_session is None and self.window_passed


def find_ruptures(
    series: Sequence[tuple[int, float]],
    *,
    min_drop: float,
    k: float = DEFAULT_K,
    repair_window: int = DEFAULT_REPAIR_WINDOW,
    as_of_session: int | None = None,
) -> list[Rupture]:
    """Every rupture in ``(session_number, score)`` pairs (any order; session numbers unique),
    sudden or gradual, in session order."""
    points = sorted(series)
    sessions = [s for s, _ in points]
    if len(set(sessions)) != len(sessions):
        raise ValueError("session numbers must be unique")
    values = [v for _, v in points]
    latest = as_of_session if as_of_session is not None else (sessions[-1] if sessions else 0)

    def threshold_after(pre: int) -> tuple[float, float]:
        """(threshold, SD) for a fall from the score at index ``pre``: the SD of the scores up to
        and including it, at most the last ``SD_WINDOW``."""
        earlier_sd = statistics.stdev(values[max(0, pre + 1 - SD_WINDOW) : pre + 1])
        return max(k * earlier_sd, min_drop), earlier_sd

    def fall(pre: int, i: int) -> float:
        return float(dec(values[pre]) - dec(values[i]))  # exact: 35.3 - 34.1 is 1.2

    def sudden(i: int) -> tuple[float, float] | None:
        """(threshold, SD) when the step into index ``i`` is a sudden rupture."""
        if i < MIN_EARLIER or values[i - 1] - values[i] < min_drop - 1e-6:
            return None  # too early, or clearly below the floor whatever the SD
        threshold, earlier_sd = threshold_after(i - 1)
        return (threshold, earlier_sd) if fall(i - 1, i) >= threshold else None

    ruptures: list[Rupture] = []
    for i in range(MIN_EARLIER, len(points)):
        if not values[i - 1] > values[i]:
            continue  # neither pattern ends on a step that does not fall
        pattern: Pattern = "sudden"
        pre = i - 1
        found = sudden(i)
        if found is None:
            pre = _decline_start(values, i)
            found = _gradual(pre, i, threshold_after, fall, sudden)
            pattern = "gradual"
        if found is None:
            continue
        threshold, earlier_sd = found
        session = sessions[i]
        window_end = session + repair_window
        repaired_at = next(
            (s for s, v in points[i + 1 :] if s <= window_end and dec(v) >= dec(values[pre])),
            None,
        )
        ruptures.append(
            Rupture(
                session_number=session,
                drop=fall(pre, i),
                threshold=threshold,
                previous=values[pre],
                current=values[i],
                earlier_sd=earlier_sd,
                repaired_at_session=repaired_at,
                window_passed=latest >= window_end,
                pattern=pattern,
                start_session=sessions[pre],
            )
        )
    return ruptures


def _decline_start(values: Sequence[float], i: int) -> int:
    """Index where the run of falling steps that ends at index ``i`` began; followed back at most
    one step beyond ``MAX_DECLINE_STEPS`` (a longer run is not a gradual rupture: Gumz et al. 2012
    saw declines of up to six sessions), so the verdict at ``i`` reads a bounded history."""
    pre = i
    while pre > max(0, i - MAX_DECLINE_STEPS - 1) and values[pre - 1] > values[pre]:
        pre -= 1
    return pre


def _gradual(
    pre: int,
    i: int,
    threshold_after: Callable[[int], tuple[float, float]],
    fall: Callable[[int, int], float],
    sudden: Callable[[int], tuple[float, float] | None],
) -> tuple[float, float] | None:
    """(threshold, SD) when the decline from index ``pre`` to ``i`` is a gradual rupture (DESIGN.md
    §10.3.7; Gumz et al. 2012, psychometrics.md "Gradual declines"): two to six falling steps, at
    least ``MIN_EARLIER`` scores up to where it began, a sum that reaches the threshold for a fall
    from there though no single step of it was a sudden rupture, and reaching it only now (a
    decline that goes on is one rupture, not one per session)."""
    if not MIN_DECLINE_STEPS <= i - pre <= MAX_DECLINE_STEPS or pre + 1 < MIN_EARLIER:
        return None
    threshold, earlier_sd = threshold_after(pre)
    if fall(pre, i) < threshold or fall(pre, i - 1) >= threshold:
        return None
    if any(sudden(j) is not None for j in range(pre + 1, i)):
        return None
    return threshold, earlier_sd
