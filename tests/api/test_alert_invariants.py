"""The event invariants of the alert engine (DESIGN.md §10.3, issue 13) through the API, on both
databases (on PostgreSQL a submission takes the hot path, services/submissions/store_pg.py):

- §10.3.2 a new event is never folded into an alert a person has acknowledged or resolved;
- §10.3.3 voiding never retracts a critical alert: it stays, marked ``source_voided``, until a
  person resolves it;
- §10.3.4 ``outcome.not_on_track`` counts observed scores, not session numbers;
- §10.3.7 a gradual decline is a rupture too.
"""

from typing import Any

import pytest
from fastapi import FastAPI
from pytest_httpserver import HTTPServer

from api.cli import _recompute_alerts
from services.kernel.config import Settings
from tests.api.test_webhooks import report_concern
from tests.support import Attune, Tenant, ors, phq9, srs, submit
from tests.support.alerts import (
    acknowledge,
    alert_list,
    changed,
    get_alert,
    put_rule,
    resolve,
    void,
)
from tests.support.webhooks import Receiver, drain, endpoint

STRONG_UNRESOLVED = {"tension": 1, "intensity": 5, "resolution": 1}


async def _recompute_leaves(settings: Settings, tenant: Tenant, eid: str) -> None:
    """``attune recompute-alerts`` changes nothing: what the submissions did is what the history
    gives."""
    before = await alert_list(tenant, episode_id=eid)
    assert await _recompute_alerts(settings, tenant.slug) == {
        "episodes": 1, "created": 0, "updated": 0, "resolved": 0,
    }  # fmt: skip
    assert await alert_list(tenant, episode_id=eid) == before


# ----- §10.3.2 a new event is never folded into a handled alert -----------------------------------


