"""Webhooks: endpoints, the transactional outbox and the worker, against a real HTTP receiver."""

import asyncio
import itertools
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from pytest_httpserver import HTTPServer
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from services.kernel.config import Settings
from services.webhooks import delivery as webhook_delivery
from services.webhooks import targets as webhook_targets
from services.webhooks.events import EventRow
from services.webhooks.outbox import DELIVERIES, OUTBOX
from tests.support import Attune, Tenant, bearer, expect, srs, submit
from tests.support.webhooks import Receiver, drain, endpoint, policy

ANSWER_MARKERS = (5.3, 4.7)  # distinctive values, to prove payloads carry no answers


def leaves(value: Any) -> list[Any]:
    """Every scalar inside a JSON value."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v)]
    return [value]


@pytest.fixture
def receiver(httpserver: HTTPServer) -> Iterator[Receiver]:
    yield Receiver(httpserver)
    httpserver.clear()


async def outbox_ids(app: FastAPI, tenant: Tenant) -> list[str]:
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            select(OUTBOX.c.id)
            .where(OUTBOX.c.org_id == uuid.UUID(tenant.org_id))
            .order_by(OUTBOX.c.seq)
        )
        return [str(r[0]) for r in rows]


async def test_endpoint_secret_is_shown_once_and_listing_hides_it(attune: Attune) -> None:
    tenant = await attune.tenant()
    created = await endpoint(tenant, "https://ehr.example.org/hooks", event_types=["alert.created"])
    assert created["secret"].startswith("whsec_")
    Webhook(created["secret"])  # a valid Standard Webhooks secret
    listed = expect(await attune.http.get("/v1/webhooks", headers=tenant.admin), 200)["items"]
    assert [w["id"] for w in listed] == [created["id"]]
    assert "secret" not in listed[0]
    assert listed[0]["event_types"] == ["alert.created"]


@pytest.mark.parametrize(
    ("url", "field_type"),
    [
        ("ftp://ehr.example.org/hooks", "url_scheme"),
        ("file:///etc/passwd", "url_scheme"),
        ("not a url", "url_parsing"),
    ],
)
async def test_only_http_urls_can_receive_webhooks(
    attune: Attune, url: str, field_type: str
) -> None:
    tenant = await attune.tenant()
    response = await attune.http.post("/v1/webhooks", json={"url": url}, headers=tenant.admin)
    problem = expect(response, 422)
    assert problem["errors"][0]["field"] == "body.url"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost/hook",
        # IPv6 forms that embed a private IPv4 address, and site-local (issue 14 finding 7)
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[::127.0.0.1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[fec0::1]/hook",
    ],
)
async def test_private_targets_are_refused_outside_development(
    attune: Attune, app: FastAPI, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    tenant = await attune.tenant()
    strict: Settings = app.state.settings.model_copy(update={"webhook_allow_private": False})
    monkeypatch.setattr(app.state, "settings", strict)
    response = await attune.http.post("/v1/webhooks", json={"url": url}, headers=tenant.admin)
    problem = expect(response, 422)
    assert problem["errors"][0]["field"] == "body.url"
    assert "private" in problem["errors"][0]["message"]


async def test_clinician_bound_key_cannot_manage_organisation_webhooks(attune: Attune) -> None:
    tenant = await attune.tenant()
    clinician = await tenant.clinician()
    key = await tenant.key("webhooks:write", clinician_id=clinician["id"])
    response = await attune.http.post(
        "/v1/webhooks", json={"url": "https://ehr.example.org/h"}, headers=bearer(key)
    )
    expect(response, 403)


async def outbox_types_by_episode(app: FastAPI, tenant: Tenant) -> dict[str, list[str]]:
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            select(OUTBOX.c.episode_id, OUTBOX.c.id)
            .where(OUTBOX.c.org_id == uuid.UUID(tenant.org_id))
            .order_by(OUTBOX.c.seq)
        )
        by_episode: dict[str, list[str]] = defaultdict(list)
        for episode_id, event_id in rows:
            by_episode[str(episode_id)].append(str(event_id))
        return by_episode


async def test_every_event_reaches_the_receiver_once_in_order_and_verifies(
    attune: Attune, app: FastAPI, receiver: Receiver
) -> None:
    tenant = await attune.tenant()
    hook = await endpoint(tenant, receiver.url)
    episodes = [(await tenant.episode())["id"] for _ in range(3)]
    for eid in episodes:
        await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
        await submit(tenant, eid, "srs", 2, srs(9, 9, 9, 5.3))  # alliance.low and a rupture
        await submit(tenant, eid, "srs", 3, srs(9, 9, 9, 4.7))
        open_alerts = expect(
            await attune.http.get(f"/v1/alerts?episode_id={eid}&status=open", headers=tenant.admin),
            200,
        )["items"]
        expect(
            await attune.http.post(
                f"/v1/alerts/{open_alerts[0]['id']}/acknowledge", json={}, headers=tenant.admin
            ),
            200,
        )
    await drain(app, tenant)

    payloads = receiver.verified(hook["secret"])  # raises unless every signature verifies
    received: dict[str, list[str]] = defaultdict(list)
    for (headers, _), payload in zip(receiver.received, payloads, strict=True):
        received[payload["data"]["episode_id"]].append(headers["Webhook-Id"])
    # Every event once, and each episode's in the order they were created (episodes go side
    # by side, so the order across episodes is free).
    assert received == await outbox_types_by_episode(app, tenant)
    types = [p["type"] for p in payloads]
    assert types.count("submission.created") == 9
    assert types.count("alert.updated") >= 3  # the acknowledgements
    assert "alert.created" in types
    for payload in payloads:
        assert set(payload) == {"type", "timestamp", "data"}
        # No answer value anywhere (compared as values: a timestamp may contain "5.3").
        assert not set(ANSWER_MARKERS) & {v for v in leaves(payload) if isinstance(v, float)}
    for _, body in receiver.received:
        for field in (b"answers", b"message", b"scores"):
            assert field not in body


async def test_endpoint_receives_only_its_event_types(
    attune: Attune, app: FastAPI, receiver: Receiver
) -> None:
    tenant = await attune.tenant()
    await endpoint(tenant, receiver.url, event_types=["alert.created"])
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 5))
    await drain(app, tenant)
    assert [json.loads(body)["type"] for _, body in receiver.received] == ["alert.created"]


async def test_failing_receiver_gets_the_event_again_until_it_recovers(
    attune: Attune, app: FastAPI, receiver: Receiver
) -> None:
    tenant = await attune.tenant()
    hook = await endpoint(tenant, receiver.url, event_types=["submission.created"])
    receiver.statuses = [500, 503]
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    await submit(tenant, eid, "srs", 2, srs(9, 9, 9, 9))
    await drain(app, tenant)

    ids = [headers["Webhook-Id"] for headers, _ in receiver.received]
    first, second = await outbox_ids(app, tenant)
    # The second event waits for the first: order per episode survives the retries.
    assert ids == [first, first, first, second]
    assert len(receiver.verified(hook["secret"])) == 4
    log = expect(
        await attune.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.admin), 200
    )["items"]
    assert [d["event_id"] for d in log] == [second, first]  # newest first
    assert log[1]["status"] == "delivered"
    assert log[1]["attempts"] == 3
    assert [a["status_code"] for a in log[1]["attempt_log"]] == [204, 503, 500]
    listed = expect(await attune.http.get("/v1/webhooks", headers=tenant.admin), 200)["items"]
    assert listed[0]["consecutive_failures"] == 0


async def test_gone_receiver_disables_its_endpoint(
    attune: Attune, app: FastAPI, receiver: Receiver
) -> None:
    tenant = await attune.tenant()
    await endpoint(tenant, receiver.url)
    receiver.statuses = [410]
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    await submit(tenant, eid, "srs", 2, srs(9, 9, 9, 9))
    await drain(app, tenant)
    assert len(receiver.received) == 1
    listed = expect(await attune.http.get("/v1/webhooks", headers=tenant.admin), 200)["items"]
    assert listed[0]["enabled"] is False
    assert "410" in listed[0]["disabled_reason"]


async def test_endpoint_is_disabled_after_a_run_of_failures(
    attune: Attune, app: FastAPI, receiver: Receiver
) -> None:
    tenant = await attune.tenant()
    hook = await endpoint(tenant, receiver.url)
    receiver.statuses = [500] * 10
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    await drain(app, tenant, policy(disable_after_failures=4))
    assert len(receiver.received) == 4
    listed = expect(await attune.http.get("/v1/webhooks", headers=tenant.admin), 200)["items"]
    assert listed[0]["enabled"] is False
    assert listed[0]["consecutive_failures"] == 4
    log = expect(
        await attune.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.admin), 200
    )["items"]
    assert log[0]["status"] == "pending"  # kept, should the endpoint come back


async def test_delivery_is_given_up_after_its_attempts(
    attune: Attune, app: FastAPI, receiver: Receiver
) -> None:
    tenant = await attune.tenant()
    hook = await endpoint(tenant, receiver.url, event_types=["submission.created"])
    receiver.statuses = [500, 500, 500]
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    await submit(tenant, eid, "srs", 2, srs(9, 9, 9, 9))
    await drain(app, tenant, policy(max_attempts=3))
    log = expect(
        await attune.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.admin), 200
    )["items"]
    assert [(d["status"], d["attempts"]) for d in log] == [("delivered", 1), ("failed", 3)]
    assert log[1]["next_attempt_at"] is None


async def test_deleted_endpoint_receives_nothing_more(
    attune: Attune, app: FastAPI, receiver: Receiver
) -> None:
    tenant = await attune.tenant()
    hook = await endpoint(tenant, receiver.url)
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    expect(await attune.http.delete(f"/v1/webhooks/{hook['id']}", headers=tenant.admin), 204)
    await drain(app, tenant)
    assert receiver.received == []
    expect(
        await attune.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.admin), 404
    )
    expect(await attune.http.delete(f"/v1/webhooks/{hook['id']}", headers=tenant.admin), 404)


async def test_rolled_back_submission_produces_no_event(
    attune: Attune, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an Idempotency-Key the submission runs in the request's transaction (both
    databases); its commit fails, and nothing of it — event included — remains."""
    tenant = await attune.tenant()
    await endpoint(tenant, "https://ehr.example.org/hooks")
    eid = (await tenant.episode())["id"]

    async def failing_commit(self: Any) -> Any:
        raise OperationalError("COMMIT", {}, Exception("connection lost"))

    with monkeypatch.context() as patch:
        patch.setattr(AsyncConnection, "commit", failing_commit)
        patch.setattr(asyncpg.transaction.Transaction, "commit", failing_commit)
        response = await attune.http.post(
            "/v1/submissions",
            json={"episode_id": eid, "instrument": "srs", "session_number": 1,
                  "answers": srs(5, 5, 5, 5)},
            headers={**tenant.admin, "Idempotency-Key": "rolled-back-1"},
        )  # fmt: skip
    assert response.status_code == 503
    assert await outbox_ids(app, tenant) == []
    async with app.state.engine.connect() as conn:
        pending = await conn.scalar(
            select(text("count(*)"))
            .select_from(DELIVERIES)
            .where(DELIVERIES.c.org_id == uuid.UUID(tenant.org_id))
        )
    assert pending == 0


