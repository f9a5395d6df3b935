"""How far behind webhook delivery is, for the worker's `/metrics` (services/kernel/metrics.py).

Counted over deliveries that will still be sent: pending, to an endpoint that is enabled and not
deleted (a disabled endpoint's pending rows are never sent, and would otherwise hold the gauges
up for good). Both figures come from the partial index of pending deliveries.
"""

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.kernel import metrics
from services.webhooks.outbox import DELIVERIES, ENDPOINTS

# A literal, so that PostgreSQL can use the partial index (a bound parameter would not prove it).
_PENDING = text("webhook_deliveries.status = 'pending'")


async def queue_state(
    engine: AsyncEngine, org_ids: Collection[uuid.UUID] | None = None
) -> tuple[int, datetime | None]:
    """Deliveries waiting, and when the one waiting longest became due."""
    stmt = (
        select(func.count(), func.min(DELIVERIES.c.next_attempt_at))
        .select_from(DELIVERIES.join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id))
        .where(_PENDING, ENDPOINTS.c.enabled.is_(True), ENDPOINTS.c.deleted_at.is_(None))
    )
    if org_ids is not None:
        stmt = stmt.where(DELIVERIES.c.org_id.in_(list(org_ids)))
    async with engine.connect() as conn:
        depth, oldest = (await conn.execute(stmt)).one()
    if isinstance(oldest, str):  # SQLite hands an aggregate's timestamp back as text
        oldest = datetime.fromisoformat(oldest)
    return int(depth), oldest


async def refresh_metrics(
    engine: AsyncEngine, org_ids: Collection[uuid.UUID] | None = None
) -> None:
    depth, oldest = await queue_state(engine, org_ids)
    metrics.record_queue(depth, oldest.timestamp() if oldest is not None else None)
