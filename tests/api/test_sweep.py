"""The sweep (DESIGN.md §10.3.6): escalation of unacknowledged alerts, measurement.overdue and
ruptures without a later session, moved through time with `attune sweep --now`.

Every sweep here is restricted to the test's own organisation (``--org-id``), so tests that run
beside each other on one database never see one another's episodes.
"""

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from pytest_httpserver import HTTPServer
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col

from api import cli
from models.alerts import Alert
from models.base import new_id, utcnow
from models.episodes import Episode
from models.people import Client, Clinician
from services.alerts import sweep as alert_sweep
from services.kernel.config import Settings
from services.webhooks import delivery as webhook_delivery
from services.webhooks.outbox import DELIVERIES, OUTBOX
from tests.support import Attune, Tenant, expect, phq9, srs, submit
from tests.support.alerts import raise_concern
from tests.support.webhooks import Receiver, drain, endpoint, policy


@pytest.fixture
def hooks(httpserver: HTTPServer) -> Iterator[Receiver]:
    yield Receiver(httpserver)
    httpserver.clear()


async def sweep_at(settings: Settings, tenant: Tenant, at: datetime) -> dict[str, int]:
    return await cli.sweep_once(settings, at, [uuid.UUID(tenant.org_id)])


def later(**delta: float) -> datetime:
    return utcnow() + timedelta(**delta)


async def alerts_of(tenant: Tenant, **filters: str) -> list[dict[str, Any]]:
    response = await tenant.http.get("/v1/alerts", params=filters, headers=tenant.admin)
    return expect(response, 200)["items"]  # type: ignore[no-any-return]


# ----- escalation ---------------------------------------------------------------------------------


async def test_a_risk_alert_nobody_acknowledged_for_24_hours_is_escalated_once(
    attune: Attune, settings: Settings, app: FastAPI, hooks: Receiver
) -> None:
    tenant = await attune.tenant()
    hook = await endpoint(tenant, hooks.url, event_types=["alert.updated"])
    episode = (await tenant.episode())["id"]
    risk = (await submit(tenant, episode, "phq-9", 1, phq9(1)))["alerts"][0]
    assert risk["escalated_at"] is None

    assert (await sweep_at(settings, tenant, later(hours=23)))["escalated"] == 0
    before = utcnow()
    assert (await sweep_at(settings, tenant, later(hours=25)))["escalated"] == 1
    assert (await sweep_at(settings, tenant, later(hours=26)))["escalated"] == 0

    got = expect(await tenant.http.get(f"/v1/alerts/{risk['id']}", headers=tenant.admin), 200)
    assert (got["status"], got["severity"]) == ("open", "critical")
    assert before <= datetime.fromisoformat(got["escalated_at"]) <= utcnow()
    await drain(app, tenant)
    payloads = hooks.verified(hook["secret"])
    assert [(p["type"], p["data"]["id"], p["data"]["change"]) for p in payloads] == [
        ("alert.updated", risk["id"], "escalated")
    ]


