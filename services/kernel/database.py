"""Database access: the async engine, the session factory, and the per-request unit of work."""

from typing import TypeAlias

import asyncpg
from sqlalchemy import Row, Select, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from services.kernel import metrics
from services.kernel.config import Settings
from services.kernel.errors import Conflict

# The asyncpg types the hot path works with (PostgreSQL). asyncpg ships no type information, so
# to mypy these name what a value is without checking its use.
Driver: TypeAlias = asyncpg.Connection
DriverPool: TypeAlias = asyncpg.Pool
DriverRecord: TypeAlias = asyncpg.Record  # a row, read by position or name

# A Core SELECT whose columns mypy does not know (the tables are read as ``Model.__table__``), and
# one of its rows: values read by column name, as the database returns them.
UntypedSelect: TypeAlias = Select[*tuple[object, ...]]
UntypedRow: TypeAlias = Row[*tuple[object, ...]]


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        settings.prepare_sqlite_file()  # owner-only (0600): it holds health data
        engine = create_async_engine(
            settings.database_url,
            connect_args={"timeout": settings.db_timeout_seconds},
        )
        _configure_sqlite(engine, busy_timeout_ms=int(settings.db_timeout_seconds * 1000))
        return engine
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_timeout_seconds,
        connect_args={
            "timeout": settings.db_timeout_seconds,
            "command_timeout": settings.db_command_timeout_seconds,
            "server_settings": {"application_name": "attune"},
        },
    )
    _drop_closed_connections(engine)
    return engine


def create_replica_engine(settings: Settings) -> AsyncEngine:
    """The read replica's engine (services/kernel/replica.py): a small pool, for long reads."""
    assert settings.replica_database_url is not None
    engine = create_async_engine(
        settings.replica_database_url,
        pool_size=max(2, settings.export_max_concurrent),
        max_overflow=2,
        pool_timeout=settings.db_timeout_seconds,
        connect_args={
            "timeout": min(settings.db_timeout_seconds, settings.replica_check_seconds),
            "command_timeout": settings.db_command_timeout_seconds,
            "server_settings": {"application_name": "attune-replica-reader"},
        },
    )
    _drop_closed_connections(engine)
    return engine


