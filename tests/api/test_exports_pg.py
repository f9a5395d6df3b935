"""Every export on PostgreSQL (services/exports/batches_pg.py, services/exports/columnar.py) gives
what the generic path gives: the same bytes for NDJSON and CSV, the same file for Parquet, for
every dataset, format and mode, in every window and for a caseload — also for the values the two
could write differently (floats, escapes, formulas, JSON of any shape, concerns)."""

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from services.exports import batches_pg
from services.exports import runner as export_runner
from services.kernel.auth import Actor, Principal
from tests.api.test_exports_api import raise_concern, world
from tests.support import Attune, Tenant, expect
from tests.support.exports import both, prepared_export

DATASETS = ("submissions", "scores", "alerts")
FORMATS = ("ndjson", "csv", "parquet")


def exporter(tenant: Tenant) -> Actor:
    principal = Principal(
        key_id=None,
        org_id=uuid.UUID(tenant.org_id),
        scopes=frozenset({"exports:read", "exports:identified", "concerns:read"}),
        clinician_id=None,
    )
    return Actor(principal, None)


async def odd_world(app: FastAPI, tenant: Tenant) -> dict[str, Any]:
    """`world`, a concern, and stored values chosen where the two paths could differ."""
    w = await world(tenant)
    await raise_concern(app, tenant, w["episodes"][0]["id"], '=rude, "very"\nrude')
    subs = [uuid.UUID(s) for s in w["submissions"]]
    odd_scores = [
        (36.0, '{"mean": 9, "band": "a \\"quoted\\" \\\\ band\\n\\u0001 é 😀",'
               ' "subscales": {"goal": 16, "task": 1.50, "bond": null}}'),
        (-0.0, '{"mean": -0.0, "below_cutoff": null, "clinical": "false", "total": 7}'),
        (1e-07, '{"mean": 1e15, "total": 1e-07, "subscales": {"x": -2, "y": 0.0}}'),
        (None, '{"total": null, "subscales": null}'),
    ]  # fmt: skip
    async with app.state.engine.begin() as conn:
        for sub, (total, scores) in zip(subs, odd_scores, strict=False):
            await conn.execute(
                sa.text(
                    "UPDATE submissions SET total = :total,"
                    " scores = scores || CAST(:scores AS jsonb) WHERE id = :id"
                ),
                {"total": total, "scores": scores, "id": sub},
            )
        await conn.execute(
            sa.text("UPDATE submissions SET scores = '{}', rater = '-1+2' WHERE id = :id"),
            {"id": subs[4]},
        )
        await conn.execute(
            sa.text("UPDATE clients SET external_id = '@x, \"y\"' WHERE id = :id;").bindparams(
                id=uuid.UUID(w["client"]["id"])
            )
        )
        alerts = (
            (
                await conn.execute(
                    sa.text("SELECT id FROM alerts WHERE org_id = :org ORDER BY id"),
                    {"org": uuid.UUID(tenant.org_id)},
                )
            )
            .scalars()
            .all()
        )
        odd_json = [
            ('{"b": [1, 2.50, {"c": null}], "a": "\\u00e9\\n"}', '"just text"'),
            ("[]", "7"),
            ("true", "null"),
        ]
        for alert, (params, evidence) in zip(alerts, odd_json, strict=False):
            await conn.execute(
                sa.text(
                    "UPDATE alerts SET rule_params = CAST(:params AS jsonb),"
                    " evidence = CAST(:evidence AS jsonb), note = '+1', message = 'a\r\nb'"
                    " WHERE id = :id AND type <> 'concern.reported'"
                ),
                {"params": params, "evidence": evidence, "id": alert},
            )
        # Timestamps PostgreSQL writes with fewer fraction digits than isoformat, or none.
        ten = datetime(2026, 3, 1, 10, tzinfo=UTC)
        times = {
            "zero": ten,
            "tenth": ten.replace(microsecond=100_000),
            "twelve": ten.replace(microsecond=120_000),
            "micro": datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        }
        await conn.execute(
            sa.text(
                "UPDATE submissions SET occurred_at = :zero,"
                " created_at = :twelve, voided_at = :tenth"
                " WHERE id = :id"
            ),
            {
                "zero": times["zero"],
                "twelve": times["twelve"],
                "tenth": times["tenth"],
                "id": subs[0],
            },
        )
        await conn.execute(
            sa.text("UPDATE submissions SET occurred_at = :micro WHERE id = :id"),
            {"micro": times["micro"], "id": subs[1]},
        )
        await conn.execute(
            sa.text(
                "UPDATE alerts SET created_at = :zero,"
                " acknowledged_at = :tenth,"
                " resolved_at = :micro WHERE id = :id"
            ),
            {
                "zero": times["zero"],
                "tenth": times["tenth"],
                "micro": times["micro"],
                "id": alerts[0],
            },
        )
        middle = (
            await conn.execute(
                sa.text("SELECT changed_at FROM submissions WHERE id = :id"), {"id": subs[2]}
            )
        ).scalar_one()
    return {**w, "middle": middle}


