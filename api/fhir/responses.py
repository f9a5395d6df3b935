"""FHIR responses: ``application/fhir+json`` bodies, and OperationOutcome for every error under
``/fhir`` (the rest of the API keeps problem+json)."""

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import JsonValue

from api.problems import PROBLEM_MEDIA_TYPE
from services.fhir.codes import MEDIA_TYPE
from services.fhir.outcome import from_problem
from services.kernel.errors import DomainError

PREFIX = "/fhir"
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


class FhirResponse(JSONResponse):
    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class BadResource(DomainError):
    """A body that is not valid FHIR (400, FHIR's answer for a resource that does not parse)."""

    status = 400
    title = "Invalid resource"
    type_slug = "invalid-resource"

    def __init__(self, detail: str, errors: list[dict[str, JsonValue]] | None = None) -> None:
        super().__init__(detail, extra={"errors": errors or []})


class SearchRefused(DomainError):
    status = 400
    title = "Invalid search"
    type_slug = "invalid-search"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(
            f"invalid: {parameter}",
            extra={"errors": [{"field": parameter, "message": message, "type": "search"}]},
        )


def is_fhir(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def as_outcome(response: Response) -> Response:
    """A problem+json response as the same error in an OperationOutcome."""
    if not isinstance(response, JSONResponse) or response.media_type != PROBLEM_MEDIA_TYPE:
        return response
    problem = orjson.loads(bytes(response.body))
    headers = {
        name: value
        for name, value in response.headers.items()
        if name.lower() not in ("content-length", "content-type")
    }
    return FhirResponse(from_problem(problem), status_code=response.status_code, headers=headers)


def _for_fhir(handler: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        return as_outcome(response) if is_fhir(request.url.path) else response

    return handle


def install(app: FastAPI) -> None:
    """Wrap every error handler `api.problems.install` registered: under ``/fhir`` its answer
    becomes an OperationOutcome (same status and headers). Call after `api.problems.install`."""
    for exc_class, handler in list(app.exception_handlers.items()):
        app.exception_handlers[exc_class] = _for_fhir(handler)
