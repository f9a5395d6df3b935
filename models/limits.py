"""Shared state of the rate limits and the export cap (DESIGN.md §2: rate counters live in the
database, so every API replica counts against the same numbers)."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import UTCDateTime, new_id


class RateLimitCounter(SQLModel, table=True):
    """One fixed-window counter of the `limits` library (api/ratelimit.py): its key names the
    limit and who is counted (a client address, an API key id), never a token."""

    __tablename__ = "rate_limit_counters"
    __table_args__ = (sa.Index("ix_rate_limit_counters_expires_at", "expires_at"),)

    key: str = Field(max_length=255, primary_key=True)
    count: int
    # Seconds since the epoch: the window's end, compared with the caller's clock.
    expires_at: float


class ExportLease(SQLModel, table=True):
    """An export running now: the per-organisation cap counts these rows, so it holds across
    replicas. A lease ends when its export does; one whose process died expires by itself."""

    __tablename__ = "export_leases"
    __table_args__ = (sa.Index("ix_export_leases_org_id_expires_at", "org_id", "expires_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    key_id: uuid.UUID | None = None
    expires_at: datetime = Field(sa_type=UTCDateTime)
