"""Instrument definitions: the built-ins and an organization's own."""

from typing import Annotated, Any

from fastapi import Body, Path, Response

from api.deps import AdminActor, OrgKey, SessionDep, SettingsDep, UnitOfWorkDep
from api.idempotent import IdempotencyKey, run_once
from api.problems import responses
from api.routing import router as api_router
from services.instruments import InstrumentDefinition
from services.instruments import catalog as instrument_catalog
from services.kernel.errors import NotFound

router = api_router(prefix="/v1/instruments", tags=["instruments"])


@router.get("", responses=responses(401, 403), response_model_exclude_none=True)
async def list_instruments(actor: OrgKey, session: SessionDep) -> list[InstrumentDefinition]:
    """Every instrument this key may use: the built-ins and the organization's own, each
    with its items, scoring, norms and citation."""
    return await instrument_catalog.list_instruments(session, actor=actor)


@router.get("/{code}", responses=responses(401, 403, 404, 422), response_model_exclude_none=True)
async def get_instrument(
    code: Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")],
    actor: OrgKey,
    session: SessionDep,
) -> InstrumentDefinition:
    """One instrument's definition (the organization's newest version of its own)."""
    try:
        return await instrument_catalog.resolve(session, actor=actor, code=code)
    except NotFound:
        raise NotFound(f"no instrument '{code}'") from None


@router.post(
    "",
    status_code=201,
    response_model=InstrumentDefinition,
    responses=responses(401, 403, 409, 413, 422),
    response_model_exclude_none=True,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/InstrumentDefinition"}
                }
            },
        }
    },
)
async def create_instrument(
    body: Annotated[dict[str, Any], Body()],
    actor: AdminActor,
    uow: UnitOfWorkDep,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> InstrumentDefinition:
    """Publish an organisation's own instrument, or a new version of it: at most
    `ATTUNE_INSTRUMENT_MAX_BYTES` per definition (413) and `ATTUNE_INSTRUMENT_MAX_VERSIONS`
    versions per code (422 naming `body.version`)."""

    async def make() -> InstrumentDefinition:
        return await instrument_catalog.create_instrument(
            session,
            actor=actor,
            raw=body,
            max_bytes=settings.instrument_max_bytes,
            max_versions=settings.instrument_max_versions,
        )

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path="/v1/instruments",
        body=body,
        status=201,
        response=response,
        schema=InstrumentDefinition,
        make=make,
        action="instrument.create",
        resource_type="instrument",
    )