async def test_a_worse_risk_answer_after_acknowledgement_opens_a_new_critical_alert(
    attune: Attune, settings: Settings
) -> None:
    """Issue 13 finding 2: q9 = 1 acknowledged, then q9 = 3. It used to update the acknowledged
    alert, hidden from ``status=open``."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    first = (await submit(tenant, eid, "phq-9", 1, phq9(1)))["alerts"][0]
    await acknowledge(tenant, first["id"], "safety plan reviewed")

    second = await submit(tenant, eid, "phq-9", 2, phq9(3))
    assert changed(second["alerts"]) == [("risk.item", "critical", "open", "created", None, 2)]
    new = second["alerts"][0]
    assert new["id"] != first["id"]
    assert new["evidence"]["previous_alert_id"] == first["id"]
    assert new["evidence"]["items"][0]["answer"] == 3

    kept = await get_alert(tenant, first["id"])
    assert (kept["status"], kept["session_number"], kept["note"]) == (
        "acknowledged", 1, "safety plan reviewed",
    )  # fmt: skip
    assert kept["evidence"]["items"][0]["answer"] == 1
    assert [a["id"] for a in await alert_list(tenant, status="open")] == [new["id"]]

    # A third answer while the new alert is still open updates it (nobody has handled it yet).
    third = await submit(tenant, eid, "phq-9", 3, phq9(2))
    assert changed(third["alerts"]) == [("risk.item", "critical", "open", "updated", None, 3)]
    assert third["alerts"][0]["id"] == new["id"]
    assert third["alerts"][0]["evidence"]["previous_alert_id"] == first["id"]
    await _recompute_leaves(settings, tenant, eid)


async def test_a_risk_answer_after_a_person_resolved_opens_a_new_alert_naming_the_old_one(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    first = (await submit(tenant, eid, "phq-9", 1, phq9(1)))["alerts"][0]
    await resolve(tenant, first["id"], "referred")

    second = await submit(tenant, eid, "phq-9", 2, phq9(1))
    assert changed(second["alerts"]) == [("risk.item", "critical", "open", "created", None, 2)]
    assert second["alerts"][0]["evidence"]["previous_alert_id"] == first["id"]
    await _recompute_leaves(settings, tenant, eid)


async def test_a_drop_after_an_acknowledged_drop_opens_a_new_alert(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9.8, 9.7, 9.8, 9.7))  # 39
    first = (await submit(tenant, eid, "srs", 2, srs(9.5, 9.5, 9.5, 9.5)))["alerts"][0]  # 38
    assert first["type"] == "alliance.drop"
    await acknowledge(tenant, first["id"])

    again = await submit(tenant, eid, "srs", 3, srs(9.3, 9.2, 9.3, 9.2))  # 37
    assert changed(again["alerts"]) == [("alliance.drop", "warning", "open", "created", None, 3)]
    assert again["alerts"][0]["evidence"]["previous_alert_id"] == first["id"]
    kept = await get_alert(tenant, first["id"])
    assert (kept["status"], kept["session_number"]) == ("acknowledged", 2)
    await _recompute_leaves(settings, tenant, eid)


async def test_a_reported_rupture_after_an_acknowledged_one_opens_a_new_alert(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    first = (await submit(tenant, eid, "rupture-check", 1, STRONG_UNRESOLVED))["alerts"][0]
    await acknowledge(tenant, first["id"])
    again = await submit(tenant, eid, "rupture-check", 2, STRONG_UNRESOLVED)
    assert changed(again["alerts"]) == [("rupture.reported", "high", "open", "created", None, 2)]
    assert again["alerts"][0]["evidence"]["previous_alert_id"] == first["id"]
    await _recompute_leaves(settings, tenant, eid)


async def test_a_concern_after_a_handled_one_names_it_in_the_alert_and_its_webhook(
    attune: Attune, app: FastAPI, httpserver: HTTPServer
) -> None:
    """DESIGN.md §10.3.2 for ``concern.reported``: every concern opens its own alert; one raised
    after a person acknowledged or resolved an earlier concern of the episode names that alert in
    ``evidence.previous_alert_id`` and in its webhook's ``previous_alert_id``, so whoever reads it
    knows the client has raised a concern before and what was done about it."""
    tenant = await attune.tenant()
    hook = Receiver(httpserver)
    secret = (await endpoint(tenant, hook.url, event_types=["alert.created"]))["secret"]
    eid = (await tenant.episode())["id"]

    async def concern_alerts() -> list[dict[str, Any]]:
        return await alert_list(tenant, episode_id=eid, type="concern.reported")

    await report_concern(tenant, eid, 1)
    (first,) = await concern_alerts()
    assert "previous_alert_id" not in first["evidence"]
    # Open and not yet seen by anyone: a second concern does not name it.
    await report_concern(tenant, eid, 2)
    second = (await concern_alerts())[0]
    assert second["id"] != first["id"]
    assert "previous_alert_id" not in second["evidence"]

    await acknowledge(tenant, first["id"], "called the client")
    await report_concern(tenant, eid, 3)
    third = (await concern_alerts())[0]
    assert (third["status"], third["evidence"]["previous_alert_id"]) == ("open", first["id"])

    await resolve(tenant, second["id"], "discussed")
    await report_concern(tenant, eid, 4)
    fourth = (await concern_alerts())[0]
    assert fourth["evidence"]["previous_alert_id"] == second["id"]  # the latest one handled

    await drain(app, tenant)
    sent = {e["data"]["id"]: e["data"] for e in hook.verified(secret)}
    assert [sent[a["id"]]["previous_alert_id"] for a in (first, second, third, fourth)] == [
        None, None, first["id"], second["id"],
    ]  # fmt: skip


async def test_recomputes_after_a_void_or_a_setting_change_keep_the_handled_and_the_new_alert(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    first = (await submit(tenant, eid, "phq-9", 1, phq9(1)))["alerts"][0]
    await acknowledge(tenant, first["id"])
    new = (await submit(tenant, eid, "phq-9", 2, phq9(3)))["alerts"][0]
    unrelated = await submit(tenant, eid, "srs", 1, srs(9.8, 9.7, 9.8, 9.7))

    assert (await void(tenant, unrelated["id"]))["alerts"] == []
    await put_rule(tenant, "alliance.drop", {"instruments": {"srs": {"min_drop": 2}}})
    await _recompute_leaves(settings, tenant, eid)
    after = {a["id"]: (a["status"], a["session_number"]) for a in await alert_list(tenant)}
    assert after == {first["id"]: ("acknowledged", 1), new["id"]: ("open", 2)}


@pytest.mark.parametrize("first_answer", [0, 1])
async def test_a_late_risk_answer_before_an_acknowledged_one_still_reaches_a_person(
    attune: Attune, settings: Settings, first_answer: int
) -> None:
    """Session 2 is entered after session 3's risk alert was acknowledged: the series is recomputed
    from its whole history (services/alerts/engine.py), and the late answer opens an alert of its
    own instead of disappearing into the acknowledged one (whether that one began before the late
    session or after it)."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "phq-9", 1, phq9(first_answer))
    first = (await submit(tenant, eid, "phq-9", 3, phq9(1)))["alerts"][0]
    await acknowledge(tenant, first["id"])

    late = await submit(tenant, eid, "phq-9", 2, phq9(3))
    assert [(a["type"], a["status"], a["change"]) for a in late["alerts"]] == [
        ("risk.item", "open", "created")
    ]
    assert late["alerts"][0]["severity"] == "critical"
    kept = await get_alert(tenant, first["id"])
    assert (kept["status"], kept["session_number"]) == ("acknowledged", 3)
    await _recompute_leaves(settings, tenant, eid)
    # A later answer goes to the open alert, not to the acknowledged one.
    later = await submit(tenant, eid, "phq-9", 4, phq9(2))
    assert [(a["id"], a["change"]) for a in later["alerts"]] == [
        (late["alerts"][0]["id"], "updated")
    ]
    await _recompute_leaves(settings, tenant, eid)


