"""SMART Backend Services (DESIGN.md §10.6): registered clients, the assertion ids they have used,
and the access tokens issued to them.

A client acts through an API key of its own (``api_key_id``), made when it is registered with the
scopes and clinician binding it may ever hold; the key's secret is never shown, so only the token
endpoint reaches it. Everything that belongs to a key (audit events, idempotency records, export
jobs, invitations, the hot path's revocation re-check) therefore works for a token as for a key,
and deleting the client revokes that key, which ends its tokens at once.
"""

import uuid
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import ConfigDict, field_validator
from sqlmodel import Field, SQLModel

from models.base import JSONType, UTCDateTime, new_id, utcnow
from models.types import Name

# What a SMART client may be given: resource access, never the organisation's administration.
SmartScope = Literal[
    "clients:read",
    "clients:write",
    "submissions:read",
    "submissions:write",
    "alerts:read",
    "alerts:write",
]


class SmartClient(SQLModel, table=True):
    __tablename__ = "smart_clients"
    __table_args__ = (sa.Index("ix_smart_clients_org_id_id", "org_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)  # the OAuth client_id
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    name: str = Field(max_length=200)
    jwks: dict[str, Any] = Field(sa_type=JSONType)  # public keys only
    scopes: list[str] = Field(sa_type=JSONType)
    clinician_id: uuid.UUID | None = Field(default=None, foreign_key="clinicians.id")
    api_key_id: uuid.UUID = Field(foreign_key="api_keys.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SmartAssertionJti(SQLModel, table=True):
    """A ``jti`` a client's assertion carried: a second assertion with it is a replay. Kept until
    the assertion expires (after that the assertion is refused for its ``exp`` anyway); in the
    database, so every replica sees it."""

    __tablename__ = "smart_assertion_jtis"
    __table_args__ = (sa.Index("ix_smart_assertion_jtis_expires_at", "expires_at"),)

    smart_client_id: uuid.UUID = Field(foreign_key="smart_clients.id", primary_key=True)
    jti: str = Field(max_length=255, primary_key=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class SmartAccessToken(SQLModel, table=True):
    """An access token, stored as its keyed hash (as API keys are), with the scopes granted."""

    __tablename__ = "smart_access_tokens"
    __table_args__ = (sa.Index("ix_smart_access_tokens_expires_at", "expires_at"),)

    token_hash: str = Field(max_length=64, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    smart_client_id: uuid.UUID = Field(foreign_key="smart_clients.id")
    api_key_id: uuid.UUID = Field(foreign_key="api_keys.id")
    scopes: list[str] = Field(sa_type=JSONType)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SmartClientCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    name: Name
    jwks: dict[str, Any]
    scopes: list[SmartScope] = Field(min_length=1, max_length=16)
    clinician_id: uuid.UUID | None = None

    @field_validator("scopes")
    @classmethod
    def _unique_scopes(cls, scopes: list[str]) -> list[str]:
        return sorted(set(scopes))


class SmartClientPublic(SQLModel):
    client_id: uuid.UUID
    name: str
    jwks: dict[str, Any]
    scopes: list[str]
    clinician_id: uuid.UUID | None
    created_at: datetime
    token_url: str
