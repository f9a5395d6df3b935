"""Clients, including the upsert by external id that EHR syncs use."""

import uuid
from typing import Annotated

from fastapi import Path, Request, Response

from api.deps import ClientsRead, ClientsWrite, Cursor, Limit, SessionDep, audit_target
from api.problems import responses
from api.routing import router as api_router
from models.people import ClientCreate, ClientPublic, ClientUpsert
from models.types import ExternalId
from services.care import clients
from services.kernel.pagination import DEFAULT_LIMIT, Page

router = api_router(prefix="/v1/clients", tags=["clients"])


@router.post("", status_code=201, responses=responses(401, 403, 409, 422))
async def create_client(
    body: ClientCreate, actor: ClientsWrite, session: SessionDep
) -> ClientPublic:
    row = await clients.create_client(session, actor=actor, data=body)
    return ClientPublic.model_validate(row)


@router.get("", responses=responses(401, 403, 422))
async def list_clients(
    actor: ClientsRead,
    session: SessionDep,
    external_id: ExternalId | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ClientPublic]:
    rows, next_cursor = await clients.list_clients(
        session, actor=actor, external_id=external_id, limit=limit, cursor=cursor
    )
    return Page(items=[ClientPublic.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.put(
    "/by-external-id/{external_id:path}",
    responses={
        200: {"description": "Updated", "model": ClientPublic},
        **responses(401, 403, 404, 409, 422),
    },
    status_code=201,
)
async def upsert_client(
    external_id: Annotated[ExternalId, Path()],
    body: ClientUpsert,
    actor: ClientsWrite,
    session: SessionDep,
    response: Response,
) -> ClientPublic:
    row, created = await clients.upsert_client(
        session, actor=actor, external_id=external_id, data=body
    )
    response.status_code = 201 if created else 200
    return ClientPublic.model_validate(row)


@router.get("/{client_id}", responses=responses(401, 403, 404, 422))
async def get_client(
    client_id: uuid.UUID, request: Request, actor: ClientsRead, session: SessionDep
) -> ClientPublic:
    audit_target(request, "client.read", "client", client_id)
    row = await clients.get_client(session, actor=actor, client_id=client_id)
    return ClientPublic.model_validate(row)
