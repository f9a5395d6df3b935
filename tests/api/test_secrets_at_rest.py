"""Secrets at rest (issue 14 finding 11, DESIGN.md §10.7): webhook and export pseudonym secrets
are stored encrypted under a key derived from ATTUNE_SECRET_KEY; the key can be rotated, with
ATTUNE_SECRET_KEYS_OLD still opening old values and still verifying API keys."""

import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import select, update

from api.cli import _rotate_secrets
from models.tenancy import Organization
from models.webhooks import WebhookEndpoint
from services.kernel.config import Settings
from services.kernel.crypto import SecretBox, UndecryptableSecret
from services.webhooks.endpoints import UNDECRYPTABLE_URL
from tests.support import Attune, Tenant, expect, srs, submit

ORGS = Organization.__table__  # type: ignore[attr-defined]
HOOKS = WebhookEndpoint.__table__  # type: ignore[attr-defined]
ROTATED = "rotated-secret-key-fedcba9876543210"


@given(st.text(max_size=200))
def test_a_sealed_secret_opens_under_its_key_and_old_keys_only(plaintext: str) -> None:
    old, new = SecretBox("old-server-secret"), SecretBox("new-server-secret", ["old-server-secret"])
    sealed = old.seal(plaintext)
    assert sealed.startswith("fernet:")
    assert old.open(sealed) == new.open(sealed) == plaintext
    with pytest.raises(UndecryptableSecret):
        SecretBox("new-server-secret").open(sealed)
    resealed = new.reseal(sealed)
    assert resealed is not None
    assert SecretBox("new-server-secret").open(resealed) == plaintext
    assert new.reseal(resealed) is None  # already under the current key


def test_a_sealed_secret_does_not_contain_the_plaintext() -> None:
    secret = "whsec_" + "Q7zX" * 11
    sealed = SecretBox("k").seal(secret)
    assert "whsec_" not in sealed
    assert "Q7zX" not in sealed