# ----- §10.3.3 a person retracts critical alerts --------------------------------------------------


async def test_voiding_a_risk_answer_keeps_its_critical_alert_marked_source_voided(
    attune: Attune, settings: Settings
) -> None:
    """Issue 13 finding 2: voiding used to retract a critical risk alert with no one's decision."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    risky = await submit(tenant, eid, "phq-9", 1, phq9(2))
    alert = risky["alerts"][0]

    voided = await void(tenant, risky["id"], "entered for the wrong client")
    assert changed(voided["alerts"]) == [("risk.item", "critical", "open", "updated", None, 1)]
    assert voided["alerts"][0]["id"] == alert["id"]
    assert voided["alerts"][0]["evidence"]["source_voided"] is True
    assert voided["alerts"][0]["resolution"] is None
    # Voiding again, and recomputing, change nothing more; a person then resolves it.
    assert (await void(tenant, risky["id"]))["alerts"] == []
    await _recompute_leaves(settings, tenant, eid)
    resolved = await resolve(tenant, alert["id"], "dismissed", "wrong client")
    assert (resolved["status"], resolved["resolution"]) == ("resolved", "dismissed")
    await _recompute_leaves(settings, tenant, eid)


async def test_voiding_leaves_an_acknowledged_risk_alert_with_the_person(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    risky = await submit(tenant, eid, "phq-9", 1, phq9(1))
    alert = risky["alerts"][0]
    await acknowledge(tenant, alert["id"])
    voided = await void(tenant, risky["id"])
    assert [(a["id"], a["status"], a["evidence"]["source_voided"]) for a in voided["alerts"]] == [
        (alert["id"], "acknowledged", True)
    ]


async def test_voiding_the_first_of_two_risk_answers_keeps_one_open_alert_on_the_second(
    attune: Attune,
) -> None:
    """The alert follows the answer that still stands instead of being retracted and raised again:
    one open critical alert, now showing session 2."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    risky = await submit(tenant, eid, "phq-9", 1, phq9(1))
    alert = risky["alerts"][0]
    await submit(tenant, eid, "phq-9", 2, phq9(3))
    voided = await void(tenant, risky["id"])
    assert [a["id"] for a in voided["alerts"]] in ([], [alert["id"]])
    listed = await alert_list(tenant, episode_id=eid)
    assert [(a["id"], a["status"], a["session_number"]) for a in listed] == [
        (alert["id"], "open", 2)
    ]
    assert "source_voided" not in listed[0]["evidence"]


