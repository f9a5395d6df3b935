"""Issue 14 finding 2 (DESIGN.md §10.8): a key never mints a key with more scopes or a wider
clinician binding than its own; `admin` is never bound to a clinician; listing and revoking keys
is for unbound admins only."""

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from models.base import utcnow
from models.tenancy import ApiKey
from services.kernel.auth import display_prefix, generate_key, hash_key
from services.kernel.database import UnitOfWork
from tests.support import SYSTEM_KEY, TEST_SECRET, Attune, Tenant, bearer, expect


async def _legacy_bound_key(app: FastAPI, tenant: Tenant, scopes: list[str], clinician: str) -> str:
    """A key as the service minted them before the rule: bound and with `admin`."""
    key = generate_key()
    uow = UnitOfWork(app.state.engine)
    try:
        await (await uow.connection()).execute(
            insert(ApiKey.__table__),  # type: ignore[attr-defined]
            {"id": uuid.uuid4(), "org_id": uuid.UUID(tenant.org_id), "name": "legacy",
             "prefix": display_prefix(key), "key_hash": hash_key(key, TEST_SECRET),
             "scopes": scopes, "clinician_id": uuid.UUID(clinician),
             "created_at": utcnow()},
        )  # fmt: skip
        await uow.commit()
    finally:
        await uow.close()
    return key


async def _mint(tenant: Tenant, headers: dict[str, str], **body: Any) -> Any:
    return await tenant.http.post("/v1/api-keys", json={"name": "minted", **body}, headers=headers)


async def test_admin_cannot_be_bound_to_a_clinician(attune: Attune) -> None:
    tenant = await attune.tenant()
    clinician = (await tenant.clinician())["id"]
    for scopes in (["admin"], ["admin", "clients:read"]):
        refused = await _mint(tenant, tenant.admin, scopes=scopes, clinician_id=clinician)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "body.clinician_id"
    system = await attune.http.post(
        f"/v1/organizations/{tenant.org_id}/api-keys",
        json={"name": "x", "scopes": ["admin"], "clinician_id": clinician},
        headers=bearer(SYSTEM_KEY),
    )
    assert system.status_code == 422, system.text
    assert system.json()["errors"][0]["field"] == "body.clinician_id"


async def test_a_bound_key_mints_only_narrower_keys_bound_to_its_clinician(
    app: FastAPI, attune: Attune
) -> None:
    tenant = await attune.tenant()
    x = (await tenant.clinician("Dr X"))["id"]
    y = (await tenant.clinician("Dr Y"))["id"]
    bound = bearer(await _legacy_bound_key(app, tenant, ["admin"], x))

    for body in (
        {"scopes": ["admin"]},  # unbound admin: the escape of the finding
        {"scopes": ["clients:read"]},  # unbound
        {"scopes": ["clients:read"], "clinician_id": y},  # another clinician
        {"scopes": ["admin"], "clinician_id": x},  # admin, bound
    ):
        refused = await _mint(tenant, bound, **body)
        assert refused.status_code in (403, 422), (body, refused.text)
        assert refused.json()["errors"][0]["field"] in {"body.scopes", "body.clinician_id"}
    minted = expect(await _mint(tenant, bound, scopes=["clients:read"], clinician_id=x), 201)
    assert minted["clinician_id"] == x


async def test_a_bound_admin_key_cannot_list_or_revoke_keys(app: FastAPI, attune: Attune) -> None:
    tenant = await attune.tenant()
    x = (await tenant.clinician("Dr X"))["id"]
    bound = bearer(await _legacy_bound_key(app, tenant, ["admin"], x))
    assert (await attune.http.get("/v1/api-keys", headers=bound)).status_code == 403
    other = expect(await attune.http.get("/v1/api-keys", headers=tenant.admin), 200)["items"][0]
    response = await attune.http.delete(f"/v1/api-keys/{other['id']}", headers=bound)
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("own", "asked", "allowed"),
    [
        (["admin"], ["clients:read", "exports:identified"], True),
        (["admin"], ["admin"], True),
        (["admin", "clients:read"], ["alerts:write"], True),
    ],
)
async def test_an_unbound_admin_mints_any_organisation_scope(
    attune: Attune, own: list[str], asked: list[str], allowed: bool
) -> None:
    tenant = await attune.tenant()
    minter = bearer(await tenant.key(*own))
    response = await _mint(tenant, minter, scopes=asked)
    assert (response.status_code == 201) is allowed, response.text
