"""Expected-response models per organisation and instrument (DESIGN.md §10.5)."""

import uuid
from typing import Annotated

from fastapi import Body, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import (
    AdminActor,
    SessionDep,
    SettingsDep,
    SubmissionsRead,
    UnitOfWorkDep,
    audit_target,
)
from api.idempotent import IdempotencyKey, run_once
from api.problems import responses
from api.routing import router as api_router
from models.expected import ExpectedResponseFitPublic
from services.trajectory import expected
from services.trajectory.etr import MAX_BANDS, ExpectedResponse

router = api_router(prefix="/v1/instruments", tags=["instruments"])

Code = Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
_Bound = Annotated[float, Field(ge=-1_000_000, le=1_000_000, allow_inf_nan=False)]


class IntakeRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    intake_min: _Bound
    intake_max: _Bound


class FitRequest(BaseModel):
    """``intake_bands``: the bands to fit, tiling the total range; left out, the fit makes up to
    four of about equal numbers of episodes."""

    model_config = ConfigDict(extra="forbid")

    intake_bands: Annotated[list[IntakeRange], Field(min_length=1, max_length=MAX_BANDS)] | None = (
        None
    )


@router.get("/{code}/etr", responses=responses(401, 403, 404, 422))
async def get_expected_response(
    code: Code, request: Request, actor: SubmissionsRead, session: SessionDep
) -> ExpectedResponse:
    """The organisation's expected-response model for the instrument (404 when it has none)."""
    audit_target(request, "etr.read", "instrument", None)
    return await expected.get_model(session, actor=actor, code=code)


@router.put("/{code}/etr", responses=responses(401, 403, 404, 422))
async def put_expected_response(
    code: Code, body: ExpectedResponse, request: Request, actor: AdminActor, session: SessionDep
) -> ExpectedResponse:
    """Upload a model: intake bands that cover the instrument's total range without gaps or
    overlaps, sessions ascending, p10 ≤ p50 ≤ p90 on the instrument's scale. Replaces the one
    before and re-derives the organisation's alerts (``outcome.not_on_track`` judges by it)."""
    audit_target(request, "etr.update", "instrument", None)
    return await expected.put_model(session, actor=actor, code=code, body=body)


@router.post(
    "/{code}/etr/fit",
    responses={
        **responses(401, 403, 404, 422),
        200: {"model": ExpectedResponse, "description": "the fitted model, stored"},
        202: {"model": ExpectedResponseFitPublic, "description": "queued for the worker"},
    },
    # Two schemas by status (200: the model; 202: the queued fit), each declared above.
    response_model=None,
)
async def fit_expected_response(
    code: Code,
    actor: AdminActor,
    uow: UnitOfWorkDep,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    body: Annotated[FitRequest | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> ExpectedResponse | ExpectedResponseFitPublic:
    """Fit the model from the organisation's closed episodes (client ratings): a log-linear
    recovery curve per intake band (Finch, Lambert & Schaalje 2001) with percentile bands from its
    residuals; the answer reports the episodes per band and the coverage of held-out episodes.
    Too few closed episodes → 422 saying how many are needed. Over
    `ATTUNE_ETR_FIT_INLINE_MAX_EPISODES` closed episodes the worker fits it: 202 with the job,
    whose progress `GET .../etr/fits/{fit_id}` reports."""
    request = body or FitRequest()
    bands = (
        None
        if request.intake_bands is None
        else [(b.intake_min, b.intake_max) for b in request.intake_bands]
    )

    # Decided before the fit, so that a replay of the Idempotency-Key answers the same status.
    queued = await expected.fit_runs_in_worker(
        session, actor=actor, code=code, inline_max_episodes=settings.etr_fit_inline_max_episodes
    )
    status = 202 if queued else 200
    response.status_code = status
    schema: type[ExpectedResponse | ExpectedResponseFitPublic] = (
        ExpectedResponseFitPublic if queued else ExpectedResponse
    )

    async def make() -> ExpectedResponse | ExpectedResponseFitPublic:
        return await expected.fit_model(
            session, actor=actor, code=code, intake_bands=bands, queue=queued
        )

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path=f"/v1/instruments/{code}/etr/fit",
        body=request.model_dump(mode="json"),
        status=status,
        response=response,
        schema=schema,
        make=make,
        action="etr.fit",
        resource_type="instrument",
    )


@router.get("/{code}/etr/fits/{fit_id}", responses=responses(401, 403, 404, 422))
async def get_expected_response_fit(
    code: Code, fit_id: uuid.UUID, request: Request, actor: AdminActor, session: SessionDep
) -> ExpectedResponseFitPublic:
    """A fit queued for the worker: `status` (queued, running, done, failed), `stage`, `progress`
    (0-1) and, for a failed one, `error`. Once done, `GET .../etr` returns the model."""
    audit_target(request, "etr.fit_read", "instrument", fit_id)
    return await expected.get_fit(session, actor=actor, code=code, fit_id=fit_id)
