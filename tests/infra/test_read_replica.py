"""Exports from a read replica (issue 18, DESIGN.md §10.7): a private PostgreSQL primary and a
streaming standby (`initdb` + `pg_basebackup`, free ports, as scripts/crash does), the service's
`ATTUNE_REPLICA_DATABASE_URL` pointing at the standby. Exports are served from it, exact across
incremental windows while it lags (replay paused), and from the primary once it stops.

Its own clusters, whatever ATTUNE_TEST_DATABASE_URL says: it runs once, in the PostgreSQL run."""

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from api.cli import migrate
from scripts.harness import Cluster
from services.kernel.config import Settings
from tests.support import SYSTEM_KEY, TEST_SECRET, Attune, Tenant, srs, submit

pytestmark = pytest.mark.skipif(
    os.environ.get("ATTUNE_TEST_DATABASE_URL") is None
    or (
        shutil.which("pg_basebackup") is None
        and not Path("/usr/lib/postgresql/15/bin/pg_basebackup").exists()
    ),
    reason="PostgreSQL run only (needs initdb and pg_basebackup)",
)


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    primary = Cluster(Path(tempfile.mkdtemp(prefix="attune-primary-")))
    standby = Cluster(Path(tempfile.mkdtemp(prefix="attune-standby-")))
    try:
        primary.init()
        standby.clone_as_standby(primary)
        standby.start()
        yield primary, standby
    finally:
        standby.destroy()
        primary.destroy()


@pytest.fixture(scope="module")
def database_url(clusters: tuple[Cluster, Cluster]) -> str:
    primary, _ = clusters
    migrate(
        Settings(environment="test", database_url=primary.url, secret_key=SecretStr(TEST_SECRET))
    )
    return primary.url


# tests/conftest.py's app and http fixtures take these: the primary and its standby.
@pytest.fixture
def settings(database_url: str, clusters: tuple[Cluster, Cluster]) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        replica_database_url=clusters[1].url,
        secret_key=SecretStr(TEST_SECRET),
        bootstrap_key=SecretStr(SYSTEM_KEY),
        db_pool_size=5,
        export_settle_seconds=0,
        rate_limit_auth_failures="1000000/hour",
    )


async def sql(url: str, statement: str) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(statement))).scalar()
    finally:
        await engine.dispose()


async def caught_up(primary: Cluster, standby: Cluster) -> None:
    position = await sql(primary.url, "SELECT pg_current_wal_lsn()::text")
    for _ in range(200):
        replayed = await sql(
            standby.url, f"SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn"
        )
        if replayed:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the standby did not catch up within 10 s")


async def pull(tenant: Tenant, **params: str) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    """An export's rows, its until and its record (which says where it was read)."""
    response = await tenant.http.get("/v1/exports/submissions", params=params, headers=tenant.admin)
    assert response.status_code == 200, response.text
    rows = [orjson.loads(line) for line in response.content.splitlines()]
    record = (
        await tenant.http.get(
            f"/v1/exports/runs/{response.headers['attune-export-id']}", headers=tenant.admin
        )
    ).json()
    return rows, response.headers["attune-export-until"], record


async def ratings(tenant: Tenant, episode: str, sessions: range) -> set[int]:
    for n in sessions:
        await submit(tenant, episode, "srs", n, srs(9, 9, 9, 9))
    return set(sessions)


async def test_exports_come_from_the_replica_exact_while_it_lags_and_from_the_primary_without_it(
    http: httpx.AsyncClient, clusters: tuple[Cluster, Cluster]
) -> None:
    primary, standby = clusters
    tenant = await Attune(http).tenant()
    episode = (await tenant.episode())["id"]
    seen: list[int] = []

    first = await ratings(tenant, episode, range(1, 4))
    await caught_up(primary, standby)
    rows, until, record = await pull(tenant)
    assert record["source"] == "replica"
    assert {r["session_number"] for r in rows} == first
    seen += [r["session_number"] for r in rows]

    # The standby replays the second batch, then stops replaying: the third is only on the
    # primary. The next window ends where the standby is exact, so it holds the second only.
    second = await ratings(tenant, episode, range(4, 7))
    await caught_up(primary, standby)
    await sql(standby.url, "SELECT pg_wal_replay_pause()")
    try:
        third = await ratings(tenant, episode, range(7, 10))
        rows, lagging_until, record = await pull(tenant, since=until)
        assert record["source"] == "replica"
        assert {r["session_number"] for r in rows} == second
        seen += [r["session_number"] for r in rows]
    finally:
        await sql(standby.url, "SELECT pg_wal_replay_resume()")
    await caught_up(primary, standby)
    rows, until, record = await pull(tenant, since=lagging_until)
    assert record["source"] == "replica"
    assert {r["session_number"] for r in rows} == third
    seen += [r["session_number"] for r in rows]
    assert sorted(seen) == list(range(1, 10))  # every row once, across the three windows

    # The standby stops: the primary serves, and the window goes on where it was.
    standby.stop("fast")
    try:
        fourth = await ratings(tenant, episode, range(10, 12))
        rows, _, record = await pull(tenant, since=until)
        assert record["source"] == "primary"
        assert {r["session_number"] for r in rows} == fourth
    finally:
        standby.start()
