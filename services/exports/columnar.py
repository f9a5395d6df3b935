"""Export encoders that take a batch by columns (pure): the same bytes as
`services.exports.encoders`, with the work done one column at a time.

`services.exports.encoders` turns each row into a dict (NDJSON) or runs a function on each value
(CSV): one Python call per row or per value. Here a batch is one sequence of values per export
column (``columns[i][j]`` is row ``j``'s value of column ``i``), and each column is formatted by
one list comprehension chosen by its kind; rows are put together at the end by C code
(`str.join` over `zip`, pyarrow's arrays). The PostgreSQL readers
(`services.exports.batches_pg`) produce such batches; tests/api/test_exports_api.py checks that
every dataset, format and mode gives what the generic path gives.

Values follow the generic path's (`services.exports.datasets.Shapers`): ``str``, ``int``,
``float``, ``bool``, timezone-aware ``datetime``, and for JSON columns their JSON text or a
parsed value. A timestamp may also come as the text `datetime.isoformat` writes for it in UTC
(``2026-01-01T09:30:00.250000+00:00``): passed on as it is in NDJSON and CSV, parsed by Arrow for
Parquet. Columns named in ``plain`` hold ids or pseudonyms only (UUID text, hex digits): they
are written without escaping, quoting or neutralising, as none of their characters needs it.

Repeated values (an instrument, a band, a float) are formatted once per column and remembered in
bounded caches, so memory stays flat whatever the export's size.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate, chain, groupby
from typing import TYPE_CHECKING, Any, cast

import orjson

from services.exports.datasets import JSON_KINDS, Column
from services.exports.encoders import (
    PARQUET_ROW_GROUP,
    Sink,
    csv_value,
    json_text,
    neutralise,
    number_map,
)

if TYPE_CHECKING:
    import pyarrow

Batch = Sequence[Sequence[Any]]
CACHE_SIZE = 65_536


@dataclass(frozen=True, slots=True)
class Repeat:
    """A batch whose export rows come several from one source row (the ``scores`` dataset: a
    row per score of a submission): the columns marked False in ``per_row`` hold one value per
    source row, written once and repeated ``counts[i]`` times for source row ``i``; the others
    hold one value per export row."""

    counts: Sequence[int]
    per_row: Sequence[bool]

    def indices(self) -> list[int]:
        """For each export row, its source row."""
        counts = self.counts
        if all(n == 2 for n in counts):
            return [i for i in range(len(counts)) for _ in (0, 1)]
        return [i for i, n in enumerate(counts) for _ in range(n)]

    def repeated(self, values: Sequence[Any]) -> list[Any]:
        counts = self.counts
        if all(n == 2 for n in counts):
            return [v for v in values for _ in (0, 1)]
        return [v for v, n in zip(values, counts, strict=True) for _ in range(n)]


def _lines(parts: list[list[str]], separator: str, repeat: Repeat | None) -> Iterable[str]:
    """Each export row's columns joined by ``separator``. With ``repeat``, each run of columns
    of one value per source row is joined once per source row, then repeated."""
    if repeat is None:
        return map(separator.join, zip(*parts, strict=True))
    groups: list[Sequence[str]] = []
    for per_row, run in groupby(zip(repeat.per_row, parts, strict=True), key=lambda t: t[0]):
        joined = list(map(separator.join, zip(*(p for _, p in run), strict=True)))
        groups.append(joined if per_row else repeat.repeated(joined))
    return map(separator.join, zip(*groups, strict=True))


class _Bounded(dict[Any, str]):
    """A dict that forgets everything once it holds ``size`` entries."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: str) -> str:
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value


class ColumnEncoder:
    """What every column-wise encoder offers: `start`, `encode_columns` per batch, `finish`."""

    def start(self) -> bytes:
        return b""

    def encode_columns(self, batch: Batch, repeat: Repeat | None = None) -> bytes:
        raise NotImplementedError

    def finish(self) -> bytes:
        return b""


