"""The transactional outbox: events written in the transaction of the change that caused them,
each with one pending delivery per subscribed webhook endpoint, for the worker to send.

An endpoint receives what the key that registered it could read (DESIGN.md §10.8): the events
of a ``concern.reported`` alert go only to endpoints whose key may read concerns
(`reads_concerns`), decided here for each event and again by the worker before it sends, since
the key may have been revoked meanwhile. Other events go to every subscribed endpoint of the
organisation, whatever became of the key: the endpoint is the organisation's.

The submission hot path on PostgreSQL writes the same rows with its own SQL
(`services/submissions/store_pg.py`); this module serves every other writer, on both databases.
"""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models.base import new_id
from models.tenancy import ApiKey
from models.webhooks import OutboxEvent, WebhookDelivery, WebhookEndpoint
from services.alerts.model import AlertRow
from services.webhooks import events as event_payloads
from services.webhooks.events import EventRow

OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]
ENDPOINTS = WebhookEndpoint.__table__  # type: ignore[attr-defined]
DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
KEYS = ApiKey.__table__  # type: ignore[attr-defined]
CONCERN = "concern.reported"
# What the worker and the listing need to know of an endpoint's registering key (outer-joined:
# all None when there is none).
KEY_COLUMNS = (
    KEYS.c.org_id.label("key_org_id"),
    KEYS.c.scopes.label("key_scopes"),
    KEYS.c.clinician_id.label("key_clinician_id"),
    KEYS.c.revoked_at.label("key_revoked_at"),
)


class RegisteringKey(Protocol):
    """A row with ``KEY_COLUMNS``: what is known of the key that registered an endpoint."""

    @property
    def key_org_id(self) -> uuid.UUID | None: ...
    @property
    def key_scopes(self) -> Iterable[str] | None: ...
    @property
    def key_clinician_id(self) -> uuid.UUID | None: ...
    @property
    def key_revoked_at(self) -> datetime | None: ...


def reads_concerns(row: RegisteringKey) -> bool:
    """Whether the key of a row with ``KEY_COLUMNS`` may read concerns: live, not bound to a
    clinician, with ``concerns:read`` or ``admin`` — as `services.alerts.lifecycle.sees_concerns`
    decides for a request."""
    if row.key_org_id is None or row.key_revoked_at is not None or row.key_scopes is None:
        return False
    # Principal.has's rule (services/kernel/auth.py, which this module cannot import: it
    # imports the submission path that imports this): an organisation's admin has every scope.
    scopes = set(row.key_scopes)
    return row.key_clinician_id is None and bool({"concerns:read", "admin"} & scopes)


def is_about_a_concern(payload: Mapping[str, object]) -> bool:
    """An event payload of a ``concern.reported`` alert."""
    data = payload.get("data")
    return (
        str(payload.get("type", "")).startswith("alert.")
        and isinstance(data, Mapping)
        and data.get("type") == CONCERN
    )


_INSERT_EVENTS = insert(OUTBOX).returning(OUTBOX.c.seq, sort_by_parameter_order=True)


async def write(conn: AsyncConnection, events: Sequence[EventRow]) -> None:
    """Store ``events`` in order, and a pending delivery of each to every live endpoint of its
    organisation that subscribed to its type."""
    if not events:
        return
    seqs = (await conn.execute(_INSERT_EVENTS, [dict(e) for e in events])).scalars().all()
    org_ids = {e["org_id"] for e in events}
    rows = (
        await conn.execute(
            select(ENDPOINTS.c.id, ENDPOINTS.c.org_id, ENDPOINTS.c.event_types, *KEY_COLUMNS)
            .select_from(ENDPOINTS.outerjoin(KEYS, KEYS.c.id == ENDPOINTS.c.created_by_key_id))
            .where(
                ENDPOINTS.c.org_id.in_(org_ids),
                ENDPOINTS.c.enabled.is_(True),
                ENDPOINTS.c.deleted_at.is_(None),
            )
        )
    ).all()
    endpoints = [(r.id, r.org_id, r.event_types, reads_concerns(r)) for r in rows]
    deliveries = [
        {
            "id": new_id(),
            "org_id": event["org_id"],
            "endpoint_id": endpoint_id,
            "event_seq": seq,
            "event_id": event["id"],
            "event_type": event["type"],
            "episode_id": event["episode_id"],
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": event["created_at"],
            "created_at": event["created_at"],
        }
        for event, seq in zip(events, seqs, strict=True)
        for endpoint_id, org_id, types, concerns in endpoints
        if org_id == event["org_id"]
        and event["type"] in types
        and (concerns or not is_about_a_concern(event["payload"]))
    ]
    if deliveries:
        await conn.execute(insert(DELIVERIES), deliveries)


def alert_events(
    writes: Sequence[tuple[str, AlertRow]],
    client_id: uuid.UUID,
    clinician_id: uuid.UUID,
) -> list[EventRow]:
    """The outbox events of alert changes, for the episode's client and clinician."""
    return [
        event_payloads.alert_changed(change, row, client_id, clinician_id) for change, row in writes
    ]
