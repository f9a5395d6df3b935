"""CHECK constraints on status and other enum-like columns (issue 12)

Each column's values are the Literal type that annotates it in models/ (models/base.py
`one_of`); they are spelled out here because a migration must not change when the models do.

Revision ID: e4c1a7b95d20
Revises: 9d3b8e4f5a61
Create Date: 2026-12-05 10:30:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e4c1a7b95d20"
down_revision: str | Sequence[str] | None = "9d3b8e4f5a61"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TYPES = ("submission.created", "alert.created", "alert.updated", "alert.resolved")
RESPONDENTS = ("client", "clinician", "collateral")

# table -> column -> allowed values (NULL passes a CHECK, so nullable columns stay so).
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
    "fhir_export_jobs": {"status": ("accepted", "cancelled")},
    "outbox_events": {"type": EVENT_TYPES},
    "submissions": {"respondent": RESPONDENTS, "status": ("valid", "voided")},
    "webhook_deliveries": {
        "event_type": EVENT_TYPES,
        "status": ("pending", "delivered", "failed"),
    },
}


def upgrade() -> None:
    # Batch mode: SQLite adds a constraint only by copying the table.
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column, values in columns.items():
                listed = ", ".join(f"'{v}'" for v in values)
                batch.create_check_constraint(
                    op.f(f"ck_{table}_{column}"), f"{column} IN ({listed})"
                )


def downgrade() -> None:
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