async def test_an_acknowledged_risk_alert_is_not_escalated(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    episode = (await tenant.episode())["id"]
    risk = (await submit(tenant, episode, "phq-9", 1, phq9(2)))["alerts"][0]
    url = f"/v1/alerts/{risk['id']}/acknowledge"
    expect(await tenant.http.post(url, json={}, headers=tenant.admin), 200)
    assert (await sweep_at(settings, tenant, later(days=3)))["escalated"] == 0


async def test_an_organisation_may_escalate_risk_sooner_but_never_later(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    url = "/v1/alert-rules/risk.item"
    later_body = {"params": {"escalate_after_hours": 48}}
    problem = expect(await tenant.http.put(url, json=later_body, headers=tenant.admin), 422)
    assert "params.escalate_after_hours" in json.dumps(problem)
    sooner = {"params": {"escalate_after_hours": 4}}
    expect(await tenant.http.put(url, json=sooner, headers=tenant.admin), 200)
    episode = (await tenant.episode())["id"]
    await submit(tenant, episode, "phq-9", 1, phq9(1))
    assert (await sweep_at(settings, tenant, later(hours=3)))["escalated"] == 0
    assert (await sweep_at(settings, tenant, later(hours=5)))["escalated"] == 1


async def test_a_concern_is_escalated_after_72_hours(
    attune: Attune, settings: Settings, app: FastAPI
) -> None:
    tenant = await attune.tenant()
    episode = (await tenant.episode())["id"]
    concern = await raise_concern(app, tenant, episode)
    assert (await sweep_at(settings, tenant, later(hours=71)))["escalated"] == 0
    assert (await sweep_at(settings, tenant, later(hours=73)))["escalated"] == 1
    got = expect(await tenant.http.get(f"/v1/alerts/{concern['id']}", headers=tenant.admin), 200)
    assert got["escalated_at"] is not None


# ----- measurement.overdue ------------------------------------------------------------------------


async def test_an_episode_without_a_measurement_for_21_days_gets_one_overdue_alert(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    episode = (await tenant.episode())["id"]
    await submit(tenant, episode, "srs", 1, srs(9, 9, 9, 9))

    assert (await sweep_at(settings, tenant, later(days=20)))["overdue"] == 0
    assert (await sweep_at(settings, tenant, later(days=22)))["overdue"] == 1
    assert (await sweep_at(settings, tenant, later(days=30)))["overdue"] == 0
    (overdue,) = await alerts_of(tenant, type="measurement.overdue")
    assert (overdue["severity"], overdue["status"], overdue["episode_id"]) == (
        "warning",
        "open",
        episode,
    )
    assert overdue["evidence"]["overdue_days"] == 21
    assert overdue["evidence"]["days_since"] == 22
    assert overdue["instrument"] is None

    # The next submission clears it, in its own response.
    response = await submit(tenant, episode, "srs", 2, srs(9, 9, 9, 9))
    assert [(a["type"], a["status"], a["resolution"], a["change"]) for a in response["alerts"]] == [
        ("measurement.overdue", "resolved", "condition_cleared", "resolved")
    ]
    (cleared,) = await alerts_of(tenant, type="measurement.overdue")
    assert cleared["status"] == "resolved"


async def test_raising_an_overdue_alert_makes_a_submission_read_before_it_read_again(
    attune: Attune, settings: Settings
) -> None:
    """A submission reads its episode (and whether it has an open overdue alert to clear) before
    it stores, and stores only if the episode's alert_seq is unchanged. The sweep raising an
    overdue alert in between must change alert_seq, or that submission would leave the alert
    open though a measurement came in."""
    tenant = await attune.tenant()
    episode = (await tenant.episode())["id"]
    await submit(tenant, episode, "srs", 1, srs(9, 9, 9, 9))
    engine = create_async_engine(settings.database_url)
    seq = select(col(Episode.alert_seq)).where(col(Episode.id) == uuid.UUID(episode))
    try:
        async with engine.connect() as conn:
            before = await conn.scalar(seq)
        assert (await sweep_at(settings, tenant, later(days=22)))["overdue"] == 1
        async with engine.connect() as conn:
            after_raise = await conn.scalar(seq)
        assert (await sweep_at(settings, tenant, later(days=23)))["overdue"] == 0
        async with engine.connect() as conn:
            after_nothing = await conn.scalar(seq)
    finally:
        await engine.dispose()
    assert before is not None
    assert after_raise is not None
    assert after_raise > before
    assert after_nothing == after_raise


async def test_an_episode_never_measured_is_overdue_from_its_creation(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    await tenant.episode()
    assert (await sweep_at(settings, tenant, later(days=20)))["overdue"] == 0
    assert (await sweep_at(settings, tenant, later(days=22)))["overdue"] == 1
    (overdue,) = await alerts_of(tenant, type="measurement.overdue")
    assert overdue["evidence"]["measured"] is False


async def test_closing_the_episode_clears_its_overdue_alert_and_closed_episodes_are_not_swept(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    episode = (await tenant.episode())["id"]
    await sweep_at(settings, tenant, later(days=22))
    url = f"/v1/episodes/{episode}"
    expect(await tenant.http.patch(url, json={"status": "closed"}, headers=tenant.admin), 200)
    (overdue,) = await alerts_of(tenant, type="measurement.overdue")
    assert (overdue["status"], overdue["resolution"]) == ("resolved", "condition_cleared")
    assert (await sweep_at(settings, tenant, later(days=60)))["overdue"] == 0


async def test_overdue_days_is_an_organisation_setting_listed_with_the_rules(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    rules = expect(await tenant.http.get("/v1/alert-rules", headers=tenant.admin), 200)
    listed = rules["items"] if isinstance(rules, dict) else rules
    (rule,) = [r for r in listed if r["rule_id"] == "measurement.overdue"]
    assert (rule["severity"], rule["params"], rule["enabled"]) == (
        "warning",
        {"overdue_days": 21},
        True,
    )
    url = "/v1/alert-rules/measurement.overdue"
    bad = expect(
        await tenant.http.put(url, json={"params": {"overdue_days": 0}}, headers=tenant.admin), 422
    )
    assert "params.overdue_days" in json.dumps(bad)
    body = {"params": {"overdue_days": 7}}
    expect(await tenant.http.put(url, json=body, headers=tenant.admin), 200)
    await tenant.episode()
    assert (await sweep_at(settings, tenant, later(days=6)))["overdue"] == 0
    assert (await sweep_at(settings, tenant, later(days=8)))["overdue"] == 1

    expect(await tenant.http.put(url, json={"enabled": False}, headers=tenant.admin), 200)
    await tenant.episode()
    assert (await sweep_at(settings, tenant, later(days=60)))["overdue"] == 0


# ----- ruptures without a later session -----------------------------------------------------------


async def test_a_rupture_with_no_later_session_for_21_days_becomes_high(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    episode = (await tenant.episode())["id"]
    for n, total in enumerate((9.5, 9.5, 9.5), start=1):
        await submit(tenant, episode, "srs", n, srs(total, total, total, total))
    ruptured = await submit(tenant, episode, "srs", 4, srs(7.5, 7.5, 7.5, 7.5))  # 38 → 30
    (rupture,) = [a for a in ruptured["alerts"] if a["type"] == "alliance.rupture"]
    assert rupture["severity"] == "warning"

    assert (await sweep_at(settings, tenant, later(days=20)))["ruptures"] == 0
    assert (await sweep_at(settings, tenant, later(days=22)))["ruptures"] == 1
    assert (await sweep_at(settings, tenant, later(days=23)))["ruptures"] == 0
    got = expect(await tenant.http.get(f"/v1/alerts/{rupture['id']}", headers=tenant.admin), 200)
    assert got["severity"] == "high"
    assert got["message"].startswith("No session since the rupture")
    assert got["evidence"]["no_session_since"] is True
    assert got["evidence"]["drop"] == rupture["evidence"]["drop"]


async def test_a_rupture_followed_by_a_session_is_not_raised(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    episode = (await tenant.episode())["id"]
    for n, total in enumerate((9.5, 9.5, 9.5, 7.5), start=1):
        await submit(tenant, episode, "srs", n, srs(total, total, total, total))
    await submit(tenant, episode, "phq-9", 5, phq9(0))  # a later session, another instrument
    assert (await sweep_at(settings, tenant, later(days=22)))["ruptures"] == 0


# ----- the command line ---------------------------------------------------------------------------


async def test_attune_sweep_now_runs_one_sweep_as_of_the_time_given(
    attune: Attune, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await attune.tenant()
    await tenant.episode()
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    at = later(days=22).astimezone(UTC).replace(tzinfo=None).isoformat()  # no offset: UTC
    # main() runs its own event loop: in a thread, beside this test's.
    await asyncio.to_thread(cli.main, ["sweep", "--now", at, "--org-id", tenant.org_id])
    (overdue,) = await alerts_of(tenant, type="measurement.overdue")
    assert overdue["status"] == "open"
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--now", "next tuesday"])


# ----- the worker -------------------------------------------------------------------------------


async def test_the_worker_sweeps_on_its_own_until_stopped(
    attune: Attune, settings: Settings, app: FastAPI
) -> None:
    tenant = await attune.tenant()
    await _many_overdue_episodes(settings, tenant, n_episodes=3, n_risk=1)
    stop = asyncio.Event()
    worker = asyncio.create_task(
        alert_sweep.run(
            app.state.engine,
            settings.model_copy(update={"sweep_seconds": 0.05}),
            stop,
            org_ids=[uuid.UUID(tenant.org_id)],
        )
    )
    try:
        for _ in range(200):  # a bound, not a timing: the first sweep runs at once
            if len(await alerts_of(tenant, type="measurement.overdue")) == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker
    assert len(await alerts_of(tenant, type="measurement.overdue")) == 3
    (risk,) = await alerts_of(tenant, type="risk.item")
    assert risk["escalated_at"] is not None


# ----- several workers (PostgreSQL) ---------------------------------------------------------------

N_EPISODES = 1000
N_RISK = 200


async def _many_overdue_episodes(
    settings: Settings, tenant: Tenant, n_episodes: int = N_EPISODES, n_risk: int = N_RISK
) -> None:
    """``n_episodes`` active episodes created 30 days ago, ``n_risk`` of them with an open risk
    alert of that age, written straight to the database (the API would take minutes)."""
    org_id = uuid.UUID(tenant.org_id)
    month_ago = utcnow() - timedelta(days=30)
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            clinician = new_id()
            await conn.execute(
                insert(Clinician.__table__),  # type: ignore[attr-defined]
                {"id": clinician, "org_id": org_id, "display_name": "Dr Many",
                 "created_at": month_ago},
            )  # fmt: skip
            clients = [
                {"id": new_id(), "org_id": org_id, "external_id": f"MRN-{i}",
                 "population": "adult", "created_at": month_ago, "updated_at": month_ago}
                for i in range(n_episodes)
            ]  # fmt: skip
            await conn.execute(insert(Client.__table__), clients)  # type: ignore[attr-defined]
            episodes = [
                {"id": new_id(), "org_id": org_id, "client_id": c["id"],
                 "clinician_id": clinician, "status": "active", "started_on": month_ago.date(),
                 "created_at": month_ago, "updated_at": month_ago, "alert_seq": 0}
                for c in clients
            ]  # fmt: skip
            await conn.execute(insert(Episode.__table__), episodes)  # type: ignore[attr-defined]
            alerts = [
                {"id": new_id(), "org_id": org_id, "episode_id": e["id"], "type": "risk.item",
                 "severity": "critical", "status": "open", "instrument": "phq-9",
                 "respondent": "client", "rater": "", "subscale": "", "session_number": 1,
                 "first_session_number": 1, "message": "q9", "evidence": {},
                 "rule_version": "1", "rule_params": {}, "created_at": month_ago,
                 "updated_at": month_ago}
                for e in episodes[:n_risk]
            ]  # fmt: skip
            await conn.execute(insert(Alert.__table__), alerts)  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_two_workers_sweeping_at_once_make_each_change_once_and_deliver_it_once(
    attune: Attune, settings: Settings, app: FastAPI, hooks: Receiver
) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("several workers run on PostgreSQL only; SQLite runs one")
    tenant = await attune.tenant()
    hook = await endpoint(tenant, hooks.url, event_types=["alert.created", "alert.updated"])
    await _many_overdue_episodes(settings, tenant)
    org = [uuid.UUID(tenant.org_id)]

    engines = [create_async_engine(settings.database_url) for _ in range(2)]
    try:
        # Small batches, so the two workers interleave over many claims.
        results = await asyncio.gather(
            *(alert_sweep.sweep(engine, org_ids=org, batch=50) for engine in engines)
        )
        assert sum(r.overdue for r in results) == N_EPISODES
        assert sum(r.escalated for r in results) == N_RISK
        again = await alert_sweep.sweep(engines[0], org_ids=org)
        assert (again.overdue, again.escalated) == (0, 0)

        async with engines[0].connect() as conn:
            a = Alert.__table__  # type: ignore[attr-defined]
            overdue = await conn.scalar(
                select(func.count()).where(a.c.org_id == org[0], a.c.type == "measurement.overdue")
            )
            assert overdue == N_EPISODES
            escalated = await conn.scalar(
                select(func.count()).where(a.c.org_id == org[0], a.c.escalated_at.is_not(None))
            )
            assert escalated == N_RISK
            events = await conn.scalar(select(func.count()).where(OUTBOX.c.org_id == org[0]))
            assert events == N_EPISODES + N_RISK

        # Two delivery workers at once, too: each event reaches the receiver once.
        pol = policy()
        async with webhook_delivery.http_client(pol) as client:

            async def deliver(engine: Any) -> None:
                while await webhook_delivery.deliver_due(
                    engine, client, pol, batch=100, org_ids=org
                ):
                    pass

            await asyncio.gather(*(deliver(engine) for engine in engines))
    finally:
        for engine in engines:
            await engine.dispose()
    payloads = hooks.verified(hook["secret"])
    ids = [p["data"]["id"] for p in payloads]
    assert len(ids) == len(set(ids)) == N_EPISODES + N_RISK
    changes = sorted({(p["type"], p["data"]["type"], p["data"]["change"]) for p in payloads})
    assert changes == [
        ("alert.created", "measurement.overdue", "created"),
        ("alert.updated", "risk.item", "escalated"),
    ]
    async with app.state.engine.connect() as conn:
        pending = await conn.scalar(
            select(func.count()).where(
                DELIVERIES.c.org_id == org[0], DELIVERIES.c.status != "delivered"
            )
        )
    assert pending == 0