# ----- NDJSON -------------------------------------------------------------------------------------


def _json(value: Any) -> str:
    """What orjson writes for ``value`` (as `encoders.NdjsonEncoder` does)."""
    return orjson.dumps(value).decode()


class _NdjsonColumn:
    """Formats one column's values as ``"name":value`` parts (with the separator before it)."""

    def __init__(self, column: Column, *, first: bool, plain: bool) -> None:
        self.head = ('{"' if first else ',"') + column.name + '":'
        self.kind = column.kind
        self.plain = plain
        self.null = self.head + "null"
        self.cache = _Bounded()
        self.bools = {True: self.head + "true", False: self.head + "false", None: self.null}

    def _put(self, value: Any) -> str:
        return self.cache.put(value, self.head + _json(value))

    def _any(self, value: Any) -> str:
        """Anything, as the generic encoder writes it (JSON text passed through)."""
        if value is None:
            return self.null
        if self.kind in JSON_KINDS and isinstance(value, str):
            return self.head + value
        return self.head + _json(value)

    def parts(self, values: Sequence[Any]) -> list[str]:
        head, null, kind, any_ = self.head, self.null, self.kind, self._any
        if self.plain:
            return [null if v is None else f'{head}"{v}"' for v in values]
        if kind == "str":
            get, put = self.cache.get, self._put
            return [
                null if v is None else (get(v) or put(v)) if v.__class__ is str else any_(v)
                for v in values
            ]
        if kind == "int":
            return [head + str(v) if v.__class__ is int else any_(v) for v in values]
        if kind == "float":
            get, put = self.cache.get, self._put
            # Zeros are not kept: 0.0 and -0.0 are equal keys but written differently; nor other
            # types, as 1 and 1.0 are equal keys too.
            return [(get(v) or put(v)) if v.__class__ is float and v else any_(v) for v in values]
        if kind == "bool":
            bools = self.bools
            return [bools[v] if v is None or v.__class__ is bool else any_(v) for v in values]
        if kind in JSON_KINDS:
            return [head + v if v.__class__ is str else any_(v) for v in values]
        # Timestamps: ISO 8601 text needs no escaping.
        return [null if v is None else f'{head}"{v}"' if v.__class__ is str else any_(v)
                for v in values]  # fmt: skip


class NdjsonColumns(ColumnEncoder):
    def __init__(self, columns: Sequence[Column], plain: frozenset[str]) -> None:
        self._columns = [
            _NdjsonColumn(c, first=i == 0, plain=c.name in plain) for i, c in enumerate(columns)
        ]

    def encode_columns(self, batch: Batch, repeat: Repeat | None = None) -> bytes:
        if not batch or not batch[0]:
            return b""
        parts = [column.parts(values) for column, values in zip(self._columns, batch, strict=True)]
        return ("}\n".join(_lines(parts, "", repeat)) + "}\n").encode()


# ----- CSV ----------------------------------------------------------------------------------------

# What `csv.writer` (QUOTE_MINIMAL, doubled quotes, CRLF) quotes: a field holding the delimiter,
# the quote character or a character of the line terminator (CPython's Modules/_csv.c).
_NEEDS_QUOTES = re.compile('[,"\r\n]').search


def _csv_text(text: str) -> str:
    """A field as `csv.writer` writes it."""
    return '"' + text.replace('"', '""') + '"' if _NEEDS_QUOTES(text) else text


def _csv_field(value: Any, *, is_text: bool) -> str:
    """Anything, as `encoders.CsvEncoder` writes it: a text column's string neutralised, other
    values through `encoders.csv_value`, then as `csv.writer` turns them into a field (``str``,
    None empty)."""
    value = neutralise(value) if is_text and isinstance(value, str) else csv_value(value)
    if value is None:
        return ""
    return _csv_text(value if isinstance(value, str) else str(value))


