"""Organizations and their keys, managed with the system key."""

import uuid

from api.deps import SessionDep, SettingsDep, SystemActor
from api.problems import responses
from api.routing import router as api_router
from models.tenancy import ApiKeyCreate, ApiKeyCreated, OrganizationCreate, OrganizationPublic
from services.care import organizations

router = api_router(prefix="/v1/organizations", tags=["organizations"])


@router.post("", status_code=201, responses=responses(401, 403, 409, 422))
async def create_organization(
    body: OrganizationCreate, actor: SystemActor, session: SessionDep, settings: SettingsDep
) -> OrganizationPublic:
    org = await organizations.create_organization(
        session, actor=actor, data=body, secrets=settings.secret_box()
    )
    return OrganizationPublic.model_validate(org)


@router.post("/{org_id}/api-keys", status_code=201, responses=responses(401, 403, 404, 422))
async def create_org_api_key(
    org_id: uuid.UUID,
    body: ApiKeyCreate,
    actor: SystemActor,
    session: SessionDep,
    settings: SettingsDep,
) -> ApiKeyCreated:
    await organizations.get_organization(session, org_id)
    return await organizations.create_api_key(
        session,
        actor=actor,
        org_id=org_id,
        data=body,
        secret=settings.secret_key.get_secret_value(),
    )
