"""Liveness, readiness and metrics (no auth: load balancers and Prometheus call them)."""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from api.metrics import exposition
from api.problems import RETRY_AFTER_SECONDS, problem_response

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> PlainTextResponse:
    """Prometheus exposition format."""
    body, media_type = exposition()
    return PlainTextResponse(body, media_type=media_type)


@router.get("/readyz", responses={503: {"description": "The database is unreachable"}})
async def readyz(request: Request) -> JSONResponse:
    try:
        # A probe answers quickly: a database that does not answer within the connect timeout
        # is as good as down.
        async with asyncio.timeout(request.app.state.settings.db_timeout_seconds):
            async with request.app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception:
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
