"""Clinicians of an organization."""

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.people import Clinician, ClinicianCreate
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.database import insert_unique
from services.kernel.errors import Conflict, NotFound
from services.kernel.pagination import fetch_page


async def create_clinician(
    session: AsyncSession, *, actor: Actor, data: ClinicianCreate
) -> Clinician:
    if data.external_id is not None:
        taken = await session.scalar(
            select(col(Clinician.id))
            .where(col(Clinician.org_id) == actor.org_id)
            .where(col(Clinician.external_id) == data.external_id)
        )
        if taken is not None:
            raise Conflict(
                "a clinician with this external_id exists", extra={"existing_id": str(taken)}
            )
    row = Clinician(
        org_id=actor.org_id, display_name=data.display_name, external_id=data.external_id
    )
    await insert_unique(session, row, conflict="a clinician with this external_id exists")
    audit.record(
        session, actor, action="clinician.create", resource_type="clinician", resource_id=row.id
    )
    return row


async def get_clinician(
    session: AsyncSession, *, actor: Actor, clinician_id: uuid.UUID
) -> Clinician:
    row = await session.scalar(
        select(Clinician)
        .where(col(Clinician.org_id) == actor.org_id)
        .where(col(Clinician.id) == clinician_id)
    )
    if row is None:
        raise NotFound("clinician not found")
    audit.record(
        session, actor, action="clinician.read", resource_type="clinician", resource_id=row.id
    )
    return row


async def list_clinicians(
    session: AsyncSession, *, actor: Actor, external_id: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[Clinician], str | None]:
    stmt = select(Clinician).where(col(Clinician.org_id) == actor.org_id)
    if external_id is not None:
        stmt = stmt.where(col(Clinician.external_id) == external_id)
    page = await fetch_page(session, stmt, id_column=col(Clinician.id), limit=limit, cursor=cursor)
    audit.record(session, actor, action="clinician.list", resource_type="clinician")
    return page
