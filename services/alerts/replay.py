"""Alert lifecycle over a series (DESIGN.md §6): fold the rules' events into alerts.

- At most one **open** alert per key (rule, instrument, subscale). A repeat trigger while it is open
  updates it (message, evidence, parameters, triggering session and submission; severity may rise,
  never fall), it never duplicates it.
- Once resolved, an alert stays resolved; a later trigger opens a *new* alert. The result can so
  hold several resolved alerts per key, and at most one open one.
- Auto-clearing: ``condition_cleared`` (``alliance.low``, ``outcome.*``) and ``repaired``
  (``alliance.rupture``). Rules cleared by a person stay open here; people resolve them through the
  API.

:func:`replay` computes the alerts of a whole history at once; :func:`step` is the incremental form
used after each submission. For any series, folding :func:`step` over its prefixes gives the same
list as :func:`replay` (tested with hypothesis).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise

from services.alerts.model import AlertState, Event, SeriesPoint
from services.alerts.rules import rule_events
from services.alerts.settings import RULES, SEVERITY_RANK, RuleSetting, Severity
from services.instruments.schema import InstrumentDefinition, Population


def _check_series(series: Sequence[SeriesPoint]) -> None:
    sessions = [p.session_number for p in series]
    if any(b <= a for a, b in pairwise(sessions)):
        raise ValueError("a series holds one submission per session, in session order")
    if sessions and sessions[0] < 1:
        raise ValueError("session numbers start at 1")


def _higher(a: Severity, b: Severity) -> Severity:
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


def _open_index(states: Sequence[AlertState], event: Event) -> int | None:
    key = (event.rule_id, event.instrument, event.subscale)
    for i in range(len(states) - 1, -1, -1):
        if states[i].status == "open" and states[i].key == key:
            return i
    return None


def apply_events(states: Iterable[AlertState], events: Iterable[Event]) -> list[AlertState]:
    """The alerts after ``events`` (in order) on top of ``states``; pure, ``states`` is not
    changed. New alerts are appended, so the list is in order of creation."""
    out = list(states)
    for event in events:
        i = _open_index(out, event)
        if event.action == "raise":
            if i is None:
                out.append(
                    AlertState(
                        rule_id=event.rule_id, rule_version=RULES[event.rule_id].version,
                        params=dict(event.params), type=event.rule_id, severity=event.severity,
                        instrument=event.instrument, subscale=event.subscale, status="open",
                        resolution=None, session_number=event.session_number,
                        submission_id=event.submission_id,
                        first_session_number=event.session_number,
                        message=event.message, evidence=dict(event.evidence),
                    )
                )  # fmt: skip
            else:
                alert = out[i]
                out[i] = alert.model_copy(
                    update={
                        "severity": _higher(alert.severity, event.severity),
                        "session_number": event.session_number,
                        "submission_id": event.submission_id,
                        "message": event.message,
                        "evidence": dict(event.evidence),
                        "params": dict(event.params),
                    }
                )
            continue
        if i is None:
            continue
        alert = out[i]
        if event.only_if_session is not None and alert.session_number != event.only_if_session:
            continue
        if event.action == "clear":
            out[i] = alert.model_copy(
                update={
                    "status": "resolved",
                    "resolution": event.resolution,
                    "resolved_session_number": event.session_number,
                    "evidence": {**alert.evidence, **event.evidence},
                }
            )
        else:  # escalate
            out[i] = alert.model_copy(
                update={
                    "severity": _higher(alert.severity, event.severity),
                    "message": event.message,
                    "evidence": {**alert.evidence, **event.evidence},
                }
            )
    return out


def replay(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population = "adult",
    settings: Mapping[str, RuleSetting] | None = None,
) -> list[AlertState]:
    """The alerts of a whole series (one instrument, one respondent), computed at once: every rule
    over the full history, then the lifecycle in session order. Deterministic."""
    _check_series(series)
    return apply_events([], rule_events(defn, series, population, settings))


def step(
    states: Sequence[AlertState],
    defn: InstrumentDefinition,
    series_so_far: Sequence[SeriesPoint],
    population: Population = "adult",
    settings: Mapping[str, RuleSetting] | None = None,
) -> list[AlertState]:
    """The alerts after the latest submission of ``series_so_far``: ``states`` (this series' alerts
    after the previous session; alerts of other instruments pass through unchanged) updated with
    what the rules say about the last session only."""
    _check_series(series_so_far)
    if not series_so_far:
        return list(states)
    latest = series_so_far[-1].session_number
    events = rule_events(defn, series_so_far, population, settings)
    return apply_events(states, (e for e in events if e.session_number == latest))
