"""Tenants never see, change or infer each other's objects; clinician keys see their caseload."""

from typing import Any

from tests.support import Attune, Tenant, bearer, expect


async def _populated(attune: Attune) -> tuple[Tenant, dict[str, Any]]:
    tenant = await attune.tenant()
    clinician = await tenant.clinician("Dr Other", external_id="staff-1")
    client = await tenant.client(external_id="MRN-SHARED")
    episode = await tenant.episode(client_id=client["id"], clinician_id=clinician["id"])
    return tenant, {"clinician": clinician, "client": client, "episode": episode}


async def test_foreign_objects_answer_404_on_every_read_and_change(attune: Attune) -> None:
    mine = await attune.tenant()
    _, theirs = await _populated(attune)
    h = mine.admin
    for path in (
        f"/v1/clinicians/{theirs['clinician']['id']}",
        f"/v1/clients/{theirs['client']['id']}",
        f"/v1/episodes/{theirs['episode']['id']}",
    ):
        response = await attune.http.get(path, headers=h)
        assert response.status_code == 404, path
    patch = await attune.http.patch(
        f"/v1/episodes/{theirs['episode']['id']}", json={"status": "closed"}, headers=h
    )
    assert patch.status_code == 404


async def test_foreign_objects_leave_no_side_effect(attune: Attune) -> None:
    mine = await attune.tenant()
    theirs_tenant, theirs = await _populated(attune)
    await attune.http.patch(
        f"/v1/episodes/{theirs['episode']['id']}", json={"status": "closed"}, headers=mine.admin
    )
    episode = expect(
        await attune.http.get(
            f"/v1/episodes/{theirs['episode']['id']}", headers=theirs_tenant.admin
        ),
        200,
    )
    assert episode["status"] == "active"


async def test_lists_never_include_foreign_rows(attune: Attune) -> None:
    mine = await attune.tenant()
    await _populated(attune)
    for path in ("/v1/clinicians", "/v1/clients", "/v1/episodes"):
        assert expect(await attune.http.get(path, headers=mine.admin), 200)["items"] == [], path
    keys = expect(await attune.http.get("/v1/api-keys", headers=mine.admin), 200)["items"]
    assert {k["org_id"] for k in keys} == {mine.org_id}
    filtered = expect(
        await attune.http.get("/v1/clients?external_id=MRN-SHARED", headers=mine.admin), 200
    )
    assert filtered["items"] == []


