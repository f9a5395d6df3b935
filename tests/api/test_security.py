"""Security review items of issue 7: response headers, CORS off unless configured, API keys
kept only as a keyed hash."""

import hashlib
import hmac
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from api.app import create_app
from services.kernel.config import Settings
from tests.support import TEST_SECRET, Attune, bearer, expect, srs, submit

API_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def _assert_api_headers(response: httpx.Response, context: object) -> None:
    for name, value in API_HEADERS.items():
        assert response.headers.get(name) == value, (context, name, response.status_code)


async def test_every_kind_of_api_answer_carries_the_security_headers(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    sub = await submit(tenant, episode["id"], "srs", 1, srs(9, 9, 9, 9))
    answers = [
        await attune.http.get(f"/v1/submissions/{sub['id']}", headers=tenant.admin),  # health data
        await attune.http.get("/v1/alerts", headers=tenant.admin),
        await attune.http.get("/v1/clients/not-a-uuid", headers=tenant.admin),  # 422
        await attune.http.get("/v1/clients"),  # 401
        await attune.http.get("/v1/nowhere"),  # 404 from the router
        await attune.http.post(  # 413 from the body limit, before the router
            "/v1/clinicians",
            content=b"x" * (1024 * 1024 + 1),
            headers={**tenant.admin, "Content-Type": "application/json"},
        ),
        await attune.http.get("/healthz"),
        await attune.http.get("/openapi.json"),
    ]
    assert [r.status_code for r in answers] == [200, 200, 422, 401, 404, 413, 200, 200]
    for response in answers:
        _assert_api_headers(response, response.request.url.path)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_documentation_pages_work_without_the_json_csp(attune: Attune, page: str) -> None:
    """Swagger UI and ReDoc load scripts and styles from a CDN; `default-src 'none'` would leave
    a blank page. They hold no data, and keep the other headers."""
    response = await attune.http.get(page)
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "content-security-policy" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }


async def test_cors_is_off_by_default(attune: Attune) -> None:
    tenant = await attune.tenant()
    preflight = await attune.http.options(
        "/v1/submissions", headers=_preflight("https://evil.example")
    )
    simple = await attune.http.get(
        "/v1/clients", headers={**tenant.admin, "Origin": "https://evil.example"}
    )
    assert simple.status_code == 200
    for response in (preflight, simple):
        assert not [h for h in response.headers if h.startswith("access-control-")], response


@pytest.fixture
async def cors_http(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("ATTUNE_CORS_ORIGINS", "https://app.example, https://other.example")
    origins = Settings().cors_origins  # as the service reads it from the environment
    assert origins == ["https://app.example", "https://other.example"]
    application: FastAPI = create_app(settings.model_copy(update={"cors_origins": origins}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_cors_allows_the_configured_origins_only(cors_http: httpx.AsyncClient) -> None:
    attune = Attune(cors_http)
    tenant = await attune.tenant()
    allowed = await cors_http.options("/v1/submissions", headers=_preflight("https://app.example"))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers  # keys are never cookies

    refused = await cors_http.options("/v1/submissions", headers=_preflight("https://evil.example"))
    assert "access-control-allow-origin" not in refused.headers

    simple = await cors_http.get(
        "/v1/clients", headers={**tenant.admin, "Origin": "https://other.example"}
    )
    assert simple.headers["access-control-allow-origin"] == "https://other.example"
    assert "retry-after" in simple.headers["access-control-expose-headers"].lower()
    other = await cors_http.get(
        "/v1/clients", headers={**tenant.admin, "Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers


async def test_api_keys_are_stored_only_as_their_hmac_under_the_server_secret(
    app: FastAPI, attune: Attune
) -> None:
    """Keys are 256-bit random tokens: a fast keyed hash suits them (a slow password hash
    defends guessable secrets). A stolen table holds neither the key nor a plain hash of it,
    and is useless without the server secret. The lookup is by that hash, so its timing says
    nothing about the key (services/kernel/auth.py)."""
    tenant = await attune.tenant()
    key = await tenant.key("clients:read")
    expect(await attune.http.get("/v1/clients", headers=bearer(key)), 200)
    async with app.state.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM api_keys"))).mappings().all()
    keyed = hmac.new(TEST_SECRET.encode(), key.encode(), hashlib.sha256).hexdigest()
    assert [r["key_hash"] for r in rows].count(keyed) == 1
    plain = hashlib.sha256(key.encode()).hexdigest()
    stored = " ".join(str(value) for row in rows for value in row.values())
    assert key not in stored
    assert key[len("att_") :][:16] not in stored  # nothing of the secret part beyond a prefix
    assert plain not in stored
