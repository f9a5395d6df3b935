"""alerts.escalated_at and the index the sweep finds unescalated alerts by (DESIGN.md §10.3.6)

Revision ID: 9d3b8e4f0a54
Revises: bd663760b63d
Create Date: 2026-12-05 10:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "9d3b8e4f0a54"
down_revision: str | Sequence[str] | None = "bd663760b63d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNESCALATED = "status = 'open' AND escalated_at IS NULL AND severity IN ('critical', 'high')"


def upgrade() -> None:
    op.add_column("alerts", sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
    # Small: only open critical/high alerts nobody has escalated yet; the sweep reads it every
    # few minutes instead of scanning every alert.
    op.create_index(
        "ix_alerts_unescalated",
        "alerts",
        ["created_at"],
        unique=False,
        sqlite_where=sa.text(_UNESCALATED),
        postgresql_where=sa.text(_UNESCALATED),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_alerts_unescalated",
        table_name="alerts",
        sqlite_where=sa.text(_UNESCALATED),
        postgresql_where=sa.text(_UNESCALATED),
    )
    op.drop_column("alerts", "escalated_at")
