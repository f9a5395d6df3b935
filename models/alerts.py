"""Alerts (DESIGN.md §6) and the organisation's alert-rule settings."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import ConfigDict, StringConstraints
from pydantic import Field as PydanticField
from sqlmodel import AutoString, Field, SQLModel

from models.base import JSONType, Schema, UTCDateTime, new_id, one_of, utcnow
from models.types import Note, Respondent

AlertStatus = Literal["open", "acknowledged", "resolved"]
AlertSeverity = Literal["warning", "high", "critical"]
# Resolutions a person may choose; the engine itself resolves as condition_cleared, repaired or
# retracted.
PersonResolution = Literal["repaired", "discussed", "referred", "dismissed", "other"]
EngineResolution = Literal["condition_cleared", "repaired", "retracted"]
AlertResolution = Literal[PersonResolution, EngineResolution]
# '' when the alert is about no one series (a concern).
AlertRespondent = Literal["", Respondent]
# The alert type of a client's concern (services/care/invitations.py): read only by keys that may
# read concerns (services/kernel/visibility.py).
CONCERN = "concern.reported"
AlertChange = Literal["created", "updated", "resolved"]
_UNESCALATED = "status = 'open' AND escalated_at IS NULL AND severity IN ('critical', 'high')"


class Alert(SQLModel, table=True):
    """One alert. Alerts raised by the rules are identified within their series by (rule,
    instrument, respondent, rater, subscale, first_session_number); ``resolved_by_key_id`` is set
    when a person resolved it, and the engine then never changes it again. The client and the
    clinician are the episode's (read through it: an episode may change clinician)."""

    __tablename__ = "alerts"
    __table_args__ = (
        sa.Index("ix_alerts_org_id_id", "org_id", "id"),
        sa.Index(
            "ix_alerts_series",
            "org_id",
            "episode_id",
            "instrument",
            "respondent",
            "rater",
        ),
        # At most one open alert per (episode, rule, instrument, respondent, rater, subscale): a
        # repeat trigger updates it. An acknowledged alert of a discrete event may stand beside a
        # newer open one (DESIGN.md §10.3.2). Concerns are raised one per report: not keyed.
        sa.Index(
            "uq_alerts_one_open_per_key",
            "org_id",
            "episode_id",
            "type",
            "instrument",
            "respondent",
            "rater",
            "subscale",
            unique=True,
            sqlite_where=sa.text("status = 'open' AND type <> 'concern.reported'"),
            postgresql_where=sa.text("status = 'open' AND type <> 'concern.reported'"),
        ),
        # Incremental exports walk an organization's alerts in change order (every change to an
        # alert sets updated_at).
        sa.Index("ix_alerts_org_id_updated_at_id", "org_id", "updated_at", "id"),
        # What the sweep escalates (services/alerts/sweep.py): open critical/high alerts not yet
        # escalated, by age.
        sa.Index(
            "ix_alerts_unescalated",
            "created_at",
            sqlite_where=sa.text(_UNESCALATED),
            postgresql_where=sa.text(_UNESCALATED),
        ),
        one_of("severity", AlertSeverity),
        one_of("status", AlertStatus),
        one_of("resolution", AlertResolution),
        one_of("respondent", AlertRespondent),
        # The episode, with its organisation (models/submissions.py, CareSession, says why).
        sa.ForeignKeyConstraint(["org_id", "episode_id"], ["episodes.org_id", "episodes.id"]),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID
    episode_id: uuid.UUID
    type: str = Field(max_length=64)
    severity: AlertSeverity = Field(sa_type=AutoString(length=16))
    status: AlertStatus = Field(default="open", sa_type=AutoString(length=16))
    resolution: AlertResolution | None = Field(default=None, sa_type=AutoString(length=32))
    # '' rather than NULL for "none", so the unique index above treats them as one value.
    instrument: str = Field(default="", max_length=64)
    respondent: AlertRespondent = Field(default="", sa_type=AutoString(length=16))
    rater: str = Field(default="", max_length=64)
    subscale: str = Field(default="", max_length=64)
    session_number: int | None = None
    submission_id: uuid.UUID | None = None
    first_session_number: int | None = None
    message: str = Field(max_length=4000)
    evidence: dict[str, Any] = Field(sa_type=JSONType)
    rule_version: str = Field(max_length=16)
    rule_params: dict[str, Any] = Field(sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by_key_id: uuid.UUID | None = None
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by_key_id: uuid.UUID | None = None
    note: str | None = Field(default=None, max_length=4000)
    # Set once by the sweep when an open critical/high alert went unacknowledged too long.
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AlertRuleSetting(SQLModel, table=True):
    """An organisation's override of one rule: ``{"enabled"?, "params"?}`` as validated by
    :func:`services.alerts.validate_override`; rules without a row use the defaults."""

    __tablename__ = "alert_rule_settings"

    org_id: uuid.UUID = Field(foreign_key="organizations.id", primary_key=True)
    rule_id: str = Field(max_length=64, primary_key=True)
    body: dict[str, Any] = Field(sa_type=JSONType)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by_key_id: uuid.UUID | None = None


class AlertRule(Schema):
    id: str
    version: str
    params: dict[str, Any]


class ConcernPublic(Schema):
    """What the client wrote, on a ``concern.reported`` alert read by itself: only keys that see
    concerns ever get that alert."""

    id: uuid.UUID
    category: str | None
    message: str
    created_at: datetime


class AlertPublic(Schema):
    id: uuid.UUID
    type: str
    severity: AlertSeverity
    status: AlertStatus
    resolution: str | None
    episode_id: uuid.UUID
    client_id: uuid.UUID
    clinician_id: uuid.UUID
    instrument: str | None
    respondent: str | None
    rater: str | None
    subscale: str | None
    session_number: int | None
    submission_id: uuid.UUID | None
    message: str
    evidence: dict[str, Any]
    rule: AlertRule
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    note: str | None
    # When the sweep escalated it (unacknowledged past the rule's escalate_after_hours).
    escalated_at: datetime | None = None
    concern: ConcernPublic | None = None


class AlertInSubmission(AlertPublic):
    """An alert as a submission's response lists it: what this submission did to it."""

    change: AlertChange


class AlertAcknowledge(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    note: Note | None = None


class AlertResolve(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    resolution: PersonResolution
    note: Note | None = None


RuleIdPath = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class AlertRuleUpdate(SQLModel):
    """``PUT /v1/alert-rules/{rule_id}``: every key optional; ``params`` (rule-wide) may be partial
    and is merged over the defaults (parameters not named go back to their defaults);
    ``instruments``: per-instrument values by instrument code (DESIGN.md §10.2)."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    enabled: bool | None = None
    params: dict[str, Any] = PydanticField(default_factory=dict, max_length=50)
    instruments: dict[str, Any] = PydanticField(default_factory=dict, max_length=200)


class AlertRuleSettingPublic(SQLModel):
    rule_id: str
    version: str
    enabled: bool
    can_disable: bool
    severity: AlertSeverity
    clears: str
    summary: str
    params: dict[str, Any]
    instruments: dict[str, Any]
    sources: dict[str, Literal["default", "organization"]]
    updated_at: datetime | None = None


class Recomputed(SQLModel):
    episodes: int
    created: int
    updated: int
    resolved: int


class RecomputedRuleSetting(AlertRuleSettingPublic):
    """The new setting and what recomputing the organisation's alerts under it changed."""

    recomputed: Recomputed
