"""Idempotency-Key handling for POSTs that create something (DESIGN.md §4).

The key is claimed by inserting its row *in the request's own transaction*, guarded by the primary
key (org, key), and the stored response is written in that same transaction. So:
- a concurrent request with the same key waits on the row lock; on PostgreSQL it gives up after a
  short lock timeout and answers 409 (still in flight); on SQLite writers are serialised anyway,
  so it simply sees the finished record;
- a crash or rollback releases the claim with everything else: no stale "in flight" rows;
- a stored response exists exactly when the change it describes was committed.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from models.base import utcnow
from models.submissions import IdempotencyRecord
from services.kernel.auth import Actor
from services.kernel.database import UnitOfWork
from services.kernel.errors import Conflict, InvalidInput

RETENTION = timedelta(hours=24)
_RECORDS = IdempotencyRecord.__table__  # type: ignore[attr-defined]
# How long a request waits for a concurrent twin before answering 409 (PostgreSQL).
IN_FLIGHT_WAIT_MS = 200
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock timeout


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def request_fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


async def claim(
    uow: UnitOfWork, *, actor: Actor, key: str, fingerprint: str
) -> StoredResponse | None:
    """Claim `key` for this request, or return the response stored for it.

    Raises 422 when the key was used with a different request, 409 when its first use is still
    being processed.
    """
    now = utcnow()
    values = {
        "org_id": actor.org_id,
        "key": key,
        "request_hash": fingerprint,
        "created_at": now,
        "expires_at": now + RETENTION,
    }
    conn = await uow.connection()
    is_pg = uow.dialect == "postgresql"
    stmt = (
        (postgresql.insert if is_pg else sqlite.insert)(_RECORDS)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(col(IdempotencyRecord.key))
    )
    if is_pg:
        await conn.execute(text(f"SET LOCAL lock_timeout = '{IN_FLIGHT_WAIT_MS}ms'"))
    try:
        claimed = (await conn.execute(stmt)).scalar_one_or_none()
    except DBAPIError as exc:
        if is_pg and getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise _in_flight() from exc
        raise
    if is_pg:
        await conn.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
    if claimed is not None:
        return None
    record = (
        await conn.execute(
            select(_RECORDS).where(_RECORDS.c.org_id == actor.org_id).where(_RECORDS.c.key == key)
        )
    ).one_or_none()
    if record is None or record.response_status is None:
        raise _in_flight()
    if record.expires_at < now:
        # An expired key starts afresh, as if never used.
        await conn.execute(
            update(IdempotencyRecord)
            .where(col(IdempotencyRecord.org_id) == actor.org_id)
            .where(col(IdempotencyRecord.key) == key)
            .values(
                request_hash=fingerprint,
                response_status=None,
                response_body=None,
                created_at=now,
                expires_at=now + RETENTION,
            )
        )
        return None
    if record.request_hash != fingerprint:
        raise InvalidInput.at(
            "header.Idempotency-Key",
            "reused with another body",
            type="idempotency_mismatch",
            detail="this Idempotency-Key was used with a different request body",
        )
    assert record.response_body is not None
    return StoredResponse(status=record.response_status, body=record.response_body)


async def store(
    uow: UnitOfWork, *, actor: Actor, key: str, status: int, body: dict[str, Any]
) -> None:
    await (await uow.connection()).execute(
        update(IdempotencyRecord)
        .where(col(IdempotencyRecord.org_id) == actor.org_id)
        .where(col(IdempotencyRecord.key) == key)
        .values(response_status=status, response_body=body)
    )


def _in_flight() -> Conflict:
    return Conflict("a request with this Idempotency-Key is still being processed; retry shortly")
