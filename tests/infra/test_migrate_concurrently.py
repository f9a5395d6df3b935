"""`attune migrate` started by several replicas at once: one applies the migrations, the others
wait for it and find nothing left to do (DESIGN.md §10.7). On PostgreSQL they queue on an
advisory lock; on SQLite on a lock file beside the database."""

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from api.cli import PROJECT_ROOT

REPLICAS = 3
APPLIED = re.compile(r"^migrations applied: (\d+)", re.MULTILINE)


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    return [revision.revision for revision in script.walk_revisions()]


def _attune() -> list[str]:
    installed = Path(sys.executable).with_name("attune")
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "api.cli"]


def _migrate_at_once(database_url: str) -> list[subprocess.CompletedProcess[str]]:
    env = {
        **os.environ,
        "ATTUNE_DATABASE_URL": database_url,
        "ATTUNE_ENVIRONMENT": "test",
        "ATTUNE_SECRET_KEY": "migrate-test-secret-0123456789abcdef",
    }
    started = [
        subprocess.Popen(  # noqa: S603  (our own command line, no shell)
            [*_attune(), "migrate"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(REPLICAS)
    ]
    finished = []
    for process in started:
        out, err = process.communicate(timeout=120)
        finished.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return finished


async def _stored_revisions(database_url: str) -> list[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


def _assert_applied_once(runs: list[subprocess.CompletedProcess[str]]) -> None:
    assert [run.returncode for run in runs] == [0] * REPLICAS, [run.stderr for run in runs]
    applied = sorted(int(m.group(1)) for run in runs for m in APPLIED.finditer(run.stdout))
    # One replica applied every migration; the others found the database at head.
    assert applied == [0] * (REPLICAS - 1) + [len(_revisions())], [r.stdout for r in runs]


@pytest.fixture
def empty_postgres_database() -> Iterator[str]:
    url = os.environ.get("ATTUNE_TEST_DATABASE_URL")
    if url is None or not url.startswith("postgresql"):
        pytest.skip("PostgreSQL's advisory lock: runs when ATTUNE_TEST_DATABASE_URL is PostgreSQL")
    name = f"attune_migrate_{uuid.uuid4().hex[:12]}"
    server = make_url(url)

    async def admin(statement: str) -> None:
        engine = create_async_engine(server, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_three_replicas_migrating_an_empty_postgres_database_at_once_all_succeed(
    empty_postgres_database: str,
) -> None:
    runs = _migrate_at_once(empty_postgres_database)
    _assert_applied_once(runs)
    head = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini"))).get_current_head()
    assert asyncio.run(_stored_revisions(empty_postgres_database)) == [head]


def test_three_replicas_migrating_an_empty_sqlite_file_at_once_all_succeed(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    runs = _migrate_at_once(url)
    _assert_applied_once(runs)
    head = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini"))).get_current_head()
    assert asyncio.run(_stored_revisions(url)) == [head]
