"""When the database cannot be reached or stops answering, every route that needs it answers
503 problem+json with `Retry-After`, within the configured timeout, and `/readyz` says not
ready. (The full outage with a real PostgreSQL stopped and restarted under load is
`scripts/outage`; these tests need no server.)"""

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from services.kernel.config import Settings
from tests.support import Attune, bearer

NOT_NEEDING_THE_DATABASE = {"/healthz", "/metrics", "/openapi.json", "/docs", "/redoc"}
TIMEOUT = 1.0


def _settings(database_url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        secret_key=SecretStr("test-secret-key-0123456789abcdef"),
        db_timeout_seconds=TIMEOUT,
        db_command_timeout_seconds=TIMEOUT,
    )


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


@pytest.fixture
async def refusing() -> AsyncIterator[httpx.AsyncClient]:
    """The app pointed at a port where nothing listens: connections are refused at once."""
    async for client in _client(create_app(_settings("postgresql+asyncpg://u@127.0.0.1:1/x"))):
        yield client


@pytest.fixture
async def silent() -> AsyncIterator[httpx.AsyncClient]:
    """The app pointed at a server that accepts connections and never answers, as a database
    host that hangs does."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        url = f"postgresql+asyncpg://u@127.0.0.1:{port}/x"
        async for client in _client(create_app(_settings(url))):
            yield client
    finally:
        for writer in held:
            writer.close()
        server.close()


def _operations() -> list[tuple[str, str]]:
    schema = create_app(_settings("sqlite+aiosqlite:///:memory:")).openapi()
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path))
        for path, operations in schema["paths"].items()
        for method in operations
        if path not in NOT_NEEDING_THE_DATABASE and path != "/readyz"
    ]


def _assert_unavailable(response: httpx.Response, elapsed: float, context: Any) -> None:
    assert response.status_code == 503, (context, response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", context
    assert int(response.headers["retry-after"]) > 0, context
    assert response.json()["status"] == 503
    # Within the configured timeout (and some slack for a busy machine), never a hang.
    assert elapsed < TIMEOUT + 2, (context, elapsed)


async def _call(client: httpx.AsyncClient, method: str, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    response = await client.request(method, path, json=body, headers=bearer("att_" + "k" * 43))
    return response, time.monotonic() - started


async def test_with_the_database_refusing_connections_every_route_answers_503(
    refusing: httpx.AsyncClient,
) -> None:
    operations = _operations()
    assert ("POST", "/v1/submissions") in operations  # the hot path on PostgreSQL
    for method, path in operations:
        response, elapsed = await _call(refusing, method, path)
        _assert_unavailable(response, elapsed, (method, path))
    started = time.monotonic()
    ready = await refusing.get("/readyz")
    _assert_unavailable(ready, time.monotonic() - started, "/readyz")
    assert (await refusing.get("/healthz")).status_code == 200


async def test_with_the_database_not_answering_requests_get_503_within_the_timeout(
    silent: httpx.AsyncClient,
) -> None:
    for method, path in [("POST", "/v1/submissions"), ("GET", "/v1/clients")]:
        response, elapsed = await _call(silent, method, path)
        _assert_unavailable(response, elapsed, (method, path))
        assert elapsed >= TIMEOUT * 0.9  # it did wait for the connect timeout
    started = time.monotonic()
    ready = await silent.get("/readyz")
    _assert_unavailable(ready, time.monotonic() - started, "/readyz")


def _admin_shutdown() -> Exception:
    error: Exception = asyncpg.exceptions.AdminShutdownError("terminating connection: shutdown")
    return error


class _DriverError(Exception):
    """What SQLAlchemy's asyncpg adapter raises, with the driver's error as its cause."""


def _wrapped(cause: Exception, *, invalidated: bool = False) -> Exception:
    adapted = _DriverError("adapted")
    adapted.__cause__ = cause
    return DBAPIError("SELECT 1", {}, adapted, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "error",
    [
        # Raised by asyncpg straight, as on the submission hot path.
        _admin_shutdown,
        lambda: asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        lambda: asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        lambda: asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        lambda: asyncpg.InterfaceError("connection is closed"),
        lambda: asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        lambda: ConnectionResetError("reset by peer"),
        TimeoutError,
        # Through SQLAlchemy, which wraps the driver's error as a plain DBAPIError.
        lambda: _wrapped(_admin_shutdown()),
        lambda: _wrapped(Exception("gone"), invalidated=True),
    ],
    ids=[
        "admin-shutdown", "starting-up", "connection-lost", "too-many-connections",
        "connection-closed", "terminated-mid-protocol", "socket-reset", "timeout",
        "wrapped-admin-shutdown", "wrapped-invalidated",
    ],
)  # fmt: skip
async def test_database_errors_meaning_unreachable_answer_503_with_retry_after(
    attune: Attune, monkeypatch: pytest.MonkeyPatch, error: Callable[[], Exception]
) -> None:
    tenant = await attune.tenant()
    from services.care import clinicians

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise error()

    monkeypatch.setattr(clinicians, "list_clinicians", failing)
    response = await attune.http.get("/v1/clinicians", headers=tenant.admin)
    _assert_unavailable(response, 0, error)


async def test_other_database_errors_are_a_500_without_detail(
    attune: Attune, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await attune.tenant()
    from services.care import clinicians

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise _wrapped(asyncpg.exceptions.UndefinedColumnError("column x does not exist"))

    monkeypatch.setattr(clinicians, "list_clinicians", failing)
    response = await attune.http.get("/v1/clinicians", headers=tenant.admin)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry-after" not in response.headers
    assert "column" not in response.text
