"""Idempotency-Key for POSTs that create something: replay the stored response or run once.

The one mechanism for every creating POST (DESIGN.md §4). Records belong to the caller that made
them, and a replay is re-checked and audited (services/kernel/idempotency.py, DESIGN.md §10.8).
"""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Header, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.kernel import idempotency
from services.kernel.auth import Actor
from services.kernel.database import UnitOfWork
from services.kernel.errors import Conflict, NotFoundAudited

M = TypeVar("M", bound=BaseModel)

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
    uow: UnitOfWork,
    *,
    actor: Actor,
    key: str | None,
    method: str,
    path: str,
    body: Any,
    status: int,
    response: Response,
    schema: type[M],
    make: Callable[[], Awaitable[M]],
    action: str,
    resource_type: str,
    owner: uuid.UUID | None = None,
    shown_once: str | tuple[str, ...] = (),
) -> M:
    """Run ``make`` once per (caller, ``key``). Its schema is what the route returns, so the
    route's ``response_model`` renders it; a replay too, from the stored body, with the stored
    status and an ``Idempotent-Replayed`` header set on ``response``. ``status``: the route's.
    ``body``: the request body the key is checked against (a model is dumped as sent, only when
    there is a key). ``owner``: the invitation, when the caller holds one rather than an API key;
    ``action``/``resource_type`` name a replay in the audit trail. A replay of what the caller
    may no longer read (its key's binding changed, the episode moved) is a 404, audited.

    ``shown_once``: the fields of the response shown once (an API key, an invitation token and
    its link, a webhook signing secret). They are never stored, so they cannot be replayed: a
    repeat answers 409 naming what the first request created — nothing is created twice, and no
    credential sits in the idempotency records."""
    if key is None:
        return await make()
    secret_fields = (shown_once,) if isinstance(shown_once, str) else shown_once
    owner = owner or idempotency.owner_of(actor)
    if isinstance(body, BaseModel):  # dumped only here: most requests carry no key
        body = body.model_dump(mode="json", exclude_unset=True)
    fingerprint = idempotency.request_fingerprint(method, path, body)
    stored = await idempotency.claim(
        uow, actor=actor, owner=owner, key=key, fingerprint=fingerprint
    )
    if stored is not None:
        if not await idempotency.still_visible(
            uow, actor=actor, resource_type=resource_type, body=stored.body
        ):
            # The refused replay's audit event commits with the request (NotFoundAudited).
            await idempotency.audit_replay(
                uow,
                actor=actor,
                action=action,
                resource_type=resource_type,
                body=stored.body,
                outcome="not_found",
            )
            raise NotFoundAudited(f"{resource_type.replace('_', ' ')} not found")
        await idempotency.audit_replay(
            uow, actor=actor, action=action, resource_type=resource_type, body=stored.body
        )
        if secret_fields:
            raise Conflict(
                f"this Idempotency-Key already created {resource_type} {stored.body.get('id')}; "
                f"its {secret_fields[0]} was shown once and is not kept"
            )
        response.status_code = stored.status
        response.headers["Idempotent-Replayed"] = "true"
        return schema.model_validate(stored.body)
    made = await make()
    kept = made.model_dump(mode="json", exclude=set(secret_fields) or None)
    await idempotency.store(uow, actor=actor, owner=owner, key=key, status=status, body=kept)
    return made


class FastJSONResponse(JSONResponse):
    """orjson: several times faster than the standard library on the busiest route, and it
    writes UUIDs and aware datetimes (RFC 3339) itself — UTC as ``Z``, as pydantic does on every
    other route."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)
