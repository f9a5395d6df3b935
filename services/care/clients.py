"""Clients: pseudonymous people in care, keyed by the EHR's external id."""

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.people import Client, ClientCreate, ClientUpsert
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.database import insert_unique
from services.kernel.errors import Conflict, NotFound, ProblemExtra
from services.kernel.pagination import fetch_page
from services.kernel.visibility import visible_clients


async def _by_external_id(session: AsyncSession, actor: Actor, external_id: str) -> Client | None:
    return await session.scalar(
        select(Client)
        .where(col(Client.org_id) == actor.org_id)
        .where(col(Client.external_id) == external_id)
    )


async def create_client(session: AsyncSession, *, actor: Actor, data: ClientCreate) -> Client:
    if data.external_id is not None:
        existing = await _by_external_id(session, actor, data.external_id)
        if existing is not None:
            # The id is safe to disclose only when the caller could read that client anyway;
            # a clinician-bound key learns just that the external id is taken.
            extra: ProblemExtra = {} if actor.clinician_id else {"existing_id": str(existing.id)}
            raise Conflict("a client with this external_id exists", extra=extra)
    row = Client(org_id=actor.org_id, **data.model_dump())
    await insert_unique(session, row, conflict="a client with this external_id exists")
    audit.record(session, actor, action="client.create", resource_type="client", resource_id=row.id)
    return row


async def upsert_client(
    session: AsyncSession, *, actor: Actor, external_id: str, data: ClientUpsert
) -> tuple[Client, bool]:
    """Create or update by external id, as an EHR sync does. Returns (client, created)."""
    row = await _by_external_id(session, actor, external_id)
    if row is None:
        row = Client(org_id=actor.org_id, external_id=external_id, **data.model_dump())
        await insert_unique(
            session, row, conflict="a concurrent request created this client; retry"
        )
        audit.record(
            session, actor, action="client.create", resource_type="client", resource_id=row.id
        )
        return row, True
    if actor.clinician_id is not None:
        visible = await session.scalar(
            select(col(Client.id)).where(visible_clients(actor)).where(col(Client.id) == row.id)
        )
        if visible is None:
            raise NotFound("client not found")
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(row, field, value)
    row.updated_at = utcnow()
    await session.flush()
    audit.record(session, actor, action="client.update", resource_type="client", resource_id=row.id)
    return row, False


async def get_client(session: AsyncSession, *, actor: Actor, client_id: uuid.UUID) -> Client:
    row: Client | None = await session.scalar(
        select(Client).where(visible_clients(actor)).where(col(Client.id) == client_id)
    )
    if row is None:
        raise NotFound("client not found")
    audit.record(session, actor, action="client.read", resource_type="client", resource_id=row.id)
    return row


async def list_clients(
    session: AsyncSession, *, actor: Actor, external_id: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[Client], str | None]:
    stmt = select(Client).where(visible_clients(actor))
    if external_id is not None:
        stmt = stmt.where(col(Client.external_id) == external_id)
    page = await fetch_page(session, stmt, id_column=col(Client.id), limit=limit, cursor=cursor)
    audit.record(session, actor, action="client.list", resource_type="client")
    return page
