"""Invitations: a client rates one session through a one-off token, and may raise a concern.

The token (``inv_`` + 256 random bits) is stored as a keyed hash, like an API key, and is good
for one session of one episode, the instruments it names — each once — and concerns, until it
expires (72 h by default). It opens nothing else: API routes take only API keys, and these routes
only invitation tokens. What a client sees is the instruments to fill in and a receipt; never
scores, alerts or anything of the record.
"""

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import JsonValue
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.episodes import Episode
from models.invitations import (
    MAX_CONCERNS_PER_INVITATION,
    Concern,
    ConcernCreate,
    ConcernReceipt,
    Invitation,
    InvitationCreate,
    InvitationCreated,
    InvitationPublic,
    InvitationReceipt,
    InvitationSubmissionCreate,
    InvitationUse,
    InvitationView,
)
from models.submissions import SubmissionCreate
from models.tenancy import ApiKey
from services.alerts import lifecycle as alert_lifecycle
from services.care.episodes import load_episode
from services.instruments.catalog import resolve, resolve_named
from services.kernel import audit
from services.kernel.auth import Actor, Principal, hash_key
from services.kernel.database import UnitOfWork, insert_unique
from services.kernel.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from services.kernel.pagination import fetch_page
from services.submissions import service as submissions

TOKEN_PREFIX = "inv_"  # noqa: S105  (a prefix, not a secret)
# Where the API serves the rating page (api/routes/rating_page.py).
RATING_PAGE_PATH = "/r/"


class Expired(DomainError):
    """The invitation existed but its time is over (410 Gone)."""

    status = 410
    title = "Invitation expired"
    type_slug = "invitation-expired"


class Revoked(Expired):
    """The clinic revoked the invitation, or the key that issued it (410 Gone). A type of its
    own, so the rating page can tell the client which it is."""

    title = "Invitation revoked"
    type_slug = "invitation-revoked"


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_invitation(
    uow: UnitOfWork,
    *,
    actor: Actor,
    episode_id: uuid.UUID,
    data: InvitationCreate,
    secret: str,
    public_base: str,
) -> InvitationCreated:
    """``public_base``: the service's public address (ATTUNE_PUBLIC_URL), which the link to the
    rating page starts from."""
    session = await uow.orm()
    episode = await load_episode(session, actor=actor, episode_id=episode_id)
    if episode.status != "active":
        raise Conflict("the episode is closed; reopen it to invite ratings")
    codes = list(dict.fromkeys(data.instruments))
    for n, code in enumerate(codes):
        field = f"body.instruments.{n}"
        definition = await resolve_named(uow, actor=actor, code=code, field=field)
        if "client" not in definition.respondents:
            raise InvalidInput.at(
                field,
                "not rated by the client",
                type="respondent",
                detail=f"{code} is not filled in by the client, so it cannot be sent to one",
            )
    token = generate_token()
    row = Invitation(
        org_id=actor.org_id,
        episode_id=episode.id,
        session_number=data.session_number,
        instruments=codes,
        token_hash=hash_key(token, secret),
        expires_at=utcnow() + timedelta(hours=data.expires_in_hours),
        created_by_key_id=actor.principal.key_id,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session, actor, action="invitation.create", resource_type="invitation", resource_id=row.id
    )
    return InvitationCreated(
        id=row.id,
        token=token,
        url=f"{public_base.rstrip('/')}{RATING_PAGE_PATH}#{token}",
        expires_at=row.expires_at,
        episode_id=row.episode_id,
        session_number=row.session_number,
        instruments=row.instruments,
    )


@dataclass(frozen=True, slots=True)
class Holder:
    """The bearer of an invitation token: the invitation, and the actor it acts as."""

    invitation: Invitation
    actor: Actor


