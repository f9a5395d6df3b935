"""Invitations: created with an API key; used by a client's app with the invitation token."""

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request, Response

from api.deps import (
    Cursor,
    Limit,
    SessionDep,
    SettingsDep,
    SubmissionsRead,
    SubmissionsWrite,
    UnitOfWorkDep,
    audit_target,
    bearer_token,
)
from api.idempotent import IdempotencyKey, run_once
from api.problems import responses
from api.routing import router as api_router
from models.invitations import (
    ConcernCreate,
    ConcernReceipt,
    InvitationCreate,
    InvitationCreated,
    InvitationPublic,
    InvitationReceipt,
    InvitationSubmissionCreate,
    InvitationView,
)
from services.care import invitations
from services.kernel.pagination import DEFAULT_LIMIT, Page

router = api_router(tags=["invitations"])


@router.post(
    "/v1/episodes/{episode_id}/invitations",
    status_code=201,
    response_model=InvitationCreated,
    responses=responses(401, 403, 404, 409, 422),
)
async def create_invitation(
    episode_id: uuid.UUID,
    body: InvitationCreate,
    request: Request,
    actor: SubmissionsWrite,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> InvitationCreated:
    """A one-off token for the client to rate one session, and `url`, the link to send them: the
    rating page (`/r/`) with the token in the fragment. An app may also use the token itself
    (`Authorization: Bearer inv_…` on the `/v1/invitation` routes). Token and link are shown once
    and never stored: a repeated Idempotency-Key answers 409 naming the invitation created, and
    issues no second token."""
    audit_target(request, "invitation.create", "episode", episode_id)

    async def make() -> InvitationCreated:
        return await invitations.create_invitation(
            uow,
            actor=actor,
            episode_id=episode_id,
            data=body,
            secret=settings.secret_key.get_secret_value(),
            public_base=settings.base_url,
        )

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path=f"/v1/episodes/{episode_id}/invitations",
        body=body,
        status=201,
        response=response,
        schema=InvitationCreated,
        make=make,
        action="invitation.create",
        resource_type="invitation",
        shown_once=("token", "url"),
    )


@router.get("/v1/episodes/{episode_id}/invitations", responses=responses(401, 403, 404, 422))
async def list_invitations(
    episode_id: uuid.UUID,
    request: Request,
    actor: SubmissionsRead,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[InvitationPublic]:
    """The episode's invitations, newest first, with their status; never their tokens."""
    audit_target(request, "invitation.list", "episode", episode_id)
    items, next_cursor = await invitations.list_invitations(
        session, actor=actor, episode_id=episode_id, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.delete(
    "/v1/invitations/{invitation_id}", status_code=204, responses=responses(401, 403, 404, 422)
)
async def revoke_invitation(
    invitation_id: uuid.UUID, request: Request, actor: SubmissionsWrite, session: SessionDep
) -> Response:
    """Revoke an invitation: its token answers 410 from now on. Revoking twice is harmless."""
    audit_target(request, "invitation.revoke", "invitation", invitation_id)
    await invitations.revoke_invitation(session, actor=actor, invitation_id=invitation_id)
    return Response(status_code=204)


def _holder(*, lock: bool) -> Any:
    async def dependency(
        request: Request, session: SessionDep, settings: SettingsDep
    ) -> invitations.Holder:
        return await invitations.authenticate(
            session,
            token=bearer_token(request, "invitation token"),
            secret=settings.secret_key.get_secret_value(),
            old_secrets=settings.old_secrets(),
            client_address=request.client.host if request.client else None,
            lock=lock,
        )

    return Depends(dependency)


Reader = Annotated[invitations.Holder, _holder(lock=False)]
# Writers hold the invitation's row: two uses of one token take turns.
Writer = Annotated[invitations.Holder, _holder(lock=True)]


@router.get("/v1/invitation", responses=responses(401, 410))
async def get_invitation(holder: Reader, session: SessionDep) -> InvitationView:
    """The session to rate and the instruments to fill in, with those already done."""
    return await invitations.view(session, holder)


@router.post(
    "/v1/invitation/submissions",
    status_code=201,
    response_model=InvitationReceipt,
    responses=responses(401, 409, 410, 422),
)
async def submit_through_invitation(
    body: InvitationSubmissionCreate,
    holder: Writer,
    uow: UnitOfWorkDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> InvitationReceipt:
    """Scored, evaluated for alerts and stored exactly as `POST /v1/submissions`; each of the
    invitation's instruments once. The answer is a receipt: no scores, no alerts."""

    async def make() -> InvitationReceipt:
        return await invitations.submit(uow, holder, body)

    return await run_once(
        uow,
        actor=holder.actor,
        key=invitations.idempotency_scope(holder, idempotency_key) if idempotency_key else None,
        method="POST",
        path="/v1/invitation/submissions",
        body=body,
        status=201,
        response=response,
        schema=InvitationReceipt,
        make=make,
        action="invitation.submission",
        resource_type="submission",
        owner=holder.invitation.id,
    )


@router.post(
    "/v1/invitation/concerns",
    status_code=201,
    response_model=ConcernReceipt,
    responses=responses(401, 409, 410, 422, 429),
)
async def raise_concern(
    body: ConcernCreate,
    holder: Writer,
    uow: UnitOfWorkDep,
    session: SessionDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ConcernReceipt:
    """Tell the clinic something about your care. It goes to the people who handle concerns —
    not to your clinician — and your words are never exported or sent to other systems."""

    async def make() -> ConcernReceipt:
        return await invitations.raise_concern(session, holder, body)

    return await run_once(
        uow,
        actor=holder.actor,
        key=idempotency_key,
        method="POST",
        path="/v1/invitation/concerns",
        body=body,
        status=201,
        response=response,
        schema=ConcernReceipt,
        make=make,
        action="invitation.concern",
        resource_type="concern",
        owner=holder.invitation.id,
    )
