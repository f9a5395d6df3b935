"""Helpers of the tests that run one migration against rows written just before it: an empty
database of their own (a SQLite file, or a PostgreSQL schema of the test database), statements
run in it, and the Alembic configuration pointed at it."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from api.cli import PROJECT_ROOT


def blank_database(tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, PostgreSQL schema or None): an empty database for one test (a fixture's body:
    tests/infra/conftest.py)."""
    url = os.environ.get("ATTUNE_TEST_DATABASE_URL")
    if url is None:
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}", None
        return
    schema = f"migrate_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(url, None, f'CREATE SCHEMA "{schema}"'))
    try:
        yield url, schema
    finally:
        asyncio.run(execute(url, None, f'DROP SCHEMA "{schema}" CASCADE'))


async def execute(url: str, schema: str | None, *statements: Any) -> list[Any]:
    """Each statement (SQL text or a SQLAlchemy statement) in one transaction; the rows of
    those that return rows, else None."""
    engine = create_async_engine(url)
    results: list[Any] = []
    try:
        async with engine.begin() as conn:
            if schema is not None:
                await conn.exec_driver_sql(f'SET search_path TO "{schema}"')
            for statement in statements:
                query = text(statement) if isinstance(statement, str) else statement
                result = await conn.execute(query)
                results.append(result.all() if result.returns_rows else None)
    finally:
        await engine.dispose()
    return results


def alembic_config(url: str, schema: str | None, **attributes: Any) -> Config:
    """The project's Alembic configuration on ``url`` (in ``schema``), with more attributes
    (``settings``: the Settings the migration reads)."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes.update(database_url=url, configure_logger=False, **attributes)
    if schema is not None:
        config.attributes["search_path"] = schema
    return config


def revision_before(config: Config, revision: str) -> str:
    down = ScriptDirectory.from_config(config).get_revision(revision).down_revision
    assert isinstance(down, str)
    return down
