"""Alerts through the API (issue #4, DESIGN.md §6): raised in the submission's response, recomputed
after voids, late entries and setting changes, handled by people, and seen only by whom may."""

import asyncio
from collections import Counter
from typing import Any

from fastapi import FastAPI

from api.cli import _recompute_alerts
from services.kernel.config import Settings
from tests.support import Attune, bearer, expect, items, ors, phq9, srs, submit
from tests.support.alerts import (
    acknowledge,
    alert_ids,
    alert_list,
    as_stored,
    changed,
    error_fields,
    get_alert,
    listed,
    put_rule,
    raise_concern,
    resolve,
    void,
)

# ----- helpers ------------------------------------------------------------------------------------


# ----- the full episode ---------------------------------------------------------------------------


async def test_full_episode_raises_exactly_the_expected_alerts_in_order(attune: Attune) -> None:
    """The scenario of test_submissions.test_full_episode_scores_exactly_as_computed_by_hand, with
    the alerts worked out by hand from DESIGN.md §6 (SRS cut-off 36, drop ≥ 1, rupture ≥
    max(k·SD of the last 5 earlier, 2); rupture-check; PHQ-9 item 9 ≥ 1, reliable change 6)."""
    tenant = await attune.tenant()
    episode = await tenant.episode()
    eid = episode["id"]

    # ORS 19 at session 1: clinical, but one score says nothing about change.
    assert (await submit(tenant, eid, "ors", 1, ors(4.5, 6.0, 5.5, 3.0)))["alerts"] == []

    srs_answers = [
        srs(9.2, 8.7, 9.0, 9.5),  # 36.4
        srs(9.0, 9.0, 9.0, 8.9),  # 35.9
        srs(9, 9, 9, 9),  # 36.0
        srs(9.5, 9.5, 9.5, 9.5),  # 38.0
        srs(9.3, 9.2, 9.3, 9.2),  # 37.0
        srs(0.1, 0.2, 0.3, 0.4),  # 1.0
    ]
    srs_subs = [await submit(tenant, eid, "srs", n, a) for n, a in enumerate(srs_answers, 1)]
    got = [sub["alerts"] for sub in srs_subs]
    assert [changed(alerts) for alerts in got] == [
        [],
        # 35.9 < 36.
        [("alliance.low", "warning", "open", "created", None, 2)],
        # 36.0 is not below 36: cleared; the alert still names the session that raised it.
        [("alliance.low", "warning", "resolved", "resolved", None, 2)],
        [],
        # 38 → 37: a drop of 1 (≥ 1) although 37 is above the cut-off. Rupture: 1 < max(SD, 2).
        [("alliance.drop", "warning", "open", "created", None, 5)],
        # 37 → 1: the open drop alert is updated, a new low alert opens (the first was resolved),
        # and a rupture: 36 ≥ max(1 * SD(36.4, 35.9, 36, 38, 37) = 0.8649, 2).
        [
            ("alliance.drop", "warning", "open", "updated", None, 6),
            ("alliance.low", "warning", "open", "created", None, 6),
            ("alliance.rupture", "warning", "open", "created", None, 6),
        ],
    ]  # fmt: skip
    low_1 = got[1][0]
    assert got[2][0]["id"] == low_1["id"]
    assert got[2][0]["resolution"] == "condition_cleared"
    assert low_1["client_id"] == episode["client_id"]
    assert low_1["clinician_id"] == episode["clinician_id"]
    assert low_1["submission_id"] == got[2][0]["submission_id"] == srs_subs[1]["id"]
    drop = got[4][0]
    assert got[5][0]["id"] == drop["id"]
    assert (drop["submission_id"], got[5][0]["submission_id"]) == (
        srs_subs[4]["id"],
        srs_subs[5]["id"],
    )
    assert got[5][0]["evidence"] == {
        "previous": 37.0, "current": 1.0, "drop": 36.0, "threshold": 1.0, "sessions": [5, 6],
    }  # fmt: skip
    rupture = got[5][2]
    assert (rupture["evidence"]["drop"], rupture["evidence"]["earlier_sd"]) == (36.0, 0.8649)
    assert rupture["evidence"]["threshold"] == 2.0
    assert rupture["rule"] == {
        "id": "alliance.rupture", "version": "1",
        "params": {"k": 1.0, "min_drop": 2.0, "repair_window": 3},
    }  # fmt: skip

    checks = [
        {"tension": 0},
        {"tension": 1, "intensity": 4, "resolution": 2},  # strong and unresolved: high
        *([{"tension": 0}] * 4),
    ]
    got_checks = [
        (await submit(tenant, eid, "rupture-check", n, a))["alerts"]
        for n, a in enumerate(checks, 1)
    ]
    assert [changed(alerts) for alerts in got_checks] == [
        [], [("rupture.reported", "high", "open", "created", None, 2)], [], [], [], [],
    ]  # fmt: skip
    reported = got_checks[1][0]

    phq = [
        (2, items("q", 2, 2, 1, 1, 0, 1, 1, 0, 1)),  # 9, item 9 = 1
        (4, items("q", 3, 3, 2, 2, 2, 1, 1, 1, 0)),  # 15: 6 worse than 9
        (6, items("q", 1, 1, 1, 1, 0, 0, 0, 0, 0)),  # 4: no longer 6 worse
    ]
    got_phq = [(await submit(tenant, eid, "phq-9", n, a))["alerts"] for n, a in phq]
    assert [changed(alerts) for alerts in got_phq] == [
        # Critical whatever the (mild) total; 9 is below the cut-off of 10, so not on track
        # never applies.
        [("risk.item", "critical", "open", "created", None, 2)],
        [("outcome.deterioration", "high", "open", "created", None, 4)],
        [("outcome.deterioration", "high", "resolved", "resolved", None, 4)],
    ]
    risk, deterioration = got_phq[0][0], got_phq[1][0]
    assert got_phq[2][0]["id"] == deterioration["id"]
    assert risk["evidence"]["items"] == [
        {"item": "q9", "label": "Thoughts of self-harm (item 9)", "answer": 1.0, "threshold": 1.0}
    ]
    assert deterioration["evidence"]["worse_by"] == 6.0

    everything = await alert_list(tenant, episode_id=eid)
    assert listed(everything) == [
        ("outcome.deterioration", "high", "resolved", "condition_cleared", "phq-9", None, 4),
        ("risk.item", "critical", "open", None, "phq-9", None, 2),
        ("rupture.reported", "high", "open", None, "rupture-check", None, 2),
        ("alliance.rupture", "warning", "open", None, "srs", None, 6),
        ("alliance.low", "warning", "open", None, "srs", None, 6),
        ("alliance.drop", "warning", "open", None, "srs", None, 6),
        ("alliance.low", "warning", "resolved", "condition_cleared", "srs", None, 2),
    ]
    assert [a["id"] for a in everything] == [
        deterioration["id"], risk["id"], reported["id"], rupture["id"], got[5][1]["id"],
        drop["id"], low_1["id"],
    ]  # fmt: skip