async def authenticate(
    session: AsyncSession,
    *,
    token: str,
    secret: str,
    client_address: str | None,
    lock: bool,
    old_secrets: Sequence[str] = (),
) -> Holder:
    """The invitation of ``token``: 401 when there is none, 410 when it expired. ``lock``: hold
    its row until the transaction ends, so that two uses of one token take turns.

    A token issued before the server secret was rotated is hashed under a previous one
    (``ATTUNE_SECRET_KEYS_OLD``), as API keys are: a client holding a link sent yesterday can
    still rate after an operator rotates the secret. Every candidate hash goes in one lookup."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized("invalid invitation token")
    hashes = [hash_key(token, s) for s in (secret, *old_secrets)]
    # The issuing key's revocation is read too: it revokes the invitation even when it predates
    # the invitation's own revoked_at (DESIGN.md §10.4).
    stmt = (
        select(Invitation, col(ApiKey.revoked_at))
        .outerjoin(ApiKey, col(ApiKey.id) == col(Invitation.created_by_key_id))
        .where(col(Invitation.token_hash).in_(hashes))
    )
    if lock:
        stmt = stmt.with_for_update(of=Invitation)
    found = (await session.execute(stmt)).one_or_none()
    if found is None:
        raise Unauthorized("invalid invitation token")
    invitation, key_revoked_at = found
    if invitation.revoked_at is not None or key_revoked_at is not None:
        raise Revoked("this invitation was revoked; ask the clinic for a new one")
    if invitation.expires_at <= utcnow():
        raise Expired(f"this invitation expired at {invitation.expires_at.isoformat()}")
    # No API key: audit events and the submission record the invitation instead.
    principal = Principal(
        key_id=None,
        org_id=invitation.org_id,
        scopes=frozenset({"submissions:write"}),
        clinician_id=None,
    )
    return Holder(invitation, Actor(principal=principal, client_address=client_address))


def _public(row: Invitation, now: datetime, sent: int) -> InvitationPublic:
    status: Literal["active", "used", "expired", "revoked"] = (
        "revoked"
        if row.revoked_at is not None
        else "used"
        if sent >= len(row.instruments)
        else "expired"
        if row.expires_at <= now
        else "active"
    )
    return InvitationPublic(
        id=row.id,
        episode_id=row.episode_id,
        session_number=row.session_number,
        instruments=row.instruments,
        status=status,
        expires_at=row.expires_at,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


async def list_invitations(
    session: AsyncSession,
    *,
    actor: Actor,
    episode_id: uuid.UUID,
    limit: int,
    cursor: str | None,
) -> tuple[list[InvitationPublic], str | None]:
    """An episode's invitations, newest first, without their tokens; 404 for an episode the
    actor may not see. Invitations whose issuing key was revoked show as revoked."""
    episode = await load_episode(session, actor=actor, episode_id=episode_id)
    stmt = (
        select(Invitation)
        .where(col(Invitation.org_id) == actor.org_id)
        .where(col(Invitation.episode_id) == episode.id)
    )
    rows, next_cursor = await fetch_page(
        session, stmt, id_column=col(Invitation.id), limit=limit, cursor=cursor, newest_first=True
    )
    issuers = {r.created_by_key_id for r in rows if r.created_by_key_id is not None}
    revoked_keys = set(
        await session.scalars(
            select(col(ApiKey.id))
            .where(col(ApiKey.id).in_(issuers))
            .where(col(ApiKey.revoked_at).is_not(None))
        )
        if issuers
        else ()
    )
    sent_counts = await session.execute(
        select(col(InvitationUse.invitation_id), func.count())
        .where(col(InvitationUse.org_id) == actor.org_id)
        .where(col(InvitationUse.invitation_id).in_([r.id for r in rows]))
        .group_by(col(InvitationUse.invitation_id))
    )
    sent: dict[uuid.UUID, int] = dict(sent_counts.all())
    now = utcnow()
    items = []
    for row in rows:
        public = _public(row, now, sent.get(row.id, 0))
        if public.status != "revoked" and row.created_by_key_id in revoked_keys:
            public.status = "revoked"
        items.append(public)
    audit.record(
        session,
        actor,
        action="invitation.list",
        resource_type="episode",
        resource_id=episode.id,
        details={"filters": {"episode_id": str(episode.id)}},
    )
    return items, next_cursor


async def revoke_invitation(
    session: AsyncSession, *, actor: Actor, invitation_id: uuid.UUID
) -> None:
    """Revoke one invitation: its token gets 410 from now on. 404 for one on an episode the
    actor may not see; revoking twice keeps the first time."""
    row: Invitation | None = await session.scalar(
        select(Invitation)
        .where(col(Invitation.org_id) == actor.org_id)
        .where(col(Invitation.id) == invitation_id)
    )
    if row is None:
        raise NotFound("invitation not found")
    try:
        await load_episode(session, actor=actor, episode_id=row.episode_id)
    except NotFound:
        raise NotFound("invitation not found") from None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    audit.record(
        session, actor, action="invitation.revoke", resource_type="invitation", resource_id=row.id
    )


async def revoke_issued_by(session: AsyncSession, *, org_id: uuid.UUID, key_id: uuid.UUID) -> None:
    """Revoke every live invitation the key issued, with the key (DESIGN.md §10.4)."""
    await session.execute(
        update(Invitation)
        .where(col(Invitation.org_id) == org_id)
        .where(col(Invitation.created_by_key_id) == key_id)
        .where(col(Invitation.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


async def _used(session: AsyncSession, invitation: Invitation) -> list[str]:
    rows = await session.scalars(
        select(col(InvitationUse.instrument))
        .where(col(InvitationUse.org_id) == invitation.org_id)
        .where(col(InvitationUse.invitation_id) == invitation.id)
    )
    return list(rows)


def _audit(session: AsyncSession, holder: Holder, action: str) -> None:
    audit.record(
        session,
        holder.actor,
        action=action,
        resource_type="invitation",
        resource_id=holder.invitation.id,
    )


async def view(session: AsyncSession, holder: Holder) -> InvitationView:
    invitation = holder.invitation
    used = await _used(session, invitation)
    definitions: list[dict[str, JsonValue]] = []
    for code in invitation.instruments:
        definition = await resolve(session, actor=holder.actor, code=code)
        definitions.append(definition.model_dump(mode="json", exclude_none=True))
    _audit(session, holder, "invitation.read")
    return InvitationView(
        session_number=invitation.session_number,
        expires_at=invitation.expires_at,
        instruments=definitions,
        completed=[c for c in invitation.instruments if c in used],
        remaining=[c for c in invitation.instruments if c not in used],
    )


async def submit(
    uow: UnitOfWork, holder: Holder, data: InvitationSubmissionCreate
) -> InvitationReceipt:
    """Score and store one instrument of the invitation, with its alerts and events, exactly as
    ``POST /v1/submissions`` does, in the request's transaction."""
    invitation = holder.invitation
    session = await uow.orm()
    if data.episode_id is not None and data.episode_id != invitation.episode_id:
        raise InvalidInput.at(
            "body.episode_id",
            "not the invitation's episode",
            type="invitation",
            detail="this invitation is for another episode",
        )
    if data.session_number is not None and data.session_number != invitation.session_number:
        raise InvalidInput.at(
            "body.session_number",
            f"the invitation is for session {invitation.session_number}",
            type="invitation",
            detail="this invitation is for another session",
        )
    if data.instrument not in invitation.instruments:
        raise InvalidInput.at(
            "body.instrument",
            f"allowed: {', '.join(invitation.instruments)}",
            type="invitation",
            detail=f"this invitation does not ask for {data.instrument}",
        )
    used = await _used(session, invitation)
    if data.instrument in used:
        raise Conflict(f"{data.instrument} was already submitted through this invitation")
    created = await submissions.create_submission(
        uow,
        actor=holder.actor,
        data=SubmissionCreate(
            episode_id=invitation.episode_id,
            instrument=data.instrument,
            session_number=invitation.session_number,
            occurred_at=data.occurred_at,
            respondent="client",
            answers=data.answers,
        ),
    )
    await insert_unique(
        session,
        InvitationUse(
            invitation_id=invitation.id,
            instrument=data.instrument,
            org_id=invitation.org_id,
            submission_id=created.id,
        ),
        conflict=f"{data.instrument} was already submitted through this invitation",
    )
    _audit(session, holder, "invitation.submit")
    used.append(data.instrument)
    return InvitationReceipt(
        id=created.id,
        instrument=created.instrument,
        instrument_version=created.instrument_version,
        session_number=created.session_number,
        created_at=created.created_at,
        remaining=[c for c in invitation.instruments if c not in used],
    )


