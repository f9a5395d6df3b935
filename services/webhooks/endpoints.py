"""Webhook endpoints: register, list, delete, and read their delivery log (DESIGN.md §8).

Endpoints belong to the organisation: they receive events about every episode. A key bound to a
clinician sees only its caseload, so it may not manage them (403). Alerts about a client's
concern reach an endpoint only while the key that registered it may read concerns (DESIGN.md
§10.8, services/webhooks/outbox.py); ``receives_concerns`` says whether they do. A key without
``concerns:read`` may still register an endpoint for ``alert.*`` events: it gets every other
alert, as that key's ``GET /v1/alerts`` would.
"""

import base64
import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.webhooks import (
    WebhookAttempt,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
    WebhookDeliveryPublic,
    WebhookEndpoint,
    WebhookPublic,
)
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.crypto import SecretBox, UndecryptableSecret
from services.kernel.errors import Forbidden, InvalidInput, NotFound
from services.kernel.pagination import decode_seq_cursor, encode_seq_cursor, fetch_page
from services.webhooks import targets as webhook_targets
from services.webhooks.outbox import KEY_COLUMNS, KEYS, RegisteringKey, reads_concerns

SECRET_PREFIX = "whsec_"  # noqa: S105  (the Standard Webhooks prefix, not a secret)
# Attempts shown with each delivery; the oldest are left out of the listing (not deleted).
ATTEMPTS_SHOWN = 20


def generate_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _organisation_wide(actor: Actor) -> uuid.UUID:
    if actor.clinician_id is not None:
        raise Forbidden(
            "webhooks receive events of the whole organisation; a key bound to a clinician "
            "cannot manage them"
        )
    return actor.org_id


async def create_endpoint(
    session: AsyncSession,
    *,
    actor: Actor,
    data: WebhookCreate,
    allow_private: bool,
    allowed_ports: Iterable[int] = webhook_targets.DEFAULT_ALLOWED_PORTS,
    secrets: SecretBox,
) -> WebhookCreated:
    org_id = _organisation_wide(actor)
    url = str(data.url)
    reason = await webhook_targets.refusal(
        url, allow_private=allow_private, allowed_ports=allowed_ports
    )
    if reason is not None:
        raise InvalidInput.at("body.url", reason, type="url", detail=reason)
    secret = generate_secret()
    row = WebhookEndpoint(
        org_id=org_id,
        url=secrets.seal(url),  # encrypted at rest: it may carry credentials
        description=data.description,
        event_types=list(dict.fromkeys(data.event_types)),
        secret=secrets.seal(secret),  # encrypted at rest (services/kernel/crypto.py)
        created_by_key_id=actor.principal.key_id,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session, actor, action="webhook.create", resource_type="webhook", resource_id=row.id
    )
    created = WebhookCreated.model_validate({**row.model_dump(), "url": url, "secret": secret})
    return created.model_copy(
        update={
            "url": webhook_targets.redacted(created.url),
            "receives_concerns": actor.clinician_id is None
            and actor.principal.has("concerns:read"),
        }
    )


def _live(actor: Actor) -> Select[WebhookEndpoint]:
    return (
        select(WebhookEndpoint)
        .where(col(WebhookEndpoint.org_id) == _organisation_wide(actor))
        .where(col(WebhookEndpoint.deleted_at).is_(None))
    )


async def list_endpoints(
    session: AsyncSession, *, actor: Actor, limit: int, cursor: str | None, secrets: SecretBox
) -> tuple[list[WebhookPublic], str | None]:
    rows, next_cursor = await fetch_page(
        session, _live(actor), id_column=col(WebhookEndpoint.id), limit=limit, cursor=cursor
    )
    key_ids = {r.created_by_key_id for r in rows if r.created_by_key_id is not None}
    keys = {
        k.id: k
        for k in (
            await session.execute(select(KEYS.c.id, *KEY_COLUMNS).where(KEYS.c.id.in_(key_ids)))
        ).all()
    }
    return [_public(r, keys.get(r.created_by_key_id), secrets) for r in rows], next_cursor


# Shown for a URL that no configured key opens (deliveries to it fail the same way).
UNDECRYPTABLE_URL = "undecryptable: list the previous ATTUNE_SECRET_KEY in ATTUNE_SECRET_KEYS_OLD"


def _public(row: WebhookEndpoint, key: RegisteringKey | None, secrets: SecretBox) -> WebhookPublic:
    try:
        url = webhook_targets.redacted(secrets.open(row.url))
    except UndecryptableSecret:
        url = UNDECRYPTABLE_URL
    public = WebhookPublic.model_validate(row)
    return public.model_copy(
        update={"url": url, "receives_concerns": key is not None and reads_concerns(key)}
    )


async def _endpoint(session: AsyncSession, actor: Actor, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    row: WebhookEndpoint | None = await session.scalar(
        _live(actor).where(col(WebhookEndpoint.id) == endpoint_id)
    )
    if row is None:
        raise NotFound("webhook endpoint not found")
    return row


async def delete_endpoint(session: AsyncSession, *, actor: Actor, endpoint_id: uuid.UUID) -> None:
    """The endpoint stops receiving at once, pending deliveries included; its log stays."""
    row = await _endpoint(session, actor, endpoint_id)
    await session.execute(
        update(WebhookEndpoint)
        .where(col(WebhookEndpoint.id) == row.id)
        .values(deleted_at=utcnow(), enabled=False, disabled_reason="deleted")
    )
    audit.record(
        session, actor, action="webhook.delete", resource_type="webhook", resource_id=row.id
    )


async def list_deliveries(
    session: AsyncSession,
    *,
    actor: Actor,
    endpoint_id: uuid.UUID,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[WebhookDeliveryPublic], str | None]:
    """Newest event first, each delivery with its latest attempts."""
    endpoint = await _endpoint(session, actor, endpoint_id)
    stmt = select(WebhookDelivery).where(
        col(WebhookDelivery.org_id) == endpoint.org_id,
        col(WebhookDelivery.endpoint_id) == endpoint.id,
    )
    if status is not None:
        stmt = stmt.where(col(WebhookDelivery.status) == status)
    if cursor is not None:
        stmt = stmt.where(col(WebhookDelivery.event_seq) < decode_seq_cursor(cursor))
    rows: Sequence[WebhookDelivery] = (
        await session.scalars(stmt.order_by(col(WebhookDelivery.event_seq).desc()).limit(limit + 1))
    ).all()
    next_cursor = encode_seq_cursor(rows[limit - 1].event_seq) if len(rows) > limit else None
    rows = rows[:limit]
    attempts: dict[uuid.UUID, list[WebhookAttempt]] = defaultdict(list)
    if rows:
        found = await session.scalars(
            select(WebhookAttempt)
            .where(col(WebhookAttempt.org_id) == endpoint.org_id)
            .where(col(WebhookAttempt.delivery_id).in_([r.id for r in rows]))
            .order_by(col(WebhookAttempt.id).desc())
        )
        for attempt in found:
            if len(attempts[attempt.delivery_id]) < ATTEMPTS_SHOWN:
                attempts[attempt.delivery_id].append(attempt)
    audit.record(
        session,
        actor,
        action="webhook.deliveries",
        resource_type="webhook",
        resource_id=endpoint.id,
    )
    return [
        WebhookDeliveryPublic.model_validate(
            {
                **row.model_dump(),
                "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
                "attempt_log": [a.model_dump() for a in attempts[row.id]],
            }
        )
        for row in rows
    ], next_cursor
