"""Liveness, readiness and metrics (no auth: load balancers and Prometheus call them)."""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.metrics import exposition
from api.problems import RETRY_AFTER_SECONDS, problem_response

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: 200 while the process answers. No key needed."""
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> PlainTextResponse:
    """Prometheus exposition format."""
    body, media_type = exposition()
    return PlainTextResponse(body, media_type=media_type)


@router.get("/readyz", responses={503: {"description": "The database is unreachable"}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the database answers, else 503 with Retry-After. No key needed."""
    # A probe answers within the connect timeout: a database that does not answer by then is as
    # good as down. The check runs as a task of its own and is left to finish (or fail) in the
    # background when it is late, because closing a connection to a database that hangs would
    # wait for the statement timeout.
    check = asyncio.ensure_future(_select_one(request.app.state.engine))
    check.add_done_callback(_consume)
    done, _ = await asyncio.wait({check}, timeout=request.app.state.settings.db_timeout_seconds)
    if check not in done or check.exception() is not None:
        check.cancel()
        return problem_response(
            request,
            status=503,
            title="Service unavailable",
            detail="the database is unreachable",
            slug="unavailable",
            extra={"database": "unreachable"},
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return JSONResponse({"status": "ready", "database": "ok"})


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def _consume(task: "asyncio.Future[None]") -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a failed probe is an answer, not an unhandled error
