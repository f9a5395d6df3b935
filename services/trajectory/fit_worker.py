"""Expected-response fits of large organisations, run by the worker (DESIGN.md §10.5, issue 16).

`POST /v1/instruments/{code}/etr/fit` over more than `ATTUNE_ETR_FIT_INLINE_MAX_EPISODES` closed
episodes queues a row of `expected_response_fits`; a worker claims it (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so several workers never take the same one), and reports its stage and progress in
the row as it goes (reading → fitting → storing → done, or failed with the reason), each step
committed, so `GET .../etr/fits/{id}` shows it. A fit whose worker died is taken again once its
row has not moved for ``STALE_AFTER``.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Collection
from datetime import timedelta
from typing import TypedDict, Unpack

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from models.base import utcnow
from models.expected import ExpectedResponseFit
from services.alerts import engine as alert_engine
from services.kernel.config import Settings
from services.kernel.database import UntypedRow
from services.trajectory import etr
from services.trajectory.expected import closed_series, store_model

log = logging.getLogger("attune.etr")

_FITS = ExpectedResponseFit.__table__  # type: ignore[attr-defined]
STALE_AFTER = timedelta(minutes=10)


async def _claim(engine: AsyncEngine, org_ids: Collection[uuid.UUID] | None) -> UntypedRow | None:
    now = utcnow()
    f = _FITS
    stmt = (
        select(f.c.id, f.c.org_id, f.c.instrument, f.c.intake_bands, f.c.created_by_key_id)
        .add_columns(f.c.status, f.c.updated_at)
        .where(
            or_(
                f.c.status == "queued",
                and_(f.c.status == "running", f.c.updated_at < now - STALE_AFTER),
            )
        )
        .order_by(f.c.created_at)
        .limit(1)
    )
    if org_ids is not None:
        stmt = stmt.where(f.c.org_id.in_(list(org_ids)))
    # FOR UPDATE SKIP LOCKED on PostgreSQL; SQLAlchemy leaves it out on SQLite, which has one
    # writer at a time anyway.
    stmt = stmt.with_for_update(skip_locked=True)
    async with engine.begin() as conn:
        job = (await conn.execute(stmt)).first()
        if job is None:
            return None
        # Only if no other worker took it since the read (SQLite has no SKIP LOCKED).
        taken = await conn.execute(
            update(f)
            .where(f.c.id == job.id, f.c.status == job.status, f.c.updated_at == job.updated_at)
            .values(status="running", stage="reading", progress=0.05, updated_at=now)
        )
        return job if taken.rowcount == 1 else None


class _Progress(TypedDict, total=False):
    """What a fit reports as it goes (``expected_response_fits``' columns)."""

    status: str
    stage: str
    progress: float
    error: str


async def _report(engine: AsyncEngine, job_id: uuid.UUID, **values: Unpack[_Progress]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(_FITS).where(_FITS.c.id == job_id).values(updated_at=utcnow(), **values)
        )


async def run_one(engine: AsyncEngine, org_ids: Collection[uuid.UUID] | None = None) -> bool:
    """Claim and run one queued fit (of ``org_ids`` only, when given); False when there was
    none."""
    job = await _claim(engine, org_ids)
    if job is None:
        return False
    bands = None if job.intake_bands is None else [(lo, hi) for lo, hi in job.intake_bands]
    try:
        async with engine.connect() as conn:
            definition = await alert_engine.definition_for(conn, job.org_id, job.instrument)
            if definition is None:
                raise etr.TooFewEpisodes(0, [], f"no instrument '{job.instrument}'")
            episodes = await closed_series(conn, job.org_id, definition.code)
        await _report(engine, job.id, stage="fitting", progress=0.4)
        # CPU work off the event loop, which also delivers webhooks.
        model = await asyncio.to_thread(etr.fit, definition, episodes, bands)
        await _report(engine, job.id, stage="storing", progress=0.7)
        async with engine.begin() as conn:
            await store_model(
                conn, job.org_id, job.created_by_key_id, definition.code, model, "fitted"
            )
        await _report(engine, job.id, status="done", stage="done", progress=1.0)
    except etr.TooFewEpisodes as exc:
        await _report(engine, job.id, status="failed", stage="failed", error=str(exc)[:1000])
    except Exception as exc:
        # The type only: a message could quote data.
        log.error("expected-response fit failed: %s", type(exc).__name__)
        await _report(engine, job.id, status="failed", stage="failed", error=type(exc).__name__)
    return True


async def run(
    engine: AsyncEngine,
    settings: Settings,
    stop: asyncio.Event,
    *,
    org_ids: Collection[uuid.UUID] | None = None,
) -> None:
    """Run queued fits until ``stop`` is set, looking every ``worker_poll_seconds``; a failure
    to reach the database is logged and tried again, never fatal."""
    while not stop.is_set():
        try:
            while not stop.is_set() and await run_one(engine, org_ids):
                pass
        except (TimeoutError, OSError) as exc:
            log.warning("fits waiting for the database: %s", type(exc).__name__)
        except Exception as exc:
            log.error("fits failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.worker_poll_seconds)
