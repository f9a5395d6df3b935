"""SMART Backend Services (DESIGN.md §10.6): discovery, the token endpoint, and client
registration by an admin. Thin: parse, authorise, call `services.smart`, shape the answer.

The token endpoint and the discovery documents speak OAuth, not this API's conventions: a form
body, ``{"error", "error_description"}`` errors, no problem+json; they are left out of the
OpenAPI document (SMART clients read the discovery document instead).
"""

import uuid
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from api.deps import AdminActor, Cursor, Limit, SessionDep, SettingsDep, UnitOfWorkDep
from api.idempotent import IdempotencyKey, run_once
from api.problems import responses
from api.routing import router as api_router
from models.smart import SmartClientCreate, SmartClientPublic
from services.kernel.pagination import DEFAULT_LIMIT, Page
from services.smart import clients, discovery, tokens
from services.smart.errors import OAuthError, invalid_request

router = api_router(tags=["smart"])
# Cache-Control: no-store is on every answer already (api/security.py); OAuth also asks for Pragma.
_NO_STORE = {"Pragma": "no-cache"}
_FORM = "application/x-www-form-urlencoded"


def _base(request: Request) -> str:
    return str(request.app.state.settings.base_url)


@router.get("/.well-known/smart-configuration", include_in_schema=False)
@router.get("/fhir/.well-known/smart-configuration", include_in_schema=False)
async def smart_configuration(request: Request) -> JSONResponse:
    """Public, as OAuth discovery documents are."""
    return JSONResponse(discovery.smart_configuration(_base(request)))


@router.post(discovery.TOKEN_PATH, include_in_schema=False)
async def token(request: Request, session: SessionDep, settings: SettingsDep) -> JSONResponse:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != _FORM:
        raise invalid_request(f"send the token request as {_FORM}")
    try:
        pairs = parse_qsl(
            (await request.body()).decode("utf-8"), keep_blank_values=True, strict_parsing=False,
            max_num_fields=20,
        )  # fmt: skip
    except (UnicodeDecodeError, ValueError):
        raise invalid_request("the body is not a form") from None
    issued = await tokens.issue(
        session,
        fields=tokens.form_fields(pairs),
        token_url=discovery.token_url(settings.base_url),
        secret=settings.secret_key.get_secret_value(),
        lifetime_seconds=settings.smart_token_seconds,
        client_address=request.client.host if request.client else None,
    )
    return JSONResponse(issued.body(), headers=_NO_STORE)


@router.post(
    "/v1/smart-clients",
    status_code=201,
    response_model=SmartClientPublic,
    responses=responses(401, 403, 409, 422),
)
async def register_smart_client(
    body: SmartClientCreate,
    actor: AdminActor,
    uow: UnitOfWorkDep,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> SmartClientPublic:
    """Register a SMART Backend Services client: its public JWKS (RS384 or ES384 keys, each with a
    `kid`), the Attune scopes it may ever be granted (never more than the registering key's) and
    an optional clinician binding, as for API keys. The answer's `client_id` is the `iss` and
    `sub` of its assertions; `token_url` their `aud`."""

    async def make() -> SmartClientPublic:
        row = await clients.register(
            session, actor=actor, data=body, secret=settings.secret_key.get_secret_value()
        )
        return clients.public(row, token_url=discovery.token_url(settings.base_url))

    return await run_once(
        uow,
        actor=actor,
        key=idempotency_key,
        method="POST",
        path="/v1/smart-clients",
        body=body,
        status=201,
        response=response,
        schema=SmartClientPublic,
        make=make,
        action="smart_client.create",
        resource_type="smart_client",
    )


@router.get("/v1/smart-clients", responses=responses(401, 403, 422))
async def list_smart_clients(
    actor: AdminActor,
    session: SessionDep,
    settings: SettingsDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[SmartClientPublic]:
    """The organization's SMART Backend Services clients with their public keys and scopes."""
    rows, next_cursor = await clients.list_clients(session, actor=actor, limit=limit, cursor=cursor)
    url = discovery.token_url(settings.base_url)
    return Page(items=[clients.public(r, token_url=url) for r in rows], next_cursor=next_cursor)


@router.delete(
    "/v1/smart-clients/{smart_client_id}", status_code=204, responses=responses(401, 403, 404, 422)
)
async def delete_smart_client(
    smart_client_id: uuid.UUID, actor: AdminActor, session: SessionDep
) -> Response:
    """Its access tokens stop working at once."""
    await clients.delete(session, actor=actor, client_id=smart_client_id)
    return Response(status_code=204)


def _oauth_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    headers = dict(_NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def install(app: FastAPI) -> None:
    """OAuth errors as RFC 6749 §5.2 bodies."""
    app.add_exception_handler(OAuthError, _oauth_error)
