"""JSON logs and request metrics that never carry health data or identifiers.

Requests are logged by their route *template* (`/v1/clients/{client_id}`), never the raw path or
query string, which can hold external ids; uvicorn's own access log is switched off for that reason.

Every request has an id (`X-Request-ID`): the caller's when it is sane (1 to 128 characters of
letters, digits and `._:/+=-`, so it can neither forge a log line nor carry much), else a new
UUID. It is sent back on every response and, through a context variable read by a logging filter,
written on every log line made while the request runs (in worker threads too: they copy the
context).
"""

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from api.security import headers_for

access_log = logging.getLogger("attune.access")

REQUEST_ID_HEADER = b"x-request-id"
# Where the id is kept in the ASGI scope, for handlers that run outside this middleware (the
# catch-all error handler, api/problems.py).
REQUEST_ID_SCOPE_KEY = "attune.request_id"
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")
request_id: ContextVar[str | None] = ContextVar("attune_request_id", default=None)


def request_id_of(scope: Scope) -> str:
    """The caller's `X-Request-ID` when it is sane, else a new one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return bytes(value).decode("ascii")
            break
    return str(uuid.uuid4())


class RequestIdFilter(logging.Filter):
    """Puts the id of the request being served (if any) on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        if current is not None:
            record.request_id = current
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = getattr(record, "request_id", None)
        if current is not None:
            entry["request_id"] = current
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry)


# Drivers and the ORM log statements with their parameters at DEBUG: parameters are health data.
# They stay at WARNING whatever level the service runs at.
QUIET_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy", "aiohttp", "httpx", "httpcore")


def quiet_third_party() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def json_handler(stream: IO[str] | None = None) -> logging.Handler:
    """JSON lines to `stream` (stderr by default), each with the id of its request."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    return handler


def configure(level: str = "INFO") -> None:
    quiet_third_party()
    handler = json_handler()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class AccessLog:
    """One log line per request, its `X-Request-ID`, plus the headers an API should always send
    (`api.security`): no sniffing, no framing, no caching of health data. One wrapper for all
    keeps the hot path short."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        rid = request_id_of(scope)
        scope[REQUEST_ID_SCOPE_KEY] = rid
        token = request_id.set(rid)
        security_headers = (*headers_for(scope["path"]), (REQUEST_ID_HEADER, rid.encode()))

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *security_headers]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            try:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                elapsed = time.perf_counter() - started
                metrics.observe_request(scope.get("method", ""), template, status, elapsed)
                if access_log.isEnabledFor(logging.INFO):
                    access_log.info(
                        "request",
                        extra={
                            "fields": {
                                "method": scope.get("method"),
                                "route": template,
                                "status": status,
                                "ms": round(elapsed * 1000, 2),
                            }
                        },
                    )
            finally:
                request_id.reset(token)
