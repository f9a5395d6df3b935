"""Webhook endpoints and their delivery log (DESIGN.md §4, §8)."""

import uuid
from typing import Annotated

from fastapi import Request, Response

from api.deps import Cursor, Limit, SessionDep, SettingsDep, UnitOfWorkDep, audit_target, require
from api.idempotent import IdempotencyKey, run_once
from api.problems import responses
from api.routing import router as api_router
from models.webhooks import (
    DeliveryStatus,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPublic,
    WebhookPublic,
)
from services.kernel.auth import Actor
from services.kernel.pagination import DEFAULT_LIMIT, Page
from services.webhooks import endpoints as webhooks

router = api_router(prefix="/v1/webhooks", tags=["webhooks"])

WebhooksWrite = Annotated[Actor, require("webhooks:write")]


@router.post(
    "", status_code=201, response_model=WebhookCreated, responses=responses(401, 403, 409, 422)
)
async def create_webhook(
    body: WebhookCreate,
    actor: WebhooksWrite,
    uow: UnitOfWorkDep,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> WebhookCreated:
    """Register an endpoint. The answer holds its signing secret (`whsec_…`), shown this once
    and never stored with the Idempotency-Key: a repeat answers 409 naming the endpoint."""

    async def make() -> WebhookCreated:
        return await webhooks.create_endpoint(
            session,
            actor=actor,
            data=body,
            allow_private=settings.webhook_allow_private,
            allowed_ports=settings.webhook_allowed_ports,
            secrets=settings.secret_box(),
        )

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path="/v1/webhooks",
        body=body,
        status=201,
        response=response,
        schema=WebhookCreated,
        make=make,
        action="webhook.create",
        resource_type="webhook",
        shown_once="secret",
    )


@router.get("", responses=responses(401, 403, 422))
async def list_webhooks(
    actor: WebhooksWrite,
    session: SessionDep,
    settings: SettingsDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[WebhookPublic]:
    """The organization's webhook endpoints, without their secrets."""
    items, next_cursor = await webhooks.list_endpoints(
        session, actor=actor, limit=limit, cursor=cursor, secrets=settings.secret_box()
    )
    return Page(items=items, next_cursor=next_cursor)


@router.delete("/{webhook_id}", status_code=204, responses=responses(401, 403, 404, 422))
async def delete_webhook(
    webhook_id: uuid.UUID, request: Request, actor: WebhooksWrite, session: SessionDep
) -> Response:
    """Remove an endpoint: nothing more is delivered to it."""
    audit_target(request, "webhook.delete", "webhook", webhook_id)
    await webhooks.delete_endpoint(session, actor=actor, endpoint_id=webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", responses=responses(401, 403, 404, 422))
async def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    request: Request,
    actor: WebhooksWrite,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[WebhookDeliveryPublic]:
    """Newest event first; each delivery with its latest attempts (time, status code or error,
    duration)."""
    audit_target(request, "webhook.deliveries", "webhook", webhook_id)
    items, next_cursor = await webhooks.list_deliveries(
        session, actor=actor, endpoint_id=webhook_id, status=status, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)
