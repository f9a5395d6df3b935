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
- ``window_passed`` once the series has reached session t + window (``as_of_session``, default: the
  last observed session); an unrepaired rupture with the window passed is ``unrepaired``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from services.instruments.schema import InstrumentDefinition, dec

MIN_EARLIER = 3
SD_WINDOW = 5
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


@dataclass(frozen=True)
class Rupture:
    session_number: int
    drop: float
    threshold: float
    previous: float
    current: float
    earlier_sd: float
    repaired_at_session: int | None
    window_passed: bool

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
    """Every rupture in ``(session_number, score)`` pairs (any order; session numbers unique)."""
    points = sorted(series)
    sessions = [s for s, _ in points]
    if len(set(sessions)) != len(sessions):
        raise ValueError("session numbers must be unique")
    values = [v for _, v in points]
    latest = as_of_session if as_of_session is not None else (sessions[-1] if sessions else 0)
    ruptures: list[Rupture] = []
    for i in range(MIN_EARLIER, len(points)):
        previous, current = values[i - 1], values[i]
        if previous - current < min_drop - 1e-6:
            continue  # clearly below the floor whatever the SD (float suffices to tell)
        drop = float(dec(previous) - dec(current))  # exact: 35.3 - 34.1 is 1.2
        if drop < min_drop:
            continue
        earlier = values[max(0, i - SD_WINDOW) : i]
        earlier_sd = statistics.stdev(earlier)
        threshold = max(k * earlier_sd, min_drop)
        if drop < threshold:
            continue
        session = sessions[i]
        window_end = session + repair_window
        repaired_at = next(
            (s for s, v in points[i + 1 :] if s <= window_end and dec(v) >= dec(previous)),
            None,
        )
        ruptures.append(
            Rupture(
                session_number=session,
                drop=drop,
                threshold=threshold,
                previous=previous,
                current=current,
                earlier_sd=earlier_sd,
                repaired_at_session=repaired_at,
                window_passed=latest >= window_end,
            )
        )
    return ruptures
