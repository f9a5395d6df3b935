"""Charts obey scopes, caseload and audit exactly like the trajectory they draw (DESIGN.md §4,
§10.4, §10.8): 401 without a key, 403 without `submissions:read`, 404 for another organisation's
episode or one outside a clinician-bound key's caseload, one `chart.read` audit event per read
(refusals too), and alert markers only for a key that may read alerts."""

from typing import Any

from tests.support import Attune, Tenant, bearer, expect, srs, submit

FORMATS = ("svg", "png", "vega")


def chart(eid: str, fmt: str = "vega") -> str:
    return f"/v1/episodes/{eid}/trajectory/chart?instrument=srs&format={fmt}"


def trajectory(eid: str) -> str:
    return f"/v1/episodes/{eid}/trajectory?instrument=srs"


async def low_alliance_episode(tenant: Tenant, clinician_id: str | None = None) -> str:
    eid: str = (await tenant.episode(clinician_id=clinician_id))["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    await submit(tenant, eid, "srs", 2, srs(7, 7, 7, 7))  # 28 < 36: alliance.low
    return eid


async def events(tenant: Tenant) -> list[dict[str, Any]]:
    page = expect(await tenant.http.get("/v1/audit-events?limit=500", headers=tenant.admin), 200)
    return [e for e in page["items"] if e["action"] == "chart.read"]


async def test_a_chart_answers_exactly_when_the_trajectory_does(attune: Attune) -> None:
    a, b = await attune.tenant("A"), await attune.tenant("B")
    x, y = (await a.clinician("X"))["id"], (await a.clinician("Y"))["id"]
    mine, colleagues = await low_alliance_episode(a, x), await low_alliance_episode(a, y)
    foreign = await low_alliance_episode(b)
    bound = bearer(await a.key("submissions:read", clinician_id=x))
    writer_only = bearer(await a.key("submissions:write"))
    cases = [
        (a.admin, mine, 200),
        (a.admin, foreign, 404),  # another organisation's episode
        (bound, mine, 200),
        (bound, colleagues, 404),  # outside the bound key's caseload
        (writer_only, mine, 403),
        ({}, mine, 401),
        (bearer("att_not-a-key-0123456789abcdefghij"), mine, 401),
    ]
    for headers, eid, status in cases:
        assert (await attune.http.get(trajectory(eid), headers=headers)).status_code == status
        for fmt in FORMATS:
            response = await attune.http.get(chart(eid, fmt), headers=headers)
            assert response.status_code == status, (fmt, eid, status, response.text)
            if status != 200:
                assert response.headers["content-type"] == "application/problem+json"


async def test_each_chart_read_and_refusal_is_audited_once(attune: Attune) -> None:
    tenant = await attune.tenant()
    x, y = (await tenant.clinician("X"))["id"], (await tenant.clinician("Y"))["id"]
    mine, colleagues = await low_alliance_episode(tenant, x), await low_alliance_episode(tenant, y)
    bound = bearer(await tenant.key("submissions:read", clinician_id=x))
    assert (await attune.http.get(chart(mine, "svg"), headers=bound)).status_code == 200
    assert (await attune.http.get(chart(colleagues, "png"), headers=bound)).status_code == 404
    found = await events(tenant)
    assert sorted((e["resource_id"], e["outcome"]) for e in found) == sorted(
        [(mine, "success"), (colleagues, "not_found")]
    )
    assert all(e["resource_type"] == "episode" for e in found)


async def test_alert_markers_need_the_alerts_read_scope(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = await low_alliance_episode(tenant)
    with_alerts = bearer(await tenant.key("submissions:read", "alerts:read"))
    without = bearer(await tenant.key("submissions:read"))
    seen = expect(await attune.http.get(chart(eid), headers=with_alerts), 200)
    hidden = expect(await attune.http.get(chart(eid), headers=without), 200)
    assert "alerts" in {layer["name"] for layer in seen["layer"]}
    assert "alerts" not in {layer["name"] for layer in hidden["layer"]}
    assert "Alerts" in seen["description"]
    assert "Alerts" not in hidden["description"]
    # The scores are the same for both.
    scores = [
        next(layer["data"]["values"] for layer in spec["layer"] if layer["name"] == "scores")
        for spec in (seen, hidden)
    ]
    assert scores[0] == scores[1]


async def test_retracted_alerts_are_not_marked(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    low = await submit(tenant, eid, "srs", 2, srs(7, 7, 7, 7))
    before = expect(await attune.http.get(chart(eid), headers=tenant.admin), 200)
    assert "alerts" in {layer["name"] for layer in before["layer"]}
    expect(
        await attune.http.post(
            f"/v1/submissions/{low['id']}/void", json={"reason": "typo"}, headers=tenant.admin
        ),
        200,
    )
    after = expect(await attune.http.get(chart(eid), headers=tenant.admin), 200)
    assert "alerts" not in {layer["name"] for layer in after["layer"]}
