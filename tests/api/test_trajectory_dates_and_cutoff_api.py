"""GET /v1/episodes/{id}/trajectory: each point says when its session took place, and the
trajectory names the cut-off it used (issue 15, DESIGN.md §10.4)."""

from tests.support import Attune, expect, ors, srs, submit


async def test_points_carry_the_sessions_date_and_the_trajectory_its_cutoff(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    client = await tenant.client(population="child")
    eid = (await tenant.episode(client_id=client["id"]))["id"]
    await submit(tenant, eid, "ors", 1, ors(5, 5, 5, 5), occurred_at="2026-11-20T16:00:00+01:00")
    # A second instrument names session 2's date; the ORS rating of it does not.
    await submit(tenant, eid, "srs", 2, srs(9, 9, 9, 9), occurred_at="2026-11-27T15:00:00+00:00")
    await submit(tenant, eid, "ors", 2, ors(6, 6, 6, 6))
    await submit(tenant, eid, "ors", 3, ors(7, 7, 7, 7))
    traj = expect(
        await attune.http.get(
            f"/v1/episodes/{eid}/trajectory?instrument=ors", headers=tenant.admin
        ),
        200,
    )
    assert [p["occurred_at"] for p in traj["points"]] == [
        "2026-11-20T15:00:00Z",
        "2026-11-27T15:00:00Z",
        None,
    ]
    # ORS child cut-off 32 (CORS; reference/psychometrics.md): totals 20-28 are all clinical.
    assert traj["cutoff"] == 32.0
    assert [p["clinical"] for p in traj["points"]] == [True, True, True]


async def test_an_organisations_alliance_cutoff_is_the_one_the_trajectory_uses(
    attune: Attune,
) -> None:
    """DESIGN.md §10.2: the trajectory uses the organisation's effective settings, so its line and
    flags agree with the alliance.low alerts."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(8.5, 8.5, 8.5, 8.5))  # 34
    url = f"/v1/episodes/{eid}/trajectory?instrument=srs"
    before = expect(await attune.http.get(url, headers=tenant.admin), 200)
    assert (before["cutoff"], before["points"][0]["clinical"]) == (36.0, True)
    expect(
        await attune.http.put(
            "/v1/alert-rules/alliance.low",
            json={"instruments": {"srs": {"cutoff": 32}}},
            headers=tenant.admin,
        ),
        200,
    )
    after = expect(await attune.http.get(url, headers=tenant.admin), 200)
    assert (after["cutoff"], after["points"][0]["clinical"]) == (32.0, False)