async def test_foreign_ids_cannot_be_referenced_when_creating(attune: Attune) -> None:
    mine = await attune.tenant()
    _, theirs = await _populated(attune)
    my_clinician = await mine.clinician()
    response = await attune.http.post(
        "/v1/episodes",
        json={"client_id": theirs["client"]["id"], "clinician_id": my_clinician["id"]},
        headers=mine.admin,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.client_id"
    bound = await attune.http.post(
        "/v1/api-keys",
        json={"name": "x", "scopes": ["clients:read"], "clinician_id": theirs["clinician"]["id"]},
        headers=mine.admin,
    )
    assert bound.status_code == 422


async def test_external_ids_are_namespaced_per_organization(attune: Attune) -> None:
    mine = await attune.tenant()
    theirs_tenant, theirs = await _populated(attune)
    created = await attune.http.put(
        "/v1/clients/by-external-id/MRN-SHARED", json={"population": "child"}, headers=mine.admin
    )
    assert created.status_code == 201
    assert created.json()["id"] != theirs["client"]["id"]
    unchanged = expect(
        await attune.http.get(f"/v1/clients/{theirs['client']['id']}", headers=theirs_tenant.admin),
        200,
    )
    assert unchanged["population"] == "adult"


async def test_foreign_api_keys_cannot_be_revoked(attune: Attune) -> None:
    mine = await attune.tenant()
    theirs = await attune.tenant()
    their_keys = expect(await attune.http.get("/v1/api-keys", headers=theirs.admin), 200)["items"]
    response = await attune.http.delete(f"/v1/api-keys/{their_keys[0]['id']}", headers=mine.admin)
    assert response.status_code == 404
    expect(await attune.http.get("/v1/clients", headers=theirs.admin), 200)


async def test_audit_trail_holds_only_own_events(attune: Attune) -> None:
    mine = await attune.tenant()
    _, theirs = await _populated(attune)
    events = expect(await attune.http.get("/v1/audit-events", headers=mine.admin), 200)["items"]
    ids = {e["resource_id"] for e in events}
    assert theirs["client"]["id"] not in ids


async def test_clinician_bound_key_sees_only_its_own_episodes_and_clients(attune: Attune) -> None:
    tenant = await attune.tenant()
    me = await tenant.clinician("Dr Me")
    other = await tenant.clinician("Dr Other")
    mine = await tenant.episode(clinician_id=me["id"])
    not_mine = await tenant.episode(clinician_id=other["id"])
    key = bearer(await tenant.key("clients:read", "clients:write", clinician_id=me["id"]))

    episodes = expect(await attune.http.get("/v1/episodes", headers=key), 200)["items"]
    assert [e["id"] for e in episodes] == [mine["id"]]
    clients = expect(await attune.http.get("/v1/clients", headers=key), 200)["items"]
    assert [c["id"] for c in clients] == [mine["client_id"]]
    assert (await attune.http.get(f"/v1/episodes/{not_mine['id']}", headers=key)).status_code == 404
    assert (
        await attune.http.get(f"/v1/clients/{not_mine['client_id']}", headers=key)
    ).status_code == 404
    patch = await attune.http.patch(
        f"/v1/episodes/{not_mine['id']}", json={"status": "closed"}, headers=key
    )
    assert patch.status_code == 404
    expect(await attune.http.get(f"/v1/episodes/{mine['id']}", headers=key), 200)


async def test_clinician_bound_key_cannot_open_episodes_for_colleagues(attune: Attune) -> None:
    tenant = await attune.tenant()
    me = await tenant.clinician("Dr Me")
    other = await tenant.clinician("Dr Other")
    client = await tenant.client()
    key = bearer(await tenant.key("clients:write", clinician_id=me["id"]))
    refused = await attune.http.post(
        "/v1/episodes", json={"client_id": client["id"], "clinician_id": other["id"]}, headers=key
    )
    assert refused.status_code == 403
    expect(
        await attune.http.post(
            "/v1/episodes", json={"client_id": client["id"], "clinician_id": me["id"]}, headers=key
        ),
        201,
    )


# Idempotency-Key replays re-check what the caller may read now (issue 14, DESIGN.md §10.8).


async def _replay_events(tenant: Tenant, action: str) -> list[dict[str, Any]]:
    events = expect(await tenant.http.get("/v1/audit-events?limit=500", headers=tenant.admin), 200)
    return [e for e in events["items"] if e["action"] == action]


async def test_a_replay_after_the_episode_moved_to_a_colleague_is_404_and_audited(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    x, y = await tenant.clinician("Dr X"), await tenant.clinician("Dr Y")
    episode = await tenant.episode(clinician_id=x["id"])
    key = bearer(await tenant.key("submissions:write", "clients:write", clinician_id=x["id"]))
    body = {"episode_id": episode["id"], "instrument": "srs", "session_number": 1,
            "answers": {"relationship": 4.4, "goals_topics": 4.4, "approach_method": 4.4,
                        "overall": 4.4}}  # fmt: skip
    retry = {**key, "Idempotency-Key": "visit-1"}
    first = expect(await tenant.http.post("/v1/submissions", json=body, headers=retry), 201)
    replayed = await tenant.http.post("/v1/submissions", json=body, headers=retry)
    assert (replayed.status_code, replayed.headers["idempotent-replayed"]) == (201, "true")

    expect(
        await tenant.http.patch(
            f"/v1/episodes/{episode['id']}", json={"clinician_id": y["id"]}, headers=tenant.admin
        ),
        200,
    )
    refused = await tenant.http.post("/v1/submissions", json=body, headers=retry)
    assert refused.status_code == 404, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "idempotent-replayed" not in refused.headers
    assert "4.4" not in refused.text
    assert first["id"] not in refused.text
    events = await _replay_events(tenant, "submission.create.replay")
    assert sorted((e["resource_id"], e["outcome"]) for e in events) == [
        (first["id"], "not_found"),
        (first["id"], "success"),
    ]
    assert {e["key_id"] for e in events} != {None}


async def test_replays_of_episodes_and_invitations_follow_the_episode(attune: Attune) -> None:
    tenant = await attune.tenant()
    x, y = await tenant.clinician("Dr X"), await tenant.clinician("Dr Y")
    client = await tenant.client()
    key = bearer(await tenant.key("clients:write", "submissions:write", clinician_id=x["id"]))
    opened = {"client_id": client["id"], "clinician_id": x["id"]}
    retry = {**key, "Idempotency-Key": "open-1"}
    episode = expect(await tenant.http.post("/v1/episodes", json=opened, headers=retry), 201)
    invite = {"instruments": ["srs"], "session_number": 1}
    invited = {**key, "Idempotency-Key": "invite-1"}
    path = f"/v1/episodes/{episode['id']}/invitations"
    invitation = expect(await tenant.http.post(path, json=invite, headers=invited), 201)
    # Still X's: the episode replays; the invitation's token was shown once (409 naming it).
    expect(await tenant.http.post("/v1/episodes", json=opened, headers=retry), 201)
    assert (await tenant.http.post(path, json=invite, headers=invited)).status_code == 409

    expect(
        await tenant.http.patch(
            f"/v1/episodes/{episode['id']}", json={"clinician_id": y["id"]}, headers=tenant.admin
        ),
        200,
    )
    for replay in (
        await tenant.http.post("/v1/episodes", json=opened, headers=retry),
        await tenant.http.post(path, json=invite, headers=invited),
    ):
        assert replay.status_code == 404, replay.text
        assert "idempotent-replayed" not in replay.headers
        assert invitation["id"] not in replay.text
        assert client["id"] not in replay.text


async def test_a_client_replays_to_the_key_that_registered_it_until_a_colleague_treats_it(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    x, y = await tenant.clinician("Dr X"), await tenant.clinician("Dr Y")
    key = bearer(await tenant.key("clients:write", clinician_id=x["id"]))
    retry = {**key, "Idempotency-Key": "register-1"}
    body = {"external_id": "MRN-REPLAY", "birth_year": 1971}
    client = expect(await tenant.http.post("/v1/clients", json=body, headers=retry), 201)
    replayed = await tenant.http.post("/v1/clients", json=body, headers=retry)
    assert (replayed.status_code, replayed.json()) == (201, client)  # nobody treats it yet
    await tenant.episode(client_id=client["id"], clinician_id=y["id"])
    refused = await tenant.http.post("/v1/clients", json=body, headers=retry)
    assert refused.status_code == 404, refused.text
    assert "1971" not in refused.text
