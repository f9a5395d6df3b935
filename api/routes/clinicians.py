"""Clinicians."""

import uuid

from fastapi import Request, Response

from api.deps import (
    ClientsRead,
    ClientsWrite,
    Cursor,
    Limit,
    SessionDep,
    UnitOfWorkDep,
    audit_target,
)
from api.idempotent import IdempotencyKey, run_once
from api.problems import responses
from api.routing import router as api_router
from models.people import ClinicianCreate, ClinicianPublic
from models.types import ExternalId
from services.care import clinicians
from services.kernel.pagination import DEFAULT_LIMIT, Page

router = api_router(prefix="/v1/clinicians", tags=["clinicians"])


@router.post(
    "", status_code=201, response_model=ClinicianPublic, responses=responses(401, 403, 409, 422)
)
async def create_clinician(
    body: ClinicianCreate,
    actor: ClientsWrite,
    uow: UnitOfWorkDep,
    session: SessionDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ClinicianPublic:
    """Add a clinician to the organization. A duplicate `external_id` answers 409."""

    async def make() -> ClinicianPublic:
        row = await clinicians.create_clinician(session, actor=actor, data=body)
        return ClinicianPublic.model_validate(row)

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path="/v1/clinicians",
        body=body,
        status=201,
        response=response,
        schema=ClinicianPublic,
        make=make,
        action="clinician.create",
        resource_type="clinician",
    )


@router.get("", responses=responses(401, 403, 422))
async def list_clinicians(
    actor: ClientsRead,
    session: SessionDep,
    external_id: ExternalId | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ClinicianPublic]:
    """The organization's clinicians, optionally the one with an `external_id`."""
    rows, next_cursor = await clinicians.list_clinicians(
        session, actor=actor, external_id=external_id, limit=limit, cursor=cursor
    )
    return Page(items=[ClinicianPublic.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{clinician_id}", responses=responses(401, 403, 404, 422))
async def get_clinician(
    clinician_id: uuid.UUID, request: Request, actor: ClientsRead, session: SessionDep
) -> ClinicianPublic:
    """One clinician of the organization."""
    audit_target(request, "clinician.read", "clinician", clinician_id)
    row = await clinicians.get_clinician(session, actor=actor, clinician_id=clinician_id)
    return ClinicianPublic.model_validate(row)
