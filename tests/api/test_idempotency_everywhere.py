"""Issue 14 finding 12: `Idempotency-Key` is honoured on every POST that creates something (one
mechanism, api/idempotent.py): the same key and body answer the stored response, and nothing is
created twice. Responses that hold a secret shown once (API keys, invitation tokens, webhook
secrets) are stored without it: a replay answers 409 naming what was created."""

import copy
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.support import SYSTEM_KEY, Attune, Tenant, bearer, expect, srs, submit
from tests.support.instruments import LOCAL

Case = Callable[[Tenant], Awaitable[tuple[str, dict[str, Any], dict[str, str]]]]


async def _clinician(t: Tenant) -> tuple[str, dict[str, Any], dict[str, str]]:
    return "/v1/clinicians", {"display_name": "Dr Once"}, t.admin


async def _client(t: Tenant) -> tuple[str, dict[str, Any], dict[str, str]]:
    return "/v1/clients", {"external_id": f"mrn-{uuid.uuid4().hex[:8]}"}, t.admin


async def _episode(t: Tenant) -> tuple[str, dict[str, Any], dict[str, str]]:
    body = {"client_id": (await t.client())["id"], "clinician_id": (await t.clinician())["id"]}
    return "/v1/episodes", body, t.admin


async def _void(t: Tenant) -> tuple[str, dict[str, Any], dict[str, str]]:
    created = await submit(t, (await t.episode())["id"], "srs", 1, srs(9, 9, 9, 9))
    return f"/v1/submissions/{created['id']}/void", {"reason": "entered twice"}, t.admin


async def _instrument(t: Tenant) -> tuple[str, dict[str, Any], dict[str, str]]:
    return "/v1/instruments", copy.deepcopy(LOCAL), t.admin


async def _organization(t: Tenant) -> tuple[str, dict[str, Any], dict[str, str]]:
    body = {"name": "Once", "slug": f"o-{uuid.uuid4().hex[:12]}"}
    return "/v1/organizations", body, bearer(SYSTEM_KEY)


async def _concern(t: Tenant) -> tuple[str, dict[str, Any], dict[str, str]]:
    eid = (await t.episode())["id"]
    invitation = expect(
        await t.http.post(
            f"/v1/episodes/{eid}/invitations",
            json={"instruments": ["srs"], "session_number": 1},
            headers=t.admin,
        ),
        201,
    )
    return "/v1/invitation/concerns", {"message": "I felt unheard"}, bearer(invitation["token"])


@pytest.mark.parametrize(
    "case", [_clinician, _client, _episode, _void, _instrument, _organization, _concern]
)
async def test_a_repeated_key_answers_the_stored_response(attune: Attune, case: Case) -> None:
    tenant = await attune.tenant()
    path, body, headers = await case(tenant)
    headers = {**headers, "Idempotency-Key": "once-1"}
    first = await attune.http.post(path, json=body, headers=headers)
    assert first.status_code in (200, 201), first.text
    again = await attune.http.post(path, json=body, headers=headers)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["idempotent-replayed"] == "true"


async def test_two_episodes_posts_with_one_key_create_one_episode(attune: Attune) -> None:
    tenant = await attune.tenant()
    path, body, headers = await _episode(tenant)
    headers = {**headers, "Idempotency-Key": "episode-once"}
    for _ in range(2):
        expect(await attune.http.post(path, json=body, headers=headers), 201)
    listed = expect(
        await attune.http.get(f"/v1/episodes?client_id={body['client_id']}", headers=tenant.admin),
        200,
    )
    assert len(listed["items"]) == 1


async def _count_keys(tenant: Tenant) -> int:
    listed = expect(await tenant.http.get("/v1/api-keys?limit=500", headers=tenant.admin), 200)
    return len(listed["items"])


async def _post_twice(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    headers = {**headers, "Idempotency-Key": "secret-once"}
    return (
        await http.post(path, json=body, headers=headers),
        await http.post(path, json=body, headers=headers),
    )


async def test_a_repeated_key_never_mints_a_second_api_key_nor_keeps_the_secret(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    before = await _count_keys(tenant)
    body = {"name": "ehr", "scopes": ["clients:read"]}
    first, again = await _post_twice(attune.http, "/v1/api-keys", body, tenant.admin)
    created = expect(first, 201)
    problem = expect(again, 409)
    assert created["id"] in problem["detail"]
    assert created["key"] not in again.text
    assert await _count_keys(tenant) == before + 1
    first, again = await _post_twice(
        attune.http, f"/v1/organizations/{tenant.org_id}/api-keys", body, bearer(SYSTEM_KEY)
    )
    expect(first, 201)
    expect(again, 409)
    assert await _count_keys(tenant) == before + 2


async def test_a_repeated_key_never_issues_a_second_invitation_token(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    body = {"instruments": ["srs"], "session_number": 1}
    first, again = await _post_twice(
        attune.http, f"/v1/episodes/{eid}/invitations", body, tenant.admin
    )
    created = expect(first, 201)
    expect(again, 409)
    assert created["token"] not in again.text


async def test_a_repeated_key_never_registers_a_second_webhook(attune: Attune) -> None:
    tenant = await attune.tenant()
    body = {"url": "https://hooks.example.org/attune"}
    first, again = await _post_twice(attune.http, "/v1/webhooks", body, tenant.admin)
    created = expect(first, 201)
    expect(again, 409)
    assert created["secret"] not in again.text
    listed = expect(await attune.http.get("/v1/webhooks", headers=tenant.admin), 200)
    assert len(listed["items"]) == 1


async def test_a_write_only_key_reads_back_only_what_it_wrote_through_the_upsert(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    await tenant.client(external_id="mrn-77", birth_year=1961, population="adult")
    writer = bearer(await tenant.key("clients:write"))
    updated = expect(
        await attune.http.put(
            "/v1/clients/by-external-id/mrn-77", json={"population": "adult"}, headers=writer
        ),
        200,
    )
    assert "birth_year" not in updated
    assert updated["population"] == "adult"
    assert updated["external_id"] == "mrn-77"
    # A key that may read clients gets the whole client, as GET would show it.
    reader = bearer(await tenant.key("clients:write", "clients:read"))
    full = expect(
        await attune.http.put(
            "/v1/clients/by-external-id/mrn-77", json={"population": "adult"}, headers=reader
        ),
        200,
    )
    assert full["birth_year"] == 1961
