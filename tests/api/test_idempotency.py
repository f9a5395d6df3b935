"""Idempotency-Key (DESIGN.md §4): same key + same body → the stored response; different body →
422; still in flight → 409. Enforced by the database, so it holds across processes."""

import uuid
from collections import Counter
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import select, update

from models.base import utcnow
from models.submissions import IdempotencyRecord
from services.kernel import idempotency
from services.kernel.config import Settings
from services.kernel.database import UnitOfWork
from tests.support import Attune, Tenant, bearer, expect, srs, submit


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


# Issue 14 finding 4 (DESIGN.md §10.8): records belong to the key that made them.


async def _key_id(tenant: Tenant, key: str) -> str:
    keys = expect(await tenant.http.get("/v1/api-keys?limit=500", headers=tenant.admin), 200)
    return str(next(k["id"] for k in keys["items"] if key.startswith(k["prefix"])))


async def test_another_key_with_the_same_idempotency_key_is_processed_as_its_own_request(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    x = await tenant.clinician("Dr X")
    y = await tenant.clinician("Dr Y")
    ex = (await tenant.episode(clinician_id=x["id"]))["id"]
    key_x = bearer(await tenant.key("submissions:write", clinician_id=x["id"]))
    key_y = bearer(await tenant.key("submissions:write", clinician_id=y["id"]))
    body = {"episode_id": ex, "instrument": "srs", "session_number": 1,
            "answers": srs(9, 9, 9, 9)}  # fmt: skip
    shared = {"Idempotency-Key": "visit-1"}
    expect(await attune.http.post("/v1/submissions", json=body, headers={**key_x, **shared}), 201)

    # Y may not see X's episode: the same body is a fresh request of its own → 404, not a replay.
    replay = await attune.http.post("/v1/submissions", json=body, headers={**key_y, **shared})
    assert replay.status_code == 404, replay.text
    assert "idempotent-replayed" not in replay.headers
    assert "answers" not in replay.text
    # And a different body is processed too: no 422 oracle that tells Y it guessed X's answers.
    other = {**body, "answers": srs(1, 1, 1, 1)}
    again = await attune.http.post("/v1/submissions", json=other, headers={**key_y, **shared})
    assert again.status_code == 404, again.text


async def test_a_revoked_key_gets_401_for_a_replay(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    key = await tenant.key("submissions:write")
    headers = {**bearer(key), "Idempotency-Key": "before-revocation"}
    body = {"episode_id": eid, "instrument": "srs", "session_number": 1,
            "answers": srs(9, 9, 9, 9)}  # fmt: skip
    expect(await attune.http.post("/v1/submissions", json=body, headers=headers), 201)
    # This process has now looked the key up: on PostgreSQL it is cached for the hot path.
    expect(await attune.http.post("/v1/submissions", json=body, headers=headers), 201)
    kid = await _key_id(tenant, key)
    expect(await attune.http.delete(f"/v1/api-keys/{kid}", headers=tenant.admin), 204)
    replay = await attune.http.post("/v1/submissions", json=body, headers=headers)
    assert replay.status_code == 401, replay.text
    assert "answers" not in replay.text


async def test_a_replay_is_audited(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    key = {"Idempotency-Key": "audited"}
    first = await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), headers=key)
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), headers=key)
    events = expect(await attune.http.get("/v1/audit-events?limit=500", headers=tenant.admin), 200)
    replays = [e for e in events["items"] if e["action"] == "submission.create.replay"]
    assert [e["resource_id"] for e in replays] == [first["id"]]
    assert replays[0]["key_id"] is not None


async def test_purge_removes_records_past_their_retention_only(
    attune: Attune, app: FastAPI
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), headers={"Idempotency-Key": "old"})
    await submit(tenant, eid, "srs", 2, srs(9, 9, 9, 9), headers={"Idempotency-Key": "new"})
    uow = UnitOfWork(app.state.engine, app.state.driver_pool)
    try:
        conn = await uow.connection()
        records = IdempotencyRecord.__table__  # type: ignore[attr-defined]
        await conn.execute(
            update(records)
            .where(records.c.org_id == uuid.UUID(tenant.org_id))
            .where(records.c.key == "old")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        purged = await idempotency.purge_expired(uow)
        await uow.commit()
        assert purged >= 1
        left = (
            (
                await (await uow.connection()).execute(
                    select(records.c.key).where(records.c.org_id == uuid.UUID(tenant.org_id))
                )
            )
            .scalars()
            .all()
        )
    finally:
        await uow.close()
    assert left == ["new"]
    # The record's body is gone, but the retention minimum of DESIGN.md §4 (24 h) is kept.
    assert timedelta(hours=24) <= idempotency.RETENTION


async def test_the_purge_command_deletes_expired_records(
    attune: Attune, app: FastAPI, settings: Settings
) -> None:
    from api.cli import _purge_idempotency

    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), headers={"Idempotency-Key": "stale"})
    records = IdempotencyRecord.__table__  # type: ignore[attr-defined]
    mine = records.c.org_id == uuid.UUID(tenant.org_id)
    uow = UnitOfWork(app.state.engine, app.state.driver_pool)
    try:
        conn = await uow.connection()
        await conn.execute(
            update(records).where(mine).values(expires_at=utcnow() - timedelta(hours=1))
        )
        await uow.commit()
    finally:
        await uow.close()
    assert await _purge_idempotency(settings) >= 1
    uow = UnitOfWork(app.state.engine, app.state.driver_pool)
    try:
        left = (await (await uow.connection()).execute(select(records.c.key).where(mine))).all()
    finally:
        await uow.close()
    assert left == []
