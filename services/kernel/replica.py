"""Long reads from a read replica (DESIGN.md §10.7): exports and bulk FHIR files are read from a
PostgreSQL streaming standby when one is configured (`ATTUNE_REPLICA_DATABASE_URL`) and healthy,
else from the primary, so they never fail for the replica's sake.

A standby shows the primary's commits in commit order, some time later. A read there is exact up
to its **safe point**: every transaction committed on the primary before that instant is visible.
- If the standby has replayed the primary's WAL up to the position the primary reported just
  before (`pg_current_wal_lsn()`), it is caught up: the safe point is the primary's `now()` then.
- Else it is the commit time of the last transaction it replayed
  (`pg_last_xact_replay_timestamp()`): WAL is replayed in commit order, so everything committed
  before it is there.
Incremental exports take the safe point as their "now" (`services.exports.window`): ``until``
never passes what the standby has, so a lagging standby gives a shorter window, never a gap.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.kernel.config import Settings
from services.kernel.database import DriverPool, create_replica_driver_pool, create_replica_engine

log = logging.getLogger("attune.replica")

Source = Literal["primary", "replica"]


@dataclass(frozen=True, slots=True)
class ReadSource:
    """Where a long read goes: its engine, and the instant up to which it is exact (None: the
    primary, exact now)."""

    name: Source
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # asyncpg pool of the same database, for the readers that use one (NDJSON submissions).
    driver_pool: DriverPool | None = None
    safe_until: datetime | None = None


class Replica:
    """The standby's engine, made once; `choose` decides per read."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self.check_seconds = settings.replica_check_seconds
        self.settings = settings
        self.driver_pool: DriverPool | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Replica | None":
        if not settings.replica_database_url:
            return None
        return cls(create_replica_engine(settings), settings)

    async def safe_point(self, primary: AsyncEngine) -> datetime | None:
        """The standby's safe point, or None if it is not a usable standby now."""
        async with primary.connect() as conn:
            position, primary_now = (
                await conn.execute(sa.text("SELECT pg_current_wal_lsn()::text, now()"))
            ).one()
        async with self.engine.connect() as conn:
            in_recovery, caught_up, replayed_at = (
                await conn.execute(
                    sa.text(
                        "SELECT pg_is_in_recovery(), "
                        "pg_last_wal_replay_lsn() >= CAST(CAST(:position AS text) AS pg_lsn), "
                        "pg_last_xact_replay_timestamp()"
                    ),
                    {"position": str(position)},
                )
            ).one()
        if not in_recovery:  # promoted, or not a standby: not what this setting is for
            return None
        if caught_up:
            return primary_now  # type: ignore[no-any-return]
        return replayed_at  # type: ignore[no-any-return]

    async def choose(self, primary: ReadSource, *, needs: datetime | None = None) -> ReadSource:
        """The replica if it answers within the check time and is exact up to ``needs`` (when
        given); else ``primary``."""
        try:
            async with asyncio.timeout(self.check_seconds):
                safe = await self.safe_point(primary.engine)
        except Exception as exc:  # any failure (down, refused, too slow): read from the primary
            log.warning(
                "read replica unavailable, reading from the primary: %s: %s",
                type(exc).__name__,
                exc,
            )
            return primary
        if safe is None or (needs is not None and safe < needs):
            return primary
        if self.driver_pool is None:  # made on first use; connects on demand
            self.driver_pool = await create_replica_driver_pool(self.settings)
        return ReadSource("replica", self.engine, self.sessionmaker, self.driver_pool, safe)

    async def dispose(self) -> None:
        if self.driver_pool is not None:
            await self.driver_pool.close()
        await self.engine.dispose()


async def read_source(
    replica: Replica | None,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    driver_pool: DriverPool | None,
    *,
    needs: datetime | None = None,
) -> ReadSource:
    primary = ReadSource("primary", engine, sessionmaker, driver_pool)
    if replica is None:
        return primary
    return await replica.choose(primary, needs=needs)
