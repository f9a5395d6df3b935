"""rows of an episode reference it with its organisation; no key from audit events

Sessions, submissions and alerts referenced `episodes` and `organizations` by two foreign keys.
Each key is checked by locking the referenced row FOR KEY SHARE, and every concurrent submission
of an organisation locked the same `organizations` row (its audit event too): PostgreSQL shares
such a lock through a MultiXact, made anew for each new holder, and its cost grows with the
number of submissions in flight (bench/README.md: 6 % of the submission benchmark's throughput).

Now each references its episode by (org_id, id) — unique on `episodes` — which also says that
its organisation is its episode's; the episode's own key to `organizations` still holds. The
submission's write statement already holds the episode's row, so that check waits on no one.
Audit events keep no key to `organizations`, as they keep none to `api_keys`.

Revision ID: fko1a2b3c4d5
Revises: pgs2d5f1b8c3
Create Date: 2026-12-05 23:00:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "fko1a2b3c4d5"
down_revision: str | None = "pgs2d5f1b8c3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPISODE_ROWS = ("sessions", "submissions", "alerts")


def upgrade() -> None:
    op.drop_index("ix_episodes_org_id_id", table_name="episodes")
    op.create_index("ix_episodes_org_id_id", "episodes", ["org_id", "id"], unique=True)
    # Batch mode: SQLite changes a table's keys only by copying it.
    for table in EPISODE_ROWS:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_org_id_organizations", type_="foreignkey")
            batch.drop_constraint(f"fk_{table}_episode_id_episodes", type_="foreignkey")
            batch.create_foreign_key(
                f"fk_{table}_org_id_episodes", "episodes", ["org_id", "episode_id"], ["org_id", "id"]
            )
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint("fk_audit_events_org_id_organizations", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.create_foreign_key(
            "fk_audit_events_org_id_organizations", "organizations", ["org_id"], ["id"]
        )
    for table in reversed(EPISODE_ROWS):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_org_id_episodes", type_="foreignkey")
            batch.create_foreign_key(
                f"fk_{table}_episode_id_episodes", "episodes", ["episode_id"], ["id"]
            )
            batch.create_foreign_key(
                f"fk_{table}_org_id_organizations", "organizations", ["org_id"], ["id"]
            )
    op.drop_index("ix_episodes_org_id_id", table_name="episodes")
    op.create_index("ix_episodes_org_id_id", "episodes", ["org_id", "id"])
