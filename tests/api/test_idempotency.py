"""Idempotency-Key (DESIGN.md §4): same key + same body → the stored response; different body →
422; still in flight → 409. Enforced by the database, so it holds across processes."""

from collections import Counter

from services.kernel.config import Settings
from tests.support import Attune, expect, srs, submit


async def test_fifty_concurrent_retries_create_exactly_one_submission(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    body = {
        "episode_id": eid,
        "instrument": "srs",
        "session_number": 1,
        "answers": srs(9.1, 8.4, 9.0, 8.8),
    }
    headers = {**tenant.admin, "Idempotency-Key": "retry-me-1"}

    responses = await attune.post_from_two_apps(settings, "/v1/submissions", body, headers, 50)

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.headers["content-type"] == "application/problem+json"
    listed = expect(
        await attune.http.get(f"/v1/episodes/{eid}/submissions", headers=tenant.admin), 200
    )
    assert [s["id"] for s in listed["items"]] == list(created)

    retry = await attune.http.post("/v1/submissions", json=body, headers=headers)
    assert retry.status_code == 201
    first = next(r for r in responses if r.status_code == 201)
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"


async def test_replay_returns_the_identical_stored_response(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    key = {"Idempotency-Key": "k-1"}
    first = await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), headers=key)
    again = await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), headers=key)
    assert again == first


async def test_same_key_with_a_different_body_is_422(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    key = {"Idempotency-Key": "k-2"}
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), headers=key)
    problem = await submit(tenant, eid, "srs", 2, srs(9, 9, 9, 9), headers=key, status=422)
    assert problem["errors"][0]["field"] == "header.Idempotency-Key"


async def test_failed_request_does_not_burn_its_key(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    key = {"Idempotency-Key": "k-3"}
    expect(
        await attune.http.patch(
            f"/v1/episodes/{eid}", json={"status": "closed"}, headers=tenant.admin
        ),
        200,
    )
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), headers=key, status=409)
    expect(
        await attune.http.patch(
            f"/v1/episodes/{eid}", json={"status": "active"}, headers=tenant.admin
        ),
        200,
    )
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), headers=key, status=201)


async def test_keys_are_scoped_to_the_organization(attune: Attune) -> None:
    mine = await attune.tenant()
    theirs = await attune.tenant()
    key = {"Idempotency-Key": "shared-key"}
    a = await submit(mine, (await mine.episode())["id"], "srs", 1, srs(9, 9, 9, 9), headers=key)
    b = await submit(theirs, (await theirs.episode())["id"], "srs", 1, srs(9, 9, 9, 9), headers=key)
    assert a["id"] != b["id"]


async def test_malformed_idempotency_keys_are_rejected(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    for bad in ("x" * 300, "has space"):
        problem = await submit(
            tenant, eid, "srs", 1, srs(9, 9, 9, 9), headers={"Idempotency-Key": bad}, status=422
        )
        assert problem["errors"][0]["field"] == "header.Idempotency-Key"
