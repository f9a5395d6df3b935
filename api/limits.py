"""Limits on requests: body size, enforced while the body streams in, and time to answer.

Checking `Content-Length` alone would let a chunked upload of any size through; counting the
bytes as they arrive stops it at the limit without buffering more. (FastAPI's own
`max_body_size` answers a declared oversize body in plain text; integrators get problem+json.)
"""

import asyncio
import json
import logging
from collections.abc import Mapping

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_MEDIA_TYPE, RETRY_AFTER_SECONDS

log = logging.getLogger("attune.errors")


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await _reject(scope, send, self.max_bytes)
                    return
        seen = 0
        limit = self.max_bytes

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # FastAPI lets HTTPException through its body parsing untouched, so this
                    # reaches the problem+json handler as a 413.
                    raise HTTPException(413, f"request body larger than {limit} bytes")
            return message

        await self.app(scope, counted_receive, send)


async def _reject(scope: Scope, send: Send, limit: int) -> None:
    await send_problem(
        scope,
        send,
        status=413,
        title="Content too large",
        slug="content-too-large",
        detail=f"request body larger than {limit} bytes",
        headers=[(b"connection", b"close")],
    )


class RequestTimeout:
    """A request whose response has not started within `seconds` gets a 503 problem with
    `Retry-After`, and its work is cancelled: a slow client trickling its body in, a database
    that stopped answering, a runaway query. Once the response starts, it may take as long as
    it needs (streamed exports).

    The answer goes out at the deadline from a task of its own, so a cancelled request that is
    slow to clean up (rolling back on a database that does not answer) does not hold it back;
    whatever the cancelled request still tries to send is dropped. A timer per request, no
    task: the hot path pays for one `call_at`.
    """

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        started = timed_out = False
        answer: asyncio.Task[None] | None = None

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # the client has its 503 already
            if message["type"] == "http.response.start":
                started = True
                deadline.cancel()
            await send(message)

        def expire() -> None:
            nonlocal timed_out, answer
            if started:
                return
            timed_out = True
            log.warning("request timed out after %ss", self.seconds)
            answer = loop.create_task(
                send_problem(
                    scope,
                    send,
                    status=503,
                    title="Service unavailable",
                    slug="timeout",
                    detail=f"no answer within {self.seconds:g} seconds; retry shortly",
                    headers=[(b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
                )
            )
            task.cancel()

        deadline = loop.call_at(loop.time() + self.seconds, expire)
        try:
            await self.app(scope, receive, guarded_send)
        except asyncio.CancelledError:
            if not timed_out:
                raise
        finally:
            deadline.cancel()
            if timed_out:
                task.uncancel()
        if answer is not None:
            await answer


async def send_problem(
    scope: Scope,
    send: Send,
    *,
    status: int,
    title: str,
    slug: str,
    detail: str,
    headers: list[tuple[bytes, bytes]],
) -> None:
    """A problem document sent straight over ASGI, for answers given outside the router; under
    /fhir an OperationOutcome, as every error there is."""
    from services.fhir.codes import MEDIA_TYPE as FHIR_MEDIA_TYPE
    from services.fhir.outcome import operation_outcome

    path = str(scope.get("path", ""))
    content: Mapping[str, object]
    if path == "/fhir" or path.startswith("/fhir/"):
        content, media_type = operation_outcome(status, detail), FHIR_MEDIA_TYPE
    else:
        content = {
            "type": f"urn:attune:problem:{slug}",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": path,
        }
        media_type = PROBLEM_MEDIA_TYPE
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
