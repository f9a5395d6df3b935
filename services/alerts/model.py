"""Shapes shared by the alert rules and their replay: the input series, the rules' events and the
alerts they produce."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple, TypedDict

from pydantic import BaseModel, ConfigDict, JsonValue

from services.alerts.settings import RuleId, Severity

Status = Literal["open", "resolved"]
Resolution = Literal["condition_cleared", "repaired"]
Action = Literal["raise", "clear", "escalate"]


class SeriesPoint(NamedTuple):
    """One valid submission of the series (one per session): its scores and its raw answers (risk
    items and rupture-check are read from the answers)."""

    session_number: int
    submission_id: str
    total: float | None
    subscales: Mapping[str, float]
    answers: Mapping[str, float]


class AlertState(BaseModel):
    """An alert as the rules leave it after a session. ``session_number`` / ``submission_id``: the
    session that triggered it (the latest trigger when a repeat trigger updated it);
    ``first_session_number``: when it was first raised; ``resolved_session_number``: the session
    whose scores cleared it (auto-clearing rules only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: RuleId
    rule_version: str
    params: dict[str, JsonValue]
    type: RuleId
    severity: Severity
    instrument: str
    subscale: str | None
    status: Status
    resolution: Resolution | None
    session_number: int
    submission_id: str
    first_session_number: int
    resolved_session_number: int | None = None
    message: str
    evidence: dict[str, JsonValue]

    @property
    def key(self) -> tuple[str, str, str | None]:
        """At most one open alert per key: (rule, instrument, subscale)."""
        return (self.rule_id, self.instrument, self.subscale)


class EventDetails(TypedDict, total=False):
    """The fields of an `Event` a rule may set beyond its session, rule, instrument and action."""

    severity: Severity
    message: str
    evidence: dict[str, JsonValue]
    params: dict[str, JsonValue]
    resolution: Resolution | None
    only_if_session: int | None


@dataclass(frozen=True)
class Event:
    """What a rule says about one session of one key (rule, instrument, subscale).

    - ``raise``: open an alert, or update the open one (evidence, message, session; severity may
      rise, never fall);
    - ``clear``: resolve the open alert with ``resolution``;
    - ``escalate``: raise the open alert's severity and refresh its message and evidence, keeping
      the session that triggered it.

    ``only_if_session``: ``clear``/``escalate`` apply only when the open alert was last triggered at
    that session (a rupture's repair resolves the alert that tracks *that* rupture, not a later
    one).
    """

    session_number: int
    submission_id: str
    rule_id: RuleId
    instrument: str
    subscale: str | None
    action: Action
    severity: Severity = "warning"
    message: str = ""
    evidence: dict[str, JsonValue] = field(default_factory=dict)
    params: dict[str, JsonValue] = field(default_factory=dict)
    resolution: Resolution | None = None
    only_if_session: int | None = None


class SeriesColumns(TypedDict):
    """The columns every alert of one series shares."""

    org_id: uuid.UUID
    episode_id: uuid.UUID
    respondent: str
    rater: str


class AlertRow(SeriesColumns):
    """A row of the ``alerts`` table (models/alerts.py ``Alert``) as the stores read and write
    it. A typed dict rather than an object: the stores hand rows to SQLAlchemy as parameters and
    to PostgreSQL as JSON (``jsonb_populate_recordset``) as they are, on the submission hot path.
    Statuses, severities and resolutions are checked by the table's CHECK constraints."""

    id: uuid.UUID
    type: str
    severity: str
    status: str
    resolution: str | None
    instrument: str
    subscale: str
    session_number: int | None
    submission_id: uuid.UUID | None
    first_session_number: int | None
    message: str
    evidence: dict[str, JsonValue]
    rule_version: str
    rule_params: dict[str, JsonValue]
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by_key_id: uuid.UUID | None
    resolved_at: datetime | None
    resolved_by_key_id: uuid.UUID | None
    note: str | None
    escalated_at: datetime | None