async def delivered_log(tenant: Tenant, hook_id: str) -> list[dict[str, Any]]:
    """The endpoint's deliveries once the newest is delivered (at most 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        log: list[dict[str, Any]] = expect(
            await tenant.http.get(f"/v1/webhooks/{hook_id}/deliveries", headers=tenant.admin), 200
        )["items"]
        if (log and log[0]["status"] == "delivered") or time.monotonic() > deadline:
            return log
        await asyncio.sleep(0.1)


async def test_worker_killed_mid_delivery_delivers_after_restart(
    attune: Attune, app: FastAPI, settings: Settings
) -> None:
    """A real `attune worker` process is killed (SIGKILL) while the receiver holds its request;
    the delivery stays pending, and the next worker delivers it."""
    tenant = await attune.tenant()
    arrived, release = threading.Event(), threading.Event()
    received: list[str] = []

    def handler(request: Request) -> Response:
        received.append(request.headers["webhook-id"])
        if len(received) == 1:
            arrived.set()
            release.wait(20)
        return Response(status=204)

    server = HTTPServer(threaded=True)
    server.expect_request("/hook", method="POST").respond_with_handler(handler)
    server.start()
    try:
        hook = await endpoint(tenant, server.url_for("/hook"), event_types=["submission.created"])
        eid = (await tenant.episode())["id"]
        await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
        env = {
            **os.environ,
            "ATTUNE_DATABASE_URL": settings.database_url,
            "ATTUNE_SECRET_KEY": settings.secret_key.get_secret_value(),
            "ATTUNE_ENVIRONMENT": "test",
            "ATTUNE_WEBHOOK_ALLOW_PRIVATE": "true",
            "ATTUNE_WORKER_POLL_SECONDS": "0.1",
        }
        command = ["-m", "api.cli", "worker", "--org-id", tenant.org_id]
        first = await asyncio.create_subprocess_exec(sys.executable, *command, env=env)
        try:
            assert await asyncio.to_thread(arrived.wait, 120), "the worker never sent"
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        release.set()
        second = await asyncio.create_subprocess_exec(sys.executable, *command, env=env)
        try:
            log = await delivered_log(tenant, hook["id"])
        finally:
            second.terminate()
            await second.wait()
    finally:
        release.set()
        server.stop()
    (event_id,) = await outbox_ids(app, tenant)
    assert received == [event_id, event_id]  # at least once: again after the kill
    assert log[0]["status"] == "delivered"
    assert log[0]["attempts"] == 1  # the killed attempt was never recorded


@pytest.mark.postgres_only
async def test_two_workers_share_a_thousand_events_without_sending_one_twice(
    attune: Attune, app: FastAPI, settings: Settings
) -> None:
    """Two workers, each with its own engine (its own connections, as two processes would
    have), drain 1,000 events of 25 episodes: every event arrives exactly once, and an episode's
    events one after another in creation order — never two of them in flight at once."""
    from models.base import new_id, utcnow
    from services.kernel.database import create_engine
    from services.webhooks import outbox

    if not settings.database_url.startswith("postgresql"):
        pytest.skip("several workers run on PostgreSQL only")
    tenant = await attune.tenant()
    calls: list[tuple[str, str, float, float]] = []
    lock = threading.Lock()

    def handler(request: Request) -> Response:
        started = time.monotonic()
        time.sleep(0.002)
        body = json.loads(request.get_data())
        with lock:
            calls.append(
                (request.headers["webhook-id"], body["data"]["episode_id"], started,
                 time.monotonic())
            )  # fmt: skip
        return Response(status=204)

    server = HTTPServer(threaded=True)
    server.expect_request("/hook", method="POST").respond_with_handler(handler)
    server.start()
    try:
        await endpoint(tenant, server.url_for("/hook"), event_types=["submission.created"])
        org_id = uuid.UUID(tenant.org_id)
        episodes = [new_id() for _ in range(25)]
        batch: list[EventRow] = []
        for n in range(1000):
            at = utcnow()
            episode_id = episodes[n % len(episodes)]
            batch.append({
                "id": new_id(), "org_id": org_id, "episode_id": episode_id,
                "type": "submission.created", "subject_id": new_id(), "created_at": at,
                "payload": {"type": "submission.created", "timestamp": at.isoformat(),
                            "data": {"episode_id": str(episode_id), "n": n}},
            })  # fmt: skip
        async with app.state.engine.begin() as conn:
            await outbox.write(conn, batch)

        pol = policy()
        engines = [create_engine(settings) for _ in range(2)]

        async def worker(engine: Any) -> int:
            sent = 0
            async with webhook_delivery.http_client(pol) as client:
                idle = 0
                while idle < 3:
                    done = await webhook_delivery.deliver_due(
                        engine, client, pol, batch=10, org_ids=[org_id]
                    )
                    sent += done
                    idle = idle + 1 if done == 0 else 0
                    if done == 0:
                        await asyncio.sleep(0.05)
            return sent

        try:
            counts = await asyncio.gather(*(worker(e) for e in engines))
        finally:
            for engine in engines:
                await engine.dispose()
    finally:
        server.stop()

    ids = [c[0] for c in calls]
    assert len(ids) == 1000
    assert len(set(ids)) == 1000  # none twice
    assert all(counts), counts  # both workers took part
    expected = {str(e["id"]): n for n, e in enumerate(batch)}
    assert set(ids) == set(expected)  # none lost
    by_episode: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for event_id, episode, started, ended in calls:
        by_episode[episode].append((started, ended, expected[event_id]))
    for deliveries in by_episode.values():
        deliveries.sort()
        assert [n for _, _, n in deliveries] == sorted(n for _, _, n in deliveries)
        for (_, ended, _), (started, _, _) in itertools.pairwise(deliveries):
            assert ended <= started  # one at a time per episode


async def test_url_too_long_once_normalised_is_refused_naming_it(attune: Attune) -> None:
    """Found by the schema fuzzer on PostgreSQL: 2,048 characters as sent, one more once the
    URL parser added the path's slash, overflowed the column (a 500)."""
    tenant = await attune.tenant()
    host = ".".join(["a" * 63] * 32)[:2040]
    url = f"https://{host}"
    assert len(url) == 2048
    response = await attune.http.post("/v1/webhooks", json={"url": url}, headers=tenant.admin)
    problem = expect(response, 422)
    assert problem["errors"][0]["field"] == "body.url"


