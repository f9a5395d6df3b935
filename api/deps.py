"""Typed dependencies: the unit of work, the authenticated actor with its scopes, paging."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.routing import UOW_STATE
from services.kernel.auth import Actor, authenticate, authenticate_access_token, is_access_token
from services.kernel.config import Settings
from services.kernel.database import UnitOfWork
from services.kernel.errors import Unauthorized
from services.kernel.pagination import MAX_LIMIT


async def unit_of_work(request: Request) -> UnitOfWork:
    """The request's one transaction; `api.routing.UnitOfWorkRoute` commits it before the
    response is sent, or rolls it back."""
    uow = UnitOfWork(request.app.state.engine, request.app.state.driver_pool)
    setattr(request.state, UOW_STATE, uow)
    return uow


UnitOfWorkDep = Annotated[UnitOfWork, Depends(unit_of_work)]


async def _orm_session(uow: UnitOfWorkDep) -> AsyncSession:
    return await uow.orm()


SessionDep = Annotated[AsyncSession, Depends(_orm_session)]


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def _client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def bearer_token(request: Request, what: str) -> str:
    """The token of `Authorization: Bearer <token>`, or 401 naming `what` was expected.

    Parsed here rather than by a security dependency: this runs on every request, and the scheme
    is documented in the OpenAPI by `api.openapi` instead."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(f"missing {what}: send 'Authorization: Bearer <{what.split()[-1]}>'")
    return token.strip()


def authenticator(
    scope: str, *, key_rechecked: bool = False
) -> Callable[[Request, UnitOfWork], Awaitable[Actor]]:
    """Authenticate the bearer key and demand `scope` (401, then 403). ``key_rechecked``: the
    route's own statements check that the key is not revoked (on PostgreSQL), so a key this
    process has seen need not be looked up first."""

    async def dependency(
        request: Request,
        uow: UnitOfWorkDep,
    ) -> Actor:
        token = bearer_token(request, "API key")
        settings: Settings = request.app.state.settings
        cache = request.app.state.key_cache if key_rechecked and uow.dialect != "sqlite" else None
        if is_access_token(token):  # SMART Backend Services (services/smart/)
            principal = await authenticate_access_token(
                uow, token=token, secret=settings.secret_key.get_secret_value()
            )
        else:
            principal = await authenticate(
                uow,
                token=token,
                secret=settings.secret_key.get_secret_value(),
                cache=cache,
                old_secrets=settings.old_secrets(),
            )
        actor = Actor(principal=principal, client_address=_client_address(request))
        if scope:
            principal.require(scope)
        if scope != "system":
            principal.require_org()
        request.state.actor = actor
        return actor

    dependency.__name__ = f"require_{scope.replace(':', '_') or 'org_key'}"
    return dependency


def require(scope: str, *, key_rechecked: bool = False) -> Any:
    """A dependency that authenticates the bearer key and demands `scope` (see authenticator)."""
    return Depends(authenticator(scope, key_rechecked=key_rechecked))


SystemActor = Annotated[Actor, require("system")]
AdminActor = Annotated[Actor, require("admin")]
ClientsRead = Annotated[Actor, require("clients:read")]
ClientsWrite = Annotated[Actor, require("clients:write")]
SubmissionsRead = Annotated[Actor, require("submissions:read")]
SubmissionsWrite = Annotated[Actor, require("submissions:write")]
# POST /v1/submissions only: its statements check the key again (services/submissions/store_pg.py).
submission_writer = authenticator("submissions:write", key_rechecked=True)
SubmissionWriter = Annotated[Actor, Depends(submission_writer)]
# Any key of an organization, whatever its scopes (instrument definitions are not health data).
OrgKey = Annotated[Actor, require("")]


def audit_target(
    request: Request, action: str, resource_type: str, resource_id: uuid.UUID | None
) -> None:
    """Name what a request is about, so that a refusal (403/404) is audited too."""
    request.state.audit_as = (action, resource_type, resource_id)


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}")]
Cursor = Annotated[
    str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="opaque cursor")
]
