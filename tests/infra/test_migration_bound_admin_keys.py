"""The migration that narrows clinician-bound admin keys minted before issue 14 finding 2 was
fixed (DESIGN.md §10.8: admin is never bound to a clinician), run for real on the suite's
database kind: SQLite in a file of its own; PostgreSQL in a schema of its own."""

import asyncio
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from alembic import command
from tests.support.migrations import alembic_config, execute, revision_before

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


def test_bound_admin_keys_lose_admin_keep_their_caseload_and_are_audited(
    blank_database: tuple[str, str | None],
) -> None:
    url, schema = blank_database
    config = alembic_config(url, schema)
    previous = revision_before(config, REVISION)
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
        execute(
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
        execute(
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
    (rows,) = asyncio.run(execute(url, schema, sa.select(_KEYS.c.id, _KEYS.c.scopes)))
    assert {uuid.UUID(str(key_id)): value for key_id, value in rows} == scopes
