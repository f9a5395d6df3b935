"""Every route refuses a missing, invalid or revoked key (401) and a key without its scope (403)."""

import re
import uuid

import pytest
from fastapi import FastAPI

from tests.support import Attune, bearer, expect

PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics"}
# Readable with any key of an organization, whatever its scopes (DESIGN.md §4).
ANY_ORG_KEY = {("GET", "/v1/instruments"), ("GET", "/v1/instruments/{code}")}
# Taken by a client's invitation token, never by an API key (tests/api/test_invitations.py).
INVITATION_TOKEN = {
    ("GET", "/v1/invitation"),
    ("POST", "/v1/invitation/submissions"),
    ("POST", "/v1/invitation/concerns"),
}


def guarded_routes(app: FastAPI, *, scoped_only: bool = False) -> list[tuple[str, str]]:
    """Every operation the app documents, with random ids in its path parameters."""
    routes = []
    for template, operations in app.openapi()["paths"].items():
        if template in PUBLIC_PATHS:
            continue
        for method in operations:
            if scoped_only and (method.upper(), template) in ANY_ORG_KEY | INVITATION_TOKEN:
                continue
            path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)
            routes.append((method.upper(), path))
    return routes


async def test_every_api_route_is_guarded_or_declared_public(app: FastAPI) -> None:
    assert len(guarded_routes(app)) >= 15


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("att_not-a-real-key"), bearer("garbage"), {"Authorization": "Basic Zm9vOmJhcg=="}],
    ids=["missing", "unknown", "malformed", "wrong-scheme"],
)
async def test_every_route_refuses_requests_without_a_valid_key(
    app: FastAPI, attune: Attune, headers: dict[str, str]
) -> None:
    for method, path in guarded_routes(app):
        response = await attune.http.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_every_route_refuses_a_revoked_key(app: FastAPI, attune: Attune) -> None:
    tenant = await attune.tenant()
    key = await tenant.key("admin")
    keys = expect(await attune.http.get("/v1/api-keys", headers=tenant.admin), 200)["items"]
    key_id = next(k["id"] for k in keys if key.startswith(k["prefix"]) and k["name"] == "test key")
    expect(await attune.http.delete(f"/v1/api-keys/{key_id}", headers=tenant.admin), 204)
    for method, path in guarded_routes(app):
        response = await attune.http.request(method, path, headers=bearer(key), json={})
        assert response.status_code == 401, (method, path, response.text)


async def test_every_route_refuses_a_key_without_its_scope(app: FastAPI, attune: Attune) -> None:
    tenant = await attune.tenant()
    # No route is guarded by this scope alone (it widens what alert routes show), so every
    # route must answer 403.
    key = await tenant.key("concerns:read")
    for method, path in guarded_routes(app, scoped_only=True):
        response = await attune.http.request(method, path, headers=bearer(key), json={})
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["status"] == 403


async def test_api_keys_do_not_open_invitation_routes(attune: Attune) -> None:
    tenant = await attune.tenant()
    for method, path in sorted(INVITATION_TOKEN):
        response = await attune.http.request(method, path, headers=tenant.admin, json={})
        assert response.status_code == 401, (method, path, response.text)


async def test_admin_key_cannot_manage_organizations(attune: Attune) -> None:
    tenant = await attune.tenant()
    response = await attune.http.post(
        "/v1/organizations", json={"name": "Evil", "slug": "evil-org"}, headers=tenant.admin
    )
    assert response.status_code == 403


async def test_system_key_cannot_read_client_data(attune: Attune) -> None:
    from tests.support import SYSTEM_KEY

    response = await attune.http.get("/v1/clients", headers=bearer(SYSTEM_KEY))
    assert response.status_code == 403


async def test_scoped_key_reaches_only_its_scope(attune: Attune) -> None:
    tenant = await attune.tenant()
    reader = bearer(await tenant.key("clients:read"))
    expect(await attune.http.get("/v1/clients", headers=reader), 200)
    response = await attune.http.post("/v1/clients", json={}, headers=reader)
    assert response.status_code == 403


async def test_revocation_takes_effect_on_the_next_request(attune: Attune) -> None:
    tenant = await attune.tenant()
    key = await tenant.key("clients:read")
    expect(await attune.http.get("/v1/clients", headers=bearer(key)), 200)
    keys = expect(await attune.http.get("/v1/api-keys", headers=tenant.admin), 200)["items"]
    key_id = next(k["id"] for k in keys if key.startswith(k["prefix"]))
    expect(await attune.http.delete(f"/v1/api-keys/{key_id}", headers=tenant.admin), 204)
    assert (await attune.http.get("/v1/clients", headers=bearer(key))).status_code == 401
    # Revoking twice is harmless.
    expect(await attune.http.delete(f"/v1/api-keys/{key_id}", headers=tenant.admin), 204)


async def test_key_secret_is_shown_once_and_never_listed(attune: Attune) -> None:
    tenant = await attune.tenant()
    key = await tenant.key("clients:read")
    listing = await attune.http.get("/v1/api-keys", headers=tenant.admin)
    assert key not in listing.text
    assert all("key" not in item and "key_hash" not in item for item in listing.json()["items"])


async def test_organization_keys_cannot_be_given_the_system_scope(attune: Attune) -> None:
    tenant = await attune.tenant()
    response = await attune.http.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["system"]}, headers=tenant.admin
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.scopes"


async def test_a_key_revoked_after_submitting_cannot_submit_again(attune: Attune) -> None:
    """POST /v1/submissions may reuse a key this process has already looked up
    (services/auth.PrincipalCache); its statements check the key themselves, so revocation
    still stops the very next submission, and nothing is stored."""
    from tests.support import srs, submit

    tenant = await attune.tenant()
    key = await tenant.key("submissions:write", "submissions:read")
    keys = expect(await attune.http.get("/v1/api-keys", headers=tenant.admin), 200)["items"]
    key_id = next(k["id"] for k in keys if key.startswith(k["prefix"]) and k["name"] == "test key")
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), headers=bearer(key))
    expect(await attune.http.delete(f"/v1/api-keys/{key_id}", headers=tenant.admin), 204)
    refused = await attune.http.post(
        "/v1/submissions",
        json={"episode_id": eid, "instrument": "srs", "session_number": 2,
              "answers": srs(5, 5, 5, 5)},
        headers=bearer(key),
    )  # fmt: skip
    assert refused.status_code == 401, refused.text
    listed = expect(
        await attune.http.get(f"/v1/episodes/{eid}/submissions", headers=tenant.admin), 200
    )
    assert [s["session_number"] for s in listed["items"]] == [1]
    other = await attune.http.post(
        "/v1/submissions",
        json={"episode_id": str(uuid.uuid4()), "instrument": "srs", "session_number": 1,
              "answers": srs(5, 5, 5, 5)},
        headers=bearer(key),
    )  # fmt: skip
    assert other.status_code == 401  # not 404: a revoked key learns nothing about episodes
