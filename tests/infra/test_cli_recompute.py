"""`attune recompute-alerts SLUG`: re-derives an organization's alerts from its history."""

import uuid

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col

from api.cli import _recompute_alerts
from models.alerts import Alert
from services.kernel.config import Settings
from tests.support import Attune, expect, items, srs, submit


async def test_recompute_rebuilds_missing_alerts_and_a_second_run_changes_nothing(
    attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    other = await attune.tenant()
    episode = (await tenant.episode())["id"]
    await submit(tenant, episode, "srs", 1, srs(8, 8, 8, 8))  # 32: alliance.low
    await submit(tenant, episode, "phq-9", 1, items("q", 1, 1, 1, 1, 1, 1, 1, 1, 1))  # risk
    foreign = (await other.episode())["id"]
    await submit(other, foreign, "srs", 1, srs(8, 8, 8, 8))
    before = expect(await attune.http.get("/v1/alerts", headers=tenant.admin), 200)["items"]
    assert sorted(a["type"] for a in before) == ["alliance.low", "risk.item"]

    engine = create_async_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(delete(Alert).where(col(Alert.org_id) == uuid.UUID(tenant.org_id)))
    finally:
        await engine.dispose()

    assert await _recompute_alerts(settings, tenant.slug) == {
        "episodes": 1, "created": 2, "updated": 0, "resolved": 0,
    }  # fmt: skip
    after = expect(await attune.http.get("/v1/alerts", headers=tenant.admin), 200)["items"]
    keep = ("type", "severity", "status", "session_number", "submission_id", "message", "evidence")
    assert sorted([{k: a[k] for k in keep} for a in after], key=str) == sorted(
        [{k: a[k] for k in keep} for a in before], key=str
    )
    assert await _recompute_alerts(settings, tenant.slug) == {
        "episodes": 1, "created": 0, "updated": 0, "resolved": 0,
    }  # fmt: skip
    # The other organization was not touched.
    theirs = expect(await attune.http.get("/v1/alerts", headers=other.admin), 200)["items"]
    assert [a["type"] for a in theirs] == ["alliance.low"]
    events = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)["items"]
    assert "alert.recompute" in {e["action"] for e in events}


async def test_recompute_of_an_unknown_organization_says_so(settings: Settings) -> None:
    assert await _recompute_alerts(settings, "no-such-org") is None