@contextlib.asynccontextmanager
async def client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    from api.app import create_app

    other = create_app(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as client:
            yield client


async def stored(app: FastAPI, tenant: Tenant) -> tuple[str, list[str]]:
    org_id = uuid.UUID(tenant.org_id)
    async with app.state.engine.connect() as conn:
        export_secret = await conn.scalar(select(ORGS.c.export_secret).where(ORGS.c.id == org_id))
        hooks = (await conn.scalars(select(HOOKS.c.secret).where(HOOKS.c.org_id == org_id))).all()
    return export_secret, list(hooks)


async def stored_urls(app: FastAPI, tenant: Tenant) -> list[str]:
    async with app.state.engine.connect() as conn:
        found = await conn.scalars(
            select(HOOKS.c.url).where(HOOKS.c.org_id == uuid.UUID(tenant.org_id))
        )
        return list(found.all())


async def test_webhook_urls_are_stored_encrypted_and_shown_without_credentials(
    attune: Attune, app: FastAPI
) -> None:
    """A receiver's URL often carries a credential (Basic user:password, a token in the path or
    query): a copy of the database without the server secret must not hold it."""
    tenant = await attune.tenant()
    url = "https://ehr-user:s3cr3t-pass@ehr.example.org/hooks/tok-9f8e7d?sig=q-4c3b2a"
    created = expect(
        await tenant.http.post("/v1/webhooks", json={"url": url}, headers=tenant.admin), 201
    )
    (sealed,) = await stored_urls(app, tenant)
    assert sealed.startswith("fernet:")
    for part in ("s3cr3t-pass", "ehr-user", "tok-9f8e7d", "q-4c3b2a", "ehr.example.org"):
        assert part not in sealed
    assert SecretBox(app.state.settings.secret_key.get_secret_value()).open(sealed) == url
    shown = "https://***@ehr.example.org/hooks/tok-9f8e7d?sig=q-4c3b2a"
    assert created["url"] == shown
    listed = expect(await tenant.http.get("/v1/webhooks", headers=tenant.admin), 200)["items"]
    assert [hook["url"] for hook in listed] == [shown]


async def test_a_webhook_url_sealed_under_an_unlisted_key_is_listed_as_undecryptable(
    attune: Attune, app: FastAPI
) -> None:
    tenant = await attune.tenant()
    expect(
        await tenant.http.post(
            "/v1/webhooks", json={"url": "https://ehr.example.org/h"}, headers=tenant.admin
        ),
        201,
    )
    (sealed,) = await stored_urls(app, tenant)
    elsewhere = SecretBox("a-secret-this-server-never-had").seal("https://ehr.example.org/h")
    this_org = HOOKS.c.org_id == uuid.UUID(tenant.org_id)
    async with app.state.engine.begin() as conn:
        await conn.execute(update(HOOKS).where(this_org).values(url=elsewhere))
    try:
        listed = expect(await tenant.http.get("/v1/webhooks", headers=tenant.admin), 200)
        assert [hook["url"] for hook in listed["items"]] == [UNDECRYPTABLE_URL]
    finally:  # `attune rotate-secrets` in other tests must open every row of this database
        async with app.state.engine.begin() as conn:
            await conn.execute(update(HOOKS).where(this_org).values(url=sealed))


async def pseudonyms(http: httpx.AsyncClient, tenant: Tenant) -> list[str]:
    response = await http.get("/v1/exports/submissions", headers=tenant.admin)
    assert response.status_code == 200, response.text
    return [orjson.loads(line)["client_id"] for line in response.content.splitlines()]


async def test_webhook_and_export_secrets_are_stored_encrypted(
    attune: Attune, app: FastAPI
) -> None:
    tenant = await attune.tenant()
    hook = expect(
        await tenant.http.post(
            "/v1/webhooks", json={"url": "https://ehr.example.org/h"}, headers=tenant.admin
        ),
        201,
    )
    export_secret, (hook_secret,) = await stored(app, tenant)
    for value in (export_secret, hook_secret):
        assert value.startswith("fernet:")
    assert hook["secret"] not in hook_secret
    assert hook["secret"][6:20] not in hook_secret  # not even the key material in part
    assert (
        SecretBox(app.state.settings.secret_key.get_secret_value()).open(hook_secret)
        == (hook["secret"])
    )


async def test_a_rotated_secret_key_keeps_api_keys_exports_and_webhooks_working(
    attune: Attune, app: FastAPI, settings: Settings
) -> None:
    tenant = await attune.tenant()
    episode = (await tenant.episode())["id"]
    await submit(tenant, episode, "srs", 1, srs(9, 9, 9, 9))
    expect(
        await tenant.http.post(
            "/v1/webhooks", json={"url": "https://ehr.example.org/h"}, headers=tenant.admin
        ),
        201,
    )
    before = await pseudonyms(attune.http, tenant)
    rotated = settings.model_copy(
        update={"secret_key": SecretStr(ROTATED), "secret_keys_old": [settings.secret_key]}
    )
    only_new = settings.model_copy(update={"secret_key": SecretStr(ROTATED)})

    # The old key listed: API keys minted under it still work, pseudonyms do not change.
    async with client_of(rotated) as http:
        assert await pseudonyms(http, tenant) == before
    # Not listed: the API key's hash no longer matches.
    async with client_of(only_new) as http:
        expect(await http.get("/v1/exports/submissions", headers=tenant.admin), 401)

    back = settings.model_copy(update={"secret_keys_old": [SecretStr(ROTATED)]})
    try:
        counts = await _rotate_secrets(rotated)
        assert counts["export_secrets"] >= 1
        assert counts["webhook_secrets"] >= 1
        assert counts["webhook_urls"] >= 1
        export_secret, (hook_secret,) = await stored(app, tenant)
        new_only = SecretBox(ROTATED)  # sealed under the new key: the old one is not needed
        assert new_only.reseal(export_secret) is None
        assert new_only.reseal(hook_secret) is None
        assert await _rotate_secrets(rotated) == {
            "export_secrets": 0,
            "webhook_secrets": 0,
            "webhook_urls": 0,
        }
        async with client_of(rotated) as http:
            assert await pseudonyms(http, tenant) == before
    finally:
        # Back under the test key, for the tests that follow on this database.
        await _rotate_secrets(back)


async def test_plaintext_secrets_from_before_are_sealed_by_rotation(
    attune: Attune, app: FastAPI, settings: Settings
) -> None:
    tenant = await attune.tenant()
    expect(
        await tenant.http.post(
            "/v1/webhooks", json={"url": "https://ehr.example.org/h"}, headers=tenant.admin
        ),
        201,
    )
    org_id = uuid.UUID(tenant.org_id)
    async with app.state.engine.begin() as conn:  # rows as written before encryption at rest
        await conn.execute(update(ORGS).where(ORGS.c.id == org_id).values(export_secret="ab" * 32))
        await conn.execute(
            update(HOOKS).where(HOOKS.c.org_id == org_id).values(secret="whsec_" + "B" * 44)
        )
    assert len(await pseudonyms(attune.http, tenant)) == 0  # still readable meanwhile
    await _rotate_secrets(settings)
    export_secret, (hook_secret,) = await stored(app, tenant)
    box = SecretBox(settings.secret_key.get_secret_value())
    assert box.open(export_secret) == "ab" * 32
    assert box.open(hook_secret) == "whsec_" + "B" * 44
    assert export_secret.startswith("fernet:")
    assert hook_secret.startswith("fernet:")


async def test_an_invitation_issued_before_a_rotation_still_opens_with_the_old_key_listed(
    attune: Attune, settings: Settings
) -> None:
    """A client's rating link outlives a rotation of ATTUNE_SECRET_KEY, as API keys do; once the
    old key is no longer listed, the token opens nothing."""
    tenant = await attune.tenant()
    episode = (await tenant.episode())["id"]
    invitation = expect(
        await tenant.http.post(
            f"/v1/episodes/{episode}/invitations",
            json={"instruments": ["srs"], "session_number": 1},
            headers=tenant.admin,
        ),
        201,
    )
    token = {"Authorization": f"Bearer {invitation['token']}"}
    rotated = settings.model_copy(
        update={"secret_key": SecretStr(ROTATED), "secret_keys_old": [settings.secret_key]}
    )
    only_new = settings.model_copy(update={"secret_key": SecretStr(ROTATED)})
    async with client_of(rotated) as http:
        expect(await http.get("/v1/invitation", headers=token), 200)
        body = {"instrument": "srs", "answers": srs(8, 8, 8, 8)}
        expect(await http.post("/v1/invitation/submissions", json=body, headers=token), 201)
    async with client_of(only_new) as http:
        expect(await http.get("/v1/invitation", headers=token), 401)
