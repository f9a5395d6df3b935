"""The storage seam of the kernel's and the facades' use cases: what they ask of the database where
SQLite and PostgreSQL differ, as one `Protocol` with a store per database behind it (as
`services.submissions.store` does for submissions). The store is chosen once, from the unit of
work, by :func:`kernel_store`; authentication, idempotency and the FHIR identifier claim never ask
which database they are on (tests/unit/test_codebase.py reads them for that)."""

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import orjson
from sqlalchemy import Table, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from models.tenancy import ApiKey
from services.kernel.database import UnitOfWork

_KEYS: Table = ApiKey.__table__  # type: ignore[attr-defined]

# Every request runs this; prebuilt with a bound parameter so it is compiled once.
_KEY_BY_HASH = (
    select(_KEYS.c.id, _KEYS.c.org_id, _KEYS.c.scopes, _KEYS.c.clinician_id, _KEYS.c.key_hash)
    .where(_KEYS.c.key_hash == bindparam("key_hash"))
    .where(_KEYS.c.revoked_at.is_(None))
)
KEY_BY_HASH = """
    SELECT id, org_id, scopes, clinician_id, key_hash FROM api_keys
    WHERE key_hash = $1 AND revoked_at IS NULL
"""
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock timeout


@dataclass(frozen=True, slots=True)
class KeyRow:
    """An unrevoked API key, as authentication needs it."""

    id: uuid.UUID
    org_id: uuid.UUID | None
    scopes: frozenset[str]
    clinician_id: uuid.UUID | None
    key_hash: str


class LockTimeout(Exception):
    """A concurrent transaction held the row for longer than the caller would wait."""


class KernelStore(Protocol):
    async def key_by_hash(self, digest: str) -> KeyRow | None:
        """The unrevoked key with this keyed hash."""
        ...

    async def insert_if_absent(
        self, table: Table, values: Mapping[str, object], *, wait_ms: int | None = None
    ) -> bool:
        """Insert the row in the unit of work's transaction unless a row with its key exists:
        whether it was inserted. A concurrent insert of the same key is waited for (at most
        ``wait_ms``, then :class:`LockTimeout`, where the database can bound the wait: SQLite
        serialises writers anyway)."""
        ...

    async def serialise(self, name: str) -> None:
        """Hold a lock named ``name`` until the transaction ends: writers that check a count
        before adding to it take turns (PostgreSQL; SQLite has one writer at a time)."""
        ...


def _uuid(value: uuid.UUID | None) -> uuid.UUID | None:
    # uuid.UUID rather than asyncpg's subclass: these ids go into JSON responses.
    return None if value is None else uuid.UUID(bytes=value.bytes)


class SqlKernelStore:
    """On the request's SQLAlchemy connection (SQLite): its conflict clause; one writer at a
    time, so nothing to wait for or serialise."""

    def __init__(self, connection: Callable[[], Awaitable[AsyncConnection]]) -> None:
        self.connection = connection

    async def key_by_hash(self, digest: str) -> KeyRow | None:
        conn = await self.connection()
        row = (await conn.execute(_KEY_BY_HASH, {"key_hash": digest})).one_or_none()
        if row is None:
            return None
        key_id, org_id, scopes, clinician_id, key_hash = row
        return KeyRow(key_id, org_id, frozenset(scopes), clinician_id, key_hash)

    async def insert_if_absent(
        self, table: Table, values: Mapping[str, object], *, wait_ms: int | None = None
    ) -> bool:
        conn = await self.connection()
        stmt = (
            sqlite.insert(table)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(*table.primary_key.columns)
        )
        return (await conn.execute(stmt)).first() is not None

    async def serialise(self, name: str) -> None:
        return None


class PostgresKernelStore(SqlKernelStore):
    """PostgreSQL through SQLAlchemy: ``ON CONFLICT`` of its dialect, and the wait bounded by a
    transaction-local ``lock_timeout``."""

    async def insert_if_absent(
        self, table: Table, values: Mapping[str, object], *, wait_ms: int | None = None
    ) -> bool:
        conn = await self.connection()
        stmt = (
            postgresql.insert(table)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(*table.primary_key.columns)
        )
        if wait_ms is None:
            return (await conn.execute(stmt)).first() is not None
        await conn.execute(text(f"SET LOCAL lock_timeout = '{int(wait_ms)}ms'"))
        try:
            inserted = (await conn.execute(stmt)).first() is not None
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise LockTimeout from exc
            raise
        await conn.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
        return inserted

    async def serialise(self, name: str) -> None:
        conn = await self.connection()
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


class DriverKernelStore(PostgresKernelStore):
    """PostgreSQL with the asyncpg pool: the key is looked up on a pooled connection before any
    transaction opens (every request does it; see `UnitOfWork`)."""

    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow.connection)
        self.uow = uow

    async def key_by_hash(self, digest: str) -> KeyRow | None:
        driver = await self.uow.driver()
        assert driver is not None  # chosen only for a unit of work with a driver pool
        row = await driver.fetchrow(KEY_BY_HASH, digest)
        if row is None:
            return None
        scopes = row["scopes"]
        # A pooled connection hands json back as text; the one under SQLAlchemy's, decoded.
        decoded: list[str] = orjson.loads(scopes) if isinstance(scopes, str) else scopes
        key_id = _uuid(row["id"])
        assert key_id is not None
        return KeyRow(
            key_id, _uuid(row["org_id"]), frozenset(decoded), _uuid(row["clinician_id"]),
            row["key_hash"],
        )  # fmt: skip


def kernel_store(uow: UnitOfWork) -> KernelStore:
    """The unit of work's store: asyncpg reads when it has a driver pool, else SQLAlchemy in the
    dialect of its engine."""
    if uow.has_driver:
        return DriverKernelStore(uow)
    return _by_dialect(uow.dialect, uow.connection)


def session_store(session: AsyncSession) -> KernelStore:
    """The store on an ORM session's connection (use cases handed a session, not the unit of
    work)."""
    return _by_dialect(session.get_bind().dialect.name, session.connection)


def _by_dialect(dialect: str, connection: Callable[[], Awaitable[AsyncConnection]]) -> KernelStore:
    store = PostgresKernelStore if dialect == "postgresql" else SqlKernelStore
    return store(connection)
