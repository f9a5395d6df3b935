"""On PostgreSQL, every writer of an episode's alerts takes one lock: the submission hot path (in
the function attune_submission_context) and the ORM paths (services.alert_store.lock_episode)."""

import uuid

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from services.alert_store import lock_episode
from services.database import asyncpg_dsn


async def test_submission_context_waits_while_another_transaction_holds_the_episode_lock(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("advisory locks are PostgreSQL's; SQLite's writers take turns anyway")
    org, episode, other_episode = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    engine = create_async_engine(database_url)
    driver = await asyncpg.connect(asyncpg_dsn(database_url))
    context = "SELECT * FROM attune_submission_context($1, $2, NULL, 'srs', 'client', '', 3, 7)"

    async def read_context(episode_id: uuid.UUID) -> list[asyncpg.Record]:
        async with driver.transaction():
            await driver.execute("SET LOCAL lock_timeout = '200ms'")
            rows: list[asyncpg.Record] = await driver.fetch(context, org, episode_id)
            return rows

    try:
        async with engine.begin() as holder:
            await lock_episode(holder, org, episode)
            assert await read_context(other_episode) == []  # another episode is not held up
            with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
                await read_context(episode)
        assert await read_context(episode) == []  # released with the holder's transaction
    finally:
        await driver.close()
        await engine.dispose()
