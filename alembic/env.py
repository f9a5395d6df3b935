"""Alembic environment: async engine, URL from Attune's settings, metadata from `models`."""

import asyncio
from logging.config import fileConfig

from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table on the metadata)
from alembic import context
from models.base import same_type
from services.kernel.config import Settings
from services.kernel.database import create_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def _url() -> str:
    return str(config.attributes.get("database_url") or Settings().database_url)


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # SQLite alters a table by copying it (batch mode), and dropping a table that others
        # reference fails while foreign keys are enforced; the switch works only outside a
        # transaction, so it goes straight to the driver, before the migrations' one begins.
        cursor = connection.connection.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite can only alter tables by copying them; batch mode does that for us.
        render_as_batch=True,
        compare_type=same_type,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    settings = Settings(database_url=_url())
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            # A PostgreSQL schema of its own (the migration tests build one beside the test schema).
            schema = config.attributes.get("search_path")
            if schema:
                await connection.exec_driver_sql(f'SET search_path TO "{schema}"')
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
