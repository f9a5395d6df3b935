"""Time limits on requests: a request whose answer has not started within
`ATTUNE_REQUEST_TIMEOUT_SECONDS` gets a 503 problem with Retry-After instead of hanging, whether
the handler, the database or a slow client holds it up; an answer that has started may stream
for as long as it needs."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from api.app import create_app
from api.limits import RequestTimeout
from services.kernel.config import Settings
from tests.support import Attune, expect

TIMEOUT = 0.5


@pytest.fixture
async def attune(settings: Settings) -> AsyncIterator[Attune]:
    """The suite's app, with a short request timeout."""
    application = create_app(settings.model_copy(update={"request_timeout_seconds": TIMEOUT}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Attune(client)


def _assert_timed_out(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["type"] == "urn:attune:problem:timeout"
    assert response.headers["x-content-type-options"] == "nosniff"  # went through AccessLog
    assert TIMEOUT <= elapsed < TIMEOUT + 2


async def test_a_request_stuck_in_the_database_gets_503_and_the_next_one_works(
    attune: Attune, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await attune.tenant()
    from services.care import clinicians

    real = clinicians.list_clinicians

    async def stuck(session: Any, **kwargs: Any) -> Any:
        if session.bind.dialect.name == "postgresql":
            await session.execute(text("SELECT pg_sleep(30)"))
        else:
            await asyncio.sleep(30)
        return await real(session, **kwargs)

    monkeypatch.setattr(clinicians, "list_clinicians", stuck)
    started = time.monotonic()
    response = await attune.http.get("/v1/clinicians", headers=tenant.admin)
    _assert_timed_out(response, time.monotonic() - started)

    monkeypatch.setattr(clinicians, "list_clinicians", real)
    for _ in range(3):  # the connection the stuck request held is usable again, or replaced
        expect(await attune.http.get("/v1/clinicians", headers=tenant.admin), 200)
    await tenant.clinician()


async def test_a_client_trickling_its_body_gets_503_at_the_deadline(attune: Attune) -> None:
    tenant = await attune.tenant()

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"display_name": '
        await asyncio.sleep(30)
        yield b'"Dr Slow"}'

    started = time.monotonic()
    response = await attune.http.post(
        "/v1/clinicians",
        content=trickle(),
        headers={**tenant.admin, "Content-Type": "application/json"},
    )
    _assert_timed_out(response, time.monotonic() - started)


async def test_an_answer_that_has_started_may_stream_past_the_deadline() -> None:
    async def slow_stream(request: Request) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for n in range(4):
                await asyncio.sleep(TIMEOUT / 2)
                yield f"{n}\n".encode()

        return StreamingResponse(parts(), media_type="text/plain")

    app = RequestTimeout(Starlette(routes=[Route("/", slow_stream)]), seconds=TIMEOUT)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        started = time.monotonic()
        response = await client.get("/")
    assert response.status_code == 200
    assert response.text == "0\n1\n2\n3\n"
    assert time.monotonic() - started >= 2 * TIMEOUT


async def test_a_timeout_of_zero_turns_the_limit_off() -> None:
    async def slow(request: Request) -> StreamingResponse:
        await asyncio.sleep(0.2)
        return StreamingResponse(iter([b"done"]))

    app = RequestTimeout(Starlette(routes=[Route("/", slow)]), seconds=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/")).text == "done"
