"""Events for the outbox and the webhooks that carry them (DESIGN.md §8): what each one says.

Payloads are thin on purpose: ids to fetch the details with, and for alerts a summary of the alert
(rule, severity, status). Never answers, scores, messages or notes: a webhook receiver is another
system, and whatever it needs beyond the summary it reads through the API, under its own key,
audited. Pure: no database, no I/O.
"""

import uuid
from datetime import UTC, datetime
from operator import itemgetter
from typing import TypedDict

from models.base import new_id
from services.alerts.model import AlertRow
from services.submissions.rows import SubmissionValues

_ALERT_SUMMARY = (
    "type",
    "severity",
    "status",
    "resolution",
    "instrument",
    "subscale",
    "session_number",
    "submission_id",
)
_summary = itemgetter(*_ALERT_SUMMARY)


class EventPayload(TypedDict):
    """What a webhook receives: the event's type, time and thin data."""

    type: str
    timestamp: str
    data: dict[str, object]


class EventRow(TypedDict):
    """A row of ``outbox_events`` before it is numbered (``seq``)."""

    id: uuid.UUID
    org_id: uuid.UUID
    episode_id: uuid.UUID
    type: str
    subject_id: uuid.UUID
    payload: EventPayload
    created_at: datetime


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event(
    org_id: uuid.UUID,
    episode_id: uuid.UUID,
    event_type: str,
    subject_id: uuid.UUID,
    data: dict[str, object],
    at: datetime,
) -> EventRow:
    return {
        "id": new_id(),
        "org_id": org_id,
        "episode_id": episode_id,
        "type": event_type,
        "subject_id": subject_id,
        "payload": {"type": event_type, "timestamp": _rfc3339(at), "data": data},
        "created_at": at,
    }


def _people(episode_id: uuid.UUID, client_id: uuid.UUID, clinician_id: uuid.UUID) -> dict[str, str]:
    return {
        "episode_id": str(episode_id),
        "client_id": str(client_id),
        "clinician_id": str(clinician_id),
    }


def submission_created(
    values: SubmissionValues, client_id: uuid.UUID, clinician_id: uuid.UUID
) -> EventRow:
    data: dict[str, object] = {
        "id": str(values["id"]),
        **_people(values["episode_id"], client_id, clinician_id),
        "instrument": values["instrument"],
        "instrument_version": values["instrument_version"],
        "session_number": values["session_number"],
        "respondent": values["respondent"],
    }
    return _event(
        values["org_id"],
        values["episode_id"],
        "submission.created",
        values["id"],
        data,
        values["created_at"],
    )


def alert_type_for(change: str, status: str) -> str:
    """The event for an alert change: the rule engine names the change (created, updated,
    resolved); a person's acknowledgement is an update, their resolution a resolution."""
    if change == "created":
        return "alert.created"
    return "alert.resolved" if status == "resolved" else "alert.updated"


def alert_changed(
    change: str,
    row: AlertRow,
    client_id: uuid.UUID,
    clinician_id: uuid.UUID,
) -> EventRow:
    summary: dict[str, object] = dict(zip(_ALERT_SUMMARY, _summary(row), strict=True))
    for name in ("instrument", "subscale"):
        summary[name] = summary[name] or None  # stored as '' when absent
    if summary["submission_id"] is not None:
        summary["submission_id"] = str(summary["submission_id"])
    data = {"id": str(row["id"]), **_people(row["episode_id"], client_id, clinician_id), **summary}
    # The handled alert a new alert of a discrete event follows (DESIGN.md §10.3.2), or None.
    data["previous_alert_id"] = (row["evidence"] or {}).get("previous_alert_id")
    return _event(
        row["org_id"],
        row["episode_id"],
        alert_type_for(change, row["status"]),
        row["id"],
        data,
        row["updated_at"],
    )
