"""Rows of an episode (sessions, submissions, alerts) reference it together with its
organisation, so the database refuses one whose organisation is not its episode's, on SQLite
and PostgreSQL alike (migration fko1a2b3c4d5: one key to `episodes` by (org_id, id), in place of
one to `episodes` and one to `organizations`, which every concurrent submission locked)."""

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from services.kernel.config import Settings
from services.kernel.database import create_engine
from tests.support import Attune, srs, submit

ROWS_OF_AN_EPISODE = ("sessions", "submissions", "alerts")


async def test_a_row_of_an_episode_cannot_name_another_organisation(
    attune: Attune, settings: Settings
) -> None:
    tenant, other = await attune.tenant(), await attune.tenant("Other clinic")
    episode = await tenant.episode()
    await submit(tenant, episode["id"], "srs", 1, srs(1, 1, 1, 1))  # raises an alliance alert
    # The service's own engine: on SQLite it is the one that switches foreign keys on.
    engine = create_engine(settings)
    try:
        for name in ROWS_OF_AN_EPISODE:
            table = SQLModel.metadata.tables[name]
            of_the_episode = table.c.episode_id == uuid.UUID(episode["id"])
            async with engine.connect() as conn:
                count = sa.select(sa.func.count()).select_from(table).where(of_the_episode)
                assert await conn.scalar(count), f"no {name} row to update"
                with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
                    await conn.execute(
                        sa.update(table)
                        .where(of_the_episode)
                        .values(org_id=uuid.UUID(other.org_id))
                    )
                await conn.rollback()
    finally:
        await engine.dispose()
