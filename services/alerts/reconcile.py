"""Stored alerts brought in line with what the rules derive from a series (DESIGN.md §6).

Pure: rows in, rows out, no database. A row is a dict of the ``alerts`` table's columns.

The rules say what *follows from the history* (:class:`AlertState`); the stored rows also carry what
people did (acknowledged, resolved, notes). Reconciling keeps both:

- a derived alert is matched to its row by identity: (rule, instrument, subscale, first session)
  within the series (episode, instrument, respondent, rater);
- no row → one is created (``created``);
- a row a person resolved is never changed again: their decision stands (and
  :func:`~services.alerts.replay.apply_events` is told about it, so a later trigger opens a new
  alert instead of reviving this one); so is the alert of a discrete event (``risk.item``,
  ``rupture.reported``, ``alliance.drop``) a person acknowledged: a new event opens a new alert,
  whose ``evidence.previous_alert_id`` names the one the person had (DESIGN.md §10.3.2);
- otherwise the row takes the derived scores, message, evidence, severity and rule parameters;
  it is resolved when the derived alert is (``condition_cleared``, ``repaired``), reopened when a
  recompute finds the condition holds after all, and keeps its acknowledgement and note;
- on a full recompute (``full=True``), a row the rules no longer derive is resolved as
  ``retracted`` (the submission that raised it was voided, or a setting changed) — except a
  critical alert, which only a person resolves (DESIGN.md §10.3.3): it stays, with
  ``evidence.source_voided: true`` once the answer that raised it was voided.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Literal

from services.alerts.model import AlertRow, AlertState, SeriesColumns
from services.alerts.replay import EVENT_RULES, ClosedByPerson
from services.alerts.settings import RULES

Change = Literal["created", "updated", "resolved"]
Identity = tuple[str, str, str | None, int]

# Columns the rules own; the rest belong to people (acknowledgement, resolution by a person, note)
# or never change (ids, series, creation time).
DERIVED_COLUMNS = (
    "severity",
    "status",
    "resolution",
    "session_number",
    "submission_id",
    "message",
    "evidence",
    "rule_version",
    "rule_params",
    "resolved_at",
)
_derived = itemgetter(*DERIVED_COLUMNS)


def identity(row: AlertRow) -> Identity | None:
    first = row["first_session_number"]
    if first is None:
        return None
    return (row["type"], row["instrument"], row["subscale"] or None, first)


def _taken_over(row: AlertRow) -> bool:
    """A person resolved the row, or acknowledged the alert of a discrete event (DESIGN.md
    §10.3.2): the engine never changes it again."""
    if row["resolved_by_key_id"] is not None:
        return True
    return row["type"] in EVENT_RULES and row["status"] == "acknowledged"


def closed_by_person(rows: Sequence[AlertRow]) -> ClosedByPerson:
    """The rows a person has taken over (:func:`_taken_over`), as
    :func:`~services.alerts.replay.apply_events` wants them."""
    out: dict[tuple[str, str, str | None, int], int] = {}
    for row in rows:
        key = identity(row)
        if key is not None and _taken_over(row):
            # A rule's alert always names its session; its first one otherwise.
            session = row["session_number"]
            out[key] = key[3] if session is None else session
    return out


def _previous_alert_id(state: AlertState, rows: Sequence[AlertRow]) -> str | None:
    """For an alert of a discrete event, the alert of the same rule, instrument and subscale that
    a person had taken over before it was first raised (DESIGN.md §10.3.2
    ``evidence.previous_alert_id``): the latest such, by first session."""
    if state.rule_id not in EVENT_RULES:
        return None
    key = (state.rule_id, state.instrument, state.subscale)
    earlier = [
        (first, str(row["id"]))
        for row in rows
        if (found := identity(row)) is not None
        and found[:3] == key
        and (first := found[3]) < state.first_session_number
        and (row["acknowledged_at"] is not None or row["resolved_by_key_id"] is not None)
    ]
    return max(earlier)[1] if earlier else None


def _with_previous(state: AlertState, rows: Sequence[AlertRow]) -> AlertState:
    previous = _previous_alert_id(state, rows)
    if previous is None:
        return state
    return state.model_copy(update={"evidence": {**state.evidence, "previous_alert_id": previous}})


def to_state(row: AlertRow) -> AlertState:
    """An unresolved row as the rules' fold sees it (validated: the row's rule, severity and
    sessions are those the rules wrote)."""
    return AlertState.model_validate(
        {
            "rule_id": row["type"],
            "rule_version": row["rule_version"],
            "params": dict(row["rule_params"]),
            "type": row["type"],
            "severity": row["severity"],
            "instrument": row["instrument"],
            "subscale": row["subscale"] or None,
            "status": "open",
            "resolution": None,
            "session_number": row["session_number"],
            "submission_id": str(row["submission_id"]),
            "first_session_number": row["first_session_number"],
            "message": row["message"],
            "evidence": dict(row["evidence"]),
        }
    )


def new_row(
    state: AlertState, series: SeriesColumns, now: datetime, alert_id: uuid.UUID
) -> AlertRow:
    """``series``: the columns every alert of the series shares (org_id, episode_id, client_id,
    clinician_id, respondent, rater)."""
    resolved = state.status == "resolved"
    return {
        "org_id": series["org_id"],
        "episode_id": series["episode_id"],
        "respondent": series["respondent"],
        "rater": series["rater"],
        "id": alert_id,
        "type": state.rule_id,
        "severity": state.severity,
        "status": "resolved" if resolved else "open",
        "resolution": state.resolution if resolved else None,
        "instrument": state.instrument,
        "subscale": state.subscale or "",
        "session_number": state.session_number,
        "submission_id": uuid.UUID(state.submission_id),
        "first_session_number": state.first_session_number,
        "message": state.message,
        "evidence": dict(state.evidence),
        "rule_version": state.rule_version,
        "rule_params": dict(state.params),
        "created_at": now,
        "updated_at": now,
        "acknowledged_at": None,
        "acknowledged_by_key_id": None,
        "resolved_at": now if resolved else None,
        "resolved_by_key_id": None,
        "note": None,
        "escalated_at": None,
    }


def _derived_update(row: AlertRow, state: AlertState, now: datetime) -> AlertRow:
    out = row.copy()
    out["severity"] = state.severity
    out["session_number"] = state.session_number
    out["submission_id"] = uuid.UUID(state.submission_id)
    out["message"] = state.message
    out["evidence"] = dict(state.evidence)
    out["rule_version"] = state.rule_version
    out["rule_params"] = dict(state.params)
    if state.status == "resolved":
        if row["status"] != "resolved" or row["resolution"] != state.resolution:
            out["status"], out["resolution"], out["resolved_at"] = "resolved", state.resolution, now
    elif row["status"] == "resolved":  # the condition holds after all: reopen
        reopened = "acknowledged" if row["acknowledged_at"] is not None else "open"
        out["status"], out["resolution"], out["resolved_at"] = reopened, None, None
    return out


def _change(before: AlertRow, after: AlertRow) -> Change | None:
    if _derived(before) == _derived(after):
        return None
    if after["status"] == "resolved" and before["status"] != "resolved":
        return "resolved"
    return "updated"


def reconcile(
    derived: Sequence[AlertState],
    stored: Sequence[AlertRow],
    *,
    series: SeriesColumns,
    now: datetime,
    full: bool,
    new_id: Callable[[], uuid.UUID],
    valid_submissions: Collection[str] = (),
) -> list[tuple[Change, AlertRow]]:
    """The rows to write, each with what happened to it, in the order they must be written (see
    :func:`_write_order`). ``stored``: the series' rows — all of them for a full recompute, the
    unresolved ones for one new submission (``full=False``: nothing is retracted then).
    ``valid_submissions``: the ids of the series' valid submissions (full recompute)."""
    by_identity = {key: row for row in stored if (key := identity(row)) is not None}
    derived_keys = {(s.rule_id, s.instrument, s.subscale, s.first_session_number) for s in derived}
    # Critical alerts that the history no longer derives stay until a person resolves them
    # (DESIGN.md §10.3.3): on a full recompute, an open one takes over a new alert of its key
    # rather than be retracted and raised again (one open alert per key).
    kept = _kept_critical(by_identity, derived_keys) if full else {}
    matched: set[Identity] = set()
    writes: list[tuple[Change, AlertRow]] = []
    for state in derived:
        key = (state.rule_id, state.instrument, state.subscale, state.first_session_number)
        row = by_identity.get(key)
        if row is None and state.status == "resolved" and state.resolution is None:
            continue  # closed by a person, whose row is not among ``stored``
        state = _with_previous(state, stored)
        if row is None:
            row = _take_over(kept, state, matched)
        if row is None:
            writes.append(("created", new_row(state, series, now, new_id())))
            continue
        matched.add(identity(row) or key)
        if row["resolved_by_key_id"] is not None:
            continue
        if state.status == "resolved" and state.resolution is None:
            continue  # an acknowledged event alert: the person has it (DESIGN.md §10.3.2)
        after = _derived_update(row, state, now)
        change = _change(row, after)
        if change is not None:
            after["updated_at"] = now
            writes.append((change, after))
    if not full:
        return _write_order(writes)
    valid = {state.submission_id for state in derived} | set(valid_submissions)
    for key, row in by_identity.items():
        if key in matched or row["resolved_by_key_id"] is not None:
            continue
        if row["type"] not in RULES or row["resolution"] == "retracted":
            continue
        if key in kept:
            # Not retracted (DESIGN.md §10.3.3). Its answer still standing (a changed setting
            # would no longer raise it), it is left as it is; its answer voided, it says so.
            if str(row["submission_id"]) not in valid and not row["evidence"].get("source_voided"):
                after = row.copy()
                after["evidence"] = {**row["evidence"], "source_voided": True}
                after["updated_at"] = now
                writes.append(("updated", after))
            continue
        after = row.copy()
        after["status"], after["resolution"], after["updated_at"] = "resolved", "retracted", now
        if row["status"] != "resolved":
            after["resolved_at"] = now
        # An alert that had already cleared only changes its resolution.
        writes.append(("resolved" if row["status"] != "resolved" else "updated", after))
    return _write_order(writes)


