"""indexes for the retention jobs: old webhook attempts, finished deliveries

The worker purges webhook attempts and finished deliveries past their retention every hour
(services/retention/); without these it would scan both tables each time. Both are written by
the worker only (an attempt per try; a delivery enters the partial index when it finishes), so
the submission path pays nothing for them.

Revision ID: 18a1c0de7e11
Revises: 14d8b2f6a913
Create Date: 2026-12-05 13:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "18a1c0de7e11"
down_revision: str | None = "14d8b2f6a913"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FINISHED = sa.text("status <> 'pending'")


def upgrade() -> None:
    op.create_index("ix_webhook_attempts_attempted_at", "webhook_attempts", ["attempted_at"])
    op.create_index(
        "ix_webhook_deliveries_finished",
        "webhook_deliveries",
        ["last_attempt_at"],
        sqlite_where=_FINISHED,
        postgresql_where=_FINISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_finished", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_attempts_attempted_at", table_name="webhook_attempts")
