"""Organizations (tenants) and their API keys."""

import secrets as secrets_module
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.people import Clinician
from models.tenancy import ApiKey, ApiKeyCreate, ApiKeyCreated, Organization, OrganizationCreate
from services.kernel import audit
from services.kernel.auth import Actor, display_prefix, generate_key, hash_key
from services.kernel.crypto import SecretBox
from services.kernel.database import insert_unique
from services.kernel.errors import Conflict, InvalidInput, NotFound
from services.kernel.pagination import fetch_page


async def create_organization(
    session: AsyncSession, *, actor: Actor, data: OrganizationCreate, secrets: SecretBox
) -> Organization:
    taken = await session.scalar(
        select(col(Organization.id)).where(col(Organization.slug) == data.slug)
    )
    if taken is not None:
        raise Conflict(f"an organization with slug '{data.slug}' exists")
    # The pseudonym secret of its exports, encrypted at rest (services/kernel/crypto.py).
    export_secret = secrets.seal(secrets_module.token_hex(32))
    org = Organization(name=data.name, slug=data.slug, export_secret=export_secret)
    await insert_unique(session, org, conflict=f"an organization with slug '{data.slug}' exists")
    audit.record(
        session,
        actor,
        action="organization.create",
        resource_type="organization",
        resource_id=org.id,
    )
    return org


async def get_organization(session: AsyncSession, org_id: uuid.UUID) -> Organization:
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound("organization not found")
    return org


async def create_api_key(
    session: AsyncSession, *, actor: Actor, org_id: uuid.UUID, data: ApiKeyCreate, secret: str
) -> ApiKeyCreated:
    if data.clinician_id is not None:
        clinician = await session.scalar(
            select(col(Clinician.id))
            .where(col(Clinician.org_id) == org_id)
            .where(col(Clinician.id) == data.clinician_id)
        )
        if clinician is None:
            raise InvalidInput.unknown_reference("clinician_id", "clinician")
    if "system" in data.scopes:
        raise InvalidInput.at(
            "body.scopes",
            "'system' is not allowed here",
            type="scope",
            detail="the system scope cannot be given to an organization's key",
        )
    key = generate_key()
    row = ApiKey(
        org_id=org_id,
        name=data.name,
        prefix=display_prefix(key),
        key_hash=hash_key(key, secret),
        scopes=list(data.scopes),
        clinician_id=data.clinician_id,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session, actor, action="api_key.create", resource_type="api_key", resource_id=row.id
    )
    return ApiKeyCreated.model_validate(row, update={"key": key})


async def list_api_keys(
    session: AsyncSession, *, actor: Actor, limit: int, cursor: str | None
) -> tuple[Sequence[ApiKey], str | None]:
    stmt = select(ApiKey).where(col(ApiKey.org_id) == actor.org_id)
    return await fetch_page(session, stmt, id_column=col(ApiKey.id), limit=limit, cursor=cursor)


async def revoke_api_key(session: AsyncSession, *, actor: Actor, key_id: uuid.UUID) -> None:
    row = await session.scalar(
        select(ApiKey).where(col(ApiKey.org_id) == actor.org_id).where(col(ApiKey.id) == key_id)
    )
    if row is None:
        raise NotFound("API key not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            session, actor, action="api_key.revoke", resource_type="api_key", resource_id=row.id
        )
    await session.flush()
