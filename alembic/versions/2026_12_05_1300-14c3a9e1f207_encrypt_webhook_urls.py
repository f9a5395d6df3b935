"""encrypt webhook endpoint URLs at rest: they may carry credentials

A receiver's URL often holds a credential (``https://user:token@host/…``, ``?token=…``); like the
endpoint's signing secret it is sealed under the key derived from ATTUNE_SECRET_KEY
(services/kernel/crypto.py). Widens the column for Fernet tokens and seals every stored URL.
`attune migrate` passes its settings; a bare `alembic upgrade` reads them from the environment.
The downgrade opens them again and narrows the column back.

Revision ID: 14c3a9e1f207
Revises: 3e7d1a9c5b20
Create Date: 2026-12-05 13:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

from services.kernel.config import Settings
from services.kernel.crypto import reseal_stored_secrets

# revision identifiers, used by Alembic.
revision: str = "14c3a9e1f207"
down_revision: str | Sequence[str] | None = "3e7d1a9c5b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLAIN_LENGTH, SEALED_LENGTH = 2048, 4096
WEBHOOK_URLS = (("webhook_urls", "webhook_endpoints", "url"),)


def _settings() -> Settings:
    found = op.get_context().config.attributes.get("settings")
    return found if isinstance(found, Settings) else Settings()


def _resize(old: int, new: int) -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.alter_column(
            "url",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=old),
            type_=sqlmodel.sql.sqltypes.AutoString(length=new),
            existing_nullable=False,
        )


def upgrade() -> None:
    _resize(PLAIN_LENGTH, SEALED_LENGTH)
    reseal_stored_secrets(op.get_bind(), _settings().secret_box(), WEBHOOK_URLS)


def downgrade() -> None:
    box = _settings().secret_box()
    bind = op.get_bind()
    table = sa.table("webhook_endpoints", sa.column("id"), sa.column("url"))
    for row_id, value in bind.execute(sa.select(table.c.id, table.c.url)).all():
        bind.execute(sa.update(table).where(table.c.id == row_id).values(url=box.open(value)))
    _resize(SEALED_LENGTH, PLAIN_LENGTH)
