"""clinician-bound admin keys lose admin: they keep their caseload, not the organisation

Before key minting was fixed (issue 14 finding 2), `admin` could be bound to a clinician, and
such a key escaped its binding: it minted unbound admin keys, read the whole audit trail and
managed every key. DESIGN.md §10.8: `admin` cannot be bound to a clinician. Keys minted that way
are narrowed, not revoked: `admin` is replaced by the scopes a key bound to a clinician can use
on that clinician's caseload (clients, submissions, alerts, exports), so an integration working
for one clinician goes on working the next morning, while what only admin could do (keys,
audit trail, instruments, alert rules, webhooks, concerns) stops. Revoking would also revoke
every invitation the key sent (DESIGN.md §10.4), so clients' rating links would die with it.
Each narrowed key gets an audit event (`api_key.narrowed`, with the scopes removed and added),
so an admin can see which keys changed and why.

The downgrade leaves the keys as they are: giving a bound key admin again would reopen the hole.

Revision ID: 14d8b2f6a913
Revises: 14c3a9e1f207
Create Date: 2026-12-05 13:10:00.000000

"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "14d8b2f6a913"
down_revision: str | Sequence[str] | None = "14c3a9e1f207"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What `admin` gave a key bound to one clinician on that clinician's caseload. Written out here,
# not imported, so that this revision does the same thing whatever the scopes become later.
CASELOAD_SCOPES = (
    "clients:read",
    "clients:write",
    "submissions:read",
    "submissions:write",
    "alerts:read",
    "alerts:write",
    "exports:read",
    "exports:identified",
)

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
_KEYS = sa.table(
    "api_keys",
    sa.column("id", sa.Uuid()),
    sa.column("org_id", sa.Uuid()),
    sa.column("scopes", _JSON),
    sa.column("clinician_id", sa.Uuid()),
)
_AUDIT = sa.table(
    "audit_events",
    sa.column("id", sa.Uuid()),
    sa.column("org_id", sa.Uuid()),
    sa.column("key_id", sa.Uuid()),
    sa.column("action", sa.String()),
    sa.column("resource_type", sa.String()),
    sa.column("resource_id", sa.Uuid()),
    sa.column("outcome", sa.String()),
    sa.column("client_address", sa.String()),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("details", _JSON),
)


def upgrade() -> None:
    bind = op.get_bind()
    bound = bind.execute(
        sa.select(_KEYS.c.id, _KEYS.c.org_id, _KEYS.c.scopes).where(
            _KEYS.c.clinician_id.is_not(None)
        )
    ).all()
    now = datetime.now(UTC)
    for key_id, org_id, scopes in bound:
        if "admin" not in scopes:
            continue
        added = [s for s in CASELOAD_SCOPES if s not in scopes]
        narrowed = [s for s in scopes if s != "admin"] + added
        bind.execute(sa.update(_KEYS).where(_KEYS.c.id == key_id).values(scopes=narrowed))
        bind.execute(
            _AUDIT.insert().values(
                id=uuid.uuid4(),
                org_id=org_id,
                key_id=None,
                action="api_key.narrowed",
                resource_type="api_key",
                resource_id=key_id,
                outcome="success",
                client_address=None,
                occurred_at=now,
                details={
                    "reason": "admin cannot be bound to a clinician",
                    "removed": ["admin"],
                    "added": added,
                },
            )
        )


def downgrade() -> None:
    """Nothing to undo: see the module's docstring."""
