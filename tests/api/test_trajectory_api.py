"""GET /v1/episodes/{id}/trajectory: points and analytics over the valid submissions."""

from tests.support import Attune, expect, items, ors, submit


async def test_trajectory_reports_change_classification_and_ruptures(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    # ORS-2: adult first 19.0, later 26.0 → +7, reliable (5) and crossed 25 → recovered.
    await submit(tenant, eid, "ors", 1, ors(4.5, 6.0, 5.5, 3.0))
    await submit(tenant, eid, "ors", 2, ors(6.5, 6.5, 6.5, 6.5))
    traj = expect(
        await attune.http.get(
            f"/v1/episodes/{eid}/trajectory?instrument=ors", headers=tenant.admin
        ),
        200,
    )
    assert traj["instrument"] == "ors"
    assert [p["total"] for p in traj["points"]] == [19.0, 26.0]
    assert traj["points"][1]["change_from_first"] == 7.0
    assert traj["points"][1]["reliable_change"] == "improved"
    assert traj["summary"]["classification"] == "recovered"

    # WAI-SR totals 48, 50, 51, 49, 41, 50, 52 → rupture at 5 repaired at 6 (reference example).
    for session, total in enumerate((48, 50, 51, 49, 41, 50, 52), start=1):
        base = [4] * 12
        for i in range(total - 48):
            base[i % 12] += 1
        for i in range(48 - total):
            base[i % 12] -= 1
        await submit(tenant, eid, "wai-sr", session, items("q", *base))
    wai = expect(
        await attune.http.get(
            f"/v1/episodes/{eid}/trajectory?instrument=wai-sr", headers=tenant.admin
        ),
        200,
    )
    totals = [p["total"] for p in wai["points"]]
    assert totals == [48.0, 50.0, 51.0, 49.0, 41.0, 50.0, 52.0]
    total_ruptures = [r for r in wai["summary"]["ruptures"] if r["subscale"] is None]
    assert total_ruptures == [
        {"session_number": 5, "subscale": None, "drop": 8.0, "repaired_at_session": 6}
    ]


async def test_voided_submissions_are_excluded_from_the_trajectory(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "ors", 1, ors(5, 5, 5, 5))
    wrong = await submit(tenant, eid, "ors", 2, ors(1, 1, 1, 1))
    expect(
        await attune.http.post(
            f"/v1/submissions/{wrong['id']}/void", json={"reason": "typo"}, headers=tenant.admin
        ),
        200,
    )
    traj = expect(
        await attune.http.get(
            f"/v1/episodes/{eid}/trajectory?instrument=ors", headers=tenant.admin
        ),
        200,
    )
    assert [p["session_number"] for p in traj["points"]] == [1]


async def test_trajectory_of_an_unknown_instrument_is_a_named_422(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    response = await attune.http.get(
        f"/v1/episodes/{eid}/trajectory?instrument=nope", headers=tenant.admin
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.instrument"
    missing = await attune.http.get(f"/v1/episodes/{eid}/trajectory", headers=tenant.admin)
    assert missing.status_code == 422


async def test_collateral_raters_have_their_own_trajectories(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "ors", 1, ors(5, 5, 5, 5), respondent="collateral", rater="mother")
    await submit(tenant, eid, "ors", 1, ors(8, 8, 8, 8), respondent="collateral", rater="father")
    mother = expect(
        await attune.http.get(
            f"/v1/episodes/{eid}/trajectory?instrument=ors&respondent=collateral&rater=mother",
            headers=tenant.admin,
        ),
        200,
    )
    assert [p["total"] for p in mother["points"]] == [20.0]
