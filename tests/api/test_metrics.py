"""Prometheus metrics (DESIGN.md §10.7): the API's `/metrics` and the worker's own, scraped with
the Prometheus client's parser, each named metric moving during a scenario."""

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer
from sqlalchemy.ext.asyncio import create_async_engine
from werkzeug import Response

from services.kernel.config import Settings
from services.kernel.database import UnitOfWork
from tests.support import Attune, expect, srs, submit

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> Samples:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return parse(answer.text)


async def test_the_api_counts_submissions_alerts_by_rule_and_severity_and_requests(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    episode = (await tenant.episode())["id"]
    before = await scrape(attune.http)
    await submit(tenant, episode, "srs", 1, srs(9, 9, 9, 9))
    low = await submit(tenant, episode, "srs", 2, srs(8, 8, 8, 8))  # 32 < 36: alliance.low
    raised = {(a["type"], a["severity"]) for a in low["alerts"]}
    assert ("alliance.low", "warning") in raised
    after = await scrape(attune.http)

    assert value(after, "attune_submissions_total") == value(before, "attune_submissions_total") + 2
    for rule, severity in raised:
        name, labels = "attune_alerts_raised_total", {"rule": rule, "severity": severity}
        assert value(after, name, **labels) == value(before, name, **labels) + 1, rule
    created = {"method": "POST", "route": "/v1/submissions", "status": "201"}
    requests = "attune_http_requests_total"
    assert value(after, requests, **created) == value(before, requests, **created) + 2
    # No label holds an id: the route is its template, and nothing names an organisation.
    assert not any(
        tenant.org_id in label or episode in label
        for _, labels in after
        for pair in labels
        for label in pair
    )


async def test_the_api_reports_database_connections_in_use_and_requests_waiting_for_one(
    app: FastAPI, attune: Attune, settings: Settings
) -> None:
    idle = await scrape(attune.http)
    in_use = "attune_db_pool_connections_in_use"
    async with app.state.engine.connect():
        busy = await scrape(attune.http)
    assert value(busy, in_use, pool="sqlalchemy") == value(idle, in_use, pool="sqlalchemy") + 1
    if app.state.driver_pool is not None:  # PostgreSQL: the submission hot path's own pool
        async with app.state.driver_pool.acquire():
            busy = await scrape(attune.http)
        assert value(busy, in_use, pool="asyncpg") == value(idle, in_use, pool="asyncpg") + 1

    # A pool of one connection, held: a unit of work asking for another waits, and is counted.
    tiny = create_async_engine(settings.database_url, pool_size=1, max_overflow=0, pool_timeout=30)
    try:
        async with tiny.connect():
            uow = UnitOfWork(tiny)
            waiter = asyncio.create_task(uow.connection())
            for _ in range(100):
                waiting = await scrape(attune.http)
                if value(waiting, "attune_db_pool_waiting") >= 1:
                    break
                await asyncio.sleep(0.01)
            assert (
                value(waiting, "attune_db_pool_waiting")
                == value(idle, "attune_db_pool_waiting") + 1
            )
        await waiter
        await uow.close()
        assert value(await scrape(attune.http), "attune_db_pool_waiting") == value(
            idle, "attune_db_pool_waiting"
        )
    finally:
        await tiny.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def worker_for(settings: Settings) -> AsyncIterator[Any]:
    """Starts a real `attune worker` for one organisation; yields a client of its HTTP port."""
    processes: list[asyncio.subprocess.Process] = []
    clients: list[httpx.AsyncClient] = []

    async def start(org_id: str) -> httpx.AsyncClient:
        port = _free_port()
        env = {
            **os.environ,
            "ATTUNE_DATABASE_URL": settings.database_url,
            "ATTUNE_SECRET_KEY": settings.secret_key.get_secret_value(),
            "ATTUNE_ENVIRONMENT": "test",
            "ATTUNE_WEBHOOK_ALLOW_PRIVATE": "true",
            "ATTUNE_WORKER_POLL_SECONDS": "0.1",
            # A failed attempt is retried 5 to 10 minutes later: not during this test.
            "ATTUNE_WEBHOOK_RETRY_BASE_SECONDS": "600",
            "ATTUNE_HOST": "127.0.0.1",
            "ATTUNE_WORKER_PORT": str(port),
        }
        command = ["-m", "api.cli", "worker", "--org-id", org_id]
        processes.append(await asyncio.create_subprocess_exec(sys.executable, *command, env=env))
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
        clients.append(client)
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = await client.get("/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the worker's server never answered"
                await asyncio.sleep(0.1)
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
        return client

    yield start
    for client in clients:
        await client.aclose()
    for process in processes:
        process.terminate()
        await process.wait()


async def test_the_worker_serves_health_and_metrics_of_the_webhook_queue_on_its_own_port(
    attune: Attune, worker_for: Any, httpserver: HTTPServer
) -> None:
    """The receiver fails: the first delivery waits for its retry, the second (same episode)
    is due but held behind it, so the queue is two deep and its lag grows."""
    httpserver.expect_request("/hook", method="POST").respond_with_handler(
        lambda _: Response(status=500)
    )
    tenant = await attune.tenant()
    worker = await worker_for(tenant.org_id)
    before = await scrape(worker)
    assert value(before, "attune_webhook_queue_depth") == 0
    assert value(before, "attune_webhook_delivery_lag_seconds") == 0
    assert value(before, "attune_webhook_attempts_total", outcome="retry") == 0
    assert ("attune_retention_purged_rows_total", frozenset({("kind", "outbox_events")})) in before

    hook = expect(
        await tenant.http.post(
            "/v1/webhooks",
            json={"url": httpserver.url_for("/hook"), "event_types": ["submission.created"]},
            headers=tenant.admin,
        ),
        201,
    )
    episode = (await tenant.episode())["id"]
    await submit(tenant, episode, "srs", 1, srs(9, 9, 9, 9))
    await submit(tenant, episode, "srs", 2, srs(9, 9, 9, 9))
    deadline = time.monotonic() + 30
    while value(now := await scrape(worker), "attune_webhook_attempts_total", outcome="retry") < 1:
        assert time.monotonic() < deadline, "the worker never attempted the delivery"
        await asyncio.sleep(0.1)
    assert value(now, "attune_webhook_attempts_total", outcome="delivered") == 0
    assert value(now, "attune_webhook_queue_depth") == 2
    lag = value(now, "attune_webhook_delivery_lag_seconds")
    assert lag > 0
    await asyncio.sleep(0.2)
    assert value(await scrape(worker), "attune_webhook_delivery_lag_seconds") > lag
    expect(await tenant.http.delete(f"/v1/webhooks/{hook['id']}", headers=tenant.admin), 204)
    # A deleted endpoint's deliveries are never sent: they leave the queue.
    after = await scrape(worker)
    assert value(after, "attune_webhook_queue_depth") == 0
    assert value(after, "attune_webhook_delivery_lag_seconds") == 0
