"""The route class every router uses: it ends the request's unit of work.

After the endpoint has returned and its response is built, but before that response is sent, the
transaction is committed; a failed commit raises, and the client gets an error instead of a 2xx
for data that was never saved. On any error the transaction is rolled back. (The pattern of
polarsource/polar's route wrapper; cheaper per request than a generator dependency.)
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from api.json_body import StrictJSONRequest
from services.kernel import audit
from services.kernel.database import UnitOfWork
from services.kernel.errors import DomainError

UOW_STATE = "uow"


class UnitOfWorkRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

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


def router(**kwargs: Any) -> APIRouter:
    return APIRouter(route_class=UnitOfWorkRoute, **kwargs)
