"""Expected-response models (DESIGN.md §10.5): one per organisation and instrument, uploaded or
fitted; the body is the model as `services/trajectory/etr.py` validates it."""

import uuid
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import JSONType, UTCDateTime, new_id, one_of, utcnow

ExpectedSource = Literal["uploaded", "fitted"]


class ExpectedResponseModel(SQLModel, table=True):
    __tablename__ = "expected_response_models"
    __table_args__ = (one_of("source", ExpectedSource),)

    org_id: uuid.UUID = Field(foreign_key="organizations.id", primary_key=True)
    instrument: str = Field(max_length=64, primary_key=True)
    source: ExpectedSource = Field(sa_type=sa.String(16))
    body: dict[str, Any] = Field(sa_type=JSONType)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by_key_id: uuid.UUID | None = None


ExpectedFitStatus = Literal["queued", "running", "done", "failed"]


class ExpectedResponseFit(SQLModel, table=True):
    """A fit of a large organisation's model, run by the worker; ``progress`` (0-1) and ``stage``
    say how far it has come."""

    __tablename__ = "expected_response_fits"
    __table_args__ = (
        one_of("status", ExpectedFitStatus),
        sa.Index("ix_expected_response_fits_status_created_at", "status", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    instrument: str = Field(max_length=64)
    status: ExpectedFitStatus = Field(default="queued", sa_type=sa.String(16))
    stage: str | None = Field(default=None, max_length=32)
    progress: float = 0.0
    intake_bands: list[Any] | None = Field(default=None, sa_type=JSONType)
    error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by_key_id: uuid.UUID | None = None


class ExpectedResponseFitPublic(SQLModel):
    id: uuid.UUID
    instrument: str
    status: ExpectedFitStatus
    stage: str | None
    progress: float
    error: str | None
    created_at: datetime
    updated_at: datetime
