"""An organization's own API keys, managed by its admins."""

import uuid

from fastapi import Response

from api.deps import AdminActor, Cursor, Limit, SessionDep, SettingsDep, UnitOfWorkDep
from api.idempotent import IdempotencyKey, run_once
from api.problems import responses
from api.routing import router as api_router
from models.tenancy import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from services.care import organizations
from services.kernel.pagination import DEFAULT_LIMIT, Page

router = api_router(prefix="/v1/api-keys", tags=["api-keys"])


@router.post(
    "", status_code=201, response_model=ApiKeyCreated, responses=responses(401, 403, 409, 422)
)
async def create_api_key(
    body: ApiKeyCreate,
    actor: AdminActor,
    uow: UnitOfWorkDep,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ApiKeyCreated:
    """Never more scopes or a wider clinician binding than the minting key's own; `admin` is
    never bound to a clinician (DESIGN.md §10.8). The key is shown once: a repeated
    Idempotency-Key answers 409 naming the key created."""

    async def make() -> ApiKeyCreated:
        return await organizations.create_api_key(
            session,
            actor=actor,
            org_id=actor.org_id,
            data=body,
            secret=settings.secret_key.get_secret_value(),
        )

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path="/v1/api-keys",
        body=body,
        status=201,
        response=response,
        schema=ApiKeyCreated,
        make=make,
        action="api_key.create",
        resource_type="api_key",
        shown_once="key",
    )


@router.get("", responses=responses(401, 403, 422))
async def list_api_keys(
    actor: AdminActor, session: SessionDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[ApiKeyPublic]:
    """The organization's API keys, revoked ones included, without their secrets."""
    rows, next_cursor = await organizations.list_api_keys(
        session, actor=actor, limit=limit, cursor=cursor
    )
    return Page(items=[ApiKeyPublic.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.delete("/{key_id}", status_code=204, responses=responses(401, 403, 404, 422))
async def revoke_api_key(key_id: uuid.UUID, actor: AdminActor, session: SessionDep) -> Response:
    """Revoke a key: it stops working at once. Revoking twice is harmless."""
    await organizations.revoke_api_key(session, actor=actor, key_id=key_id)
    return Response(status_code=204)
