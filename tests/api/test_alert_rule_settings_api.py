"""Alert-rule settings per instrument over HTTP (DESIGN.md §10.2; issue 13 findings 5, 6, 7):
validated against each instrument's scale, organisation instruments included, listed with every
effective value and its source, and read by the trajectory as by the rules."""

from typing import Any

from tests.support import Attune, Tenant, expect, items, srs, submit
from tests.support.alerts import error_fields, put_rule


async def rules(tenant: Tenant) -> dict[str, Any]:
    listed = expect(await tenant.http.get("/v1/alert-rules", headers=tenant.admin), 200)["items"]
    return {r["rule_id"]: r for r in listed}


OWN_ALLIANCE = {
    "code": "bond-local", "version": "1", "name": "Local bond scale", "kind": "alliance",
    "respondents": ["client"],
    "items": [{"id": "a", "label": "a", "min": 0, "max": 10, "step": 1},
              {"id": "b", "label": "b", "min": 0, "max": 10, "step": 1}],
    "direction": "higher_is_better", "citation": "test", "license": "test",
}  # fmt: skip


async def test_a_cutoff_is_checked_against_the_instruments_total_and_named(attune: Attune) -> None:
    """Finding 5: -5, 0, 41 and 1000 were accepted as one cut-off for every alliance instrument."""
    tenant = await attune.tenant()
    for value in (-5, 41, 1000):
        problem = await put_rule(
            tenant, "alliance.low", {"instruments": {"srs": {"cutoff": value}}}, status=422
        )
        assert error_fields(problem) == {"body.instruments.srs.cutoff"}, value
    problem = await put_rule(tenant, "alliance.low", {"params": {"cutoff": 36}}, status=422)
    assert error_fields(problem) == {"body.params.cutoff"}
    unknown = await put_rule(
        tenant, "alliance.low", {"instruments": {"nope": {"cutoff": 3}}}, status=422
    )
    assert error_fields(unknown) == {"body.instruments.nope"}


async def test_the_srs_cutoff_does_not_judge_the_wai_sr(attune: Attune) -> None:
    """Finding 5: with 36, a WAI-SR total of 35 raised alliance.low."""
    tenant = await attune.tenant()
    await put_rule(tenant, "alliance.low", {"instruments": {"srs": {"cutoff": 36}}})
    eid = (await tenant.episode())["id"]
    wai = await submit(tenant, eid, "wai-sr", 1, items("q", 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2))
    assert wai["scores"]["total"] == 35.0
    assert wai["alerts"] == []


async def test_organisation_instruments_are_set_and_checked_on_their_own_scale(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    expect(await attune.http.post("/v1/instruments", json=OWN_ALLIANCE, headers=tenant.admin), 201)
    too_big = await put_rule(
        tenant, "alliance.drop", {"instruments": {"bond-local": {"min_drop": 21}}}, status=422
    )
    assert error_fields(too_big) == {"body.instruments.bond-local.min_drop"}
    listed = (await rules(tenant))["alliance.drop"]
    assert listed["instruments"]["bond-local"] == {"min_drop": None}  # takes no part yet
    await put_rule(tenant, "alliance.drop", {"instruments": {"bond-local": {"min_drop": 3}}})
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "bond-local", 1, {"a": 9, "b": 9})
    dropped = await submit(tenant, eid, "bond-local", 2, {"a": 7, "b": 8})
    assert [(a["type"], a["rule"]["params"]) for a in dropped["alerts"]] == [
        ("alliance.drop", {"min_drop": 3.0})
    ]


async def test_alliance_drop_runs_on_the_srs_alone_by_default(attune: Attune) -> None:
    """Finding 6: a WAI-SR 49 → 48 raised a warning with the SRS default of 1 point."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "wai-sr", 1, items("q", 4, 4, 5, 3, 5, 4, 5, 4, 4, 4, 3, 4))  # 49
    lower = await submit(tenant, eid, "wai-sr", 2, items("q", 4, 4, 5, 3, 5, 4, 5, 4, 4, 4, 3, 3))
    assert lower["scores"]["total"] == 48.0
    assert lower["alerts"] == []
    drop = (await rules(tenant))["alliance.drop"]
    assert drop["instruments"] == {"srs": {"min_drop": 1.0}, "wai-sr": {"min_drop": None}}


async def test_rule_listing_shows_every_effective_value_and_its_source(attune: Attune) -> None:
    tenant = await attune.tenant()
    await put_rule(
        tenant,
        "alliance.rupture",
        {"params": {"k": 1.5},
         "instruments": {"wai-sr": {"min_drop": 5, "subscales": {"bond": {"min_drop": 3}}}}},
    )  # fmt: skip
    rupture = (await rules(tenant))["alliance.rupture"]
    assert rupture["params"] == {"k": 1.5, "repair_window": 3, "repair_days": 21}
    assert rupture["instruments"] == {
        "srs": {"min_drop": 2.0, "subscales": {}},
        "wai-sr": {"min_drop": 5.0, "subscales": {"task": {"min_drop": 2.0},
                   "bond": {"min_drop": 3.0}, "goal": {"min_drop": 2.0}}},
    }  # fmt: skip
    assert rupture["sources"] == {
        "enabled": "default",
        "params.k": "organization",
        "params.repair_window": "default",
        "params.repair_days": "default",
        "instruments.srs.min_drop": "default",
        "instruments.wai-sr.min_drop": "organization",
        "instruments.wai-sr.subscales.task.min_drop": "default",
        "instruments.wai-sr.subscales.bond.min_drop": "organization",
        "instruments.wai-sr.subscales.goal.min_drop": "default",
    }
    risk = (await rules(tenant))["risk.item"]
    assert risk["instruments"] == {"phq-9": {"thresholds": {"q9": 1.0}}}
    assert risk["sources"]["instruments.phq-9.thresholds.q9"] == "default"
    low = (await rules(tenant))["alliance.low"]
    assert low["instruments"] == {"srs": {"cutoff": 36}, "wai-sr": {"cutoff": None}}


async def test_the_trajectory_lists_a_rupture_only_where_the_rule_raises_one(
    attune: Attune,
) -> None:
    """Finding 7: with min_drop 10 no alert was raised for a 38 → 30 SRS fall, yet the trajectory
    listed a rupture there."""
    tenant = await attune.tenant()
    await put_rule(tenant, "alliance.rupture", {"instruments": {"srs": {"min_drop": 10}}})
    eid = (await tenant.episode())["id"]
    for n, values in enumerate(
        [(9.5, 9.5, 9.5, 9.5), (9.5, 9.5, 9.5, 9.5), (9.8, 9.7, 9.8, 9.7),
         (9.5, 9.5, 9.5, 9.5), (7.5, 7.5, 7.5, 7.5)],
        start=1,
    ):  # fmt: skip
        last = await submit(tenant, eid, "srs", n, srs(*values))
    assert last["scores"]["total"] == 30.0
    assert "alliance.rupture" not in {a["type"] for a in last["alerts"]}

    async def ruptures() -> list[Any]:
        trajectory = await attune.http.get(
            f"/v1/episodes/{eid}/trajectory", params={"instrument": "srs"}, headers=tenant.admin
        )
        return expect(trajectory, 200)["summary"]["ruptures"]  # type: ignore[no-any-return]

    assert await ruptures() == []
    changed = await put_rule(tenant, "alliance.rupture", {})  # back to the defaults: 2 points
    assert changed["recomputed"]["created"] >= 1
    assert [r["session_number"] for r in await ruptures()] == [5]