def _kept_critical(
    by_identity: Mapping[Identity, AlertRow], derived_keys: Collection[Identity]
) -> dict[Identity, AlertRow]:
    """The unresolved critical rows no derived alert matches, which a full recompute keeps."""
    return {
        key: row
        for key, row in by_identity.items()
        if key not in derived_keys
        and row["severity"] == "critical"
        and row["status"] != "resolved"
        and row["type"] in RULES
    }


def _take_over(
    kept: Mapping[Identity, AlertRow], state: AlertState, matched: set[Identity]
) -> AlertRow | None:
    """A kept open critical row of the state's key, for an open derived alert that has no row of
    its own: the alert follows the answer that still stands (after its first one was voided)
    instead of a second open alert being raised beside it."""
    if state.status != "open":
        return None
    for key, row in kept.items():
        if key[:3] == state.key and key not in matched and row["status"] == "open":
            return row
    return None


def _write_order(
    writes: list[tuple[Change, AlertRow]],
) -> list[tuple[Change, AlertRow]]:
    """Rows that end resolved first, then the others, each group in the order the rules derived
    them (retractions after the derived rows). The table allows one unresolved alert per key, so
    the row a recompute retracts (or resolves) must be written before the row of the same key that
    it creates or reopens. New rows get their ids in ascending order: a UUIDv7 only orders by the
    millisecond, and lists show alerts newest first by id."""
    created = [row for change, row in writes if change == "created"]
    for row, alert_id in zip(created, sorted(row["id"] for row in created), strict=True):
        row["id"] = alert_id
    closing = [w for w in writes if w[1]["status"] == "resolved"]
    return closing + [w for w in writes if w[1]["status"] != "resolved"]
