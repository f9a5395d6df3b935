"""Clients, including the upsert by external id that EHR syncs use."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Path, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel import SQLModel

from api.deps import (
    ClientsRead,
    ClientsWrite,
    Cursor,
    Limit,
    SessionDep,
    UnitOfWorkDep,
    audit_target,
)
from api.idempotent import FastJSONResponse, IdempotencyKey, run_once
from api.problems import responses
from api.routing import router as api_router
from models.people import ClientCreate, ClientPublic, ClientUpsert, Population
from models.types import ExternalId
from services.care import clients
from services.kernel.pagination import DEFAULT_LIMIT, Page

router = api_router(prefix="/v1/clients", tags=["clients"])


class ClientWritten(SQLModel):
    """An update's answer to a key without `clients:read` (issue 14 finding 12): what it wrote
    and nothing it could not read — the id, the external id, the fields it sent (those it left
    out are left out here too) and when the client was updated."""

    id: uuid.UUID
    external_id: str | None
    population: Population | None = None
    birth_year: int | None = None
    updated_at: datetime


@router.post(
    "", status_code=201, response_model=ClientPublic, responses=responses(401, 403, 409, 422)
)
async def create_client(
    body: ClientCreate,
    actor: ClientsWrite,
    uow: UnitOfWorkDep,
    session: SessionDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ClientPublic:
    """Add a client. A duplicate `external_id` answers 409; an EHR sync may use the upsert
    `PUT /v1/clients/by-external-id/{external_id}` instead."""

    async def make() -> ClientPublic:
        row = await clients.create_client(session, actor=actor, data=body)
        return ClientPublic.model_validate(row)

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path="/v1/clients",
        body=body,
        status=201,
        response=response,
        schema=ClientPublic,
        make=make,
        action="client.create",
        resource_type="client",
    )


@router.get("", responses=responses(401, 403, 422))
async def list_clients(
    actor: ClientsRead,
    session: SessionDep,
    external_id: ExternalId | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ClientPublic]:
    """The organization's clients (a clinician-bound key: its caseload's), optionally the one
    with an `external_id`."""
    rows, next_cursor = await clients.list_clients(
        session, actor=actor, external_id=external_id, limit=limit, cursor=cursor
    )
    return Page(items=[ClientPublic.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.put(
    "/by-external-id/{external_id:path}",
    responses={
        200: {
            "description": "Updated: the client, or for a key without clients:read only what "
            "it wrote",
            "model": ClientWritten,
        },
        **responses(401, 403, 404, 409, 422),
    },
    status_code=201,
    response_model=ClientPublic,
)
async def upsert_client(
    external_id: Annotated[ExternalId, Path()],
    body: ClientUpsert,
    actor: ClientsWrite,
    session: SessionDep,
) -> JSONResponse:
    """201 with the client created (all of it came from this request), 200 with the client
    updated. A key that may not read clients is told only what it wrote (`ClientWritten`): the
    upsert is no way to read a client's other fields."""
    row, created = await clients.upsert_client(
        session, actor=actor, external_id=external_id, data=body
    )
    public = ClientPublic.model_validate(row).model_dump(mode="json")
    if created or actor.principal.has("clients:read"):
        return FastJSONResponse(public, status_code=201 if created else 200)
    written = ClientWritten.model_validate(
        {**body.model_dump(exclude_unset=True), **{k: public[k] for k in ("id", "external_id")},
         "updated_at": row.updated_at}
    )  # fmt: skip
    return FastJSONResponse(written.model_dump(mode="json", exclude_unset=True), status_code=200)


@router.get("/{client_id}", responses=responses(401, 403, 404, 422))
async def get_client(
    client_id: uuid.UUID, request: Request, actor: ClientsRead, session: SessionDep
) -> ClientPublic:
    """One client."""
    audit_target(request, "client.read", "client", client_id)
    row = await clients.get_client(session, actor=actor, client_id=client_id)
    return ClientPublic.model_validate(row)
