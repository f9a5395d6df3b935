"""one open alert per key, no longer one unresolved (DESIGN.md §10.3.2)

A new event of a discrete rule (risk.item, rupture.reported, alliance.drop) after a person
acknowledged its alert opens a new alert beside the acknowledged one, so the unique index now
holds one *open* alert per (episode, rule, instrument, respondent, rater, subscale).

Revision ID: 3e7d1a9c5b20
Revises: f7a2c9d4e815
Create Date: 2026-12-05 10:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "3e7d1a9c5b20"
down_revision: str | Sequence[str] | None = "f7a2c9d4e815"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = ["org_id", "episode_id", "type", "instrument", "respondent", "rater", "subscale"]
_UNRESOLVED = sa.text("status <> 'resolved' AND type <> 'concern.reported'")
_OPEN = sa.text("status = 'open' AND type <> 'concern.reported'")


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alerts_one_unresolved_per_key",
            sqlite_where=_UNRESOLVED,
            postgresql_where=_UNRESOLVED,
        )
        batch_op.create_index(
            "uq_alerts_one_open_per_key",
            _KEY,
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        )


def downgrade() -> None:
    # Refuses (unique violation) while an acknowledged event alert and a newer open one of the same
    # key both stand: resolve one of them first.
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alerts_one_open_per_key", sqlite_where=_OPEN, postgresql_where=_OPEN
        )
        batch_op.create_index(
            "uq_alerts_one_unresolved_per_key",
            _KEY,
            unique=True,
            sqlite_where=_UNRESOLVED,
            postgresql_where=_UNRESOLVED,
        )
