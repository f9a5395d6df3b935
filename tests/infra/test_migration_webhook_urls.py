"""The migration that seals webhook endpoint URLs (issue 14, DESIGN.md §10.7), run for real on
the suite's database kind: rows stored before it keep their URL, sealed by the upgrade (a
credential in it no longer readable from the table), and opened again by the downgrade. SQLite
in a file of its own; PostgreSQL in a schema of its own in the test database."""

import asyncio
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from pydantic import SecretStr

from alembic import command
from services.kernel.config import Settings
from tests.support.migrations import alembic_config, execute, revision_before

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


def test_the_upgrade_seals_stored_webhook_urls_and_the_downgrade_opens_them(
    blank_database: tuple[str, str | None],
) -> None:
    url, schema = blank_database
    settings = Settings(database_url=url, secret_key=SecretStr(SECRET))
    config = alembic_config(url, schema, settings=settings)
    previous = revision_before(config, REVISION)
    command.upgrade(config, previous)
    org_id, now = uuid.uuid4(), datetime.now(UTC)
    hooks = {uuid.uuid4(): URL, uuid.uuid4(): LONGEST}
    asyncio.run(
        execute(
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
        (rows,) = asyncio.run(execute(url, schema, sa.select(_HOOKS.c.id, _HOOKS.c.url)))
        return {uuid.UUID(str(row_id)): value for row_id, value in rows}

    command.upgrade(config, REVISION)
    sealed = stored()
    assert all(value.startswith("fernet:") for value in sealed.values())
    assert not any("s3cr3t" in value or "ehr.example.org" in value for value in sealed.values())
    box = settings.secret_box()
    assert {hook_id: box.open(value) for hook_id, value in sealed.items()} == hooks
    command.downgrade(config, previous)
    assert stored() == hooks