# ----- recompute after a void ---------------------------------------------------------------------


async def test_voiding_the_triggering_submission_retracts_its_alert_and_keeps_the_note(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9.2, 8.7, 9.0, 9.5))  # 36.4
    low = await submit(tenant, eid, "srs", 2, srs(9.0, 9.0, 9.0, 8.9))  # 35.9
    alert = low["alerts"][0]
    acknowledged = await acknowledge(tenant, alert["id"], "asked about it next session")

    voided = await void(tenant, low["id"], "rated the wrong session")
    assert changed(voided["alerts"]) == [
        ("alliance.low", "warning", "resolved", "resolved", None, 2)
    ]
    assert voided["alerts"][0]["id"] == alert["id"]
    assert voided["alerts"][0]["resolution"] == "retracted"

    after = await get_alert(tenant, alert["id"])
    assert (after["status"], after["resolution"]) == ("resolved", "retracted")
    assert after["resolved_at"] is not None
    assert after["note"] == "asked about it next session"
    assert after["acknowledged_at"] == acknowledged["acknowledged_at"]
    # Voiding again changes nothing more.
    assert (await void(tenant, low["id"]))["alerts"] == []


async def test_voiding_the_submission_that_cleared_an_alert_reopens_it(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9.2, 8.7, 9.0, 9.5))  # 36.4
    alert = (await submit(tenant, eid, "srs", 2, srs(9.0, 9.0, 9.0, 8.9)))["alerts"][0]  # 35.9
    acknowledged = await acknowledge(tenant, alert["id"], "watching it")
    clearing = await submit(tenant, eid, "srs", 3, srs(9, 9, 9, 9))  # 36.0
    assert clearing["alerts"][0]["resolution"] == "condition_cleared"

    voided = await void(tenant, clearing["id"])
    # The condition holds after all: back to where the person had left it.
    assert changed(voided["alerts"]) == [
        ("alliance.low", "warning", "acknowledged", "updated", None, 2)
    ]
    after = await get_alert(tenant, alert["id"])
    assert (after["status"], after["resolution"], after["resolved_at"]) == (
        "acknowledged",
        None,
        None,
    )
    assert after["acknowledged_at"] == acknowledged["acknowledged_at"]
    assert after["note"] == "watching it"
    assert [a["id"] for a in await alert_list(tenant, episode_id=eid)] == [alert["id"]]


