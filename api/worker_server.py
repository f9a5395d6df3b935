"""The worker's own HTTP server: `/healthz` and `/metrics` on `ATTUNE_HOST:ATTUNE_WORKER_PORT`.

It runs in the worker's event loop, beside the delivery, sweep and retention loops. `/metrics`
reads the webhook queue (depth, lag) from the database when it is scraped; if the database does
not answer in time the rest is served with the queue gauges as they last were.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Collection, Iterator

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.metrics import exposition
from services.webhooks import queue

log = logging.getLogger("attune.worker")
QUEUE_READ_TIMEOUT_SECONDS = 5.0


def create_app(engine: AsyncEngine, org_ids: Collection[uuid.UUID] | None = None) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def metrics(_: Request) -> Response:
        try:
            await asyncio.wait_for(
                queue.refresh_metrics(engine, org_ids), QUEUE_READ_TIMEOUT_SECONDS
            )
        except Exception as exc:  # the scrape still answers, with the queue as last read
            log.warning("could not read the webhook queue: %s", type(exc).__name__)
        body, media_type = exposition()
        return Response(body, media_type=media_type)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


class _Embedded(uvicorn.Server):
    """uvicorn inside the worker's loop: the worker handles SIGTERM and SIGINT itself, and tells
    the server to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: Starlette, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve until `stop` is set. A port that cannot be bound is logged, and the worker goes on
    delivering without it (its health check then fails, which is what should be noticed)."""
    server = _Embedded(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off")
    )

    async def stop_when_told() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stop_when_told())
    try:
        await server.serve()
    except SystemExit:  # uvicorn's answer to a port it cannot bind
        log.error("the worker's health and metrics server could not listen on port %s", port)
        await stop.wait()
    finally:
        watcher.cancel()
