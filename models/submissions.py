"""Sessions, submissions (scored instrument completions), stored instrument definitions and
idempotency records."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import ConfigDict, StringConstraints
from pydantic import Field as PydanticField
from sqlmodel import AutoString, Field, SQLModel

from models.alerts import AlertInSubmission
from models.base import JSONType, Schema, UTCDateTime, new_id, one_of, utcnow
from models.types import Note, Respondent, Timestamp

SubmissionStatus = Literal["valid", "voided"]
# Far beyond any real course of therapy; bounds the integer so no database overflows.
MAX_SESSION_NUMBER = 100_000


class CareSession(SQLModel, table=True):
    """A therapy session inside an episode, created by the first submission that names it."""

    __tablename__ = "sessions"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "episode_id", "session_number"),
        # The episode, with its organisation: one foreign key instead of one to `episodes` and one
        # to `organizations`. The submission's write statement already holds the episode's row
        # (it bumps alert_seq), so the check takes no lock another submission waits on; a key
        # to `organizations` made every concurrent submission of the organisation lock its one
        # row FOR KEY SHARE (a MultiXact per submission): 6-8 % of throughput (bench/README.md).
        sa.ForeignKeyConstraint(["org_id", "episode_id"], ["episodes.org_id", "episodes.id"]),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID
    episode_id: uuid.UUID
    session_number: int
    occurred_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Submission(SQLModel, table=True):
    __tablename__ = "submissions"
    __table_args__ = (
        sa.Index("ix_submissions_org_id_id", "org_id", "id"),
        sa.Index(
            "ix_submissions_episode_series",
            "org_id",
            "episode_id",
            "instrument",
            "respondent",
            "rater",
            "session_number",
        ),
        # At most one valid submission per session, instrument, respondent and rater; voided
        # rows stay (never deleted) and make room for a replacement.
        sa.Index(
            "uq_submissions_one_valid_per_session",
            "org_id",
            "episode_id",
            "session_number",
            "instrument",
            "respondent",
            "rater",
            unique=True,
            sqlite_where=sa.text("status = 'valid'"),
            postgresql_where=sa.text("status = 'valid'"),
        ),
        # Incremental exports walk an organization's submissions in change order.
        sa.Index("ix_submissions_org_id_changed_at_id", "org_id", "changed_at", "id"),
        one_of("respondent", Respondent),
        one_of("status", SubmissionStatus),
        # The episode, with its organisation (see CareSession).
        sa.ForeignKeyConstraint(["org_id", "episode_id"], ["episodes.org_id", "episodes.id"]),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID
    episode_id: uuid.UUID
    session_id: uuid.UUID = Field(foreign_key="sessions.id")
    session_number: int
    instrument: str = Field(max_length=64)
    instrument_version: str = Field(max_length=32)
    respondent: Respondent = Field(sa_type=AutoString(length=16))
    # '' rather than NULL when absent, so the unique index above treats "no rater" as one value.
    rater: str = Field(default="", max_length=64)
    answers: dict[str, Any] = Field(sa_type=JSONType)
    scores: dict[str, Any] = Field(sa_type=JSONType)
    total: float | None = None
    status: SubmissionStatus = Field(default="valid", sa_type=AutoString(length=16))
    occurred_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by_key_id: uuid.UUID | None = None
    voided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    voided_by_key_id: uuid.UUID | None = None
    void_reason: str | None = Field(default=None, max_length=4000)
    # When the row last changed (created, then voided): the stable change timestamp that
    # incremental exports (`since`/`until`) select on. The database fills it in where an insert
    # does not name it (the PostgreSQL hot path).
    changed_at: datetime = Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,
        sa_column_kwargs={"server_default": sa.text("CURRENT_TIMESTAMP")},
    )


ItemId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Rater = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]


class SubmissionCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    episode_id: uuid.UUID
    instrument: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    session_number: int = PydanticField(ge=1, le=MAX_SESSION_NUMBER)
    occurred_at: Timestamp | None = None
    respondent: Respondent = "client"
    rater: Rater | None = None
    # Values are checked item by item by the scoring engine, which names each bad item.
    answers: dict[ItemId, Any] = PydanticField(max_length=200)


class SubmissionVoid(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    reason: Annotated[Note, StringConstraints(min_length=1)]


class ScoresPublic(Schema):
    total: float | None
    mean: float | None
    subscales: dict[str, float]
    band: str | None
    below_cutoff: bool | None
    clinical: bool | None
    risk_flags: list[str]


class SubmissionPublic(Schema):
    id: uuid.UUID
    episode_id: uuid.UUID
    instrument: str
    instrument_version: str
    session_number: int
    occurred_at: datetime | None
    respondent: Respondent
    rater: str | None
    status: SubmissionStatus
    answers: dict[str, Any]
    scores: ScoresPublic
    alerts: list[AlertInSubmission] = PydanticField(
        default_factory=list,
        description="On POST and void: the alerts this request created, updated or resolved. "
        "Empty when reading a submission; GET /v1/alerts?episode_id= lists an episode's alerts.",
    )
    created_at: datetime
    voided_at: datetime | None = None
    void_reason: str | None = None


class StoredInstrument(SQLModel, table=True):
    """An organisation-defined instrument version (built-ins live in code as data files)."""

    __tablename__ = "instrument_definitions"
    __table_args__ = (sa.UniqueConstraint("org_id", "code", "version"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    code: str = Field(max_length=64)
    version: str = Field(max_length=32)
    definition: dict[str, Any] = Field(sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IdempotencyRecord(SQLModel, table=True):
    """A POST's Idempotency-Key and the response it produced, written in the same transaction as
    the change, so a stored response exists exactly when its change was committed."""

    __tablename__ = "idempotency_records"
    __table_args__ = (sa.Index("ix_idempotency_records_expires_at", "expires_at"),)

    # The API key or invitation that made the record (DESIGN.md §10.8): keys never meet across
    # callers, so another key's record is neither replayed nor a 422 oracle for its body.
    owner_id: uuid.UUID = Field(primary_key=True)
    # None for the system key's own requests (creating organizations).
    org_id: uuid.UUID | None = Field(default=None, foreign_key="organizations.id")
    key: str = Field(max_length=255, primary_key=True)
    request_hash: str = Field(max_length=64)
    response_status: int | None = None
    response_body: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