def _drop_closed_connections(engine: AsyncEngine) -> None:
    """Pre-ping without the round trip: a pooled connection whose socket the server closed (a
    restart, a failover) is known closed to asyncpg already, and is replaced on checkout instead
    of failing the request that draws it. (`pool_pre_ping` would cost a round trip on every
    request; a connection that dies while checked out still fails its request with a 503, and
    SQLAlchemy then invalidates the rest of the pool.)"""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(
        dbapi_connection: DBAPIConnection,
        _record: ConnectionPoolEntry,
        _proxy: PoolProxiedConnection,
    ) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("connection closed by the server")


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE below is what runs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
        # when another writer committed in between; taking the write lock up front makes
        # concurrent requests wait on busy_timeout instead. A connection that only reads for
        # a long while (an export's stream) opens a deferred one, so writers go on meanwhile.
        if conn.get_execution_options().get("attune_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def insert_unique(session: AsyncSession, row: object, *, conflict: str) -> None:
    """Add and flush `row`; a unique-constraint violation becomes a 409 with `conflict`.

    Callers check for an existing row first, for a friendly answer; this catches the race where a
    concurrent request inserted the same key in between.
    """
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(conflict) from exc


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style DSN asyncpg takes, from a SQLAlchemy URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _end_transaction(connection: Driver) -> None:
    """Reset for pooled driver connections: end a transaction left open, nothing more.

    asyncpg's default reset sends a query on every release (unlock advisory locks, close cursors,
    unlisten, RESET ALL): one more round trip per request. Attune's driver connections never
    leave session state behind — its locks are transaction-level, its settings `SET LOCAL`, it
    opens no cursors and listens to nothing — so ending the transaction is all there is to undo.
    """
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def create_driver_pool(settings: Settings) -> DriverPool | None:
    """On PostgreSQL, an asyncpg pool for the submission hot path (see `UnitOfWork`)."""
    if settings.is_sqlite:
        return None
    return await asyncpg.create_pool(
        asyncpg_dsn(settings.database_url),
        # Connect on demand: the service starts, and reports not ready, without a database.
        min_size=0,
        max_size=settings.db_pool_size,
        timeout=settings.db_timeout_seconds,
        command_timeout=settings.db_command_timeout_seconds,
        server_settings={"application_name": "attune"},
        reset=_end_transaction,
    )


async def create_replica_driver_pool(settings: Settings) -> DriverPool:
    """An asyncpg pool on the read replica, for the long reads that use one."""
    assert settings.replica_database_url is not None
    return await asyncpg.create_pool(
        asyncpg_dsn(settings.replica_database_url),
        min_size=0,
        max_size=max(2, settings.export_max_concurrent),
        timeout=settings.db_timeout_seconds,
        command_timeout=settings.db_command_timeout_seconds,
        server_settings={"application_name": "attune-replica-reader"},
        reset=_end_transaction,
    )


class UnitOfWork:
    """One request's transaction.

    Two ways in, never mixed within one transaction:
    - `connection()` / `orm()`: a SQLAlchemy connection with its transaction, and an ORM session
      joined to it when a service asks for one — what most routes use;
    - on PostgreSQL, `driver()` / `driver_transaction()`: a connection straight from an asyncpg
      pool. The submission hot path runs on it alone: measured, SQLAlchemy's connection, pool and
      greenlet layers were the largest cost left on that route. Authentication reads the key on
      it before any transaction; a route that then asks for `connection()` gets the driver
      connection handed back to its pool first. When a SQLAlchemy transaction is already open,
      `driver_transaction()` returns the asyncpg connection under it instead, so the work still
      commits as one unit.
    Services never commit: the request boundary calls `commit()` before the response is sent.
    """

    def __init__(self, engine: AsyncEngine, pool: DriverPool | None = None) -> None:
        self._engine = engine
        self._pool = pool
        self._conn: AsyncConnection | None = None
        self._session: AsyncSession | None = None
        self._pooled: Driver | None = None  # acquired from `pool`
        self._pooled_tx: asyncpg.transaction.Transaction | None = None
        self._under_sqlalchemy: Driver | None = None  # the asyncpg connection under `_conn`

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @property
    def has_driver(self) -> bool:
        """Whether `driver()` gives an asyncpg connection (PostgreSQL with a driver pool)."""
        return self._pool is not None

    async def connection(self) -> AsyncConnection:
        if self._conn is None:
            if self._pooled_tx is not None:
                raise RuntimeError("this unit of work already runs a driver transaction")
            await self._release_pooled()
            with metrics.DB_POOL_WAITING.track_inprogress():
                conn = await self._engine.connect()
            await conn.begin()
            self._conn = conn
        return self._conn

    async def driver(self) -> Driver | None:
        """An asyncpg connection for reads outside a transaction (PostgreSQL), else None."""
        if self._pool is None:
            return None
        if self._conn is not None:
            return await self.driver_transaction()
        if self._pooled is None:
            with metrics.DB_POOL_WAITING.track_inprogress():
                self._pooled = await self._pool.acquire()
        return self._pooled

    async def driver_transaction(self) -> Driver | None:
        """The asyncpg connection with this unit's transaction open on it (PostgreSQL)."""
        if self._pool is None:
            return None
        if self._conn is not None:
            if self._under_sqlalchemy is None:
                raw = (await self._conn.get_raw_connection()).driver_connection
                assert raw is not None  # a checked-out connection has its driver's
                # SQLAlchemy's adapter sends BEGIN lazily, with the first statement it runs;
                # statements sent straight to the driver must run inside that same transaction.
                # So when none has run yet, one runs through SQLAlchemy (public API only; one
                # round trip more, and only when a route mixes the two ways in).
                if not raw.is_in_transaction():
                    await self._conn.exec_driver_sql("SELECT 1")
                self._under_sqlalchemy = raw
            return self._under_sqlalchemy
        driver = await self.driver()
        assert driver is not None
        if self._pooled_tx is None:
            transaction = driver.transaction()
            await transaction.start()
            self._pooled_tx = transaction
        return driver

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
        if self._pooled_tx is not None:
            transaction, self._pooled_tx = self._pooled_tx, None
            await transaction.commit()

    async def close(self) -> None:
        """Release everything; whatever was not committed is rolled back."""
        try:
            if self._session is not None:
                await self._session.close()
        finally:
            try:
                if self._conn is not None:
                    await self._conn.close()
            finally:
                await self._release_pooled()

    async def _release_pooled(self) -> None:
        if self._pooled is None:
            return
        pooled, transaction, pool = self._pooled, self._pooled_tx, self._pool
        self._pooled = self._pooled_tx = None
        assert pool is not None
        try:
            if transaction is not None:
                await transaction.rollback()
        finally:
            await pool.release(pooled)
