from tests.support import Attune, expect


async def test_admin_can_create_clinician_client_and_episode(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    got = expect(await tenant.http.get(f"/v1/episodes/{episode['id']}", headers=tenant.admin), 200)
    assert got["status"] == "active"
