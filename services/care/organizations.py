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
from services.care import invitations
from services.kernel import audit
from services.kernel.auth import Actor, display_prefix, generate_key, hash_key
from services.kernel.crypto import SecretBox
from services.kernel.database import insert_unique
from services.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
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
    _never_wider(actor, data)
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


def _never_wider(actor: Actor, data: ApiKeyCreate) -> None:
    """DESIGN.md §10.8 (issue 14 finding 2): a key never mints a key with more scopes or a wider
    clinician binding than its own, and `admin` — which reads everything of its organisation,
    the audit trail and all keys included — is never bound to a clinician."""
    minter = actor.principal
    if "admin" in data.scopes and data.clinician_id is not None:
        raise InvalidInput.at(
            "body.clinician_id",
            "an admin key cannot be bound to a clinician",
            type="scope",
            detail="the admin scope reaches the whole organisation; bind a narrower key instead",
        )
    if minter.is_system:
        return
    wider = sorted(s for s in data.scopes if not minter.has(s))
    if wider:
        raise InvalidInput.at(
            "body.scopes",
            f"beyond the minting key's own scopes: {', '.join(wider)}",
            type="scope",
            detail="a key cannot mint a key with scopes it does not have",
        )
    if minter.clinician_id is not None and data.clinician_id != minter.clinician_id:
        raise InvalidInput.at(
            "body.clinician_id",
            "must be the minting key's own clinician",
            type="scope",
            detail="a clinician-bound key mints only keys bound to the same clinician",
        )


def require_unbound(actor: Actor) -> None:
    """Listing and revoking keys reach every key of the organisation: unbound admins only (a
    bound admin key can only be one minted before admin keys could no longer be bound)."""
    if actor.clinician_id is not None:
        raise Forbidden("a clinician-bound key cannot manage the organisation's keys")


async def list_api_keys(
    session: AsyncSession, *, actor: Actor, limit: int, cursor: str | None
) -> tuple[Sequence[ApiKey], str | None]:
    require_unbound(actor)
    stmt = select(ApiKey).where(col(ApiKey.org_id) == actor.org_id)
    return await fetch_page(session, stmt, id_column=col(ApiKey.id), limit=limit, cursor=cursor)


async def revoke_api_key(session: AsyncSession, *, actor: Actor, key_id: uuid.UUID) -> None:
    require_unbound(actor)
    row = await session.scalar(
        select(ApiKey).where(col(ApiKey.org_id) == actor.org_id).where(col(ApiKey.id) == key_id)
    )
    if row is None:
        raise NotFound("API key not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        # Invitations live no longer than the key that issued them (DESIGN.md §10.4).
        await invitations.revoke_issued_by(
            session, org_id=row.org_id or actor.org_id, key_id=row.id
        )
        audit.record(
            session, actor, action="api_key.revoke", resource_type="api_key", resource_id=row.id
        )
    await session.flush()
