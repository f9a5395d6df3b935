"""Checked status columns as domains on PostgreSQL: the CHECK is prepared once per connection

pgs1c4e0a7b2 halved what a table's CHECKs cost each writing statement; what is left is still
parsing them again per statement (src/backend/executor/execMain.c, ExecRelCheck; PostgreSQL 15),
about 32,000 instructions per constraint, ten of them on the write of `POST /v1/submissions`
(callgrind on its backend: 320,000 instructions, 12 % of the backend's). A domain's CHECK is
planned once per connection and kept in the type cache (src/backend/utils/cache/typcache.c,
load_domaintype_info), and it runs only on the values a statement assigns to the column: the
submission's `UPDATE episodes SET alert_seq = ...` checks no status at all.

Each column becomes a domain of its own type, named <table>_<column>, whose constraint keeps the
name and the values of the table constraint it replaces (ck_<table>_<column>, as e4c1a7b95d20,
16a1e7c0d5f2 and pgs1c4e0a7b2 spelled them), so a refused value is still a check violation
naming it. Counted the same way, a submission's backend went from 2.60 to 2.33 million
instructions (2.81 before pgs1c4e0a7b2; 2.18 at ee23692, with a shorter history window).

The column changes type while the domain has no constraint yet (varchar to a domain over the
same varchar: no table rewrite), then ALTER DOMAIN adds and validates the constraint by scanning
the column. Partial indexes whose predicate names a retyped column are rebuilt under the ALTER
TABLE lock (uq_submissions_one_valid_per_session, uq_alerts_one_open_per_key,
ix_alerts_unescalated, ix_webhook_deliveries_*): on a large database, plan the upgrade for a
quiet hour. SQLite keeps its table CHECKs.

Revision ID: pgs2d5f1b8c3
Revises: pgs1c4e0a7b2
Create Date: 2026-12-05 19:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "pgs2d5f1b8c3"
down_revision: str | Sequence[str] | None = "pgs1c4e0a7b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TYPES = ("submission.created", "alert.created", "alert.updated", "alert.resolved")
RESPONDENTS = ("client", "clinician", "collateral")

# table -> column -> allowed values, as the earlier migrations spelled them.
CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "alerts": {
        "severity": ("warning", "high", "critical"),
        "status": ("open", "acknowledged", "resolved"),
        "resolution": (
            "repaired",
            "discussed",
            "referred",
            "dismissed",
            "other",
            "condition_cleared",
            "retracted",
        ),
        "respondent": ("", *RESPONDENTS),
    },
    "clients": {"population": ("adult", "adolescent", "child")},
    "concerns": {
        "category": ("relationship", "safety", "boundaries", "treatment", "access", "other")
    },
    "episodes": {"status": ("active", "closed")},
    "expected_response_fits": {"status": ("queued", "running", "done", "failed")},
    "expected_response_models": {"source": ("uploaded", "fitted")},
    "fhir_export_jobs": {"status": ("accepted", "cancelled")},
    "outbox_events": {"type": EVENT_TYPES},
    "submissions": {"respondent": RESPONDENTS, "status": ("valid", "voided")},
    "webhook_deliveries": {
        "event_type": EVENT_TYPES,
        "status": ("pending", "delivered", "failed"),
    },
}


def one_of(subject: str, values: tuple[str, ...]) -> str:
    """pgs1c4e0a7b2's spelling: one text[] constant, every element quoted ('' is one too)."""
    assert all(not set(v) & set("'\"\\{},") for v in values)
    listed = ",".join(f'"{v}"' for v in values)
    return f"{subject}::text = ANY ('{{{listed}}}'::text[])"


def _column_type(table: str, column: str) -> str:
    """The column's type as PostgreSQL spells it, e.g. 'character varying(16)'."""
    found = op.get_bind().scalar(
        sa.text(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE c.relname = :table AND c.relnamespace = current_schema()::regnamespace"
            " AND a.attname = :column"
        ),
        {"table": table, "column": column},
    )
    assert isinstance(found, str), (table, column)
    return found


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in CHECKS.items():
        changes = []
        for column in columns:
            domain, name = f"{table}_{column}", f"ck_{table}_{column}"
            op.execute(f"CREATE DOMAIN {domain} AS {_column_type(table, column)}")
            changes += [f"DROP CONSTRAINT {name}", f"ALTER COLUMN {column} TYPE {domain}"]
        op.execute(f"ALTER TABLE {table} " + ", ".join(changes))
        for column, values in columns.items():
            domain, name = f"{table}_{column}", f"ck_{table}_{column}"
            check = one_of("VALUE", values)
            op.execute(f"ALTER DOMAIN {domain} ADD CONSTRAINT {name} CHECK ({check})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in CHECKS.items():
        changes = []
        for column, values in columns.items():
            domain, name = f"{table}_{column}", f"ck_{table}_{column}"
            base = op.get_bind().scalar(
                sa.text(
                    "SELECT format_type(typbasetype, typtypmod) FROM pg_type WHERE typname = :d"
                    " AND typnamespace = current_schema()::regnamespace"
                ),
                {"d": domain},
            )
            changes += [
                f"ALTER COLUMN {column} TYPE {base}",
                f"ADD CONSTRAINT {name} CHECK ({one_of(column, values)})",
            ]
        op.execute(f"ALTER TABLE {table} " + ", ".join(changes))
        for column in columns:
            op.execute(f"DROP DOMAIN {table}_{column}")
