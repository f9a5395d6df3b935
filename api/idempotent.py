"""Idempotency-Key for POSTs that create something: replay the stored response or run once."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services import idempotency
from services.auth import Actor

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry safely: the same key with the same body returns the stored response.",
    ),
]


async def run_once(
    session: AsyncSession,
    *,
    actor: Actor,
    key: str | None,
    method: str,
    path: str,
    body: Any,
    status: int,
    make: Callable[[], Awaitable[dict[str, Any]]],
) -> JSONResponse:
    if key is None:
        return JSONResponse(await make(), status_code=status)
    fingerprint = idempotency.request_fingerprint(method, path, body)
    stored = await idempotency.claim(session, actor=actor, key=key, fingerprint=fingerprint)
    if stored is not None:
        return JSONResponse(
            stored.body, status_code=stored.status, headers={"Idempotent-Replayed": "true"}
        )
    payload = await make()
    await idempotency.store(session, actor=actor, key=key, status=status, body=payload)
    return JSONResponse(payload, status_code=status)
