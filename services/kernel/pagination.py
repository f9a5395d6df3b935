"""Keyset pagination by id (ids are UUIDv7, so id order is creation order)."""

import base64
import binascii
import struct
import uuid
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, SQLColumnExpression
from sqlalchemy.ext.asyncio import AsyncSession

from services.kernel.errors import InvalidInput

T = TypeVar("T")


class _Identified(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


Row = TypeVar("Row", bound=_Identified)
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, parse: Callable[[bytes], T]) -> T:
    try:
        return parse(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, struct.error) as exc:
        raise InvalidInput.at(
            "query.cursor",
            "invalid cursor",
            type="cursor",
            detail="the cursor is not one this API issued",
        ) from exc


def encode_cursor(last_id: uuid.UUID) -> str:
    return _encode(last_id.bytes)


def decode_cursor(cursor: str) -> uuid.UUID:
    return _decode(cursor, lambda raw: uuid.UUID(bytes=raw))


def encode_seq_cursor(seq: int) -> str:
    """A cursor after a sequence number, for lists ordered by one rather than by id."""
    return _encode(struct.pack(">q", seq))


def decode_seq_cursor(cursor: str) -> int:
    return _decode(cursor, lambda raw: int(struct.unpack(">q", raw)[0]))


async def fetch_page(
    session: AsyncSession,
    stmt: Select[Row],
    *,
    id_column: SQLColumnExpression[uuid.UUID],
    limit: int,
    cursor: str | None,
    newest_first: bool = False,
) -> tuple[Sequence[Row], str | None]:
    if cursor is not None:
        after = decode_cursor(cursor)
        stmt = stmt.where(id_column < after if newest_first else id_column > after)
    stmt = stmt.order_by(id_column.desc() if newest_first else id_column.asc()).limit(limit + 1)
    rows = (await session.execute(stmt)).scalars().all()
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None
