"""Organizations (tenants) and the API keys that act inside them."""

import secrets
import uuid
from datetime import datetime
from typing import Literal, get_args

import sqlalchemy as sa
from pydantic import ConfigDict, field_validator
from sqlmodel import Field, SQLModel

from models.base import JSONType, UTCDateTime, new_id, utcnow
from models.types import Name, Slug

Scope = Literal[
    "system",
    "admin",
    "clients:read",
    "clients:write",
    "submissions:read",
    "submissions:write",
    "alerts:read",
    "alerts:write",
    "concerns:read",
    "exports:read",
    "exports:identified",
    "webhooks:write",
]
ORG_SCOPES: frozenset[str] = frozenset(s for s in get_args(Scope) if s != "system")


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200)
    slug: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Keys the pseudonyms of de-identified exports (services/exports/pseudonyms.py): stable for
    # the organization, different from every other's. Never shown by the API. Stored encrypted
    # (services/kernel/crypto.py, set by create_organization); the default is for rows made
    # elsewhere, read as plaintext until `attune rotate-secrets` seals them.
    export_secret: str = Field(default_factory=lambda: secrets.token_hex(32), max_length=256)


class OrganizationCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    name: Name
    slug: Slug


class OrganizationPublic(SQLModel):
    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    __table_args__ = (sa.Index("ix_api_keys_org_id_id", "org_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    # NULL only for system keys, which manage organizations and belong to none.
    org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id")
    name: str = Field(max_length=200)
    # The first characters of the secret, kept to let people tell keys apart in listings.
    prefix: str = Field(max_length=16)
    key_hash: str = Field(max_length=64, unique=True)
    scopes: list[str] = Field(sa_type=JSONType)
    clinician_id: uuid.UUID | None = Field(default=None, foreign_key="clinicians.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiKeyCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    name: Name
    scopes: list[Scope] = Field(min_length=1, max_length=16)
    clinician_id: uuid.UUID | None = None

    @field_validator("scopes")
    @classmethod
    def _unique_scopes(cls, scopes: list[str]) -> list[str]:
        return sorted(set(scopes))


class ApiKeyPublic(SQLModel):
    id: uuid.UUID
    org_id: uuid.UUID | None
    name: str
    prefix: str
    scopes: list[str]
    clinician_id: uuid.UUID | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str