async def test_delivery_log_pages_newest_first_with_a_cursor(attune: Attune, app: FastAPI) -> None:
    tenant = await attune.tenant()
    hook = await endpoint(tenant, "https://ehr.example.org/h", event_types=["submission.created"])
    eid = (await tenant.episode())["id"]
    for session in (1, 2, 3):
        await submit(tenant, eid, "srs", session, srs(9, 9, 9, 9))
    path = f"/v1/webhooks/{hook['id']}/deliveries"
    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = expect(await attune.http.get(path + query, headers=tenant.admin), 200)
        seen += [d["event_id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Every delivery once across the pages, newest event first.
    assert seen == list(reversed(await outbox_ids(app, tenant)))
    problem = expect(await attune.http.get(path + "?cursor=AAAA", headers=tenant.admin), 422)
    assert problem["errors"][0]["field"] == "query.cursor"


# ----- SSRF: one resolution, vetted, connected to; coarse outcomes; credentials never shown -----


async def deliver_with(
    app: FastAPI, tenant: Tenant, pol: webhook_delivery.Policy, resolve: Any
) -> None:
    resolver = resolve or webhook_targets.system_resolver
    async with webhook_delivery.http_client(pol, resolve=resolver) as client:
        await webhook_delivery.deliver_due(
            app.state.engine, client, pol, org_ids=[uuid.UUID(tenant.org_id)]
        )


async def test_delivery_connects_to_the_address_it_resolved_and_vetted_keeping_the_name(
    attune: Attune, app: FastAPI, receiver: Receiver
) -> None:
    tenant = await attune.tenant()
    # A name no real DNS answers: the request can only reach the receiver through the one
    # resolution the delivery made and vetted.
    port = receiver.server.port
    await endpoint(tenant, f"http://hook.invalid:{port}/hook", event_types=["submission.created"])
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    await deliver_with(app, tenant, policy(), resolve)
    assert lookups == ["hook.invalid"]
    ((headers, _),) = receiver.received
    assert headers["Host"] == f"hook.invalid:{port}"


async def rebinding(host: str, port: int) -> list[str]:
    return ["93.184.216.34", "127.0.0.1"]  # a rebinding answer: public first


# A name is vetted by the resolver the worker gives aiohttp; an address written in the URL,
# which aiohttp connects to without asking that resolver, by the worker itself.
@pytest.mark.parametrize(
    ("host", "resolve"),
    [("rebind.invalid", rebinding), ("127.0.0.1", None)],
    ids=["name", "address"],
)
async def test_a_private_address_is_refused_at_delivery_named_or_written(
    attune: Attune, app: FastAPI, receiver: Receiver, host: str, resolve: Any
) -> None:
    tenant = await attune.tenant()
    port = receiver.server.port
    hook = await endpoint(tenant, f"http://{host}:{port}/hook")  # allowed when created
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    strict = policy(allow_private=False, allowed_ports=(port,))
    await deliver_with(app, tenant, strict, resolve)
    assert receiver.received == []
    log = expect(
        await attune.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.admin), 200
    )["items"]
    assert "non-public" in log[0]["attempt_log"][0]["error"]


async def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(
    attune: Attune, app: FastAPI, httpserver: HTTPServer
) -> None:
    """A redirect could lead past the address check: the worker never follows one."""
    followed: list[str] = []

    def elsewhere(request: Request) -> Response:
        followed.append(request.path)
        return Response(status=204)

    httpserver.expect_request("/hook", method="POST").respond_with_response(
        Response(status=307, headers={"Location": httpserver.url_for("/elsewhere")})
    )
    httpserver.expect_request("/elsewhere").respond_with_handler(elsewhere)
    tenant = await attune.tenant()
    hook = await endpoint(tenant, httpserver.url_for("/hook"), event_types=["submission.created"])
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    await drain(app, tenant, policy(max_attempts=1))
    assert followed == []
    (delivery,) = expect(
        await attune.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.admin), 200
    )["items"]
    assert delivery["status"] == "failed"
    assert delivery["last_status_code"] == 307


