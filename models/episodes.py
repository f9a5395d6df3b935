"""Episodes of care: one client, one treating clinician, active or closed."""

import uuid
from datetime import date, datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import ConfigDict
from pydantic import Field as PydanticField
from sqlmodel import AutoString, Field, SQLModel

from models.base import UTCDateTime, new_id, one_of, utcnow

EpisodeStatus = Literal["active", "closed"]
# Dates outside this window are typos or attacks, never care episodes.
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2200, 12, 31)


class Episode(SQLModel, table=True):
    __tablename__ = "episodes"
    __table_args__ = (
        # Unique, so that the rows of an episode (sessions, submissions, alerts) reference it by
        # (org_id, id): their organisation is then their episode's by construction.
        sa.Index("ix_episodes_org_id_id", "org_id", "id", unique=True),
        sa.Index("ix_episodes_org_id_client_id", "org_id", "client_id"),
        sa.Index("ix_episodes_org_id_clinician_id", "org_id", "clinician_id"),
        one_of("status", EpisodeStatus),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    client_id: uuid.UUID = Field(foreign_key="clients.id")
    clinician_id: uuid.UUID = Field(foreign_key="clinicians.id")
    status: EpisodeStatus = Field(default="active", sa_type=AutoString(length=16))
    started_on: date
    ended_on: date | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Bumped by every change to the episode's alerts, in the same transaction: a submission that
    # read the episode at one value stores only if it is unchanged
    # (services/submissions/service.py), and
    # the other writers hold the row's lock while they work (services/alert_store.lock_episode).
    alert_seq: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class EpisodeCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    client_id: uuid.UUID
    clinician_id: uuid.UUID
    started_on: date | None = PydanticField(default=None, ge=MIN_DATE, le=MAX_DATE)


class EpisodeUpdate(SQLModel):
    """`PATCH`: change the treating clinician, close (or reopen) the episode."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    status: EpisodeStatus | None = None
    ended_on: date | None = PydanticField(default=None, ge=MIN_DATE, le=MAX_DATE)
    clinician_id: uuid.UUID | None = None


class EpisodePublic(SQLModel):
    id: uuid.UUID
    client_id: uuid.UUID
    clinician_id: uuid.UUID
    status: EpisodeStatus
    started_on: date
    ended_on: date | None
    created_at: datetime
    updated_at: datetime