@pytest.mark.parametrize("dataset", DATASETS)
async def test_every_postgresql_export_writes_the_generic_paths_output(
    app: FastAPI, attune: Attune, dataset: str
) -> None:
    if app.state.driver_pool is None:
        pytest.skip("PostgreSQL only")
    tenant = await attune.tenant()
    w = await odd_world(app, tenant)
    actor = exporter(tenant)
    windows: list[dict[str, Any]] = [
        {},
        {"until": w["middle"]},
        {"since": w["middle"]},
        {"instrument": "srs"},
        {"clinician": w["clinician"]["id"]},
    ]
    compared = 0
    for fmt in FORMATS:
        for identified in (False, True):
            for window in windows:
                prepared = await prepared_export(
                    app, actor, dataset, fmt, window, identified=identified
                )
                fast, generic = await both(app, actor, prepared)
                case = (fmt, identified, window)
                assert fast == generic, case
                if fmt == "parquet":
                    rows = pq.read_table(io.BytesIO(fast)).num_rows
                else:
                    rows = fast.count(b"\n") - (fmt == "csv")
                if not window:
                    assert rows >= 3, case  # the comparison is of something
                compared += rows
    assert compared > 50


async def test_a_broken_off_postgresql_csv_export_gives_its_connection_back_and_is_audited(
    app: FastAPI, attune: Attune
) -> None:
    pool = app.state.driver_pool
    if pool is None:
        pytest.skip("PostgreSQL only")
    tenant = await attune.tenant()
    await world(tenant)
    actor = exporter(tenant)
    prepared = await prepared_export(app, actor, "alerts", "csv", {}, identified=True)
    body = export_runner.stream(
        prepared,
        engine=app.state.engine,
        sessionmaker=app.state.sessionmaker,
        actor=actor,
        driver_pool=pool,
        batch_rows=1,
    )
    header = await anext(body)
    assert header.startswith(b"alert_id,")
    first = await anext(body)
    assert first.count(b"\r\n") == 1
    await body.aclose()  # the client went away, with the next batch asked for
    assert pool.get_idle_size() == pool.get_size()
    events = expect(await tenant.http.get("/v1/audit-events?limit=5", headers=tenant.admin), 200)[
        "items"
    ]
    finish = next(e for e in events if e["action"] == "export.finish")
    assert (finish["outcome"], finish["details"]["rows"]) == ("incomplete", 1)


async def test_postgresqls_text_of_a_timestamp_becomes_what_isoformat_writes(app: FastAPI) -> None:
    """Identified exports read timestamps as PostgreSQL's text in UTC (`batches_pg._utc_text`),
    made ISO 8601 in Python: for every count of trailing zeros in the fraction, the first and
    last years a datetime holds, and whatever DateStyle the session has (`stream` sets ISO)."""
    pool = app.state.driver_pool
    if pool is None:
        pytest.skip("PostgreSQL only")
    sql = """
        SELECT t, timezone('UTC', t)::text FROM (
            SELECT timestamptz '2026-01-01 00:00:00+00'
                + (i * (10 ^ (i % 7))::bigint) * interval '1 microsecond' AS t
            FROM generate_series(0, 700) i
            UNION ALL SELECT timestamptz '0001-01-01 00:00:00+00'
            UNION ALL SELECT timestamptz '9999-12-31 23:59:59.999999+00'
            UNION ALL SELECT NULL
        ) times"""
    read: list[Any] = []

    def keep(rows: list[Any]) -> tuple[int, bytes]:
        read.extend(rows)
        return len(rows), b""

    async with pool.acquire() as driver:
        await driver.execute("SET DateStyle = 'SQL, DMY'")
        try:
            async for _ in batches_pg.stream(driver, sql, [], keep, batch_rows=100):
                pass
        finally:
            await driver.execute("RESET DateStyle")
    assert len(read) == 704
    stamps, texts = zip(*read, strict=True)
    assert {len(t) for t in texts if t} == {19, 21, 22, 23, 24, 25, 26}
    assert batches_pg.iso_texts(texts) == [None if t is None else t.isoformat() for t in stamps]
