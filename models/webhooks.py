"""The transactional outbox, webhook endpoints, and the deliveries and attempts made to them."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

import sqlalchemy as sa
from pydantic import AfterValidator, AnyUrl, ConfigDict, UrlConstraints
from pydantic import Field as PydanticField
from sqlmodel import AutoString, Field, SQLModel

from models.base import JSONType, UTCDateTime, new_id, one_of, utcnow
from models.types import Name

EventType = Literal["submission.created", "alert.created", "alert.updated", "alert.resolved"]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
DeliveryStatus = Literal["pending", "delivered", "failed"]
URL_MAX = 2048
# A URL is stored sealed (services/kernel/crypto.py): a Fernet token of a URL_MAX-character URL,
# in base64 with its prefix, takes about 2,840 characters.
SEALED_URL_MAX = 4096
# SQLite numbers rows itself only through INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
Sequence = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class OutboxEvent(SQLModel, table=True):
    """An event, written in the same transaction as the change that caused it. ``seq`` orders
    events: an episode's writers hold its row lock, so its events get increasing numbers in the
    order they were committed.

    Neither this table nor ``webhook_deliveries`` declares foreign keys: every submission writes
    to both, and each key check is a trigger that takes a share lock on the referenced row — the
    one endpoint row that every concurrent submission of an organisation would lock. Their rows
    are only ever written by the statements that create them together with what they point to
    (services/webhooks/outbox.py, services/submissions/store_pg.py)."""

    # No secondary indexes: every submission writes here, and events are read only by their
    # sequence number (the deliveries point at it).
    __tablename__ = "outbox_events"
    __table_args__ = (one_of("type", EventType),)

    seq: int | None = Field(
        default=None, sa_column=sa.Column(Sequence, primary_key=True, autoincrement=True)
    )
    id: uuid.UUID = Field(default_factory=new_id, unique=True)
    org_id: uuid.UUID
    episode_id: uuid.UUID
    type: EventType = Field(sa_type=AutoString(length=64))
    # The submission or alert the event is about.
    subject_id: uuid.UUID
    payload: dict[str, Any] = Field(sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (sa.Index("ix_webhook_endpoints_org_id_id", "org_id", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    # Encrypted at rest, like the secret: a URL may carry credentials (services/kernel/crypto.py).
    url: str = Field(max_length=SEALED_URL_MAX)
    description: str | None = Field(default=None, max_length=200)
    event_types: list[str] = Field(sa_type=JSONType)
    # The signing secret must be read back to sign, so it cannot be stored hashed like a key:
    # it is stored encrypted (services/kernel/crypto.py).
    secret: str = Field(max_length=256)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=200)
    consecutive_failures: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by_key_id: uuid.UUID | None = None
    # Deleted endpoints stay, with their delivery log, but receive nothing more.
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint; ``attempts`` counts the tries logged in ``webhook_attempts``."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_seq"),
        one_of("event_type", EventType),
        one_of("status", DeliveryStatus),
        # What the worker looks for: due deliveries, and an earlier pending one of the same
        # endpoint and episode that holds a later one back.
        sa.Index(
            "ix_webhook_deliveries_pending",
            "endpoint_id",
            "episode_id",
            "event_seq",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        # What the retention job purges: finished deliveries by their last attempt.
        sa.Index(
            "ix_webhook_deliveries_finished",
            "last_attempt_at",
            sqlite_where=sa.text("status <> 'pending'"),
            postgresql_where=sa.text("status <> 'pending'"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_seq: int = Field(sa_type=Sequence)
    event_id: uuid.UUID
    event_type: EventType = Field(sa_type=AutoString(length=64))
    episode_id: uuid.UUID
    status: DeliveryStatus = Field(default="pending", sa_type=AutoString(length=16))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=200)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    """One try at a delivery: when, what came back (status code or a short error), how long."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        sa.Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
        # What the retention job purges: attempts by age.
        sa.Index("ix_webhook_attempts_attempted_at", "attempted_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    delivery_id: uuid.UUID = Field(foreign_key="webhook_deliveries.id")
    attempted_at: datetime = Field(sa_type=UTCDateTime)
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=200)
    duration_ms: int


def _fits(url: AnyUrl) -> AnyUrl:
    # Checked after normalisation, which may lengthen it (a trailing slash, punycode).
    if len(str(url)) > URL_MAX:
        raise ValueError(f"must be at most {URL_MAX} characters")
    return url


WebhookUrl = Annotated[
    AnyUrl,
    UrlConstraints(max_length=URL_MAX, allowed_schemes=["http", "https"], host_required=True),
    AfterValidator(_fits),
]


class WebhookCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    url: WebhookUrl
    event_types: list[EventType] = PydanticField(
        default_factory=lambda: list(EVENT_TYPES), min_length=1, max_length=len(EVENT_TYPES)
    )
    description: Name | None = None


class WebhookPublic(SQLModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    # Whether concern.reported alerts reach it: only while the key that registered it may read
    # concerns (services/webhooks/outbox.py).
    receives_concerns: bool = False


class WebhookCreated(WebhookPublic):
    """The endpoint as created, with its signing secret: shown this once."""

    secret: str


class WebhookAttemptPublic(SQLModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDeliveryPublic(SQLModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    episode_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    attempt_log: list[WebhookAttemptPublic]