async def test_basic_credentials_in_the_url_are_sent_to_the_receiver(
    attune: Attune, app: FastAPI, receiver: Receiver
) -> None:
    tenant = await attune.tenant()
    url = receiver.url.replace("http://", "http://integrator:s3cr3t@")
    await endpoint(tenant, url, event_types=["submission.created"])
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    await drain(app, tenant)
    ((headers, _),) = receiver.received
    assert headers["Authorization"] == "Basic aW50ZWdyYXRvcjpzM2NyM3Q="  # integrator:s3cr3t


async def test_a_long_answer_is_read_only_in_part_and_the_delivery_still_counts(
    attune: Attune, app: FastAPI, httpserver: HTTPServer
) -> None:
    """The worker reads at most `RESPONSE_BODY_LIMIT` of an answer (a receiver cannot make it
    hold a large body in memory) and then drops that connection; the next delivery opens
    another."""
    answered: list[int] = []

    def answer(request: Request) -> Response:
        answered.append(1)
        return Response(b"x" * (4 * webhook_delivery.RESPONSE_BODY_LIMIT), status=200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(answer)
    tenant = await attune.tenant()
    hook = await endpoint(tenant, httpserver.url_for("/hook"), event_types=["submission.created"])
    eid = (await tenant.episode())["id"]
    for session in (1, 2):
        await submit(tenant, eid, "srs", session, srs(9, 9, 9, 9))
    await drain(app, tenant)
    assert len(answered) == 2
    deliveries = expect(
        await attune.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.admin), 200
    )["items"]
    assert [d["status"] for d in deliveries] == ["delivered", "delivered"]