async def test_voiding_still_retracts_alerts_that_are_not_critical(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    low = await submit(tenant, eid, "srs", 1, srs(8.8, 8.7, 8.8, 8.7))
    voided = await void(tenant, low["id"])
    assert [(a["type"], a["resolution"]) for a in voided["alerts"]] == [
        ("alliance.low", "retracted")
    ]


# ----- §10.3.4 not on track counts observed scores ------------------------------------------------


async def test_an_ors_first_entered_at_session_nine_is_not_judged_on_its_first_score(
    attune: Attune,
) -> None:
    """Issue 13 finding 4: a high not-on-track alert on the first and only score."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    for n in (9, 10, 11):
        assert (await submit(tenant, eid, "ors", n, ors(4, 4, 4, 4)))["alerts"] == []
    fourth = await submit(tenant, eid, "ors", 12, ors(4, 4, 4, 4))
    assert changed(fourth["alerts"]) == [
        ("outcome.not_on_track", "warning", "open", "created", None, 12)
    ]


async def test_not_on_track_clears_when_the_client_leaves_the_clinical_range(
    attune: Attune,
) -> None:
    """Adult ORS cut-off 25: 22 → 26 is 4 points (less than the reliable change of 5) but out of
    the clinical range, so not on track no longer holds."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    for n in (1, 2, 3):
        await submit(tenant, eid, "ors", n, ors(5.5, 5.5, 5.5, 5.5))  # 22
    raised = await submit(tenant, eid, "ors", 4, ors(5.5, 5.5, 5.5, 5.5))
    assert [a["type"] for a in raised["alerts"]] == ["outcome.not_on_track"]
    cleared = await submit(tenant, eid, "ors", 5, ors(6.5, 6.5, 6.5, 6.5))  # 26
    assert changed(cleared["alerts"]) == [
        ("outcome.not_on_track", "warning", "resolved", "resolved", None, 4)
    ]
    assert cleared["alerts"][0]["resolution"] == "condition_cleared"


# ----- §10.3.7 gradual declines -------------------------------------------------------------------


async def test_a_gradual_srs_decline_raises_a_rupture_and_its_repair_clears_it(
    attune: Attune,
) -> None:
    """Issue 13 finding 10, on the SRS (min_drop 2, k = 1): 38, 38.5, 38, 38, 37, 36 — no single
    step of 2, but 38 → 36 over two steps is; back to 38 repairs it."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    at = {38.0: (9.5, 9.5, 9.5, 9.5), 38.5: (9.7, 9.6, 9.6, 9.6), 37.0: (9.3, 9.2, 9.3, 9.2),
          36.0: (9.0, 9.0, 9.0, 9.0)}  # fmt: skip
    raised: list[dict[str, Any]] = []
    for n, total in enumerate([38.0, 38.5, 38.0, 38.0, 37.0, 36.0], start=1):
        response = await submit(tenant, eid, "srs", n, srs(*at[total]))
        raised += [a for a in response["alerts"] if a["type"] == "alliance.rupture"]
    found = [(a["session_number"], a["evidence"]["pattern"], a["evidence"]["drop"]) for a in raised]
    assert found == [(6, "gradual", 2.0)]
    assert raised[0]["evidence"]["previous"] == 38.0
    repaired = await submit(tenant, eid, "srs", 7, srs(9.5, 9.5, 9.5, 9.5))
    rupture = next(a for a in repaired["alerts"] if a["type"] == "alliance.rupture")
    assert (rupture["status"], rupture["resolution"]) == ("resolved", "repaired")
    trajectory = await tenant.http.get(
        f"/v1/episodes/{eid}/trajectory", params={"instrument": "srs"}, headers=tenant.admin
    )
    assert trajectory.json()["summary"]["ruptures"] == [
        {"session_number": 6, "subscale": None, "drop": 2.0, "repaired_at_session": 7}
    ]
