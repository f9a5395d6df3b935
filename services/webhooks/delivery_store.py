"""How a webhook worker's round holds the rows it claims, per database: the storage seam of
`services.webhooks.delivery`, chosen once from the engine (:func:`delivery_store`), so the
delivery code never asks which database it is on (tests/unit/test_codebase.py reads it)."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.kernel.database import UntypedRow, UntypedSelect

Sent = TypeVar("Sent")


class DeliveryStore(Protocol):
    async def claim_send_record(
        self,
        claim: UntypedSelect,
        send: Callable[[Sequence[UntypedRow]], Awaitable[Sent | None]],
        record: Callable[[AsyncConnection, Sent], Awaitable[None]],
    ) -> Sent | None:
        """Run ``claim``, ``send`` what it claimed (None: nothing to send), then ``record`` the
        outcome in a write transaction; None when nothing was sent."""
        ...


class SqliteDeliveryStore:
    """SQLite's write transaction locks the whole database: claim in a read transaction, send
    with none open, record in a short write transaction. One worker runs on SQLite, so no other
    takes these rows meanwhile."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claim_send_record(
        self,
        claim: UntypedSelect,
        send: Callable[[Sequence[UntypedRow]], Awaitable[Sent | None]],
        record: Callable[[AsyncConnection, Sent], Awaitable[None]],
    ) -> Sent | None:
        async with self.engine.connect() as reader:
            reader = await reader.execution_options(attune_read_only=True)
            async with reader.begin():
                rows = (await reader.execute(claim)).all()
        sent = await send(rows)
        if sent is None:
            return None
        async with self.engine.begin() as conn:
            await record(conn, sent)
        return sent


class PostgresDeliveryStore:
    """PostgreSQL: the claimed rows (``FOR UPDATE SKIP LOCKED``) stay locked until the outcome is
    committed, so workers side by side never send one delivery twice."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claim_send_record(
        self,
        claim: UntypedSelect,
        send: Callable[[Sequence[UntypedRow]], Awaitable[Sent | None]],
        record: Callable[[AsyncConnection, Sent], Awaitable[None]],
    ) -> Sent | None:
        async with self.engine.begin() as conn:
            sent = await send((await conn.execute(claim)).all())
            if sent is not None:
                await record(conn, sent)
        return sent


def delivery_store(engine: AsyncEngine) -> DeliveryStore:
    if engine.dialect.name == "sqlite":
        return SqliteDeliveryStore(engine)
    return PostgresDeliveryStore(engine)