async def test_connection_failures_are_logged_coarsely_not_as_a_port_probe(
    attune: Attune, app: FastAPI
) -> None:
    tenant = await attune.tenant()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    hook = await endpoint(tenant, f"http://127.0.0.1:{closed}/hook")
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    await drain(app, tenant, policy(max_attempts=1))
    log = expect(
        await attune.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.admin), 200
    )["items"]
    (attempt,) = log[0]["attempt_log"]
    assert attempt["status_code"] is None
    assert attempt["error"] == "no response"
    assert attempt["duration_ms"] == 0  # a quick refusal and a long timeout look the same


async def test_a_receiver_that_never_answers_is_given_up_on_after_the_timeout(
    attune: Attune, app: FastAPI
) -> None:
    tenant = await attune.tenant()
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        hook = await endpoint(tenant, f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
        eid = (await tenant.episode())["id"]
        await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
        started = time.monotonic()
        await asyncio.wait_for(drain(app, tenant, policy(timeout_seconds=0.5, max_attempts=1)), 10)
        waited = time.monotonic() - started
    assert 0.5 <= waited < 5
    (delivery,) = expect(
        await attune.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.admin), 200
    )["items"]
    assert delivery["status"] == "failed"
    assert delivery["last_error"] == "no response"


async def test_other_ports_are_refused_outside_development(
    attune: Attune, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await attune.tenant()
    strict: Settings = app.state.settings.model_copy(update={"webhook_allow_private": False})
    monkeypatch.setattr(app.state, "settings", strict)
    response = await attune.http.post(
        "/v1/webhooks", json={"url": "http://93.184.216.34:22/hook"}, headers=tenant.admin
    )
    problem = expect(response, 422)
    assert problem["errors"][0]["field"] == "body.url"
    assert "port" in problem["errors"][0]["message"]


async def test_credentials_in_a_webhook_url_are_never_shown(attune: Attune) -> None:
    tenant = await attune.tenant()
    created = await endpoint(tenant, "https://integrator:s3cr3t-pa55@ehr.example.org/hooks?x=1")
    listed = expect(await attune.http.get("/v1/webhooks", headers=tenant.admin), 200)["items"]
    for shown in (created["url"], listed[0]["url"]):
        assert "s3cr3t-pa55" not in shown
        assert "integrator" not in shown
        assert shown == "https://***@ehr.example.org/hooks?x=1"


# ----- concerns reach only endpoints whose registering key may read them (finding 5) ------------


async def key_with_id(tenant: Tenant, *scopes: str) -> tuple[str, dict[str, str]]:
    body = {"name": "integration", "scopes": list(scopes)}
    created = expect(await tenant.http.post("/v1/api-keys", json=body, headers=tenant.admin), 201)
    return created["id"], bearer(created["key"])


async def report_concern(tenant: Tenant, episode_id: str, session_number: int) -> None:
    invitation = expect(
        await tenant.http.post(
            f"/v1/episodes/{episode_id}/invitations",
            json={"instruments": ["srs"], "session_number": session_number},
            headers=tenant.admin,
        ),
        201,
    )
    expect(
        await tenant.http.post(
            "/v1/invitation/concerns",
            json={"message": "my therapist is not listening", "category": "relationship"},
            headers=bearer(invitation["token"]),
        ),
        201,
    )


def alert_kinds(receiver: Receiver) -> list[str]:
    return [json.loads(body)["data"]["type"] for _, body in receiver.received]


async def test_concern_alerts_reach_only_endpoints_whose_key_may_read_concerns(
    attune: Attune, app: FastAPI, httpserver: HTTPServer
) -> None:
    tenant = await attune.tenant()
    _, hooks_only = await key_with_id(tenant, "webhooks:write")
    reader_id, reader = await key_with_id(tenant, "webhooks:write", "concerns:read")
    plain, reading, admin = (Receiver(httpserver, path=f"/{n}") for n in ("p", "r", "a"))
    hooks = {}
    for name, receiver, headers in (
        ("plain", plain, hooks_only), ("reading", reading, reader), ("admin", admin, tenant.admin)
    ):  # fmt: skip
        body = {"url": receiver.url, "event_types": ["alert.created"]}
        hooks[name] = expect(
            await tenant.http.post("/v1/webhooks", json=body, headers=headers), 201
        )
    assert [hooks[n]["receives_concerns"] for n in ("plain", "reading", "admin")] == [
        False, True, True
    ]  # fmt: skip

    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 5))  # alliance.low
    await report_concern(tenant, eid, 1)
    await drain(app, tenant)
    assert alert_kinds(plain) == ["alliance.low"]
    assert alert_kinds(reading) == alert_kinds(admin) == ["alliance.low", "concern.reported"]

    # The registering key is revoked: its endpoint gets no concern from then on.
    expect(await tenant.http.delete(f"/v1/api-keys/{reader_id}", headers=tenant.admin), 204)
    await report_concern(tenant, eid, 2)
    await drain(app, tenant)
    assert alert_kinds(reading) == ["alliance.low", "concern.reported"]
    assert alert_kinds(admin) == ["alliance.low", "concern.reported", "concern.reported"]
    assert alert_kinds(plain) == ["alliance.low"]
    listed = expect(await tenant.http.get("/v1/webhooks", headers=tenant.admin), 200)["items"]
    by_id = {w["id"]: w["receives_concerns"] for w in listed}
    assert by_id[hooks["reading"]["id"]] is False
    assert by_id[hooks["admin"]["id"]] is True


async def test_a_concern_already_queued_is_withheld_when_the_key_is_revoked(
    attune: Attune, app: FastAPI, receiver: Receiver
) -> None:
    tenant = await attune.tenant()
    reader_id, reader = await key_with_id(tenant, "webhooks:write", "concerns:read")
    body = {"url": receiver.url, "event_types": ["alert.created"]}
    hook = expect(await tenant.http.post("/v1/webhooks", json=body, headers=reader), 201)
    eid = (await tenant.episode())["id"]
    await report_concern(tenant, eid, 1)  # queued for the endpoint while the key reads concerns
    expect(await tenant.http.delete(f"/v1/api-keys/{reader_id}", headers=tenant.admin), 204)
    await drain(app, tenant)
    assert receiver.received == []
    (delivery,) = expect(
        await tenant.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.admin), 200
    )["items"]
    assert delivery["status"] == "failed"
    assert delivery["last_error"].startswith("withheld")
    assert "concern" not in delivery["last_error"]  # the log is read by keys that may not know
    listed = expect(await tenant.http.get("/v1/webhooks", headers=tenant.admin), 200)["items"]
    assert listed[0]["consecutive_failures"] == 0  # the receiver did nothing wrong
