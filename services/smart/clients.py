"""SMART clients registered by an organisation's admin: their public keys, the scopes they may be
granted and, like keys, an optional clinician binding (DESIGN.md §10.6).

Each client acts through an API key made at registration by the same rules as any key an admin
mints (`services.care.organizations.create_api_key`: never wider than the registering key, never
``admin`` bound to a clinician), whose secret is discarded: only tokens reach it.
"""

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.smart import SmartClient, SmartClientCreate, SmartClientPublic
from models.tenancy import ApiKeyCreate
from services.care import organizations
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.errors import InvalidInput, NotFound
from services.kernel.pagination import fetch_page
from services.smart.assertions import public_jwks


def public(row: SmartClient, *, token_url: str) -> SmartClientPublic:
    return SmartClientPublic(
        client_id=row.id,
        name=row.name,
        jwks=row.jwks,
        scopes=list(row.scopes),
        clinician_id=row.clinician_id,
        created_at=row.created_at,
        token_url=token_url,
    )


async def register(
    session: AsyncSession, *, actor: Actor, data: SmartClientCreate, secret: str
) -> SmartClient:
    organizations.require_unbound(actor)
    jwks, problem = public_jwks(data.jwks)
    if jwks is None:
        raise InvalidInput.at(
            "body.jwks", problem or "invalid", type="jwks", detail="the JWKS cannot be used"
        )
    key = await organizations.create_api_key(
        session,
        actor=actor,
        org_id=actor.org_id,
        data=ApiKeyCreate(
            name=f"SMART client: {data.name}"[:200],
            scopes=list(data.scopes),
            clinician_id=data.clinician_id,
        ),
        secret=secret,
    )
    row = SmartClient(
        org_id=actor.org_id,
        name=data.name,
        jwks=jwks,
        scopes=list(data.scopes),
        clinician_id=data.clinician_id,
        api_key_id=key.id,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session, actor, action="smart_client.create", resource_type="smart_client",
        resource_id=row.id,
    )  # fmt: skip
    return row


async def list_clients(
    session: AsyncSession, *, actor: Actor, limit: int, cursor: str | None
) -> tuple[Sequence[SmartClient], str | None]:
    organizations.require_unbound(actor)
    stmt = (
        select(SmartClient)
        .where(col(SmartClient.org_id) == actor.org_id)
        .where(col(SmartClient.deleted_at).is_(None))
    )
    page = await fetch_page(
        session, stmt, id_column=col(SmartClient.id), limit=limit, cursor=cursor
    )
    audit.record(session, actor, action="smart_client.list", resource_type="smart_client")
    return page


async def delete(session: AsyncSession, *, actor: Actor, client_id: uuid.UUID) -> None:
    """The client's key is revoked with it: its tokens stop working on their next request."""
    organizations.require_unbound(actor)
    row = await session.scalar(
        select(SmartClient)
        .where(col(SmartClient.org_id) == actor.org_id)
        .where(col(SmartClient.id) == client_id)
        .where(col(SmartClient.deleted_at).is_(None))
    )
    if row is None:
        raise NotFound("SMART client not found")
    row.deleted_at = utcnow()
    await organizations.revoke_api_key(session, actor=actor, key_id=row.api_key_id)
    audit.record(
        session, actor, action="smart_client.delete", resource_type="smart_client",
        resource_id=row.id,
    )  # fmt: skip
    await session.flush()
