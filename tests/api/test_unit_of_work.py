"""A response is sent only after its transaction committed: a failed commit is never a 2xx."""

import uuid
from typing import Any

import asyncpg.exceptions
import asyncpg.transaction
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel.config import Settings
from services.kernel.database import UnitOfWork, create_driver_pool, create_engine
from tests.support import Attune, expect


async def test_failed_commit_answers_503_and_saves_nothing(
    attune: Attune, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await attune.tenant()
    real_commit = AsyncConnection.commit

    async def failing_commit(self: AsyncConnection) -> Any:
        raise OperationalError("COMMIT", {}, Exception("disk full"))

    monkeypatch.setattr(AsyncConnection, "commit", failing_commit)
    response = await attune.http.post(
        "/v1/clients", json={"external_id": "MRN-LOST"}, headers=tenant.admin
    )
    monkeypatch.setattr(AsyncConnection, "commit", real_commit)

    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.headers["content-type"] == "application/problem+json"
    found = expect(
        await attune.http.get("/v1/clients?external_id=MRN-LOST", headers=tenant.admin), 200
    )
    assert found["items"] == []


async def test_error_inside_a_request_rolls_back_its_earlier_writes(attune: Attune) -> None:
    tenant = await attune.tenant()
    # The episode update changes the clinician and then fails validation on ended_on:
    # the clinician change must not survive.
    episode = await tenant.episode()
    other = await tenant.clinician("Dr Other")
    response = await attune.http.patch(
        f"/v1/episodes/{episode['id']}",
        json={"clinician_id": other["id"], "ended_on": "2020-01-01"},
        headers=tenant.admin,
    )
    assert response.status_code == 422
    after = expect(
        await attune.http.get(f"/v1/episodes/{episode['id']}", headers=tenant.admin), 200
    )
    assert after["clinician_id"] == episode["clinician_id"]


async def test_failed_commit_of_a_submission_saves_nothing(
    attune: Attune, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The submission, its session, its audit event and its alerts are committed together. On
    SQLite they share the request's transaction; on PostgreSQL they are one statement that
    commits as a whole (services/submissions/store_pg.py), so nothing written before it may
    persist when it fails."""
    from services.submissions import store_pg as pg_hot_path
    from tests.support import srs

    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    events_before = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)

    async def failing_commit(self: Any) -> Any:
        raise OperationalError("COMMIT", {}, Exception("connection lost"))

    async def lost_connection(*args: Any, **kwargs: Any) -> Any:
        raise asyncpg.exceptions.ConnectionDoesNotExistError("connection lost")

    with monkeypatch.context() as patch:
        patch.setattr(AsyncConnection, "commit", failing_commit)
        patch.setattr(asyncpg.transaction.Transaction, "commit", failing_commit)
        patch.setattr(pg_hot_path, "store_submission", lost_connection)
        response = await attune.http.post(
            "/v1/submissions",
            json={
                "episode_id": eid,
                "instrument": "srs",
                "session_number": 1,
                "answers": srs(5, 5, 5, 5),  # would raise alliance.low
            },
            headers=tenant.admin,
        )
    assert response.status_code == 503
    listed = expect(
        await attune.http.get(f"/v1/episodes/{eid}/submissions", headers=tenant.admin), 200
    )
    assert listed["items"] == []
    alerts = expect(
        await attune.http.get(f"/v1/alerts?episode_id={eid}", headers=tenant.admin), 200
    )
    assert alerts["items"] == []
    events = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)["items"]
    new = {e["action"] for e in events} - {e["action"] for e in events_before["items"]}
    assert "submission.create" not in new


@pytest.mark.postgres_only
async def test_driver_statements_run_in_the_sqlalchemy_transaction_they_join(
    settings: Settings,
) -> None:
    """`driver_transaction()` under an open SQLAlchemy connection hands out the asyncpg
    connection inside that same transaction, also before SQLAlchemy ran any statement (its
    adapter begins lazily): one transaction id, and a rollback undoes what the driver did."""
    if settings.is_sqlite:
        pytest.skip("the asyncpg driver runs on PostgreSQL only")
    engine = create_engine(settings)
    pool = await create_driver_pool(settings)
    assert pool is not None
    slug = f"uow-{uuid.uuid4().hex[:12]}"
    try:
        uow = UnitOfWork(engine, pool)
        conn = await uow.connection()
        driver = await uow.driver_transaction()
        assert driver is not None
        assert driver.is_in_transaction()
        by_driver = await driver.fetchval("SELECT txid_current()")
        await driver.execute(
            "INSERT INTO organizations (id, name, slug, created_at, export_secret)"
            " VALUES ($1, 'UoW', $2, now(), 'x')",
            uuid.uuid4(),
            slug,
        )
        assert (await conn.exec_driver_sql("SELECT txid_current()")).scalar() == by_driver
        await uow.close()  # not committed: rolled back

        check = UnitOfWork(engine, pool)
        found = await (await check.connection()).scalar(
            text("SELECT count(*) FROM organizations WHERE slug = :slug"), {"slug": slug}
        )
        await check.close()
        assert found == 0
    finally:
        await pool.close()
        await engine.dispose()
