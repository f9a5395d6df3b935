"""Exports with a data dictionary (issue 17): the Frictionless data package of each export
validates a CSV export with `frictionless`, and every dataset in every format loads in pandas and
DuckDB with the package's types, no column read as the wrong type (checked field by field)."""

import io
import json
import uuid
from pathlib import Path
from typing import Any

import duckdb
import frictionless
import orjson
import pandas as pd
import pytest
from pandas.api import types as ptypes

from services.exports.datasets import columns
from tests.api.test_exports_api import world
from tests.support import Attune, Tenant, bearer, expect

DATASETS = ("submissions", "scores", "alerts")

PANDAS_CSV_DTYPES = {"string": "string", "integer": "Int64", "number": "Float64"}
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "datetime": "TIMESTAMP WITH TIME ZONE",
    "object": "JSON",
}


async def export(tenant: Tenant, dataset: str, fmt: str, identified: bool) -> bytes:
    params = {"format": fmt, "identified": str(identified).lower()}
    response = await tenant.http.get(f"/v1/exports/{dataset}", params=params, headers=tenant.admin)
    assert response.status_code == 200, response.text
    return response.content


async def package_of(tenant: Tenant, dataset: str, identified: bool) -> dict[str, Any]:
    params = {"identified": str(identified).lower()}
    path = f"/v1/exports/{dataset}/datapackage.json"
    package: dict[str, Any] = expect(
        await tenant.http.get(path, params=params, headers=tenant.admin), 200
    )
    return package


async def fields_of(tenant: Tenant, dataset: str, identified: bool) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = (await package_of(tenant, dataset, identified))["resources"][0][
        "schema"
    ]["fields"]
    return fields


def check_pandas(frame: pd.DataFrame, fields: list[dict[str, Any]], where: str) -> None:
    assert list(frame.columns) == [f["name"] for f in fields], where
    for f in fields:
        column, kind = frame[f["name"]], f["type"]
        present = column.dropna()
        label = f"{where}: {f['name']} ({kind}, read as {column.dtype})"
        if kind == "string":
            assert ptypes.is_string_dtype(column) or column.dtype == object, label
            assert all(isinstance(v, str) for v in present), label
        elif kind == "integer":
            assert ptypes.is_integer_dtype(column), label
        elif kind == "number":
            assert ptypes.is_float_dtype(column), label
        elif kind == "boolean":
            assert ptypes.is_bool_dtype(column), label
        elif kind == "datetime":
            assert isinstance(column.dtype, pd.DatetimeTZDtype), label
        else:
            assert kind == "object", label
            assert all(isinstance(v, dict | list | tuple) for v in present), label


def read_pandas(content: bytes, fmt: str, fields: list[dict[str, Any]]) -> pd.DataFrame:
    """Each format read the way an analyst would, with the package's types where the format
    carries none (CSV, NDJSON)."""
    by_type = {f["name"]: f["type"] for f in fields}
    if fmt == "parquet":
        frame = pd.read_parquet(io.BytesIO(content), dtype_backend="numpy_nullable")
        for name, kind in by_type.items():  # maps arrive as (key, value) pairs
            if kind == "object":  # JSON text where the value is not a map
                frame[name] = (
                    frame[name]
                    .astype(object)
                    .map(lambda v: json.loads(v) if isinstance(v, str) else v, na_action="ignore")
                )
        return frame
    dtypes = {n: PANDAS_CSV_DTYPES[t] for n, t in by_type.items() if t in PANDAS_CSV_DTYPES}
    dates = [n for n, t in by_type.items() if t == "datetime"]
    if fmt == "csv":
        frame = pd.read_csv(
            io.BytesIO(content),
            dtype={**dtypes, **{n: "string" for n, t in by_type.items() if t == "object"}},
            true_values=["TRUE"],
            false_values=["FALSE"],
            parse_dates=dates,
            keep_default_na=False,
            na_values=[""],
        )
        for name, kind in by_type.items():
            if kind == "object":
                frame[name] = frame[name].astype(object).map(json.loads, na_action="ignore")
            elif kind == "boolean":
                frame[name] = frame[name].astype("boolean")
        return frame
    frame = pd.read_json(io.BytesIO(content), lines=True, dtype=dtypes)
    for name, kind in by_type.items():
        if kind == "boolean":
            frame[name] = frame[name].astype("boolean")
        if kind == "datetime" and not isinstance(frame[name].dtype, pd.DatetimeTZDtype):
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def check_duckdb(path: Path, fmt: str, fields: list[dict[str, Any]], where: str) -> None:
    types = {f["name"]: DUCKDB_TYPES[f["type"]] for f in fields}
    spec = "{" + ", ".join(f"'{n}': '{t}'" for n, t in types.items()) + "}"
    if fmt == "csv":
        relation = f"read_csv('{path}', header = true, columns = {spec})"
    elif fmt == "ndjson":
        relation = f"read_json('{path}', format = 'newline_delimited', columns = {spec})"
    else:
        relation = f"read_parquet('{path}')"
    # The relation names a file of this test's own temporary folder.
    described = duckdb.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()  # noqa: S608
    read = {name: kind for name, kind, *_ in described}
    assert list(read) == list(types), where
    for f in fields:
        got, kind = read[f["name"]], f["type"]
        label = f"{where}: {f['name']} ({kind}) read as {got}"
        if kind == "object" and fmt == "parquet":
            assert got in ("MAP(VARCHAR, DOUBLE)", "VARCHAR"), label
        else:
            assert got == DUCKDB_TYPES[kind], label
    duckdb.execute(f"SELECT * FROM {relation}").fetchall()  # noqa: S608 (every row converts)