async def test_voiding_the_clearing_submission_folds_a_later_alert_into_the_reopened_one(
    attune: Attune,
) -> None:
    """35, 37, 35: two low alerts (and a drop). Without the 37 the history is 35, 35: one low alert
    all along. The second is retracted before the first reopens (one unresolved alert per key)."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    first = (await submit(tenant, eid, "srs", 1, srs(8.8, 8.7, 8.8, 8.7)))["alerts"][0]
    clearing = await submit(tenant, eid, "srs", 2, srs(9.3, 9.2, 9.3, 9.2))
    assert changed(clearing["alerts"]) == [
        ("alliance.low", "warning", "resolved", "resolved", None, 1)
    ]
    again = await submit(tenant, eid, "srs", 3, srs(8.8, 8.7, 8.8, 8.7))
    assert changed(again["alerts"]) == [
        ("alliance.low", "warning", "open", "created", None, 3),
        ("alliance.drop", "warning", "open", "created", None, 3),
    ]
    second, drop = again["alerts"]

    voided = await void(tenant, clearing["id"])
    assert changed(voided["alerts"]) == [
        ("alliance.low", "warning", "resolved", "resolved", None, 3),
        ("alliance.drop", "warning", "resolved", "resolved", None, 3),
        ("alliance.low", "warning", "open", "updated", None, 3),
    ]
    assert [a["id"] for a in voided["alerts"]] == [second["id"], drop["id"], first["id"]]
    assert [a["resolution"] for a in voided["alerts"]] == ["retracted", "retracted", None]
    assert listed(await alert_list(tenant, episode_id=eid)) == [
        ("alliance.drop", "warning", "resolved", "retracted", "srs", None, 3),
        ("alliance.low", "warning", "resolved", "retracted", "srs", None, 3),
        ("alliance.low", "warning", "open", None, "srs", None, 3),
    ]


# ----- risk ---------------------------------------------------------------------------------------


async def test_a_risk_answer_always_raises_a_critical_alert_in_the_same_response(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    refused = await put_rule(tenant, "risk.item", {"enabled": False}, status=422)
    assert error_fields(refused) == {"body.enabled"}
    also_refused = await put_rule(
        tenant, "risk.item", {"enabled": False, "instruments": {}}, status=422
    )
    assert error_fields(also_refused) == {"body.enabled"}

    eid = (await tenant.episode())["id"]
    low_total = await submit(tenant, eid, "phq-9", 1, phq9(1))
    assert low_total["scores"]["total"] == 1.0
    assert changed(low_total["alerts"]) == [("risk.item", "critical", "open", "created", None, 1)]
    assert low_total["alerts"][0]["submission_id"] == low_total["id"]
    rules = expect(await attune.http.get("/v1/alert-rules", headers=tenant.admin), 200)["items"]
    risk_rule = next(r for r in rules if r["rule_id"] == "risk.item")
    assert (risk_rule["enabled"], risk_rule["sources"]["enabled"]) == (True, "default")


async def test_a_risk_threshold_may_not_be_raised_so_it_cannot_silence_a_risk_answer(
    attune: Attune,
) -> None:
    """Issue 13 finding 1: q9 raised to 3 was accepted and a q9 of 2 then raised nothing; 0 raised
    an alert on every PHQ-9 (DESIGN.md §10.3.1: PHQ-9 item 9 only 1, Simon et al. 2013)."""
    tenant = await attune.tenant()
    for value in (2, 3, 4, 0):
        refused = await put_rule(
            tenant, "risk.item", {"instruments": {"phq-9": {"thresholds": {"q9": value}}}},
            status=422,
        )  # fmt: skip
        assert error_fields(refused) == {"body.instruments.phq-9.thresholds.q9"}, value
    not_a_risk_item = await put_rule(
        tenant, "risk.item", {"instruments": {"phq-9": {"thresholds": {"q1": 1}}}}, status=422
    )
    assert error_fields(not_a_risk_item) == {"body.instruments.phq-9.thresholds.q1"}
    same = await put_rule(
        tenant, "risk.item", {"instruments": {"phq-9": {"thresholds": {"q9": 1}}}}
    )
    assert same["instruments"]["phq-9"] == {"thresholds": {"q9": 1.0}}

    eid = (await tenant.episode())["id"]
    assert (await submit(tenant, eid, "phq-9", 1, phq9(0, 3, 3)))["alerts"] == []
    fires = await submit(tenant, eid, "phq-9", 2, phq9(2))
    assert changed(fires["alerts"]) == [("risk.item", "critical", "open", "created", None, 2)]
    assert fires["alerts"][0]["evidence"]["items"][0]["threshold"] == 1.0
    assert fires["alerts"][0]["rule"]["params"] == {"thresholds": {"q9": 1.0}}


# ----- concerns -----------------------------------------------------------------------------------


async def test_a_concern_is_seen_only_by_keys_that_may_read_concerns_and_never_by_its_clinician(
    app: FastAPI, attune: Attune
) -> None:
    tenant = await attune.tenant()
    clinician = await tenant.clinician("Dr Named")
    eid = (await tenant.episode(clinician_id=clinician["id"]))["id"]
    low = (await submit(tenant, eid, "srs", 1, srs(8, 8, 8, 8)))["alerts"][0]  # 32: seen by all
    concern = await raise_concern(app, tenant, eid)
    assert (concern["type"], concern["severity"], concern["status"]) == (
        "concern.reported",
        "high",
        "open",
    )
    cid = str(concern["id"])

    # Even with every alert scope and concerns:read, a key bound to the clinician sees nothing.
    clinician_key = bearer(
        await tenant.key(
            "alerts:read", "alerts:write", "concerns:read", clinician_id=clinician["id"]
        )
    )
    reader = bearer(await tenant.key("alerts:read"))
    for headers in (clinician_key, reader):
        response = await attune.http.get(f"/v1/alerts/{cid}", headers=headers)
        assert response.status_code == 404
        assert await alert_ids(tenant, headers) == [low["id"]]
        assert await alert_ids(tenant, headers, episode_id=eid) == [low["id"]]
        assert await alert_ids(tenant, headers, type="concern.reported") == []
        assert await alert_ids(tenant, headers, severity="high") == []
    for action, body in (("acknowledge", {}), ("resolve", {"resolution": "dismissed"})):
        response = await attune.http.post(
            f"/v1/alerts/{cid}/{action}", json=body, headers=clinician_key
        )
        assert response.status_code == 404, action

    supervisor = bearer(await tenant.key("alerts:read", "concerns:read"))
    for headers in (supervisor, tenant.admin):
        got = expect(await attune.http.get(f"/v1/alerts/{cid}", headers=headers), 200)
        assert (got["type"], got["status"], got["clinician_id"]) == (
            "concern.reported",
            "open",
            clinician["id"],
        )
        assert await alert_ids(tenant, headers) == [cid, low["id"]]
        assert await alert_ids(tenant, headers, type="concern.reported") == [cid]
        assert await alert_ids(tenant, headers, clinician_id=clinician["id"]) == [cid, low["id"]]


# ----- lifecycle ----------------------------------------------------------------------------------


async def test_acknowledging_and_resolving_are_idempotent_and_audited(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    alert = (await submit(tenant, eid, "srs", 1, srs(8, 8, 8, 8)))["alerts"][0]

    first = await acknowledge(tenant, alert["id"], "seen")
    assert (first["status"], first["note"]) == ("acknowledged", "seen")
    assert first["acknowledged_at"] is not None
    again = await acknowledge(tenant, alert["id"])
    assert (again["status"], again["note"]) == ("acknowledged", "seen")
    assert again["acknowledged_at"] == first["acknowledged_at"]
    assert again["updated_at"] == first["updated_at"]

    resolved = await resolve(tenant, alert["id"], "discussed", "talked it through")
    assert (resolved["status"], resolved["resolution"], resolved["note"]) == (
        "resolved",
        "discussed",
        "talked it through",
    )
    assert resolved["resolved_at"] is not None
    twice = await resolve(tenant, alert["id"], "dismissed")
    assert (twice["status"], twice["resolution"]) == ("resolved", "discussed")
    assert twice["resolved_at"] == resolved["resolved_at"]
    late_ack = await acknowledge(tenant, alert["id"])
    assert (late_ack["status"], late_ack["resolution"]) == ("resolved", "discussed")
    assert late_ack["acknowledged_at"] == first["acknowledged_at"]
    assert await get_alert(tenant, alert["id"]) == late_ack

    # Only a person's resolutions: the engine's own are not for people to pick.
    for engine_only in ("retracted", "condition_cleared"):
        refused = await resolve(tenant, alert["id"], engine_only, status=422)
        assert error_fields(refused) == {"body.resolution"}

    audit = await attune.http.get("/v1/audit-events?limit=500", headers=tenant.admin)
    events = expect(audit, 200)["items"]
    actions = Counter(
        e["action"] for e in events if e["resource_id"] == alert["id"] and e["outcome"] == "success"
    )
    assert (actions["alert.acknowledge"], actions["alert.resolve"]) == (3, 2)


async def test_another_tenant_can_neither_see_nor_change_an_alert(attune: Attune) -> None:
    theirs = await attune.tenant()
    their_episode = await theirs.episode()
    their_submission = await submit(theirs, their_episode["id"], "srs", 1, srs(8, 8, 8, 8))
    their_alert = their_submission["alerts"][0]
    mine = await attune.tenant()
    my_episode = await mine.episode()
    my_alert = (await submit(mine, my_episode["id"], "srs", 1, srs(8, 8, 8, 8)))["alerts"][0]

    h = mine.admin
    assert (await attune.http.get(f"/v1/alerts/{their_alert['id']}", headers=h)).status_code == 404
    for action, body in (("acknowledge", {"note": "x"}), ("resolve", {"resolution": "dismissed"})):
        response = await attune.http.post(
            f"/v1/alerts/{their_alert['id']}/{action}", json=body, headers=h
        )
        assert response.status_code == 404, action
    assert as_stored(await get_alert(theirs, their_alert["id"])) == as_stored(their_alert)

    assert await alert_ids(mine) == [my_alert["id"]]
    for name in ("client_id", "clinician_id"):
        assert await alert_ids(mine, **{name: their_episode[name]}) == [], name
    assert await alert_ids(mine, episode_id=their_episode["id"]) == []
    assert await alert_ids(theirs, episode_id=their_episode["id"]) == [their_alert["id"]]


async def test_a_trigger_after_a_person_resolved_opens_a_new_alert_and_recomputes_keep_both(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9.5, 9.5, 9.5, 9.5))  # 38
    first = (await submit(tenant, eid, "srs", 2, srs(9.3, 9.2, 9.3, 9.2)))["alerts"][0]  # 37
    assert (first["type"], first["session_number"]) == ("alliance.drop", 2)
    await resolve(tenant, first["id"], "discussed", "spoke about the homework")

    repeat = await submit(tenant, eid, "srs", 3, srs(9, 9, 9, 9))  # 36: another drop of 1
    assert changed(repeat["alerts"]) == [("alliance.drop", "warning", "open", "created", None, 3)]
    second = repeat["alerts"][0]
    assert second["id"] != first["id"]
    kept = await get_alert(tenant, first["id"])
    assert (kept["status"], kept["resolution"], kept["note"]) == (
        "resolved",
        "discussed",
        "spoke about the homework",
    )
    assert kept["session_number"] == 2

    # A recompute of the series (session 4 voided) replays the history, in which session 3 would
    # have updated the first alert: the person's decision stands, and the new alert with it.
    later = await submit(tenant, eid, "srs", 4, srs(9.8, 9.7, 9.8, 9.7))  # 39
    assert later["alerts"] == []
    assert (await void(tenant, later["id"]))["alerts"] == []
    assert await get_alert(tenant, first["id"]) == kept
    still = await get_alert(tenant, second["id"])
    assert (still["status"], still["resolution"], still["session_number"]) == ("open", None, 3)
    assert await alert_ids(tenant, episode_id=eid) == [second["id"], first["id"]]


# ----- settings -----------------------------------------------------------------------------------

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "alliance.low": {},
    "alliance.drop": {},
    "alliance.rupture": {"k": 1.0, "repair_window": 3, "repair_days": 21},
    "rupture.reported": {"resolution_max": 3, "intensity_min": 4},
    "risk.item": {"escalate_after_hours": 24},
    "outcome.deterioration": {},
    "outcome.not_on_track": {"min_session": 4, "high_from_session": 8},
    "concern.reported": {"escalate_after_hours": 72},
    "measurement.overdue": {"overdue_days": 21},
}


async def test_alert_rules_list_every_rule_with_its_defaults_and_sources(attune: Attune) -> None:
    tenant = await attune.tenant()
    reader = bearer(await tenant.key("alerts:read"))
    rules = expect(await attune.http.get("/v1/alert-rules", headers=reader), 200)["items"]
    assert {r["rule_id"]: r["params"] for r in rules} == DEFAULT_PARAMS
    assert [r["rule_id"] for r in rules] == list(DEFAULT_PARAMS)
    for rule in rules:
        assert rule["enabled"] is True
        assert rule["sources"] == {
            "enabled": "default",
            **{f"params.{name}": "default" for name in DEFAULT_PARAMS[rule["rule_id"]]},
            **{k: "default" for k in rule["sources"] if k.startswith("instruments.")},
        }
    cannot_disable = {r["rule_id"] for r in rules if not r["can_disable"]}
    assert cannot_disable == {"risk.item", "concern.reported"}
    severities = {r["rule_id"]: r["severity"] for r in rules}
    assert (severities["risk.item"], severities["outcome.deterioration"]) == ("critical", "high")


async def test_bad_alert_rule_settings_are_refused_naming_the_field(attune: Attune) -> None:
    tenant = await attune.tenant()
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("alliance.low", {"params": {"cut": 30}}, "body.params.cut"),
        ("alliance.drop", {"params": {"min_drop": 0}}, "body.params.min_drop"),
        ("alliance.rupture", {"params": {"repair_window": 0}}, "body.params.repair_window"),
        ("alliance.rupture", {"params": {"k": 11}}, "body.params.k"),
        ("rupture.reported", {"params": {"intensity_min": 6}}, "body.params.intensity_min"),
        (
            "outcome.not_on_track",
            {"params": {"min_session": 6, "high_from_session": 5}},
            "body.params.high_from_session",
        ),
        ("concern.reported", {"enabled": False}, "body.enabled"),
    ]
    for rule_id, body, field in bad:
        problem = await put_rule(tenant, rule_id, body, status=422)
        assert error_fields(problem) == {field}, (rule_id, body)
    assert (await put_rule(tenant, "alliance.unknown", {}, status=404))["status"] == 404
    rules = expect(await attune.http.get("/v1/alert-rules", headers=tenant.admin), 200)["items"]
    assert {r["rule_id"]: r["params"] for r in rules} == DEFAULT_PARAMS

    for scopes in (("alerts:read",), ("alerts:read", "alerts:write")):
        response = await attune.http.put(
            "/v1/alert-rules/alliance.low",
            json={"params": {"cutoff": 30}},
            headers=bearer(await tenant.key(*scopes)),
        )
        assert response.status_code == 403, scopes


async def test_changing_a_rule_setting_recomputes_the_organisations_alerts(attune: Attune) -> None:
    tenant = await attune.tenant()
    mild_episode = (await tenant.episode())["id"]
    mild = (await submit(tenant, mild_episode, "srs", 1, srs(8, 8, 8, 8)))["alerts"][0]  # 32
    severe_episode = (await tenant.episode())["id"]
    severe = (await submit(tenant, severe_episode, "srs", 1, srs(6, 6, 6, 6)))["alerts"][0]  # 24
    other = await attune.tenant()
    other_episode = await other.episode()
    theirs = (await submit(other, other_episode["id"], "srs", 1, srs(8, 8, 8, 8)))["alerts"][0]

    changed_rule = await put_rule(tenant, "alliance.low", {"instruments": {"srs": {"cutoff": 30}}})
    assert changed_rule["instruments"]["srs"] == {"cutoff": 30.0}
    assert changed_rule["sources"] == {
        "enabled": "default",
        "instruments.srs.cutoff": "organization",
        "instruments.wai-sr.cutoff": "default",
    }
    assert changed_rule["recomputed"] == {"episodes": 2, "created": 0, "updated": 1, "resolved": 1}

    retracted = await get_alert(tenant, mild["id"])
    assert (retracted["status"], retracted["resolution"]) == ("resolved", "retracted")
    kept = await get_alert(tenant, severe["id"])
    assert (kept["status"], kept["rule"]["params"]) == ("open", {"cutoff": 30.0})
    assert kept["evidence"]["cutoff"] == 30.0
    assert as_stored(await get_alert(other, theirs["id"])) == as_stored(theirs)

    # New submissions follow the new setting: 33 was low under the default cut-off of 36.
    assert (await submit(tenant, mild_episode, "srs", 2, srs(8.3, 8.2, 8.3, 8.2)))["alerts"] == []
    rules = expect(await attune.http.get("/v1/alert-rules", headers=tenant.admin), 200)["items"]
    low = next(r for r in rules if r["rule_id"] == "alliance.low")
    srs_cutoff = (low["instruments"]["srs"], low["sources"]["instruments.srs.cutoff"])
    assert srs_cutoff == ({"cutoff": 30.0}, "organization")
    assert low["updated_at"] is not None
    drop = next(r for r in rules if r["rule_id"] == "alliance.drop")
    assert drop["sources"] == {
        "enabled": "default",
        "instruments.srs.min_drop": "default",
        "instruments.wai-sr.min_drop": "default",
    }


# ----- late entries -------------------------------------------------------------------------------


async def test_a_late_entry_recomputes_its_series(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9.5, 9.5, 9.5, 9.5))  # 38
    await submit(tenant, eid, "srs", 2, srs(9.5, 9.5, 9.5, 9.5))  # 38
    at_five = await submit(tenant, eid, "srs", 5, srs(9.3, 9.2, 9.3, 9.2))  # 37
    assert changed(at_five["alerts"]) == [("alliance.drop", "warning", "open", "created", None, 5)]
    drop = at_five["alerts"][0]
    assert (drop["evidence"]["previous"], drop["evidence"]["sessions"]) == (38.0, [2, 5])

    # Session 3 (38.5) arrives after session 5: the drop at 5 is now from 38.5, not 38.
    late = await submit(tenant, eid, "srs", 3, srs(9.6, 9.6, 9.6, 9.7))
    assert late["scores"]["total"] == 38.5
    assert changed(late["alerts"]) == [("alliance.drop", "warning", "open", "updated", None, 5)]
    assert late["alerts"][0]["id"] == drop["id"]
    assert late["alerts"][0]["evidence"] == {
        "previous": 38.5, "current": 37.0, "drop": 1.5, "threshold": 1.0, "sessions": [3, 5],
    }  # fmt: skip
    assert (await get_alert(tenant, drop["id"]))["evidence"] == late["alerts"][0]["evidence"]

    # Session 4 (37.3) arrives too: the drop is now at 4 (38.5 → 37.3); from 4 to 5 it is only
    # 0.3, so the alert of session 5 no longer follows and is retracted.
    later = await submit(tenant, eid, "srs", 4, srs(9.3, 9.3, 9.3, 9.4))
    assert later["scores"]["total"] == 37.3
    assert changed(later["alerts"]) == [
        ("alliance.drop", "warning", "resolved", "resolved", None, 5),
        ("alliance.drop", "warning", "open", "created", None, 4),
    ]
    assert (await get_alert(tenant, drop["id"]))["resolution"] == "retracted"


# ----- lists --------------------------------------------------------------------------------------


async def test_alert_lists_filter_paginate_newest_first_and_follow_the_caseload(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    c1, c2 = await tenant.clinician("Dr One"), await tenant.clinician("Dr Two")
    k1, k2 = await tenant.client(), await tenant.client()
    e1 = (await tenant.episode(client_id=k1["id"], clinician_id=c1["id"]))["id"]
    e2 = (await tenant.episode(client_id=k2["id"], clinician_id=c2["id"]))["id"]
    low_1 = (await submit(tenant, e1, "srs", 1, srs(8, 8, 8, 8)))["alerts"][0]
    risk = (await submit(tenant, e1, "phq-9", 1, phq9(1)))["alerts"][0]
    strong = {"tension": 1, "intensity": 4, "resolution": 2}
    reported = (await submit(tenant, e2, "rupture-check", 1, strong))["alerts"][0]
    low_2 = (await submit(tenant, e2, "srs", 1, srs(7, 7, 7, 7)))["alerts"][0]
    await submit(tenant, e2, "srs", 2, srs(9, 9, 9, 9))  # clears low_2
    a1, a2, a3, a4 = low_1["id"], risk["id"], reported["id"], low_2["id"]

    assert await alert_ids(tenant) == [a4, a3, a2, a1]
    expected: list[tuple[dict[str, str], list[str]]] = [
        ({"status": "resolved"}, [a4]),
        ({"status": "open"}, [a3, a2, a1]),
        ({"status": "acknowledged"}, []),
        ({"type": "alliance.low"}, [a4, a1]),
        ({"type": "risk.item"}, [a2]),
        ({"severity": "critical"}, [a2]),
        ({"severity": "high"}, [a3]),
        ({"severity": "warning"}, [a4, a1]),
        ({"episode_id": e1}, [a2, a1]),
        ({"client_id": k2["id"]}, [a4, a3]),
        ({"clinician_id": c1["id"]}, [a2, a1]),
        ({"type": "alliance.low", "episode_id": e2}, [a4]),
        ({"type": "alliance.low", "status": "open", "clinician_id": c2["id"]}, []),
    ]
    for filters, ids in expected:
        assert await alert_ids(tenant, **filters) == ids, filters

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 1} if cursor is None else {"limit": 1, "cursor": cursor}
        page = expect(await attune.http.get("/v1/alerts", params=params, headers=tenant.admin), 200)
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [a4, a3, a2, a1]
    first = expect(await attune.http.get("/v1/alerts?limit=3", headers=tenant.admin), 200)
    rest = expect(
        await attune.http.get(
            "/v1/alerts", params={"limit": 3, "cursor": first["next_cursor"]}, headers=tenant.admin
        ),
        200,
    )
    assert ([a["id"] for a in first["items"]], [a["id"] for a in rest["items"]]) == (
        [a4, a3, a2],
        [a1],
    )
    assert rest["next_cursor"] is None
    for bad in ("limit=501", "limit=0", "status=closed", "type=alliance.bogus", "severity=low"):
        response = await attune.http.get(f"/v1/alerts?{bad}", headers=tenant.admin)
        assert response.status_code == 422, bad

    caseload = bearer(await tenant.key("alerts:read", "alerts:write", clinician_id=c1["id"]))
    assert await alert_ids(tenant, caseload) == [a2, a1]
    assert await alert_ids(tenant, caseload, episode_id=e2) == []
    assert await alert_ids(tenant, caseload, clinician_id=c2["id"]) == []
    assert await alert_ids(tenant, caseload, type="rupture.reported") == []
    assert (await attune.http.get(f"/v1/alerts/{a3}", headers=caseload)).status_code == 404
    response = await attune.http.post(f"/v1/alerts/{a3}/acknowledge", json={}, headers=caseload)
    assert response.status_code == 404
    assert (await get_alert(tenant, a3))["status"] == "open"
    mine = await attune.http.post(f"/v1/alerts/{a1}/acknowledge", json={}, headers=caseload)
    assert expect(mine, 200)["status"] == "acknowledged"


async def test_an_organisations_own_instrument_raises_alerts_through_its_definition(
    attune: Attune,
) -> None:
    """Kind, direction, cut-off, reliable change and risk items come from the organisation's
    definition: a symptom measure where lower is better, cut-off 14, reliable change 7, and a
    risk item at 2."""
    tenant = await attune.tenant()
    definition = {
        "code": "mood-local", "version": "1", "name": "Local mood scale", "kind": "symptom",
        "respondents": ["client"],
        "items": [{"id": "score", "label": "Total score", "min": 0, "max": 63, "step": 1},
                  {"id": "harm", "label": "Thoughts of harm", "min": 0, "max": 3, "step": 1,
                   "in_total": False}],
        "subscales": {}, "direction": "lower_is_better", "cutoff": 14, "reliable_change": 7,
        "bands": [], "risk_items": [{"item": "harm", "threshold": 2, "label": "Thoughts of harm"}],
        "citation": "Local.", "license": "own",
    }  # fmt: skip
    expect(await attune.http.post("/v1/instruments", json=definition, headers=tenant.admin), 201)
    eid = (await tenant.episode())["id"]

    first = await submit(tenant, eid, "mood-local", 1, {"score": 30, "harm": 1})
    assert first["alerts"] == []  # harm 1 is under the organisation's threshold of 2
    worse = await submit(tenant, eid, "mood-local", 2, {"score": 37, "harm": 2})
    assert sorted((a["type"], a["severity"]) for a in worse["alerts"]) == [
        ("outcome.deterioration", "high"), ("risk.item", "critical"),
    ]  # fmt: skip
    deterioration = next(a for a in worse["alerts"] if a["type"] == "outcome.deterioration")
    assert deterioration["message"].startswith("Local mood scale total rose from 30")
    better = await submit(tenant, eid, "mood-local", 3, {"score": 29, "harm": 0})
    assert [(a["type"], a["change"]) for a in better["alerts"]] == [
        ("outcome.deterioration", "resolved")
    ]
    # Not on track is judged from the 4th score (DESIGN.md §10.3.4).
    stuck = await submit(tenant, eid, "mood-local", 5, {"score": 29, "harm": 0})
    assert [(a["type"], a["change"], a["status"]) for a in stuck["alerts"]] == [
        ("outcome.not_on_track", "created", "open")
    ]


async def test_concurrent_submissions_to_one_series_leave_the_alerts_a_recompute_would(
    attune: Attune, settings: Settings
) -> None:
    """Twelve sessions of one SRS series sent at once (so some arrive late, and some read the
    series while another is being stored): the stored alerts are exactly those the whole history
    gives, with at most one unresolved alert per rule."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    totals = [9.5, 9.0, 8.0, 9.5, 7.0, 9.8, 9.9, 6.0, 9.0, 8.5, 9.9, 5.0]
    responses = await asyncio.gather(
        *(
            attune.http.post(
                "/v1/submissions",
                json={"episode_id": eid, "instrument": "srs", "session_number": n,
                      "answers": srs(v, v, v, v)},
                headers=tenant.admin,
            )
            for n, v in enumerate(totals, start=1)
        )
    )  # fmt: skip
    assert [r.status_code for r in responses] == [201] * len(totals)
    listed = expect(
        await attune.http.get(f"/v1/alerts?episode_id={eid}&limit=500", headers=tenant.admin), 200
    )["items"]
    unresolved = Counter(a["type"] for a in listed if a["status"] != "resolved")
    assert all(n == 1 for n in unresolved.values()), unresolved
    assert {"alliance.low", "alliance.drop"} <= {a["type"] for a in listed}
    assert await _recompute_alerts(settings, tenant.slug) == {
        "episodes": 1, "created": 0, "updated": 0, "resolved": 0,
    }  # fmt: skip
