"""Submissions, their episode listings and trajectories."""

import uuid
from typing import Annotated, Literal

from fastapi import Query, Request, Response

from api.deps import (
    Cursor,
    Limit,
    SessionDep,
    SubmissionsRead,
    SubmissionsWrite,
    SubmissionWriter,
    UnitOfWorkDep,
    audit_target,
    submission_writer,
    unit_of_work,
)
from api.idempotent import IdempotencyKey, run_once
from api.problems import responses
from api.routing import DECLINED, fast_path
from api.routing import router as api_router
from models.submissions import SubmissionCreate, SubmissionPublic, SubmissionVoid
from models.types import Respondent
from services.kernel.pagination import DEFAULT_LIMIT, Page
from services.submissions import service as submissions
from services.trajectory import Trajectory
from services.trajectory import service as trajectories

router = api_router(tags=["submissions"])

InstrumentCode = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
RaterQuery = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
]


async def _create_submission_fast(
    request: Request, body: SubmissionCreate, response: Response
) -> SubmissionPublic | object:
    """create_submission's dependencies, solved as FastAPI solves them (unit of work, then the
    key), for a request without an Idempotency-Key (api.routing.fast_path)."""
    if "idempotency-key" in request.headers:
        return DECLINED
    uow = await unit_of_work(request)
    actor = await submission_writer(request, uow)
    return await create_submission(body, request, actor, uow, response)


@router.post(
    "/v1/submissions",
    status_code=201,
    response_model=SubmissionPublic,
    responses=responses(401, 403, 404, 409, 422),
)
@fast_path(_create_submission_fast)
async def create_submission(
    body: SubmissionCreate,
    request: Request,
    actor: SubmissionWriter,
    uow: UnitOfWorkDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> SubmissionPublic:
    """Score one completed instrument for one session of an episode (DESIGN.md §4): the answers
    are checked item by item (422 naming the item), scored, and the alert rules run; the answer
    holds the scores and the alerts this submission raised, updated or resolved. A second valid
    submission for the same session, instrument, respondent and rater is refused with 409 naming
    the existing one (void it to replace it). A closed episode answers 409."""
    audit_target(request, "submission.create", "episode", body.episode_id)

    async def make() -> SubmissionPublic:
        return await submissions.create_submission(uow, actor=actor, data=body)

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path="/v1/submissions",
        body=body,
        status=201,
        response=response,
        schema=SubmissionPublic,
        make=make,
        action="submission.create",
        resource_type="submission",
    )


@router.get("/v1/submissions/{submission_id}", responses=responses(401, 403, 404, 422))
async def get_submission(
    submission_id: uuid.UUID, request: Request, actor: SubmissionsRead, session: SessionDep
) -> SubmissionPublic:
    """One submission with its answers and scores."""
    audit_target(request, "submission.read", "submission", submission_id)
    row = await submissions.get_submission(session, actor=actor, submission_id=submission_id)
    return submissions.to_public(row)


@router.post(
    "/v1/submissions/{submission_id}/void",
    response_model=SubmissionPublic,
    responses=responses(401, 403, 404, 409, 422),
)
async def void_submission(
    submission_id: uuid.UUID,
    body: SubmissionVoid,
    request: Request,
    actor: SubmissionsWrite,
    uow: UnitOfWorkDep,
    session: SessionDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> SubmissionPublic:
    """Void a submission with a reason: it no longer counts, and the episode's alerts are
    recomputed without it. Voiding again changes nothing."""
    audit_target(request, "submission.void", "submission", submission_id)

    async def make() -> SubmissionPublic:
        voided = await submissions.void_submission(
            session, actor=actor, submission_id=submission_id, reason=body.reason
        )
        return SubmissionPublic.model_validate(voided)

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path=f"/v1/submissions/{submission_id}/void",
        body=body,
        status=200,
        response=response,
        schema=SubmissionPublic,
        make=make,
        action="submission.void",
        resource_type="submission",
    )


@router.get("/v1/episodes/{episode_id}/submissions", responses=responses(401, 403, 404, 422))
async def list_episode_submissions(
    episode_id: uuid.UUID,
    request: Request,
    actor: SubmissionsRead,
    session: SessionDep,
    instrument: InstrumentCode | None = None,
    status: Literal["valid", "voided"] | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[SubmissionPublic]:
    """The episode's submissions, optionally of one instrument or status, a page at a time."""
    audit_target(request, "submission.list", "episode", episode_id)
    rows, next_cursor = await submissions.list_for_episode(
        session,
        actor=actor,
        episode_id=episode_id,
        instrument=instrument,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    items = [submissions.to_public(r) for r in rows]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/v1/episodes/{episode_id}/trajectory", responses=responses(401, 403, 404, 422))
async def get_trajectory(
    episode_id: uuid.UUID,
    request: Request,
    actor: SubmissionsRead,
    session: SessionDep,
    instrument: InstrumentCode,
    respondent: Respondent = "client",
    rater: RaterQuery = None,
) -> Trajectory:
    """The episode's scores on one instrument, session by session, with the analytics of
    DESIGN.md §7: change from the first and previous session, reliable change, clinical cut-off,
    expected response where a model exists, and a summary of the episode."""
    audit_target(request, "trajectory.read", "episode", episode_id)
    return await trajectories.episode_trajectory(
        session,
        actor=actor,
        episode_id=episode_id,
        instrument=instrument,
        respondent=respondent,
        rater=rater,
    )