@pytest.mark.parametrize("dataset", DATASETS)
async def test_every_export_loads_with_the_data_package_types_in_pandas_and_duckdb(
    attune: Attune, dataset: str, tmp_path: Path
) -> None:
    tenant = await attune.tenant()
    await world(tenant)
    for identified in (False, True):
        fields = await fields_of(tenant, dataset, identified)
        assert [f["name"] for f in fields] == [
            c.name for c in columns(dataset, identified=identified)
        ]
        assert all(f["description"] for f in fields)
        expected = [
            orjson.loads(line)
            for line in (await export(tenant, dataset, "ndjson", identified)).splitlines()
        ]
        assert expected
        for fmt in ("ndjson", "csv", "parquet"):
            where = f"{dataset} {fmt} identified={identified}"
            content = await export(tenant, dataset, fmt, identified)
            frame = read_pandas(content, fmt, fields)
            assert len(frame) == len(expected), where
            check_pandas(frame, fields, where)
            # instrument_version stays the text it was ("3.0" is not 3).
            if "instrument_version" in frame:
                assert [str(v) for v in frame["instrument_version"].dropna()] == [
                    r["instrument_version"] for r in expected if r["instrument_version"] is not None
                ], where
            path = tmp_path / f"{dataset}-{identified}.{fmt}"
            path.write_bytes(content)
            check_duckdb(path, fmt, fields, where)


@pytest.mark.parametrize("dataset", DATASETS)
async def test_frictionless_validates_a_csv_export_against_its_data_package(
    attune: Attune, dataset: str, tmp_path: Path
) -> None:
    tenant = await attune.tenant()
    await world(tenant)
    for identified in (False, True):
        folder = tmp_path / str(identified)
        folder.mkdir()
        package = await package_of(tenant, dataset, identified)
        (folder / "datapackage.json").write_text(json.dumps(package))
        csv = await export(tenant, dataset, "csv", identified)
        (folder / package["resources"][0]["path"]).write_bytes(csv)
        report = frictionless.validate(str(folder / "datapackage.json"))
        assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
        assert report.tasks[0].stats["rows"] == len(csv.splitlines()) - 1


async def test_the_data_package_needs_an_export_scope(attune: Attune) -> None:
    tenant = await attune.tenant()
    reader = bearer(await tenant.key("submissions:read"))
    response = await tenant.http.get("/v1/exports/submissions/datapackage.json", headers=reader)
    assert response.status_code == 403
    unknown = await tenant.http.get("/v1/exports/sessions/datapackage.json", headers=tenant.admin)
    assert unknown.status_code == 422


# ----- a row count an analyst can check -----------------------------------------------------------


@pytest.mark.parametrize("dataset", DATASETS)
async def test_an_ndjson_trailer_and_the_export_record_give_the_row_count(
    attune: Attune, dataset: str
) -> None:
    tenant = await attune.tenant()
    await world(tenant)
    plain = await tenant.http.get(f"/v1/exports/{dataset}", headers=tenant.admin)
    rows = plain.content.splitlines()
    assert rows
    assert b"_trailer" not in plain.content

    response = await tenant.http.get(
        f"/v1/exports/{dataset}", params={"trailer": "true"}, headers=tenant.admin
    )
    *body, last = response.content.splitlines()
    export_id = response.headers["attune-export-id"]
    assert body == rows
    assert orjson.loads(last) == {"_trailer": {"export_id": export_id, "rows": len(rows)}}

    record = expect(
        await tenant.http.get(f"/v1/exports/runs/{export_id}", headers=tenant.admin), 200
    )
    assert record["rows"] == len(rows)
    assert record["status"] == "complete"
    assert (record["dataset"], record["format"]) == (dataset, "ndjson")
    assert record["finished_at"] is not None


async def test_an_export_record_is_seen_only_by_the_key_that_ran_it(attune: Attune) -> None:
    tenant = await attune.tenant()
    await world(tenant)
    response = await tenant.http.get("/v1/exports/scores", params={"format": "csv"},
                                     headers=tenant.admin)  # fmt: skip
    export_id = response.headers["attune-export-id"]
    record = expect(
        await tenant.http.get(f"/v1/exports/runs/{export_id}", headers=tenant.admin), 200
    )
    assert record["rows"] == len(response.content.splitlines()) - 1  # less the header
    another = bearer(await tenant.key("exports:read"))
    assert (
        await tenant.http.get(f"/v1/exports/runs/{export_id}", headers=another)
    ).status_code == 404
    other_org = await attune.tenant()
    seen = await other_org.http.get(f"/v1/exports/runs/{export_id}", headers=other_org.admin)
    assert seen.status_code == 404
    unknown = await tenant.http.get(f"/v1/exports/runs/{uuid.uuid4()}", headers=tenant.admin)
    assert unknown.status_code == 404
