"""RFC 9457 problem+json for every error, rendered in one place.

Clients and integrators get the same shape for bad input, missing auth, conflicts and outages;
nothing ever leaks a stack trace.
"""

import logging
from collections.abc import Mapping
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api import logs
from api.json_body import InvalidJSON
from services.kernel.errors import DomainError, TooManyRequests

log = logging.getLogger("attune.errors")
PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 5


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    detail: str | None,
    slug: str,
    extra: Mapping[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:attune:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Never echo the offending input back: it may be health data, and it may be huge.
    errors = [
        {
            "field": _field_name(tuple(err.get("loc", ()))),
            "message": err.get("msg", "invalid"),
            "type": err.get("type", "value_error"),
        }
        for err in exc.errors()
    ]
    fields = ", ".join(sorted({e["field"] for e in errors})) or "request"
    return problem_response(
        request,
        status=422,
        title="Invalid request",
        detail=f"invalid: {fields}",
        slug="validation-error",
        extra={"errors": errors},
    )


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if isinstance(exc, TooManyRequests) and exc.retry_after is not None:
        headers = {"Retry-After": str(exc.retry_after)}
    await _audit_refusal(request, exc.status)
    return problem_response(
        request,
        status=exc.status,
        title=exc.title,
        detail=exc.detail,
        slug=exc.type_slug,
        extra=exc.extra,
        headers=headers,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError | InvalidJSON):
        # FastAPI answers a body its parser refused other than for syntax with a bare 400: one
        # that is not UTF-8 (RFC 8259 requires it), or one api.json_body refuses (a duplicate
        # key, nesting too deep, a number with too many digits). Invalid JSON like any other,
        # it gets the same 422 as a syntax error, saying what is wrong.
        message = cause.reason if isinstance(cause, InvalidJSON) else "not valid UTF-8"
        return problem_response(
            request,
            status=422,
            title="Invalid request",
            detail=f"invalid: body ({message})",
            slug="validation-error",
            extra={"errors": [{"field": "body", "message": message, "type": "json_invalid"}]},
        )
    title = {404: "Not found", 405: "Method not allowed", 413: "Content too large"}.get(
        exc.status_code, "HTTP error"
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(
        request,
        status=exc.status_code,
        title=title,
        detail=str(exc.detail),
        slug=title.lower().replace(" ", "-"),
        headers=headers or None,
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path. The router's own 405 names only the
    methods of the first route whose path matched, but `Allow` must list all (RFC 9110 §10.2.1),
    and each method of a path is a route of its own here."""
    allowed = []
    for method in _METHODS:
        probe = {
            "type": "http",
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "method": method,
            "headers": [],
            "query_string": b"",
        }
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


# What says the database cannot be reached (or stopped answering), however it surfaces: from
# SQLAlchemy (wrapping the driver), from asyncpg straight (the submission hot path), from the
# socket, or from a timeout.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError,  # SQLAlchemy: disconnects; SQLite "database is locked"
    PoolTimeoutError,  # no pooled connection within the timeout
    DisconnectionError,
    InterfaceError,  # SQLAlchemy's, around the driver's "connection is closed"
    asyncpg.PostgresConnectionError,  # lost or refused connection
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up, cancelled (57*)
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full (53*)
    asyncpg.InterfaceError,  # the driver's "connection is closed"
    OSError,  # refused, reset, unreachable, unresolvable
    TimeoutError,  # connect timeout, command timeout
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc`, or an error it wraps, says the database is unreachable or not answering."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, _UNAVAILABLE):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, asyncpg.InternalClientError) and str(seen).startswith(
            "cannot switch to state"
        ):
            # A connection the server terminated (a fast shutdown) whose notice arrived before
            # the socket closed: asyncpg's protocol is stuck in the error state, and says so.
            return True
        # SQLAlchemy keeps the driver's error in `orig`, and the driver's own in `__cause__`.
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def unavailable_response(request: Request, detail: str, slug: str = "unavailable") -> JSONResponse:
    return problem_response(
        request,
        status=503,
        title="Service unavailable",
        detail=detail,
        slug=slug,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not database_unavailable(exc):
        return await _unexpected(request, exc)
    log.warning("database unavailable: %s", type(exc).__name__)
    return unavailable_response(request, "the database is unavailable; retry shortly")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if database_unavailable(exc):  # raised as some other type, e.g. inside a wrapper's error
        return await _database_error(request, exc)
    # Type and route only: messages of database errors can quote the values of the statement.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem_response(
        request, status=500, title="Internal server error", detail=None, slug="internal"
    )


async def _unexpected_outside_middleware(request: Request, exc: Exception) -> JSONResponse:
    """The catch-all, which Starlette runs outside every middleware: the request's id is taken
    back from the scope for its log line and its response (api/logs.py)."""
    rid = request.scope.get(logs.REQUEST_ID_SCOPE_KEY)
    token = logs.request_id.set(rid)
    try:
        response = await _unexpected(request, exc)
    finally:
        logs.request_id.reset(token)
    if rid is not None:
        response.headers["X-Request-ID"] = rid
    return response


async def _audit_refusal(request: Request, status: int) -> None:
    """Refused attempts on client data are audited too, in their own transaction.

    The request's transaction rolls back with the error, so the record is written apart from it.
    """
    if status not in (403, 404):
        return
    actor = getattr(request.state, "actor", None)
    audit_as = getattr(request.state, "audit_as", None)
    if actor is None or audit_as is None:
        return
    from services.kernel import audit

    outcome = "forbidden" if status == 403 else "not_found"
    try:
        async with request.app.state.sessionmaker() as session:
            audit.record(
                session,
                actor,
                action=audit_as[0],
                resource_type=audit_as[1],
                resource_id=audit_as[2],
                outcome=outcome,
            )
            await session.commit()
    except Exception:  # the refusal itself must still be answered
        log.exception("could not audit a refused request")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Database errors: 503 with Retry-After when the database is unreachable or not answering,
    # else 500. Registered by type here (not left to the catch-all below, which Starlette runs
    # outside every middleware) so that these answers carry the usual headers and are logged.
    # asyncpg's own errors come from the submission hot path, which uses the driver directly.
    for error in (
        DBAPIError, PoolTimeoutError, DisconnectionError, asyncpg.PostgresError,
        asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError,
    ):  # fmt: skip
        app.add_exception_handler(error, _database_error)
    app.add_exception_handler(Exception, _unexpected_outside_middleware)


PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route can give."""
    names = {
        400: "Bad request",
        401: "Missing, invalid or revoked API key",
        403: "The key lacks a scope",
        404: "Not found (or another tenant's object)",
        409: "Conflict",
        410: "Gone (an expired invitation)",
        413: "Body larger than allowed",
        422: "Invalid input, naming the fields",
        429: "Too many requests",
        503: "Database unavailable",
    }
    return {s: {"description": names[s], "model": Problem} for s in statuses}
