"""Alembic owns the schema: migrations build it, and the models have not drifted from them."""

import sqlite3
import uuid
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import models  # noqa: F401
from alembic import command
from api.cli import PROJECT_ROOT
from models.base import same_type
from services.kernel.config import Settings

ENCRYPTION_REVISION = "f7a2c9d4e815"


async def test_models_and_migrations_have_not_drifted(database_url: str) -> None:
    engine = create_async_engine(database_url)

    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": same_type})
        return list(compare_metadata(context, SQLModel.metadata))

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    await engine.dispose()
    assert differences == []


def test_the_encryption_migration_seals_plaintext_secrets_and_its_downgrade_opens_them(
    tmp_path: Path,
) -> None:
    """On a database of its own (SQLite, whichever database the suite runs on): rows written
    before encryption at rest are sealed by the upgrade, and opened again by the downgrade."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    settings = Settings(database_url=url, secret_key=SecretStr("migration-test-secret"))
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes.update(database_url=url, settings=settings, configure_logger=False)
    command.upgrade(config, ENCRYPTION_REVISION + "-1")
    org_id, hook_id = uuid.uuid4(), uuid.uuid4()
    with sqlite3.connect(tmp_path / "m.db") as db:
        db.execute(
            "INSERT INTO organizations (id, name, slug, created_at, export_secret)"
            " VALUES (?, 'Old', 'old', '2026-01-01 00:00:00', ?)",
            (org_id.hex, "ab" * 32),
        )
        db.execute(
            "INSERT INTO webhook_endpoints (id, org_id, url, event_types, secret, enabled,"
            " consecutive_failures, created_at) VALUES (?, ?, 'https://x.example/h', '[]', ?, 1,"
            " 0, '2026-01-01 00:00:00')",
            (hook_id.hex, org_id.hex, "whsec_" + "C" * 44),
        )

    def stored() -> tuple[str, str]:
        with sqlite3.connect(tmp_path / "m.db") as db:
            (export_secret,) = db.execute("SELECT export_secret FROM organizations").fetchone()
            (secret,) = db.execute("SELECT secret FROM webhook_endpoints").fetchone()
        return export_secret, secret

    command.upgrade(config, ENCRYPTION_REVISION)
    box = settings.secret_box()
    export_secret, secret = stored()
    assert export_secret.startswith("fernet:")
    assert secret.startswith("fernet:")
    assert (box.open(export_secret), box.open(secret)) == ("ab" * 32, "whsec_" + "C" * 44)
    command.downgrade(config, ENCRYPTION_REVISION + "-1")
    assert stored() == ("ab" * 32, "whsec_" + "C" * 44)