class _CsvColumn:
    """Formats one column's values as CSV fields."""

    def __init__(self, column: Column, *, plain: bool) -> None:
        self.kind = column.kind
        self.plain = plain
        self.is_text = column.kind not in JSON_KINDS
        self.cache = _Bounded()

    def _any(self, value: Any) -> str:
        return _csv_field(value, is_text=self.is_text)

    def _put(self, value: Any) -> str:
        return self.cache.put(value, self._any(value))

    def fields(self, values: Sequence[Any]) -> list[str]:
        kind, any_ = self.kind, self._any
        if self.plain:
            return ["" if v is None else v for v in values]
        if kind == "str":
            get, put = self.cache.get, self._put
            return ["" if v is None else (get(v) or put(v)) if v.__class__ is str else any_(v)
                    for v in values]  # fmt: skip
        if kind == "int":
            return [str(v) if v.__class__ is int else any_(v) for v in values]
        if kind == "float":
            get, put = self.cache.get, self._put
            # Zeros are not kept (0.0 and -0.0 are equal keys), nor other types (1 == 1.0).
            return [(get(v) or put(v)) if v.__class__ is float and v else any_(v) for v in values]
        if kind == "bool":
            bools = _CSV_BOOLS
            return [bools[v] if v is None or v.__class__ is bool else any_(v) for v in values]
        if kind == "timestamp":
            # ISO 8601 holds no character to quote, and starts with a digit.
            return ["" if v is None else v if v.__class__ is str else v.isoformat()
                    if v.__class__ is datetime else any_(v) for v in values]  # fmt: skip
        return ["" if v is None else _csv_text(v) if v.__class__ is str else any_(v)
                for v in values]  # fmt: skip


_CSV_BOOLS: dict[Any, str] = {True: "TRUE", False: "FALSE", None: ""}


class CsvColumns(ColumnEncoder):
    def __init__(self, columns: Sequence[Column], plain: frozenset[str]) -> None:
        self._names = [c.name for c in columns]
        self._columns = [_CsvColumn(c, plain=c.name in plain) for c in columns]

    def start(self) -> bytes:
        return (",".join(_csv_text(name) for name in self._names) + "\r\n").encode()

    def encode_columns(self, batch: Batch, repeat: Repeat | None = None) -> bytes:
        if not batch or not batch[0]:
            return b""
        fields = [c.fields(values) for c, values in zip(self._columns, batch, strict=True)]
        return ("\r\n".join(_lines(fields, ",", repeat)) + "\r\n").encode()


# ----- Parquet ------------------------------------------------------------------------------------


_STR_OR_NONE = frozenset({str, type(None)})
_DICT_OR_NONE = frozenset({dict, type(None)})
_EMPTY_OBJECT = frozenset({"{}"})


def _parsed(values: Sequence[object]) -> list[object]:
    """Each value parsed, if it is JSON text: texts as the database writes them (each one whole
    JSON value) in one `orjson.loads` of the batch's JSON array."""
    if _STR_OR_NONE.issuperset(map(type, values)):
        texts = cast("Sequence[str | None]", values)
        parsed = orjson.loads("[" + ",".join(["null" if v is None else v for v in texts]) + "]")
        if len(parsed) == len(values):
            return parsed  # type: ignore[no-any-return]
    return [orjson.loads(v) if isinstance(v, str | bytes) else v for v in values]


