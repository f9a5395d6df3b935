"""The route class every router uses: it ends the request's unit of work.

After the endpoint has returned and its response is built, but before that response is sent, the
transaction is committed; a failed commit raises, and the client gets an error instead of a 2xx
for data that was never saved. On any error the transaction is rolled back. (The pattern of
polarsource/polar's route wrapper; cheaper per request than a generator dependency.)
"""

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute, serialize_response

from api.json_body import StrictJSONRequest
from services.kernel import audit
from services.kernel.database import UnitOfWork
from services.kernel.errors import DomainError

UOW_STATE = "uow"


class _Declined:
    """What a fast path returns to leave the request to FastAPI's own handler."""


DECLINED: Final = _Declined()
# A route's fast path: given the request, its body as the route validated it and the response
# whose headers and status the endpoint may set, the endpoint's result, or DECLINED.
FastPath = Callable[[Request, Any, Response], Awaitable[Any]]
_FAST_PATH = "__attune_fast_path__"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def fast_path(fast: FastPath) -> Callable[[Endpoint], Endpoint]:
    """Give a route's common case a handler without FastAPI's per-request dependency solving.

    For the busiest route (POST /v1/submissions) FastAPI's handler spent about a fifth of the
    request's Python calls working out, again for each request, what is fixed per route: which
    dependencies to call with what, which headers and parameters to read, how to parse the
    content type (bench/README.md). ``fast`` does the same work written out for the route; it
    runs only for a JSON body that the route's own body field validates, and it returns
    DECLINED before doing anything else for whatever it does not handle (an Idempotency-Key,
    say), so every other request — and every refusal of a body — gets FastAPI's handler, with
    its exact answers. The endpoint's result is rendered by the route's ``response_model``,
    as FastAPI renders it."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _FAST_PATH, fast)
        return endpoint

    return mark


class UnitOfWorkRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        fast: FastPath | None = getattr(self.endpoint, _FAST_PATH, None)
        if fast is not None:
            handler = self._fast_first(fast, handler)

        async def run_in_unit_of_work(request: Request) -> Response:
            # Bodies are parsed as strict JSON: no duplicate keys, NaN or infinities.
            request = StrictJSONRequest(request.scope, request.receive)
            # The filters a list or search read audits (services/kernel/audit.py).
            audit.reading_with(request.scope.get("query_string", b""))
            try:
                try:
                    response = await handler(request)
                except DomainError as refused:
                    if refused.keep_writes:  # e.g. a refused replay's audit event
                        kept: UnitOfWork | None = getattr(request.state, UOW_STATE, None)
                        if kept is not None:
                            await kept.commit()
                    raise
                uow: UnitOfWork | None = getattr(request.state, UOW_STATE, None)
                if uow is not None:
                    await uow.commit()
                return response
            finally:
                uow = getattr(request.state, UOW_STATE, None)
                if uow is not None:
                    await uow.close()

        return run_in_unit_of_work

    def _fast_first(
        self, fast: FastPath, handler: Callable[[Request], Coroutine[Any, Any, Response]]
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        body_field, response_field = self.body_field, self.response_field
        if body_field is None or response_field is None:
            raise TypeError(f"{self.path}: a fast path needs a body and a response_model")
        status = self.status_code or 200

        async def fast_first(request: Request) -> Response:
            if request.headers.get("content-type") == "application/json":
                try:
                    parsed = await request.json()
                except ValueError:  # FastAPI's handler parses it again, and answers for it
                    return await handler(request)
                body, errors = body_field.validate(parsed, {}, loc=("body",))
                if not errors:
                    # As FastAPI's dependency solver makes it: no status, no content-length.
                    sub_response = Response()
                    del sub_response.headers["content-length"]
                    sub_response.status_code = None  # type: ignore[assignment]
                    result = await fast(request, body, sub_response)
                    if result is not DECLINED:
                        content = await serialize_response(
                            field=response_field, response_content=result, dump_json=True
                        )
                        response = Response(
                            content,
                            status_code=sub_response.status_code or status,
                            media_type="application/json",
                        )
                        response.headers.raw.extend(sub_response.headers.raw)
                        return response
            return await handler(request)

        return fast_first


def router(**kwargs: Any) -> APIRouter:
    return APIRouter(route_class=UnitOfWorkRoute, **kwargs)
