"""An invitation is a link a clinic can send (DESIGN.md §10.4): the create response carries `url`,
built from ATTUNE_PUBLIC_URL with the token in the fragment, and the link's states (revoked,
used) are told apart."""

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from models.submissions import IdempotencyRecord
from services.kernel.config import Settings
from services.kernel.database import UnitOfWork
from tests.support import Attune, bearer, expect, srs


async def test_the_link_is_the_public_url_with_the_token_in_the_fragment(
    settings: Settings, attune: Attune
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    public = settings.model_copy(update={"public_url": "https://care.example.org/attune/"})
    app = create_app(public)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://evil.test") as http:
            created = expect(
                await http.post(
                    f"/v1/episodes/{episode['id']}/invitations",
                    json={"instruments": ["srs"], "session_number": 1},
                    headers={**tenant.admin, "X-Forwarded-Host": "evil.test"},
                ),
                201,
            )
    # The token sits after '#': browsers never send a fragment to a server or in a Referer.
    assert created["url"] == f"https://care.example.org/attune/r/#{created['token']}"


async def test_without_a_public_url_the_link_names_the_service_address(
    settings: Settings, attune: Attune
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    created = expect(
        await attune.http.post(
            f"/v1/episodes/{episode['id']}/invitations",
            json={"instruments": ["srs"], "session_number": 1},
            headers=tenant.admin,
        ),
        201,
    )
    assert created["url"] == f"http://{settings.host}:{settings.port}/r/#{created['token']}"


async def test_the_link_is_shown_once_and_never_kept_for_a_replay(
    attune: Attune, app: FastAPI
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    headers = {**tenant.admin, "Idempotency-Key": "send-link-1"}
    body = {"instruments": ["srs"], "session_number": 1}
    path = f"/v1/episodes/{episode['id']}/invitations"
    created = expect(await attune.http.post(path, json=body, headers=headers), 201)
    problem = expect(await attune.http.post(path, json=body, headers=headers), 409)
    assert created["token"] not in str(problem)
    records = IdempotencyRecord.__table__  # type: ignore[attr-defined]
    uow = UnitOfWork(app.state.engine, app.state.driver_pool)
    try:
        stored = (
            await (await uow.connection()).execute(
                select(records.c.response_body).where(records.c.org_id == uuid.UUID(tenant.org_id))
            )
        ).scalar_one()
    finally:
        await uow.close()
    assert created["token"] not in str(stored)
    assert "url" not in str(stored)


async def test_a_revoked_link_and_an_expired_one_are_told_apart(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    path = f"/v1/episodes/{episode['id']}/invitations"
    body = {"instruments": ["srs"], "session_number": 1}
    created = expect(await attune.http.post(path, json=body, headers=tenant.admin), 201)
    expect(await attune.http.delete(f"/v1/invitations/{created['id']}", headers=tenant.admin), 204)
    problem = expect(await attune.http.get("/v1/invitation", headers=bearer(created["token"])), 410)
    assert problem["type"] == "urn:attune:problem:invitation-revoked"


async def test_an_invitation_with_every_instrument_sent_is_listed_as_used(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    path = f"/v1/episodes/{episode['id']}/invitations"
    body = {"instruments": ["srs"], "session_number": 1}
    created = expect(await attune.http.post(path, json=body, headers=tenant.admin), 201)
    waiting = expect(await attune.http.post(path, json=body, headers=tenant.admin), 201)
    expect(
        await attune.http.post(
            "/v1/invitation/submissions",
            json={"instrument": "srs", "answers": srs(9, 9, 9, 9)},
            headers=bearer(created["token"]),
        ),
        201,
    )
    listed = expect(await attune.http.get(path, headers=tenant.admin), 200)
    status = {item["id"]: item["status"] for item in listed["items"]}
    assert status == {created["id"]: "used", waiting["id"]: "active"}