async def raise_concern(
    session: AsyncSession, holder: Holder, data: ConcernCreate
) -> ConcernReceipt:
    """A ``concern.reported`` alert for the people who read concerns; the client's words stay in
    the concerns table, out of the alert, its webhooks and de-identified exports."""
    invitation = holder.invitation
    status = await session.scalar(
        select(col(Episode.status))
        .where(col(Episode.org_id) == invitation.org_id)
        .where(col(Episode.id) == invitation.episode_id)
    )
    if status != "active":
        # Nobody follows a closed episode's alerts: a concern raised there would go unread.
        raise Conflict(
            "this episode of care is closed, so no one would read this concern here; "
            "please contact the clinic directly"
        )
    sent = await session.scalar(
        select(func.count())
        .select_from(Concern)
        .where(col(Concern.org_id) == invitation.org_id)
        .where(col(Concern.invitation_id) == invitation.id)
    )
    if (sent or 0) >= MAX_CONCERNS_PER_INVITATION:
        raise TooManyRequests(
            f"this invitation has sent {MAX_CONCERNS_PER_INVITATION} concerns already; "
            "please contact the clinic directly",
            retry_after=None,  # a cap per invitation: no wait lifts it
        )
    alert = await alert_lifecycle.raise_concern(
        session,
        org_id=invitation.org_id,
        episode_id=invitation.episode_id,
        session_number=invitation.session_number,
        category=data.category,
    )
    concern = Concern(
        org_id=invitation.org_id,
        episode_id=invitation.episode_id,
        invitation_id=invitation.id,
        alert_id=alert.id,
        session_number=invitation.session_number,
        category=data.category,
        message=data.message,
    )
    session.add(concern)
    await session.flush()
    _audit(session, holder, "invitation.concern")
    return ConcernReceipt(id=concern.id, created_at=concern.created_at)


def idempotency_scope(holder: Holder, key: str) -> str:
    """An Idempotency-Key as stored: scoped to the invitation (its tokens share an organisation
    with API keys and with every other invitation, and keys must not meet across them)."""
    digest = hashlib.sha256(f"{holder.invitation.id}:{key}".encode()).hexdigest()
    return f"inv:{digest}"
