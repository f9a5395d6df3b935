"""encrypt stored secrets: webhook signing secrets and export pseudonym secrets at rest

Widens the two columns for Fernet tokens and seals every stored value under the key derived
from ATTUNE_SECRET_KEY (services/kernel/crypto.py). `attune migrate` passes its settings; a
bare `alembic upgrade` reads them from the environment. The downgrade opens them again.

Revision ID: f7a2c9d4e815
Revises: e4c1a7b95d20
Create Date: 2026-12-05 10:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

from services.kernel.config import Settings
from services.kernel.crypto import reseal_stored_secrets

# revision identifiers, used by Alembic.
revision: str = "f7a2c9d4e815"
down_revision: str | Sequence[str] | None = "e4c1a7b95d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LENGTHS = {"organizations": 64, "webhook_endpoints": 128}
# The columns this revision seals (later revisions seal more; crypto.STORED_SECRETS lists all).
STORED_SECRETS = (
    ("export_secrets", "organizations", "export_secret"),
    ("webhook_secrets", "webhook_endpoints", "secret"),
)


def _settings() -> Settings:
    found = op.get_context().config.attributes.get("settings")
    return found if isinstance(found, Settings) else Settings()


def _resize(table: str, column: str, old: int, new: int) -> None:
    with op.batch_alter_table(table) as batch_op:
        batch_op.alter_column(
            column,
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=old),
            type_=sqlmodel.sql.sqltypes.AutoString(length=new),
            existing_nullable=False,
        )


def upgrade() -> None:
    for _, table, column in STORED_SECRETS:
        _resize(table, column, _LENGTHS[table], 256)
    reseal_stored_secrets(op.get_bind(), _settings().secret_box(), STORED_SECRETS)


def downgrade() -> None:
    box = _settings().secret_box()
    bind = op.get_bind()
    for _, table_name, column in STORED_SECRETS:
        table = sa.table(table_name, sa.column("id"), sa.column(column))
        for row_id, value in bind.execute(sa.select(table.c.id, table.c[column])).all():
            bind.execute(
                sa.update(table).where(table.c.id == row_id).values({column: box.open(value)})
            )
        _resize(table_name, column, 256, _LENGTHS[table_name])
