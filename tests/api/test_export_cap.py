"""The per-organisation cap on concurrent exports (issue 14 finding 8): leases in the database,
so the cap holds across replicas; 429 with Retry-After past it; other organisations unaffected."""

import uuid
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select
from sqlmodel import col

from api.app import create_app
from models.base import utcnow
from models.limits import ExportLease
from services.fhir import export as fhir_export
from services.kernel.config import Settings
from tests.support import Attune, expect, srs, submit


async def _leases(app: FastAPI, org_id: str) -> int:
    async with app.state.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(ExportLease)
            .where(col(ExportLease.org_id) == uuid.UUID(org_id))
        )
    return int(count or 0)


async def test_exports_past_the_cap_get_429_and_finished_ones_give_their_lease_back(
    app: FastAPI, attune: Attune, settings: Settings
) -> None:
    tenant, other = await attune.tenant(), await attune.tenant()
    episode = await tenant.episode()
    await submit(tenant, episode["id"], "srs", 1, srs(9, 9, 9, 9))
    cap = settings.export_max_concurrent
    # Exports of this organisation running elsewhere (another replica): their leases.
    elsewhere = create_app(settings)
    async with elsewhere.router.lifespan_context(elsewhere), elsewhere.state.engine.begin() as c:
        for _ in range(cap):
            await c.execute(
                ExportLease.__table__.insert().values(  # type: ignore[attr-defined]
                    id=uuid.uuid4(),
                    org_id=uuid.UUID(tenant.org_id),
                    expires_at=utcnow() + timedelta(minutes=5),
                )
            )
    for path in ("/v1/exports/submissions", "/v1/exports/alerts?identified=true&format=csv"):
        response = await attune.http.get(path, headers=tenant.admin)
        assert response.status_code == 429, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert int(response.headers["retry-after"]) >= 1
    # Another organisation exports as usual.
    expect(await attune.http.get("/v1/exports/submissions", headers=other.admin), 200)
    assert await _leases(app, other.org_id) == 0

    # One finishes: the next export runs, and gives its own lease back when done.
    async with app.state.engine.begin() as conn:
        first = await conn.scalar(
            select(col(ExportLease.id))
            .where(col(ExportLease.org_id) == uuid.UUID(tenant.org_id))
            .limit(1)
        )
        await conn.execute(delete(ExportLease).where(col(ExportLease.id) == first))
    response = await attune.http.get("/v1/exports/submissions", headers=tenant.admin)
    assert response.status_code == 200, response.text
    assert episode["id"] not in response.text  # de-identified, but there
    assert response.text.count("\n") == 1
    assert await _leases(app, tenant.org_id) == cap - 1


async def test_an_expired_lease_does_not_count(
    app: FastAPI, attune: Attune, settings: Settings
) -> None:
    tenant = await attune.tenant()
    async with app.state.engine.begin() as conn:
        for _ in range(settings.export_max_concurrent):
            await conn.execute(
                ExportLease.__table__.insert().values(  # type: ignore[attr-defined]
                    id=uuid.uuid4(),
                    org_id=uuid.UUID(tenant.org_id),
                    expires_at=utcnow() - timedelta(seconds=1),
                )
            )
    expect_ok = await attune.http.get("/v1/exports/scores", headers=tenant.admin)
    assert expect_ok.status_code == 200, expect_ok.text


async def test_fhir_bulk_files_count_against_the_cap(
    app: FastAPI, attune: Attune, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fhir_export, "SETTLE_SECONDS", 0.0)  # the job completes at once
    tenant = await attune.tenant()
    episode = await tenant.episode()
    await submit(tenant, episode["id"], "srs", 1, srs(9, 9, 9, 9))
    kick_off = await attune.http.get("/fhir/$export", headers=tenant.admin)
    assert kick_off.status_code == 202
    job = kick_off.headers["content-location"].rsplit("/", 1)[-1]
    file = f"/fhir/$export-files/{job}/Observation.ndjson"
    async with app.state.engine.begin() as conn:
        for _ in range(settings.export_max_concurrent):
            await conn.execute(
                ExportLease.__table__.insert().values(  # type: ignore[attr-defined]
                    id=uuid.uuid4(),
                    org_id=uuid.UUID(tenant.org_id),
                    expires_at=utcnow() + timedelta(minutes=5),
                )
            )
    refused = await attune.http.get(file, headers=tenant.admin)
    assert refused.status_code == 429, refused.text
    assert "retry-after" in refused.headers
    async with app.state.engine.begin() as conn:
        await conn.execute(
            delete(ExportLease).where(col(ExportLease.org_id) == uuid.UUID(tenant.org_id))
        )
    done = await attune.http.get(file, headers=tenant.admin)
    assert done.status_code == 200, done.text
    assert await _leases(app, tenant.org_id) == 0
