"""Export formats: each encoder turns batches of rows into bytes as they come (pure).

- NDJSON: one JSON object per line (``\\n``), UTF-8; JSON columns are nested objects.
- CSV: RFC 4180 — a header line, CRLF line ends, fields quoted when they hold a comma, a quote
  or a line break, quotes doubled; empty for null; ``TRUE``/``FALSE``; timestamps in ISO 8601;
  JSON columns as JSON text. pandas (``read_csv``) and DuckDB (``read_csv``) load it unchanged.
  A text cell a spreadsheet would run as a formula is prefixed with ``'`` (see `neutralise`).
- Parquet: one row group per ~``PARQUET_ROW_GROUP`` rows, typed columns (timestamps in UTC),
  answers and subscales as maps of string to double, other JSON columns as JSON text. Needs
  pyarrow, the optional ``parquet`` extra.

A JSON column's value is a parsed object or its JSON text (as the database returned it).
"""

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol, cast, get_args

import orjson

from services.exports.datasets import JSON_KINDS, Column, ExportRow

if TYPE_CHECKING:
    import pyarrow
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

Format = Literal["ndjson", "csv", "parquet"]
FORMATS: tuple[str, ...] = get_args(Format)
MEDIA_TYPES: dict[str, str] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8; header=present",
    "parquet": "application/vnd.apache.parquet",
}
# Rows per Parquet row group, in both encoders (the fast path's file must be the generic one's).
# A row group is held as Arrow columns until it is written, so it sets an export's memory: at
# 50,000 rows, identified alerts (message, evidence, parameters: the widest rows) grew the
# service's RSS by 72.3 MiB at 1,000,000 rows, over issue 18's 64 MiB (bench/README.md).
# 20,000 rows is still far above the few thousand under which readers' per-group overhead shows.
PARQUET_ROW_GROUP = 20_000

Row = ExportRow


class Encoder(Protocol):
    def start(self) -> bytes: ...

    def encode(self, rows: Sequence[Row]) -> bytes: ...

    def finish(self) -> bytes: ...


def parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def json_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def number_map(value: object) -> list[tuple[str, float | None]] | None:
    """A JSON object of numbers (parsed or as text) as the (key, value) pairs of a Parquet map."""
    if value is None:
        return None
    if isinstance(value, str | bytes):
        value = orjson.loads(value)
        if value is None:  # JSON null: as NDJSON and CSV have it, null
            return None
    numbers = cast("Mapping[str, float | None]", value)  # a "numbers" column's value
    return [(k, None if v is None else float(v)) for k, v in numbers.items()]


class NdjsonEncoder:
    def __init__(self, columns: Sequence[Column]) -> None:
        self._names = tuple(c.name for c in columns)
        self._json = tuple(i for i, c in enumerate(columns) if c.kind in JSON_KINDS)

    def start(self) -> bytes:
        return b""

    def encode(self, rows: Sequence[Row]) -> bytes:
        names, json_columns, dumps = self._names, self._json, orjson.dumps
        fragment, newline = orjson.Fragment, orjson.OPT_APPEND_NEWLINE
        out = []
        for row in rows:
            record = dict(zip(names, row, strict=True))
            for i in json_columns:
                value = row[i]
                if isinstance(value, str):
                    record[names[i]] = fragment(value)
            out.append(dumps(record, option=newline))
        return b"".join(out)

    def finish(self) -> bytes:
        return b""


# OWASP, "CSV Injection": a cell starting with one of these is run as a formula by Excel,
# LibreOffice and Google Sheets (``=HYPERLINK(...)`` sends the sheet's data away, ``=cmd|...``
# once ran programs). Identified exports carry text people typed: external ids, raters' labels,
# void reasons, notes.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` as a spreadsheet shows it and never runs it: prefixed with a single quote, as
    OWASP recommends, when it starts like a formula. Only text cells: numbers are written as
    numbers, so a negative score stays a number. (defusedcsv does the same but misses tab and
    CR and rewrites ``|``, so this is the rule, written out.)"""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_value(value: object) -> object:
    if value is None:
        return ""
    # Upper case: R's read.csv, pandas, DuckDB and Frictionless all read TRUE/FALSE as logical.
    if value is True:
        return "TRUE"
    if value is False:
        return "FALSE"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


class CsvEncoder:
    def __init__(self, columns: Sequence[Column]) -> None:
        self._names = [c.name for c in columns]
        # JSON text starts with { [ " a digit, -, t, f or n: never a formula; a JSON number
        # such as -1 must stay as it is for the JSON to parse.
        self._text = tuple(c.kind not in JSON_KINDS for c in columns)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def _take(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode()

    def start(self) -> bytes:
        self._writer.writerow(self._names)
        return self._take()

    def encode(self, rows: Sequence[Row]) -> bytes:
        text = self._text
        self._writer.writerows(
            [
                neutralise(v) if is_text and isinstance(v, str) else csv_value(v)
                for is_text, v in zip(text, row, strict=True)
            ]
            for row in rows
        )
        return self._take()

    def finish(self) -> bytes:
        return b""


class Sink(io.RawIOBase):
    """A write-only file that hands out what was written since the last `take`."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: "Buffer") -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        out, self._chunks = b"".join(self._chunks), []
        return out


class ParquetEncoder:
    def __init__(self, columns: Sequence[Column]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._columns = list(columns)
        self._json = [c.kind == "json" for c in columns]
        self._numbers = [c.kind == "numbers" for c in columns]
        self._schema = self.schema(columns)
        self._sink = Sink()
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression="zstd")
        self._pending: list[Row] = []

    @staticmethod
    def schema(columns: Sequence[Column]) -> "pyarrow.Schema":
        """The Arrow schema of the columns (a ``pyarrow.Schema``)."""
        import pyarrow as pa

        types = {
            "str": pa.string(),
            "int": pa.int64(),
            "float": pa.float64(),
            "bool": pa.bool_(),
            "timestamp": pa.timestamp("us", tz="UTC"),
            "json": pa.string(),
            # Nested, so pandas, DuckDB and R get the values without parsing JSON.
            "numbers": pa.map_(pa.string(), pa.float64()),
        }
        return pa.schema([(c.name, types[c.kind]) for c in columns])

    def start(self) -> bytes:
        return self._sink.take()

    def _flush(self) -> None:
        rows, self._pending = self._pending, []
        pa, arrays = self._pa, []
        kinds = zip(self._json, self._numbers, self._schema, strict=True)
        for i, (is_json, is_numbers, field) in enumerate(kinds):
            values = [row[i] for row in rows]
            if is_json:
                values = [json_text(v) for v in values]
            elif is_numbers:
                values = [number_map(v) for v in values]
            arrays.append(pa.array(values, type=field.type))
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

    def encode(self, rows: Sequence[Row]) -> bytes:
        self._pending.extend(rows)
        if len(self._pending) >= PARQUET_ROW_GROUP:
            self._flush()
        return self._sink.take()

    def finish(self) -> bytes:
        if self._pending:
            self._flush()
        self._writer.close()
        return self._sink.take()


def encoder(format: str, columns: Sequence[Column]) -> Encoder:
    if format == "ndjson":
        return NdjsonEncoder(columns)
    if format == "csv":
        return CsvEncoder(columns)
    return ParquetEncoder(columns)
