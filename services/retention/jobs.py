"""The retention jobs the worker runs every ``ATTUNE_RETENTION_INTERVAL_SECONDS``.

- **Idempotency records** once they expire (kept 24 h, DESIGN.md §4): they hold stored response
  bodies, which are health data.
- **Outbox events** older than ``ATTUNE_RETENTION_OUTBOX_DAYS`` that no delivery still needs (none
  pending to an enabled endpoint). Every submission writes one, subscribed endpoints or not.
- **The delivery log**: webhook attempts older than ``ATTUNE_RETENTION_DELIVERY_LOG_DAYS``, then the
  finished (delivered or given-up) deliveries whose last attempt is that old.

Each job deletes in batches, one short transaction per batch, so a large backlog never holds
locks for long; several workers may run them at once (a row is deleted, and counted, once).
Each run logs what it removed and adds it to ``attune_retention_purged_rows_total{kind}``.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import Delete, delete, exists, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from models.base import utcnow
from models.webhooks import WebhookAttempt
from services.kernel import idempotency, metrics
from services.kernel.config import Settings
from services.kernel.database import UnitOfWork
from services.webhooks.outbox import DELIVERIES, ENDPOINTS, OUTBOX

log = logging.getLogger("attune.retention")
ATTEMPTS = WebhookAttempt.__table__  # type: ignore[attr-defined]
BATCH = 1000
# Literals, so that PostgreSQL can use the partial indexes (a bound parameter would not prove it).
_FINISHED = text("webhook_deliveries.status <> 'pending'")
_PENDING = text("webhook_deliveries.status = 'pending'")


@dataclass(frozen=True, slots=True)
class Policy:
    outbox_days: int = 7
    delivery_log_days: int = 30
    batch: int = BATCH

    @classmethod
    def from_settings(cls, settings: Settings) -> "Policy":
        return cls(
            outbox_days=settings.retention_outbox_days,
            delivery_log_days=settings.retention_delivery_log_days,
        )


@dataclass
class Purged:
    """Rows removed by one run, by kind."""

    idempotency_records: int = 0
    outbox_events: int = 0
    webhook_attempts: int = 0
    webhook_deliveries: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


for _kind in Purged().as_dict():
    metrics.RETENTION_PURGED.labels(_kind)  # every kind is exported from the start, at 0


async def purge(engine: AsyncEngine, policy: Policy, *, now: datetime | None = None) -> Purged:
    """Run every job once, as of `now`; what each removed is logged and counted."""
    now = now or utcnow()
    log_cutoff = now - timedelta(days=policy.delivery_log_days)
    batch = policy.batch
    purged = Purged(
        idempotency_records=await _idempotency_records(engine, now),
        outbox_events=await _in_batches(
            engine, _old_outbox_events(now - timedelta(days=policy.outbox_days), batch), batch
        ),
        # Attempts first: a delivery's attempts are never newer than its last one, so the
        # deliveries found next have none left that would hold them (foreign key).
        webhook_attempts=await _in_batches(engine, _old_attempts(log_cutoff, batch), batch),
        webhook_deliveries=await _in_batches(
            engine, _finished_deliveries(log_cutoff, batch), batch
        ),
    )
    for kind, removed in purged.as_dict().items():
        if removed:
            metrics.RETENTION_PURGED.labels(kind).inc(removed)
    log.info("retention purge", extra={"fields": purged.as_dict()})
    return purged


async def _idempotency_records(engine: AsyncEngine, now: datetime) -> int:
    uow = UnitOfWork(engine)
    try:
        removed = await idempotency.purge_expired(uow, now=now)
        await uow.commit()
        return removed
    finally:
        await uow.close()


async def _in_batches(engine: AsyncEngine, statement: Delete, batch: int) -> int:
    """Run a bounded DELETE until it removes less than a batch; how many rows it removed."""
    removed = 0
    while True:
        async with engine.begin() as conn:
            count = int((await conn.execute(statement)).rowcount or 0)
        removed += count
        if count < batch:
            return removed


def _old_attempts(cutoff: datetime, batch: int) -> Delete:
    old = select(ATTEMPTS.c.id).where(ATTEMPTS.c.attempted_at < cutoff).limit(batch)
    return delete(ATTEMPTS).where(ATTEMPTS.c.id.in_(old))


def _finished_deliveries(cutoff: datetime, batch: int) -> Delete:
    d = DELIVERIES
    has_attempts = exists().where(ATTEMPTS.c.delivery_id == d.c.id)
    old = select(d.c.id).where(_FINISHED, d.c.last_attempt_at < cutoff, ~has_attempts).limit(batch)
    return delete(d).where(d.c.id.in_(old))


def _old_outbox_events(cutoff: datetime, batch: int) -> Delete:
    """Events older than `cutoff` that no live delivery waits for. `created_at` has no index
    (every submission writes here, and reads go by sequence number), so the last batch of a run
    scans the table once: an hourly scan of a table kept to a week, in the worker."""
    still_needed = exists(
        select(DELIVERIES.c.id)
        .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
        .where(
            DELIVERIES.c.event_seq == OUTBOX.c.seq,
            _PENDING,
            ENDPOINTS.c.enabled.is_(True),
            ENDPOINTS.c.deleted_at.is_(None),
        )
    )
    old = select(OUTBOX.c.seq).where(OUTBOX.c.created_at < cutoff, ~still_needed).limit(batch)
    return delete(OUTBOX).where(OUTBOX.c.seq.in_(old))


async def run(engine: AsyncEngine, settings: Settings, stop: asyncio.Event) -> None:
    """Purge at start, then every ``retention_interval_seconds`` until ``stop`` is set. A failed
    run (the database away) is logged and tried again next time, never fatal."""
    policy = Policy.from_settings(settings)
    while not stop.is_set():
        try:
            await purge(engine, policy)
        except (TimeoutError, OSError) as exc:
            log.warning("retention waiting for the database: %s", type(exc).__name__)
        except Exception as exc:
            # SQLAlchemy wraps driver errors; a worker that stopped on one would stop purging.
            log.error("retention purge failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.retention_interval_seconds)
