"""The async engine and session factory for SQLite (embedded default) and PostgreSQL."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from services.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            settings.database_url,
            connect_args={"timeout": settings.db_timeout_seconds},
        )
        _configure_sqlite(engine, busy_timeout_ms=int(settings.db_timeout_seconds * 1000))
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # No pre-ping (a round trip per request): a connection that died with the server raises
        # a disconnect error, SQLAlchemy then invalidates the whole pool, and the next request
        # connects afresh.
        pool_timeout=settings.db_timeout_seconds,
        connect_args={
            "timeout": settings.db_timeout_seconds,
            "command_timeout": settings.db_timeout_seconds * 6,
            "server_settings": {"application_name": "attune"},
        },
    )


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE below is what runs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
        # when another writer committed in between; taking the write lock up front makes
        # concurrent requests wait on busy_timeout instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT with the dialect's ON CONFLICT support (PostgreSQL and SQLite share the syntax)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class UnitOfWork:
    """One request's transaction on one connection.

    The connection and its transaction are opened on first use; an ORM session joined to that
    transaction is made only when a service asks for one, so the submission hot path, which needs
    only the connection (and on PostgreSQL the driver under it), skips the ORM's bookkeeping.
    Services never commit: the request boundary calls `commit()` before the response is sent.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._session: AsyncSession | None = None
        self._driver: Any = None

    async def connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._engine.connect()
            await conn.begin()
            self._conn = conn
        return self._conn

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    async def asyncpg(self) -> Any | None:
        """The asyncpg connection under this transaction (PostgreSQL), else None."""
        if self.dialect != "postgresql":
            return None
        if self._driver is None:
            fairy = await (await self.connection()).get_raw_connection()
            adapted = fairy.dbapi_connection
            # SQLAlchemy's adapter sends BEGIN lazily, with the first statement it runs itself;
            # statements sent straight to the driver must run inside that same transaction.
            if adapted._transaction is None:  # type: ignore[union-attr]
                await adapted._start_transaction()  # type: ignore[union-attr]
            self._driver = fairy.driver_connection
        return self._driver

    async def orm(self) -> AsyncSession:
        if self._session is None:
            self._session = AsyncSession(
                bind=await self.connection(),
                expire_on_commit=False,
                autoflush=False,
                # The session works inside the connection's transaction and never commits it.
                join_transaction_mode="rollback_only",
            )
        return self._session

    async def commit(self) -> None:
        if self._session is not None:
            await self._session.flush()
        if self._conn is not None:
            await self._conn.commit()

    async def close(self) -> None:
        """Release everything; whatever was not committed is rolled back."""
        try:
            if self._session is not None:
                await self._session.close()
        finally:
            if self._conn is not None:
                await self._conn.close()
