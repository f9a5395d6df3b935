"""Invitations (a client's one-off token to rate one session) and the concerns clients raise."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import AfterValidator, ConfigDict, StringConstraints
from pydantic import Field as PydanticField
from sqlmodel import AutoString, Field, SQLModel

from models.base import JSONType, UTCDateTime, new_id, one_of, utcnow
from models.submissions import MAX_SESSION_NUMBER, ItemId
from models.types import Note, Timestamp

INVITATION_HOURS_DEFAULT = 72
# A week and a half: long enough to rate a session late, short enough to keep a leaked link
# from staying useful.
INVITATION_HOURS_MAX = 240
MAX_CONCERNS_PER_INVITATION = 5

InstrumentCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
ConcernCategory = Literal["relationship", "safety", "boundaries", "treatment", "access", "other"]


class Invitation(SQLModel, table=True):
    __tablename__ = "invitations"
    __table_args__ = (sa.Index("ix_invitations_org_id_episode", "org_id", "episode_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    episode_id: uuid.UUID = Field(foreign_key="episodes.id")
    session_number: int
    instruments: list[str] = Field(sa_type=JSONType)
    # Keyed hash of the token, as for API keys: the token itself is shown once.
    token_hash: str = Field(max_length=64, unique=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by_key_id: uuid.UUID | None = None
    # Set by DELETE /v1/invitations/{id} or when the key that issued it is revoked: the token
    # then gets 410, like an expired one (DESIGN.md §10.4).
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InvitationUse(SQLModel, table=True):
    """An instrument submitted through an invitation: its primary key makes each one once."""

    __tablename__ = "invitation_uses"

    invitation_id: uuid.UUID = Field(foreign_key="invitations.id", primary_key=True)
    instrument: str = Field(max_length=64, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    submission_id: uuid.UUID = Field(foreign_key="submissions.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Concern(SQLModel, table=True):
    """What a client wrote about their care. Its alert says only that there is one; the text
    stays here, for the people allowed to read concerns, and leaves through no export or webhook."""

    __tablename__ = "concerns"
    __table_args__ = (
        sa.Index("ix_concerns_org_id_alert", "org_id", "alert_id"),
        one_of("category", ConcernCategory),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    episode_id: uuid.UUID = Field(foreign_key="episodes.id")
    invitation_id: uuid.UUID = Field(foreign_key="invitations.id")
    alert_id: uuid.UUID = Field(foreign_key="alerts.id")
    session_number: int
    category: ConcernCategory | None = Field(default=None, sa_type=AutoString(length=32))
    message: str = Field(max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InvitationCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    instruments: list[InstrumentCode] = PydanticField(min_length=1, max_length=10)
    session_number: int = PydanticField(ge=1, le=MAX_SESSION_NUMBER)
    expires_in_hours: int = PydanticField(
        default=INVITATION_HOURS_DEFAULT, ge=1, le=INVITATION_HOURS_MAX
    )


class InvitationCreated(SQLModel):
    id: uuid.UUID
    token: str
    # The link to send the client: ATTUNE_PUBLIC_URL + "/r/#" + token. The token rides in the
    # fragment, which a browser never sends to a server or in a Referer (DESIGN.md §10.4).
    url: str
    expires_at: datetime
    episode_id: uuid.UUID
    session_number: int
    instruments: list[str]


class InvitationPublic(SQLModel):
    """An invitation as the clinic sees it: never its token, which was shown once."""

    id: uuid.UUID
    episode_id: uuid.UUID
    session_number: int
    instruments: list[str]
    # used: every instrument it asks for has been sent.
    status: Literal["active", "used", "expired", "revoked"]
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None


class InvitationView(SQLModel):
    """What a client's app shows: the session to rate and the instruments to fill in."""

    session_number: int
    expires_at: datetime
    instruments: list[dict[str, Any]]
    completed: list[str]
    remaining: list[str]


class InvitationSubmissionCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    instrument: InstrumentCode
    answers: dict[ItemId, Any] = PydanticField(max_length=200)
    occurred_at: Timestamp | None = None
    # Optional echoes of what the invitation is for: a mismatch is refused, never redirected.
    episode_id: uuid.UUID | None = None
    session_number: int | None = PydanticField(default=None, ge=1, le=MAX_SESSION_NUMBER)


class InvitationReceipt(SQLModel):
    """What the client learns of a submission: that it was saved — not the scores or alerts,
    which are for the clinician to discuss with them."""

    id: uuid.UUID
    instrument: str
    instrument_version: str
    session_number: int
    created_at: datetime
    remaining: list[str]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class ConcernCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    message: Annotated[Note, StringConstraints(min_length=1), AfterValidator(_not_blank)]
    category: ConcernCategory | None = None


class ConcernReceipt(SQLModel):
    id: uuid.UUID
    created_at: datetime
