"""Test fixtures: a migrated database (SQLite file, or PostgreSQL from ATTUNE_TEST_DATABASE_URL),
the app with its real lifespan, and an HTTP client speaking ASGI to it.

The schema is built with `alembic upgrade head`, so every run tests the migrations. Tests never
share rows: each creates its own organizations through the API, and all data is tenant-scoped.
"""

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from api.app import create_app
from api.cli import migrate
from services.kernel.config import Settings
from tests.support import SYSTEM_KEY, TEST_SECRET, Attune
from tests.support.examples import MUTATION_EXAMPLES, MUTATION_RUN

# Under mutmut every property runs for each mutant it reaches: few examples, a fixed seed, no
# example database carried between mutants (tests/support/examples.py says why), and no shrinking:
# a mutant is killed by the first failing example, and shrinking it only burns the time limit.
hypothesis_settings.register_profile(
    "mutation",
    max_examples=MUTATION_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.generate],
)
# Otherwise Hypothesis' defaults, without its timing checks (the per-example deadline and the
# "input generation is slow" health check): both are timed tests, and on a loaded machine they
# failed properties that were only slow (speed is measured in bench/).
hypothesis_settings.register_profile(
    "attune", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("mutation" if MUTATION_RUN else "attune")


async def _reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("ATTUNE_TEST_DATABASE_URL")
    if url is None:
        path: Path = tmp_path_factory.mktemp("db") / "attune-test.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        asyncio.run(_reset_postgres(url))
    migrate(Settings(environment="test", database_url=url, secret_key=SecretStr(TEST_SECRET)))
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        secret_key=SecretStr(TEST_SECRET),
        bootstrap_key=SecretStr(SYSTEM_KEY),
        db_pool_size=5,
        # Generous: the concurrency tests queue 50 requests on these small pools, and CI is busy.
        db_timeout_seconds=30,
        # Test receivers listen on localhost.
        webhook_allow_private=True,
        # Exports reach up to now: tests pull right after they write.
        export_settle_seconds=0,
        # Every test client calls from one address; tests/api/test_rate_limits.py tests the
        # limits with addresses of its own.
        rate_limit_auth_failures="1000000/hour",
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://attune.test") as client:
        yield client


@pytest.fixture
def attune(http: httpx.AsyncClient) -> Attune:
    return Attune(http)


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a free local port, in a thread of its own; its base URL (also its
    ATTUNE_PUBLIC_URL, so the links it writes lead back to it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    public = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    server = uvicorn.Server(
        uvicorn.Config(create_app(public), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
