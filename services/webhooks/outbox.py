"""The transactional outbox: events written in the transaction of the change that caused them,
each with one pending delivery per subscribed webhook endpoint, for the worker to send.

The submission hot path on PostgreSQL writes the same rows with its own SQL
(`services/submissions/store_pg.py`); this module serves every other writer, on both databases.
"""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from models.base import new_id
from models.webhooks import OutboxEvent, WebhookDelivery, WebhookEndpoint
from services.webhooks import events as event_payloads

OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]
ENDPOINTS = WebhookEndpoint.__table__  # type: ignore[attr-defined]
DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]

_INSERT_EVENTS = insert(OUTBOX).returning(OUTBOX.c.seq, sort_by_parameter_order=True)


async def write(conn: AsyncConnection, events: Sequence[Mapping[str, Any]]) -> None:
    """Store ``events`` in order, and a pending delivery of each to every live endpoint of its
    organisation that subscribed to its type."""
    if not events:
        return
    seqs = (await conn.execute(_INSERT_EVENTS, [dict(e) for e in events])).scalars().all()
    org_ids = {e["org_id"] for e in events}
    endpoints = (
        await conn.execute(
            select(ENDPOINTS.c.id, ENDPOINTS.c.org_id, ENDPOINTS.c.event_types).where(
                ENDPOINTS.c.org_id.in_(org_ids),
                ENDPOINTS.c.enabled.is_(True),
                ENDPOINTS.c.deleted_at.is_(None),
            )
        )
    ).all()
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
        for endpoint_id, org_id, types in endpoints
        if org_id == event["org_id"] and event["type"] in types
    ]
    if deliveries:
        await conn.execute(insert(DELIVERIES), deliveries)


def alert_events(
    writes: Sequence[tuple[str, Mapping[str, Any]]],
    client_id: uuid.UUID,
    clinician_id: uuid.UUID,
) -> list[dict[str, Any]]:
    """The outbox events of alert changes, for the episode's client and clinician."""
    return [
        event_payloads.alert_changed(change, row, client_id, clinician_id) for change, row in writes
    ]
