"""Invitations can be listed and revoked, and die with the key that issued them (issue 14
finding 9, DESIGN.md §10.4); a concern on a closed episode is refused."""

from typing import Any

from tests.support import Attune, Tenant, bearer, expect, srs


async def _invite(tenant: Tenant, episode_id: str, headers: dict[str, str]) -> dict[str, Any]:
    return expect(  # type: ignore[no-any-return]
        await tenant.http.post(
            f"/v1/episodes/{episode_id}/invitations",
            json={"instruments": ["srs"], "session_number": 1},
            headers=headers,
        ),
        201,
    )


async def _token_is_gone(attune: Attune, token: str) -> None:
    for method, path, body in (
        ("GET", "/v1/invitation", None),
        ("POST", "/v1/invitation/submissions", {"instrument": "srs", "answers": srs(9, 9, 9, 9)}),
        ("POST", "/v1/invitation/concerns", {"message": "hello"}),
    ):
        problem = expect(
            await attune.http.request(method, path, json=body, headers=bearer(token)), 410
        )
        assert "revoked" in problem["detail"]


async def test_a_revoked_invitation_answers_410_and_is_listed_as_revoked(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    kept = await _invite(tenant, episode["id"], tenant.admin)
    revoked = await _invite(tenant, episode["id"], tenant.admin)
    expect(await attune.http.delete(f"/v1/invitations/{revoked['id']}", headers=tenant.admin), 204)
    # Revoking twice is harmless.
    expect(await attune.http.delete(f"/v1/invitations/{revoked['id']}", headers=tenant.admin), 204)
    await _token_is_gone(attune, revoked["token"])
    expect(await attune.http.get("/v1/invitation", headers=bearer(kept["token"])), 200)

    listed = expect(
        await attune.http.get(f"/v1/episodes/{episode['id']}/invitations", headers=tenant.admin),
        200,
    )
    by_id = {item["id"]: item for item in listed["items"]}
    assert by_id[revoked["id"]]["status"] == "revoked"
    assert by_id[revoked["id"]]["revoked_at"] is not None
    assert by_id[kept["id"]]["status"] == "active"
    assert "token" not in str(listed)
    assert kept["token"] not in str(listed)
    assert revoked["token"] not in str(listed)

    events = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)
    actions = [e["action"] for e in events["items"]]
    assert "invitation.revoke" in actions
    assert "invitation.list" in actions


async def test_revoking_the_issuing_key_revokes_its_invitations(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    key = await tenant.key("submissions:write")
    issued = await _invite(tenant, episode["id"], bearer(key))
    other = await _invite(tenant, episode["id"], tenant.admin)
    keys = expect(await attune.http.get("/v1/api-keys", headers=tenant.admin), 200)
    key_id = next(k["id"] for k in keys["items"] if key.startswith(k["prefix"]))
    expect(await attune.http.delete(f"/v1/api-keys/{key_id}", headers=tenant.admin), 204)
    await _token_is_gone(attune, issued["token"])
    expect(await attune.http.get("/v1/invitation", headers=bearer(other["token"])), 200)


async def test_invitations_of_episodes_the_key_may_not_see_are_404(attune: Attune) -> None:
    tenant, stranger = await attune.tenant(), await attune.tenant()
    mine, theirs = await tenant.clinician(), await tenant.clinician()
    episode = await tenant.episode(clinician_id=theirs["id"])
    invitation = await _invite(tenant, episode["id"], tenant.admin)
    bound = await tenant.key("submissions:read", "submissions:write", clinician_id=mine["id"])
    for headers in (bearer(bound), stranger.admin):
        expect(
            await attune.http.get(f"/v1/episodes/{episode['id']}/invitations", headers=headers),
            404,
        )
        expect(
            await attune.http.delete(f"/v1/invitations/{invitation['id']}", headers=headers), 404
        )
    expect(await attune.http.get("/v1/invitation", headers=bearer(invitation["token"])), 200)


async def test_a_concern_on_a_closed_episode_is_refused(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    invitation = await _invite(tenant, episode["id"], tenant.admin)
    expect(
        await attune.http.patch(
            f"/v1/episodes/{episode['id']}", json={"status": "closed"}, headers=tenant.admin
        ),
        200,
    )
    problem = expect(
        await attune.http.post(
            "/v1/invitation/concerns",
            json={"message": "hello"},
            headers=bearer(invitation["token"]),
        ),
        409,
    )
    assert "closed" in problem["detail"]
    alerts = expect(await attune.http.get("/v1/alerts", headers=tenant.admin), 200)
    assert alerts["items"] == []
