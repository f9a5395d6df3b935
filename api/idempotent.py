"""Idempotency-Key for POSTs that create something: replay the stored response or run once.

The one mechanism for every creating POST (DESIGN.md §4). Records belong to the caller that made
them, and a replay is re-checked and audited (services/kernel/idempotency.py, DESIGN.md §10.8).
"""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Header
from fastapi.responses import JSONResponse

from api.problems import PROBLEM_MEDIA_TYPE
from services.kernel import idempotency
from services.kernel.auth import Actor
from services.kernel.database import UnitOfWork
from services.kernel.errors import Conflict, NotFound

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
    make: Callable[[], Awaitable[dict[str, Any]]],
    action: str,
    resource_type: str,
    owner: uuid.UUID | None = None,
    shown_once: str | tuple[str, ...] = (),
) -> JSONResponse:
    """Run ``make`` once per (caller, ``key``). ``owner``: the invitation, when the caller holds
    one rather than an API key; ``action``/``resource_type`` name a replay in the audit trail.

    ``shown_once``: the fields of the response shown once (an API key, an invitation token and
    its link, a webhook signing secret). They are never stored, so they cannot be replayed: a
    repeat answers 409 naming what the first request created — nothing is created twice, and no
    credential sits in the idempotency records."""
    if key is None:
        return FastJSONResponse(await make(), status_code=status)
    secret_fields = (shown_once,) if isinstance(shown_once, str) else shown_once
    owner = owner or idempotency.owner_of(actor)
    fingerprint = idempotency.request_fingerprint(method, path, body)
    stored = await idempotency.claim(
        uow, actor=actor, owner=owner, key=key, fingerprint=fingerprint
    )
    if stored is not None:
        if not await idempotency.still_visible(
            uow, actor=actor, resource_type=resource_type, body=stored.body
        ):
            # Answered, not raised: the refused replay's audit event commits with the request.
            await idempotency.audit_replay(
                uow,
                actor=actor,
                action=action,
                resource_type=resource_type,
                body=stored.body,
                outcome="not_found",
            )
            return _not_found(path, resource_type)
        await idempotency.audit_replay(
            uow, actor=actor, action=action, resource_type=resource_type, body=stored.body
        )
        if secret_fields:
            raise Conflict(
                f"this Idempotency-Key already created {resource_type} {stored.body.get('id')}; "
                f"its {secret_fields[0]} was shown once and is not kept"
            )
        return FastJSONResponse(
            stored.body, status_code=stored.status, headers={"Idempotent-Replayed": "true"}
        )
    payload = orjson.loads(orjson.dumps(await make(), option=orjson.OPT_UTC_Z))
    kept = {k: v for k, v in payload.items() if k not in secret_fields}
    await idempotency.store(uow, actor=actor, owner=owner, key=key, status=status, body=kept)
    return FastJSONResponse(payload, status_code=status)


def _not_found(path: str, resource_type: str) -> JSONResponse:
    """The 404 a fresh request gets for what its caller may not read (api/problems.py's shape)."""
    body = {
        "type": f"urn:attune:problem:{NotFound.type_slug}",
        "title": NotFound.title,
        "status": 404,
        "detail": f"{resource_type.replace('_', ' ')} not found",
        "instance": path,
    }
    return JSONResponse(body, status_code=404, media_type=PROBLEM_MEDIA_TYPE)


class FastJSONResponse(JSONResponse):
    """orjson: several times faster than the standard library on the busiest route, and it
    writes UUIDs and aware datetimes (RFC 3339) itself — UTC as ``Z``, as pydantic does on every
    other route."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)
