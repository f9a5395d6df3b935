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

from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import pairwise

from services.alerts.model import AlertState, Event, SeriesPoint
from services.alerts.rules import rule_events
from services.alerts.settings import (
    RULES,
    SEVERITY_RANK,
    AllianceRuptureParams,
    NotOnTrackParams,
    RuleSetting,
    Severity,
    resolve_settings,
)
from services.instruments.schema import InstrumentDefinition, Population
from services.trajectory.etr import ExpectedResponse
from services.trajectory.ruptures import MAX_DECLINE_STEPS, SD_WINDOW


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


ClosedByPerson = Mapping[tuple[str, str, str | None, int], int]
"""Alerts a person has taken over: (rule, instrument, subscale, first session) → the session the
alert had last been triggered at when they did. Those are the alerts a person resolved, and the
alerts of :data:`EVENT_RULES` a person acknowledged. The engine never changes such an alert again;
a trigger at a later session opens a new one."""

EVENT_RULES = frozenset({"risk.item", "rupture.reported", "alliance.drop", "concern.reported"})
"""Rules about discrete events (DESIGN.md §10.3.2): a new triggering submission after a person
acknowledged (or resolved) the alert opens a **new** open alert instead of being folded into the
one they have seen, so it reaches a person again (psychometrics.md "Safety invariants": a repeated
or worse risk answer after an alert was acknowledged must reach a person again as an open
alert)."""


def apply_events(
    states: Iterable[AlertState],
    events: Iterable[Event],
    closed_by_person: ClosedByPerson | None = None,
    late_submissions: Collection[str] = (),
) -> list[AlertState]:
    """The alerts after ``events`` (in order) on top of ``states``; pure, ``states`` is not
    changed. New alerts are appended, so the list is in order of creation. An alert in
    ``closed_by_person`` is let go (status ``resolved``, resolution ``None``: the person has it)
    before the first event after the session it was frozen at, or before a critical event of one
    of ``late_submissions`` (entered late, after the person took the alert over: a late risk
    answer reaches a person too, DESIGN.md §10.3.2)."""
    out = list(states)
    closed = closed_by_person or {}
    for event in events:
        i = _open_index(out, event)
        if i is not None and closed:
            alert = out[i]
            frozen = closed.get((*alert.key, alert.first_session_number))
            late = event.severity == "critical" and event.submission_id in late_submissions
            if frozen is not None and (event.session_number > frozen or late):
                out[i] = alert.model_copy(update={"status": "resolved", "resolution": None})
                i = None
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
    closed_by_person: ClosedByPerson | None = None,
    late_submissions: Collection[str] = (),
    *,
    expected: ExpectedResponse | None = None,
) -> list[AlertState]:
    """The alerts of a whole series (one instrument, one respondent), computed at once: every rule
    over the full history, then the lifecycle in session order. Deterministic. ``expected``: the
    organisation's expected-response model for the series (:func:`rule_events`)."""
    _check_series(series)
    events = rule_events(defn, series, population, settings, expected=expected)
    return apply_events([], events, closed_by_person, late_submissions)


def step(
    states: Sequence[AlertState],
    defn: InstrumentDefinition,
    series_so_far: Sequence[SeriesPoint],
    population: Population = "adult",
    settings: Mapping[str, RuleSetting] | None = None,
    closed_by_person: ClosedByPerson | None = None,
    *,
    expected: ExpectedResponse | None = None,
) -> list[AlertState]:
    """The alerts after the latest submission of ``series_so_far``: ``states`` (this series' alerts
    after the previous session; alerts of other instruments pass through unchanged) updated with
    what the rules say about the last session only."""
    _check_series(series_so_far)
    if not series_so_far:
        return list(states)
    latest = series_so_far[-1].session_number
    events = rule_events(defn, series_so_far, population, settings, latest, expected=expected)
    return apply_events(states, events, closed_by_person)


def history_needed(settings: Mapping[str, RuleSetting] | None = None) -> int:
    """How many of the latest sessions :func:`step` must see, besides the series' first score, to
    say what the rules make of the latest one: a rupture needs the scores before it for its SD, a
    gradual decline up to ``MAX_DECLINE_STEPS`` steps before that, and its repair or escalation
    may come up to ``repair_window`` sessions later; ``outcome.not_on_track`` counts observed
    scores up to ``high_from_session`` (DESIGN.md §10.3.4); the outcome rules otherwise compare with
    the first score only; the others look at one or two sessions. Stores read it through
    services/alerts/engine.history_window, from the settings in force."""
    resolved = resolve_settings(settings)
    rupture = resolved["alliance.rupture"].params_as(AllianceRuptureParams)
    not_on_track = resolved["outcome.not_on_track"].params_as(NotOnTrackParams)
    return max(
        rupture.repair_window + MAX_DECLINE_STEPS + SD_WINDOW + 1, not_on_track.high_from_session
    )
