"""The two submission stores behind services/submissions/store.py answer alike: the same tests run
against the Core store (both databases) and the asyncpg store (PostgreSQL), on the same data."""

import uuid
from collections.abc import AsyncIterator

import pytest

from models.base import utcnow
from services.alerts.engine import settings_for
from services.alerts.replay import history_needed
from services.alerts.store import SETTINGS, WRITTEN_ON_UPDATE, SeriesKey
from services.kernel.config import Settings
from services.kernel.database import UnitOfWork, create_driver_pool, create_engine
from services.submissions.rows import SubmissionValues
from services.submissions.store import SubmissionStore
from services.submissions.store_pg import WRITE_ALERTS, PgSubmissionStore
from services.submissions.store_sql import SqlSubmissionStore
from tests.support import Attune, srs, submit

STORES: dict[str, type[SqlSubmissionStore | PgSubmissionStore]] = {
    "core": SqlSubmissionStore,
    "asyncpg": PgSubmissionStore,
}


@pytest.fixture(params=sorted(STORES))
async def store(
    settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[SubmissionStore]:
    if request.param == "asyncpg" and settings.is_sqlite:
        pytest.skip("the asyncpg store runs on PostgreSQL only")
    engine = create_engine(settings)
    pool = await create_driver_pool(settings) if request.param == "asyncpg" else None
    uow = UnitOfWork(engine, pool)
    try:
        yield STORES[request.param](uow)
    finally:
        await uow.close()
        if pool is not None:
            await pool.close()
        await engine.dispose()


async def test_a_store_reads_the_context_a_submission_is_judged_against(
    attune: Attune, store: SubmissionStore
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    first = await submit(tenant, episode["id"], "srs", 1, srs(9, 9, 9, 9))
    second = await submit(tenant, episode["id"], "srs", 2, srs(2, 2, 2, 2))  # an alert
    key = SeriesKey(uuid.UUID(tenant.org_id), uuid.UUID(episode["id"]), "srs", "client", "")

    context = await store.context(key, None, None)
    assert context is not None
    assert (context.facts.status, context.facts.population) == ("active", "adult")
    assert str(context.facts.clinician_id) == episode["clinician_id"]
    assert [(p.session_number, str(p.submission_id), p.total) for p in context.history] == [
        (1, first["id"], first["scores"]["total"]),
        (2, second["id"], second["scores"]["total"]),
    ]
    assert [str(a["id"]) for a in context.open_alerts] == [a["id"] for a in second["alerts"]]
    assert context.overrides == {}
    # Outside a clinician's caseload, or another organisation's: no episode.
    assert await store.context(key, uuid.uuid4(), None) is None
    other = SeriesKey(uuid.uuid4(), key.episode_id, "srs", "client", "")
    assert await store.context(other, None, None) is None


async def test_a_store_finds_the_valid_submission_holding_a_place_and_the_full_series(
    attune: Attune, store: SubmissionStore
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    posted = await submit(tenant, episode["id"], "srs", 1, srs(3, 3, 3, 3))
    key = SeriesKey(uuid.UUID(tenant.org_id), uuid.UUID(episode["id"]), "srs", "client", "")
    values: SubmissionValues = {
        "id": uuid.uuid4(), "org_id": key.org_id, "episode_id": key.episode_id,
        "session_number": 1, "instrument": "srs", "instrument_version": "1",
        "respondent": "client", "rater": "", "answers": {}, "status": "valid",
        "occurred_at": None, "created_by_key_id": None,
    }  # fmt: skip

    assert str(await store.existing_valid(values)) == posted["id"]
    assert await store.existing_valid({**values, "session_number": 2}) is None
    points, alerts = await store.full_series(key)
    assert [(p.session_number, str(p.submission_id)) for p in points] == [(1, posted["id"])]
    assert points[0].answers == posted["answers"]
    assert sorted(str(a["id"]) for a in alerts) == sorted(a["id"] for a in posted["alerts"])


def test_both_stores_update_the_same_alert_columns() -> None:
    """An update writes what the rules own and nothing a person did (acknowledgement, note); the
    asyncpg statement takes that list from the one the Core store uses."""
    updated = WRITE_ALERTS.split("DO UPDATE SET", 1)[1].split(")", 1)[0]
    assert [part.split("=")[0].strip() for part in updated.split(",")] == list(WRITTEN_ON_UPDATE)
    assert not {"acknowledged_at", "acknowledged_by_key_id", "note"} & set(WRITTEN_ON_UPDATE)


# A stored override that no longer validates (a release tightened a range: k ≤ 10 here) gives way
# to the rule's defaults (services/alerts/settings.settings_with_fallback), repair_window 3
# included, whatever the stored body says about it: a smaller window or a larger one.
@pytest.mark.parametrize("stored_window", [1, 52])
async def test_a_store_reads_the_history_window_of_the_settings_in_force_not_the_stored_body(
    attune: Attune, store: SubmissionStore, settings: Settings, stored_window: int
) -> None:
    fallen_back = {"alliance.rupture": {"params": {"k": 99, "repair_window": stored_window}}}
    tenant = await attune.tenant()
    episode = await tenant.episode()
    for session in range(1, 19):
        await submit(tenant, episode["id"], "srs", session, srs(8, 8, 8, 8))
    key = SeriesKey(uuid.UUID(tenant.org_id), uuid.UUID(episode["id"]), "srs", "client", "")
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                SETTINGS.insert().values(
                    org_id=key.org_id,
                    rule_id="alliance.rupture",
                    body=fallen_back["alliance.rupture"],
                    updated_at=utcnow(),
                )
            )
    finally:
        await engine.dispose()

    context = await store.context(key, None, None)
    assert context is not None
    window = history_needed(settings_for(fallen_back))
    assert window == history_needed()  # the defaults' window
    # The series' first score and the latest `window` sessions, as the settings in force ask.
    assert [p.session_number for p in context.history] == [1, *range(19 - window, 19)]
