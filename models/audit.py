"""Audit trail: who read or changed what, when, from where, and with what outcome.

Holds identifiers of the objects touched, never their contents: the trail must be safe to show an
auditor without disclosing health data.
"""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import JSONType, UTCDateTime, new_id, utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_org_id_id", "org_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    # No foreign key, as for key_id: every request writes an event, and a key made each one lock
    # its organisation's row FOR KEY SHARE, which concurrent requests of the organisation share
    # through a MultiXact (models/submissions.py, CareSession). The id is the caller's own.
    org_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None
    action: str = Field(max_length=64)
    resource_type: str = Field(max_length=64)
    resource_id: uuid.UUID | None = None
    outcome: str = Field(default="success", max_length=32)
    client_address: str | None = Field(default=None, max_length=64)
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # What an event needs beyond the object it names, never contents: an export's dataset,
    # format, filters and row count.
    details: dict[str, Any] | None = Field(default=None, sa_type=JSONType)


class AuditEventPublic(SQLModel):
    id: uuid.UUID
    key_id: uuid.UUID | None
    action: str
    resource_type: str
    resource_id: uuid.UUID | None
    outcome: str
    client_address: str | None
    occurred_at: datetime
    details: dict[str, Any] | None = None
