"""Organizations and their keys, managed with the system key."""

import uuid

from fastapi import Response

from api.deps import SessionDep, SettingsDep, SystemActor, UnitOfWorkDep
from api.idempotent import IdempotencyKey, run_once
from api.problems import responses
from api.routing import router as api_router
from models.tenancy import ApiKeyCreate, ApiKeyCreated, OrganizationCreate, OrganizationPublic
from services.care import organizations

router = api_router(prefix="/v1/organizations", tags=["organizations"])


@router.post(
    "",
    status_code=201,
    response_model=OrganizationPublic,
    responses=responses(401, 403, 409, 422),
)
async def create_organization(
    body: OrganizationCreate,
    actor: SystemActor,
    uow: UnitOfWorkDep,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OrganizationPublic:
    """Create an organization (system key only). Its slug must be unused (409)."""

    async def make() -> OrganizationPublic:
        org = await organizations.create_organization(
            session, actor=actor, data=body, secrets=settings.secret_box()
        )
        return OrganizationPublic.model_validate(org)

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path="/v1/organizations",
        body=body,
        status=201,
        response=response,
        schema=OrganizationPublic,
        make=make,
        action="organization.create",
        resource_type="organization",
    )


@router.post(
    "/{org_id}/api-keys",
    status_code=201,
    response_model=ApiKeyCreated,
    responses=responses(401, 403, 404, 409, 422),
)
async def create_org_api_key(
    org_id: uuid.UUID,
    body: ApiKeyCreate,
    actor: SystemActor,
    uow: UnitOfWorkDep,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ApiKeyCreated:
    """The key is shown once: a repeated Idempotency-Key answers 409 naming the key created."""

    async def make() -> ApiKeyCreated:
        await organizations.get_organization(session, org_id)
        return await organizations.create_api_key(
            session,
            actor=actor,
            org_id=org_id,
            data=body,
            secret=settings.secret_key.get_secret_value(),
        )

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path=f"/v1/organizations/{org_id}/api-keys",
        body=body,
        status=201,
        response=response,
        schema=ApiKeyCreated,
        make=make,
        action="api_key.create",
        resource_type="api_key",
        shown_once="key",
    )
