"""`GET /v1/episodes/{id}/trajectory/chart`: the trajectory as a chart (DESIGN.md §10.4)."""

import uuid
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from api.deps import SessionDep, SubmissionsRead, audit_target
from api.problems import responses
from api.routes.submissions import InstrumentCode, RaterQuery
from api.routing import router as api_router
from models.types import Respondent
from services.charts import render
from services.charts import service as charts

router = api_router(tags=["submissions"])

ChartFormat = Literal["svg", "png", "vega"]
MEDIA_TYPES: dict[ChartFormat, str] = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "vega": "application/json",
}
_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The chart: SVG (with `<title>` and `<desc>`), PNG, or the Vega-Lite spec "
        "both are rendered from (`format=vega`), for a client that draws it itself.",
        "content": {
            "image/svg+xml": {"schema": {"type": "string"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.get(
    "/v1/episodes/{episode_id}/trajectory/chart",
    response_class=Response,
    responses={**_OK, **responses(401, 403, 404, 422)},
)
async def get_trajectory_chart(
    episode_id: uuid.UUID,
    request: Request,
    actor: SubmissionsRead,
    session: SessionDep,
    instrument: InstrumentCode,
    respondent: Respondent = "client",
    rater: RaterQuery = None,
    format: Annotated[ChartFormat, Query(description="svg (default), png or vega")] = "svg",
) -> Response:
    """Scores by session on the instrument's scale, the cut-off line and clinical zone, the
    expected-response band where one exists, and markers for alerts (with `alerts:read`), sudden
    gains and losses, ruptures and repairs."""
    audit_target(request, "chart.read", "episode", episode_id)
    chart = await charts.episode_chart(
        session,
        actor=actor,
        episode_id=episode_id,
        instrument=instrument,
        respondent=respondent,
        rater=rater,
    )
    if format == "vega":
        return JSONResponse(chart.vega_lite)
    # Rendering is CPU-bound and synchronous: off the event loop.
    if format == "png":
        return Response(
            await run_in_threadpool(render.to_png, chart), media_type=MEDIA_TYPES[format]
        )
    return Response(await run_in_threadpool(render.to_svg, chart), media_type=MEDIA_TYPES[format])
