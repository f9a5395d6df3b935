"""The per-organisation cap on concurrent exports (issue 14 finding 8, DESIGN.md §10.8).

Each running export holds a lease row; the cap counts the live ones. The lease is taken in the
request's transaction, which commits before the stream starts, and the count and the insert are
serialised per organisation (an advisory transaction lock on PostgreSQL; SQLite's one writer at
a time), so the cap holds across replicas. The stream gives the lease back when it ends, however
it ends; a lease whose process died expires by itself, and a long export renews its own.
"""

import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.limits import ExportLease
from services.kernel.auth import Actor
from services.kernel.errors import TooManyRequests
from services.kernel.store import session_store

LEASE_SECONDS = 300
RENEW_SECONDS = 60
RETRY_AFTER_SECONDS = 10


async def acquire(session: AsyncSession, *, actor: Actor, cap: int) -> uuid.UUID:
    """A lease for one export of the actor's organisation, or 429 when `cap` run already."""
    org_id = actor.org_id
    await session_store(session).serialise(f"attune.export-leases:{org_id}")
    now = utcnow()
    running = await session.scalar(
        select(func.count())
        .select_from(ExportLease)
        .where(col(ExportLease.org_id) == org_id)
        .where(col(ExportLease.expires_at) > now)
    )
    if (running or 0) >= cap:
        raise TooManyRequests(
            f"this organisation runs {cap} exports at once already; retry when one has finished",
            retry_after=RETRY_AFTER_SECONDS,
        )
    lease = ExportLease(
        org_id=org_id,
        key_id=actor.principal.key_id,
        expires_at=now + timedelta(seconds=LEASE_SECONDS),
    )
    session.add(lease)
    await session.flush()
    return lease.id


async def held(
    body: AsyncIterator[bytes], *, engine: AsyncEngine, lease_id: uuid.UUID
) -> AsyncIterator[bytes]:
    """`body`, holding the lease while it streams and giving it back when it ends."""
    renewed = time.monotonic()
    try:
        async for chunk in body:
            yield chunk
            if time.monotonic() - renewed > RENEW_SECONDS:
                renewed = time.monotonic()
                async with engine.begin() as conn:
                    await conn.execute(
                        update(ExportLease)
                        .where(col(ExportLease.id) == lease_id)
                        .values(expires_at=utcnow() + timedelta(seconds=LEASE_SECONDS))
                    )
    finally:
        # Also when the client went away and the stream was cancelled: the export itself is
        # closed first (its connection back, its audit event written), then the lease goes;
        # bounded, and a lease left behind expires anyway.
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            close = getattr(body, "aclose", None)
            if close is not None:
                await close()
            async with engine.begin() as conn:
                await conn.execute(delete(ExportLease).where(col(ExportLease.id) == lease_id))
