"""Episodes of care."""

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
from models.episodes import EpisodeCreate, EpisodePublic, EpisodeStatus, EpisodeUpdate
from services.care import episodes
from services.kernel.pagination import DEFAULT_LIMIT, Page

router = api_router(prefix="/v1/episodes", tags=["episodes"])


@router.post(
    "", status_code=201, response_model=EpisodePublic, responses=responses(401, 403, 409, 422)
)
async def create_episode(
    body: EpisodeCreate,
    actor: ClientsWrite,
    uow: UnitOfWorkDep,
    session: SessionDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> EpisodePublic:
    """Open an episode of care: a client treated by a clinician, from `started_on` (default
    today)."""

    async def make() -> EpisodePublic:
        row = await episodes.create_episode(session, actor=actor, data=body)
        return EpisodePublic.model_validate(row)

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path="/v1/episodes",
        body=body,
        status=201,
        response=response,
        schema=EpisodePublic,
        make=make,
        action="episode.create",
        resource_type="episode",
    )


@router.get("", responses=responses(401, 403, 422))
async def list_episodes(
    actor: ClientsRead,
    session: SessionDep,
    client_id: uuid.UUID | None = None,
    clinician_id: uuid.UUID | None = None,
    status: EpisodeStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[EpisodePublic]:
    """Episodes, optionally of one client, one clinician or one status (a clinician-bound
    key: the episodes its clinician treats)."""
    rows, next_cursor = await episodes.list_episodes(
        session,
        actor=actor,
        client_id=client_id,
        clinician_id=clinician_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[EpisodePublic.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{episode_id}", responses=responses(401, 403, 404, 422))
async def get_episode(
    episode_id: uuid.UUID, request: Request, actor: ClientsRead, session: SessionDep
) -> EpisodePublic:
    """One episode of care."""
    audit_target(request, "episode.read", "episode", episode_id)
    row = await episodes.get_episode(session, actor=actor, episode_id=episode_id)
    return EpisodePublic.model_validate(row)


@router.patch("/{episode_id}", responses=responses(401, 403, 404, 422))
async def update_episode(
    episode_id: uuid.UUID,
    body: EpisodeUpdate,
    request: Request,
    actor: ClientsWrite,
    session: SessionDep,
) -> EpisodePublic:
    """Change the treating clinician, or close (`status: closed`, `ended_on`) or reopen the
    episode. Fields left out are left unchanged."""
    audit_target(request, "episode.update", "episode", episode_id)
    row = await episodes.update_episode(session, actor=actor, episode_id=episode_id, data=body)
    return EpisodePublic.model_validate(row)
