"""Retention jobs (DESIGN.md §10.7): expired idempotency records, outbox events no delivery
needs, and the old delivery log are purged; everything still needed is kept. Rows are made old
by moving this test's own timestamps back, so other tests' rows are never touched."""

import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select, update
from werkzeug import Response

from api import logs
from models.base import utcnow
from models.submissions import IdempotencyRecord
from services.retention import jobs as retention
from services.webhooks.outbox import DELIVERIES, OUTBOX
from tests.support import Attune, Tenant, expect, srs, submit
from tests.support.webhooks import drain, policy

ATTEMPTS = retention.ATTEMPTS
RECORDS = IdempotencyRecord.__table__  # type: ignore[attr-defined]
DAY = timedelta(days=1)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logs.json_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def _count(app: FastAPI, table: Any, *where: Any) -> int:
    async with app.state.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def _age(app: FastAPI, table: Any, days: float, *where: Any, **columns: Any) -> None:
    """Move the named timestamp columns of the matching rows `days` into the past."""
    at = utcnow() - timedelta(days=days)
    async with app.state.engine.begin() as conn:
        await conn.execute(update(table).where(*where).values(dict.fromkeys(columns, at)))


def _of(table: Any, tenant: Tenant) -> Any:
    return table.c.org_id == uuid.UUID(tenant.org_id)


async def _hook(tenant: Tenant, url: str, event: str = "submission.created") -> dict[str, Any]:
    return expect(  # type: ignore[no-any-return]
        await tenant.http.post(
            "/v1/webhooks",
            json={"url": url, "event_types": [event]},
            headers=tenant.admin,
        ),
        201,
    )


