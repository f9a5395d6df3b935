"""The migration that seals webhook endpoint URLs (issue 14, DESIGN.md §10.7), run for real on
the suite's database kind: rows stored before it keep their URL, sealed by the upgrade (a
credential in it no longer readable from the table), and opened again by the downgrade. SQLite
in a file of its own; PostgreSQL in a schema of its own in the test database."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from api.cli import PROJECT_ROOT
from services.kernel.config import Settings

REVISION = "14c3a9e1f207"
SECRET = "migration-test-secret-0123456789"
URL = "https://ehr-user:s3cr3t@ehr.example.org/hooks/tok-1?sig=abc"
LONGEST = "https://ehr.example.org/" + "p" * (2048 - len("https://ehr.example.org/"))

_ORGS = sa.table(
    "organizations", sa.column("id", sa.Uuid()), sa.column("name", sa.String()),
    sa.column("slug", sa.String()), sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("export_secret", sa.String()),
)  # fmt: skip
_HOOKS = sa.table(
    "webhook_endpoints", sa.column("id", sa.Uuid()), sa.column("org_id", sa.Uuid()),
    sa.column("url", sa.String()), sa.column("event_types", sa.JSON()),
    sa.column("secret", sa.String()), sa.column("enabled", sa.Boolean()),
    sa.column("consecutive_failures", sa.Integer()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)  # fmt: skip


@pytest.fixture
def blank_database(tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, PostgreSQL schema or None): an empty database for this test alone."""
    url = os.environ.get("ATTUNE_TEST_DATABASE_URL")
    if url is None:
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}", None
        return
    schema = f"migrate_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(url, None, sa.text(f'CREATE SCHEMA "{schema}"')))
    try:
        yield url, schema
    finally:
        asyncio.run(_execute(url, None, sa.text(f'DROP SCHEMA "{schema}" CASCADE')))


async def _execute(url: str, schema: str | None, *statements: Any) -> list[Any]:
    engine = create_async_engine(url)
    results: list[Any] = []
    try:
        async with engine.begin() as conn:
            if schema is not None:
                await conn.exec_driver_sql(f'SET search_path TO "{schema}"')
            for statement in statements:
                result = await conn.execute(statement)
                results.append(result.all() if result.returns_rows else None)
    finally:
        await engine.dispose()
    return results


def test_the_upgrade_seals_stored_webhook_urls_and_the_downgrade_opens_them(
    blank_database: tuple[str, str | None],
) -> None:
    url, schema = blank_database
    settings = Settings(database_url=url, secret_key=SecretStr(SECRET))
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes.update(database_url=url, settings=settings, configure_logger=False)
    if schema is not None:
        config.attributes["search_path"] = schema
    previous = ScriptDirectory.from_config(config).get_revision(REVISION).down_revision
    assert isinstance(previous, str)
    command.upgrade(config, previous)
    org_id, now = uuid.uuid4(), datetime.now(UTC)
    hooks = {uuid.uuid4(): URL, uuid.uuid4(): LONGEST}
    asyncio.run(
        _execute(
            url,
            schema,
            _ORGS.insert().values(
                id=org_id, name="Old", slug="old", created_at=now, export_secret="ab" * 32
            ),
            *(
                _HOOKS.insert().values(
                    id=hook_id,
                    org_id=org_id,
                    url=hook_url,
                    event_types=[],
                    secret="whsec_x",
                    enabled=True,
                    consecutive_failures=0,
                    created_at=now,
                )
                for hook_id, hook_url in hooks.items()
            ),
        )
    )

    def stored() -> dict[uuid.UUID, str]:
        (rows,) = asyncio.run(_execute(url, schema, sa.select(_HOOKS.c.id, _HOOKS.c.url)))
        return {uuid.UUID(str(row_id)): value for row_id, value in rows}

    command.upgrade(config, REVISION)
    sealed = stored()
    assert all(value.startswith("fernet:") for value in sealed.values())
    assert not any("s3cr3t" in value or "ehr.example.org" in value for value in sealed.values())
    box = settings.secret_box()
    assert {hook_id: box.open(value) for hook_id, value in sealed.items()} == hooks
    command.downgrade(config, previous)
    assert stored() == hooks