def number_maps(values: Sequence[object], map_type: "pyarrow.MapType") -> "pyarrow.MapArray":
    """A "numbers" column (JSON objects of numbers, parsed or as text) as an Arrow map array of
    ``map_type``: what ``pa.array([encoders.number_map(v) for v in values], map_type)`` makes,
    built from three flat arrays (offsets, keys, values) instead of a list of pairs per row,
    which allocated a Python tuple per entry and kept the garbage collector busy."""
    import pyarrow as pa

    if _STR_OR_NONE.issuperset(map(type, values)) and _EMPTY_OBJECT.issuperset(values):
        # The common batch of subscales: none (SRS, ORS, PHQ-9, GAD-7), nothing to parse.
        empty = pa.array([0] * (len(values) + 1), type=pa.int32())
        return pa.MapArray.from_arrays(
            empty, pa.array([], map_type.key_type), pa.array([], map_type.item_type), map_type
        )
    parsed = _parsed(values)
    kinds = set(map(type, parsed))
    if not kinds <= _DICT_OR_NONE:
        return pa.array([number_map(v) for v in values], type=map_type)  # what fails, fails there
    # JSON objects' values: numbers or null (else `float` fails, as in `number_map`).
    mask, objects = None, cast("list[dict[str, float | None]]", parsed)
    if type(None) in kinds:
        mask = pa.array([d is None for d in parsed], type=pa.bool_())
        objects = [d or {} for d in objects]
    keys = list(chain.from_iterable(objects))
    numbers = list(chain.from_iterable(map(dict.values, objects)))
    try:
        items = pa.array(numbers, type=map_type.item_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # past 2**53, text: as `float` converts them
        items = pa.array(
            [None if v is None else float(v) for v in numbers], type=map_type.item_type
        )
    offsets = pa.array(list(accumulate(map(len, objects), initial=0)), type=pa.int32())
    return pa.MapArray.from_arrays(
        offsets, pa.array(keys, type=map_type.key_type), items, type=map_type, mask=mask
    )


class ParquetColumns(ColumnEncoder):
    """Each batch becomes an Arrow record batch at once (compact, unlike Python rows); they are
    written as one row group once ``PARQUET_ROW_GROUP`` rows are pending, as the generic encoder
    does, so memory holds at most one row group's columns."""

    def __init__(self, columns: Sequence[Column], plain: frozenset[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from services.exports.encoders import ParquetEncoder

        self._pa = pa
        self._kinds = [c.kind for c in columns]
        self._schema = ParquetEncoder.schema(columns)
        self._sink = Sink()
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression="zstd")
        self._pending: list[Any] = []
        self._pending_rows = 0

    def start(self) -> bytes:
        return self._sink.take()

    def encode_columns(self, batch: Batch, repeat: Repeat | None = None) -> bytes:
        if not batch or not batch[0]:
            return b""
        pa, arrays = self._pa, []
        per_row = [True] * len(batch) if repeat is None else repeat.per_row
        indices = None if repeat is None else pa.array(repeat.indices(), type=pa.int32())
        for kind, field, values, one_each in zip(
            self._kinds, self._schema, batch, per_row, strict=True
        ):
            if kind == "json":
                values = [v if v is None or v.__class__ is str else json_text(v) for v in values]
            if kind == "numbers":
                array = number_maps(values, field.type)
            elif kind == "timestamp" and _STR_OR_NONE.issuperset(map(type, values)):
                array = pa.array(values, type=pa.string()).cast(field.type)  # ISO 8601 text
            else:
                array = pa.array(values, type=field.type)
            arrays.append(array if one_each else array.take(indices))
        added = pa.RecordBatch.from_arrays(arrays, schema=self._schema)
        self._pending.append(added)
        self._pending_rows += added.num_rows
        if self._pending_rows >= PARQUET_ROW_GROUP:
            self._flush()
        return self._sink.take()

    def _flush(self) -> None:
        table = self._pa.Table.from_batches(self._pending, schema=self._schema)
        self._pending, self._pending_rows = [], 0
        self._writer.write_table(table)

    def finish(self) -> bytes:
        if self._pending:
            self._flush()
        self._writer.close()
        return self._sink.take()


def column_encoder(format: str, columns: Sequence[Column], plain: frozenset[str]) -> ColumnEncoder:
    if format == "ndjson":
        return NdjsonColumns(columns, plain)
    if format == "csv":
        return CsvColumns(columns, plain)
    return ParquetColumns(columns, plain)