async def test_old_outbox_events_go_unless_a_live_delivery_still_needs_them(
    app: FastAPI, attune: Attune, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_handler(
        lambda _: Response(status=204)
    )
    quiet, waiting, dead = await attune.tenant(), await attune.tenant(), await attune.tenant()
    for tenant in (quiet, waiting, dead):
        episode = (await tenant.episode())["id"]
        if tenant is not quiet:
            hook = await _hook(tenant, httpserver.url_for("/hook"))
        await submit(tenant, episode, "srs", 1, srs(9, 9, 9, 9))
        if tenant is dead:  # its pending delivery will never be sent
            expect(
                await tenant.http.delete(f"/v1/webhooks/{hook['id']}", headers=tenant.admin), 204
            )
        await submit(tenant, episode, "srs", 2, srs(9, 9, 9, 9))
        await _age(app, OUTBOX, 8, _of(OUTBOX, tenant), created_at=True)
    # One event of the quiet clinic is recent: kept.
    recent = (await quiet.episode())["id"]
    await submit(quiet, recent, "srs", 1, srs(9, 9, 9, 9))

    purged = await retention.purge(app.state.engine, retention.Policy())

    assert await _count(app, OUTBOX, _of(OUTBOX, quiet)) == 1  # the recent one
    assert await _count(app, OUTBOX, _of(OUTBOX, waiting)) == 2  # their deliveries are pending
    assert await _count(app, OUTBOX, _of(OUTBOX, dead)) == 0  # never to be sent
    assert purged.outbox_events >= 4
    # The waiting deliveries are still sent afterwards, their events intact.
    assert await drain(app, waiting, policy()) == 2
    assert (
        await _count(app, DELIVERIES, _of(DELIVERIES, waiting), DELIVERIES.c.status == "delivered")
        == 2
    )


async def test_the_delivery_log_goes_after_its_retention_and_pending_deliveries_stay(
    app: FastAPI, attune: Attune, httpserver: HTTPServer
) -> None:
    statuses = [204, 204, 500]
    httpserver.expect_request("/hook", method="POST").respond_with_handler(
        lambda _: Response(status=statuses.pop(0) if statuses else 204)
    )
    old, recent = await attune.tenant(), await attune.tenant()
    for tenant in (old, recent):
        await _hook(tenant, httpserver.url_for("/hook"))
        await submit(tenant, (await tenant.episode())["id"], "srs", 1, srs(9, 9, 9, 9))
    for tenant in (old, recent):
        await drain(app, tenant, policy(retry_base_seconds=3600.0, retry_max_seconds=7200.0))
    # The old clinic: one delivery delivered, and one more made to fail once (still pending).
    await submit(old, (await old.episode())["id"], "srs", 1, srs(9, 9, 9, 9))
    await drain(app, old, policy(retry_base_seconds=3600.0, retry_max_seconds=7200.0))
    assert (
        await _count(app, DELIVERIES, _of(DELIVERIES, old), DELIVERIES.c.status == "pending") == 1
    )
    await _age(app, ATTEMPTS, 31, _of(ATTEMPTS, old), attempted_at=True)
    await _age(app, DELIVERIES, 31, _of(DELIVERIES, old), last_attempt_at=True)

    purged = await retention.purge(app.state.engine, retention.Policy())

    assert await _count(app, ATTEMPTS, _of(ATTEMPTS, old)) == 0
    pending = DELIVERIES.c.status == "pending"
    assert await _count(app, DELIVERIES, _of(DELIVERIES, old)) == 1  # the pending one stays
    assert await _count(app, DELIVERIES, _of(DELIVERIES, old), pending) == 1
    assert await _count(app, ATTEMPTS, _of(ATTEMPTS, recent)) == 1
    assert await _count(app, DELIVERIES, _of(DELIVERIES, recent)) == 1
    assert purged.webhook_attempts >= 2
    assert purged.webhook_deliveries >= 1


async def test_expired_idempotency_records_go_and_live_ones_stay(
    app: FastAPI, attune: Attune
) -> None:
    tenant = await attune.tenant()
    for key in ("expired", "live"):
        expect(
            await tenant.http.post(
                "/v1/clinicians",
                json={"display_name": "Dr Retained"},
                headers={**tenant.admin, "Idempotency-Key": key},
            ),
            201,
        )
    mine = _of(RECORDS, tenant)
    await _age(app, RECORDS, 1 / 24, mine, RECORDS.c.key == "expired", expires_at=True)

    purged = await retention.purge(app.state.engine, retention.Policy())

    assert purged.idempotency_records >= 1
    async with app.state.engine.connect() as conn:
        left = (await conn.execute(select(RECORDS.c.key).where(mine))).scalars().all()
    assert left == ["live"]


async def test_each_run_logs_and_counts_what_it_removed(
    app: FastAPI, attune: Attune, json_log: io.StringIO
) -> None:
    tenant = await attune.tenant()
    await submit(tenant, (await tenant.episode())["id"], "srs", 1, srs(9, 9, 9, 9))
    await _age(app, OUTBOX, 8, _of(OUTBOX, tenant), created_at=True)
    metric = "attune_retention_purged_rows_total"
    before = REGISTRY.get_sample_value(metric, {"kind": "outbox_events"}) or 0.0

    purged = await retention.purge(app.state.engine, retention.Policy())

    after = REGISTRY.get_sample_value(metric, {"kind": "outbox_events"})
    assert after == before + purged.outbox_events
    assert purged.outbox_events >= 1
    (line,) = [
        json.loads(text)
        for text in json_log.getvalue().splitlines()
        if json.loads(text)["message"] == "retention purge"
    ]
    assert line["outbox_events"] == purged.outbox_events
    assert set(line) >= {
        "idempotency_records", "outbox_events", "webhook_attempts", "webhook_deliveries"
    }  # fmt: skip


async def test_a_second_run_right_after_removes_nothing_of_this_clinic(
    app: FastAPI, attune: Attune
) -> None:
    tenant = await attune.tenant()
    await submit(tenant, (await tenant.episode())["id"], "srs", 1, srs(9, 9, 9, 9))
    await _age(app, OUTBOX, 8, _of(OUTBOX, tenant), created_at=True)
    await retention.purge(app.state.engine, retention.Policy())
    assert await _count(app, OUTBOX, _of(OUTBOX, tenant)) == 0
    again = await retention.purge(app.state.engine, retention.Policy())
    assert again == retention.Purged()


async def test_batches_go_past_an_event_still_needed(app: FastAPI, attune: Attune) -> None:
    """With batches of one, an old event held by a live pending delivery does not stop the purge:
    the old events after it still go."""
    tenant = await attune.tenant()
    await _hook(tenant, "http://127.0.0.1:9/never", "alert.created")  # nothing is sent here
    await submit(tenant, (await tenant.episode())["id"], "srs", 1, srs(8, 8, 8, 8))  # low: alert
    other = (await tenant.episode())["id"]
    await submit(tenant, other, "srs", 1, srs(9, 9, 9, 9))
    await submit(tenant, other, "srs", 2, srs(9, 9, 9, 9))
    await _age(app, OUTBOX, 8, _of(OUTBOX, tenant), created_at=True)
    assert await _count(app, OUTBOX, _of(OUTBOX, tenant)) == 4

    await retention.purge(app.state.engine, retention.Policy(batch=1))

    async with app.state.engine.connect() as conn:
        left = (await conn.execute(select(OUTBOX.c.type).where(_of(OUTBOX, tenant)))).all()
    assert [row.type for row in left] == ["alert.created"]
