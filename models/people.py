"""Clinicians and clients. Clients are pseudonymous: an EHR id, a population, no names."""

import uuid
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import ConfigDict
from sqlmodel import AutoString, Field, SQLModel

from models.base import UTCDateTime, new_id, one_of, utcnow
from models.types import BirthYear, ExternalId, Name

Population = Literal["adult", "adolescent", "child"]


class Clinician(SQLModel, table=True):
    __tablename__ = "clinicians"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "external_id"),
        sa.Index("ix_clinicians_org_id_id", "org_id", "id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    display_name: str = Field(max_length=200)
    external_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ClinicianCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    display_name: Name
    external_id: ExternalId | None = None


class ClinicianPublic(SQLModel):
    id: uuid.UUID
    display_name: str
    external_id: str | None
    created_at: datetime


class Client(SQLModel, table=True):
    __tablename__ = "clients"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "external_id"),
        sa.Index("ix_clients_org_id_id", "org_id", "id"),
        one_of("population", Population),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    external_id: str | None = Field(default=None, max_length=128)
    population: Population = Field(default="adult", sa_type=AutoString(length=16))
    birth_year: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ClientCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    external_id: ExternalId | None = None
    population: Population = "adult"
    birth_year: BirthYear | None = None


class ClientUpsert(SQLModel):
    """Body of `PUT /v1/clients/by-external-id/{external_id}`: the EHR's view of the client."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    population: Population = "adult"
    birth_year: BirthYear | None = None


class ClientPublic(SQLModel):
    id: uuid.UUID
    external_id: str | None
    population: Population
    birth_year: int | None
    created_at: datetime
    updated_at: datetime
