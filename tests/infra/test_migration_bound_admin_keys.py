"""The migration that narrows clinician-bound admin keys minted before issue 14 finding 2 was
fixed (DESIGN.md §10.8: admin is never bound to a clinician), run for real on the suite's
database kind: SQLite in a file of its own; PostgreSQL in a schema of its own."""

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
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from api.cli import PROJECT_ROOT

REVISION = "14d8b2f6a913"
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_ORGS = sa.table(
    "organizations", sa.column("id", sa.Uuid()), sa.column("name", sa.String()),
    sa.column("slug", sa.String()), sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("export_secret", sa.String()),
)  # fmt: skip
_CLINICIANS = sa.table(
    "clinicians", sa.column("id", sa.Uuid()), sa.column("org_id", sa.Uuid()),
    sa.column("display_name", sa.String()), sa.column("created_at", sa.DateTime(timezone=True)),
)  # fmt: skip
_KEYS = sa.table(
    "api_keys", sa.column("id", sa.Uuid()), sa.column("org_id", sa.Uuid()),
    sa.column("name", sa.String()), sa.column("prefix", sa.String()),
    sa.column("key_hash", sa.String()), sa.column("scopes", _JSON),
    sa.column("clinician_id", sa.Uuid()), sa.column("created_at", sa.DateTime(timezone=True)),
)  # fmt: skip
_AUDIT = sa.table(
    "audit_events", sa.column("org_id", sa.Uuid()), sa.column("action", sa.String()),
    sa.column("resource_id", sa.Uuid()), sa.column("details", _JSON),
)  # fmt: skip

# What a key bound to a clinician can use on that clinician's caseload.
CASELOAD = [
    "clients:read", "clients:write", "submissions:read", "submissions:write",
    "alerts:read", "alerts:write", "exports:read", "exports:identified",
]  # fmt: skip


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


def test_bound_admin_keys_lose_admin_keep_their_caseload_and_are_audited(
    blank_database: tuple[str, str | None],
) -> None:
    url, schema = blank_database
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes.update(database_url=url, configure_logger=False)
    if schema is not None:
        config.attributes["search_path"] = schema
    previous = ScriptDirectory.from_config(config).get_revision(REVISION).down_revision
    assert isinstance(previous, str)
    command.upgrade(config, previous)
    org_id, clinician_id, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    keys = {  # name: (scopes, bound)
        "bound admin": (["admin"], True),
        "bound admin and more": (["clients:read", "admin", "concerns:read"], True),
        "unbound admin": (["admin"], False),
        "bound reader": (["submissions:read"], True),
    }
    ids = {name: uuid.uuid4() for name in keys}
    asyncio.run(
        _execute(
            url,
            schema,
            _ORGS.insert().values(
                id=org_id, name="Old", slug="old", created_at=now, export_secret="ab" * 32
            ),
            _CLINICIANS.insert().values(
                id=clinician_id, org_id=org_id, display_name="Dr X", created_at=now
            ),
            *(
                _KEYS.insert().values(
                    id=ids[name],
                    org_id=org_id,
                    name=name,
                    prefix="att_x",
                    key_hash=f"{n:064x}",
                    scopes=scopes,
                    clinician_id=clinician_id if bound else None,
                    created_at=now,
                )
                for n, (name, (scopes, bound)) in enumerate(keys.items())
            ),
        )
    )

    command.upgrade(config, REVISION)
    rows, events = asyncio.run(
        _execute(
            url,
            schema,
            sa.select(_KEYS.c.id, _KEYS.c.scopes),
            sa.select(_AUDIT.c.org_id, _AUDIT.c.action, _AUDIT.c.resource_id, _AUDIT.c.details),
        )
    )
    scopes = {uuid.UUID(str(key_id)): value for key_id, value in rows}
    assert scopes[ids["bound admin"]] == CASELOAD
    assert scopes[ids["bound admin and more"]] == ["clients:read", "concerns:read"] + [
        s for s in CASELOAD if s != "clients:read"
    ]
    assert scopes[ids["unbound admin"]] == ["admin"]
    assert scopes[ids["bound reader"]] == ["submissions:read"]
    narrowed = {uuid.UUID(str(e.resource_id)): e for e in events}
    assert narrowed.keys() == {ids["bound admin"], ids["bound admin and more"]}
    for event in narrowed.values():
        assert (uuid.UUID(str(event.org_id)), event.action) == (org_id, "api_key.narrowed")
        assert event.details["removed"] == ["admin"]
    command.downgrade(config, previous)  # leaves them narrowed
    (rows,) = asyncio.run(_execute(url, schema, sa.select(_KEYS.c.id, _KEYS.c.scopes)))
    assert {uuid.UUID(str(key_id)): value for key_id, value in rows} == scopes
