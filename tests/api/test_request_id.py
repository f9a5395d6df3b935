"""`X-Request-ID` (DESIGN.md §10.7): a sane incoming id is kept, anything else replaced by a new
one; every response carries it, and every log line written while the request runs names it."""

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import logs
from tests.support import Attune, bearer

HEADER = "X-Request-ID"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every record as `attune serve` writes it (api.logs.configure's handler and levels; the
    test client's own httpx lines are quieted as the service quiets its)."""
    logs.quiet_third_party()
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


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


async def test_every_response_carries_a_generated_request_id(attune: Attune) -> None:
    tenant = await attune.tenant()
    answers = [
        await attune.http.get("/healthz"),
        await attune.http.get("/metrics"),
        await attune.http.get("/v1/clinicians", headers=tenant.admin),
        await attune.http.get(f"/v1/clients/{uuid.uuid4()}", headers=tenant.admin),  # 404
        await attune.http.get("/v1/clinicians", headers=bearer("att_wrong")),  # 401
        await attune.http.post("/v1/clinicians", json={"nope": 1}, headers=tenant.admin),  # 422
        await attune.http.get("/no/such/path"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 404, 401, 422, 404]
    ids = [a.headers[HEADER] for a in answers]
    assert all(uuid.UUID(i) for i in ids)
    assert len(set(ids)) == len(ids)  # one per request


@pytest.mark.parametrize(
    "sent",
    ["abc-123", "0f8fe0c2-5b9b-4b8e-9b1e-6f6b0e6f2a11", "trace:1.2/3+4=5_6", "x" * 128],
)
async def test_a_sane_incoming_request_id_is_kept(attune: Attune, sent: str) -> None:
    answer = await attune.http.get("/healthz", headers={HEADER: sent})
    assert answer.headers[HEADER] == sent


@pytest.mark.parametrize(
    "sent",
    ["", "x" * 129, "has space", 'quote"d', "semi;colon", "new\\nline", "caf\u00e9", "<script>"],
)
async def test_an_incoming_request_id_that_is_not_sane_is_replaced(
    attune: Attune, sent: str
) -> None:
    answer = await attune.http.get("/healthz", headers=[(HEADER.encode(), sent.encode())])
    assert answer.headers[HEADER] != sent
    assert uuid.UUID(answer.headers[HEADER])


async def test_every_log_line_of_a_request_carries_its_id_even_among_concurrent_requests(
    app: FastAPI, attune: Attune, json_log: io.StringIO
) -> None:
    """Requests that log from the event loop, after awaiting (so they interleave), from a worker
    thread, and from the error handler of an unhandled exception outside every middleware."""
    chatty = logging.getLogger("attune.test.chatty")

    async def talk(step: str) -> dict[str, str]:
        chatty.info("before %s", step)
        await asyncio.sleep(0.01)
        await run_in_threadpool(chatty.info, "in a thread")
        chatty.warning("after %s", step)
        return {"ok": step}

    async def fail() -> None:
        chatty.info("about to fail")
        raise RuntimeError("boom")

    app.add_api_route("/test/chatty/{step}", talk)
    app.add_api_route("/test/fails", fail)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://attune.test") as client:
        sent = [f"req-{n}" for n in range(8)]
        answers = await asyncio.gather(
            *(client.get(f"/test/chatty/{n}", headers={HEADER: rid}) for n, rid in enumerate(sent)),
            client.get("/test/fails", headers={HEADER: "req-fails"}),
        )
    assert [a.status_code for a in answers] == [200] * 8 + [500]
    assert [a.headers[HEADER] for a in answers] == [*sent, "req-fails"]

    lines = _lines(json_log)
    by_id: dict[object, list[str]] = {}
    for line in lines:
        assert "request_id" in line, line  # no line of these requests goes without one
        by_id.setdefault(line["request_id"], []).append(str(line["message"]))
    for n, rid in enumerate(sent):
        assert sorted(by_id[rid]) == sorted(
            [f"before {n}", "in a thread", f"after {n}", "request"]
        ), rid
    assert sorted(by_id["req-fails"]) == sorted(
        ["about to fail", "unhandled RuntimeError on GET /test/fails", "request"]
    )
