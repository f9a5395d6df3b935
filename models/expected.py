"""Expected-response models (DESIGN.md §10.5): one per organisation and instrument, uploaded or
fitted; the body is the model as `services/trajectory/etr.py` validates it."""

import uuid
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.base import JSONType, UTCDateTime, one_of, utcnow

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
