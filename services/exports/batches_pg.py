"""Every export on PostgreSQL, read straight through asyncpg and encoded a column at a time.

The generic path (`services.exports.store.SqlExportStore`) reads through SQLAlchemy, shapes each
row in Python (`services.exports.datasets.Shapers`) and encodes it row by row: measured on the
export benchmark (bench/README.md), about a tenth of `COPY`'s rows/s. This path writes the same
bytes (Parquet: the same values) for every dataset, format and mode:

- the statement selects the same rows in the same order (`export_runner.rows_statement`: same
  joins, visibility, window, instrument and order), with columns chosen for the export: ids as
  text, empty strings as NULL, ``days_since_episode_start`` as an integer (UTC calendar days),
  JSON as text, each labelled with its export column's name; compiled for asyncpg once per export;
- it is read through a server-side cursor in batches, the next batch asked for before this one is
  encoded (`stream`), so the database works while Python does;
- a batch becomes one sequence per export column (`zip`), and only what the database cannot do
  is done in Python, a column at a time: pseudonyms (HMAC-SHA256, `services.exports.pseudonyms`;
  an episode's three and a rater's remembered in bounded caches), the scores dataset's rows per
  score, alert durations, JSON of alerts re-written as the generic path writes it;
- `services.exports.columnar` encodes the columns (NDJSON, CSV, Parquet).

De-identified NDJSON submissions keep their own line writer (`services.exports.ndjson_pg`),
measured quicker still for that common pull.
"""

import asyncio
import gc
import json
from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from models.alerts import CONCERN, Alert
from models.base import UTCDateTime
from models.episodes import Episode
from models.people import Client, Clinician
from models.submissions import Submission
from services.exports import Pseudonyms
from services.exports.columnar import CACHE_SIZE, ColumnEncoder, Repeat, column_encoder
from services.exports.runner import (
    PreparedExport,
    rows_statement,
    submission_scores,
    submission_times,
)
from services.kernel.database import Driver

_S = Submission.__table__  # type: ignore[attr-defined]
_A = Alert.__table__  # type: ignore[attr-defined]
_E = Episode.__table__  # type: ignore[attr-defined]
_C = Client.__table__  # type: ignore[attr-defined]
_CL = Clinician.__table__  # type: ignore[attr-defined]
_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]

# Columns that hold UUID text or pseudonyms (hex digits) only: written as they are.
PLAIN = frozenset({"submission_id", "alert_id", "episode_id", "client_id", "clinician_id"})


def _text(column: Any, name: str) -> Any:
    return sa.cast(column, sa.Text).label(name)


def _or_null(column: Any) -> Any:
    """The generic path writes an empty string as null (``value or None``)."""
    return sa.func.nullif(column, "").label(column.name)


def _days(at: str) -> Any:
    # UTC calendar days from the episode's start, as `datasets.days_between` counts them.
    return sa.literal_column(
        f"((({at}) AT TIME ZONE 'UTC')::date - episodes.started_on)", sa.Integer
    ).label("days_since_episode_start")


def _micros_since_created(at: str) -> Any:
    # Exact (EXTRACT gives a numeric): Python makes the hours of them as `hours_between` does.
    return sa.literal_column(
        f"(EXTRACT(EPOCH FROM (alerts.{at} - alerts.created_at)) * 1000000)::bigint", sa.BigInteger
    )


def _utc_text(column: sa.ColumnElement[object]) -> sa.Label[str]:
    """A timestamp as PostgreSQL writes it in UTC (``2026-01-01 09:30:00.25``, DateStyle ISO,
    which `stream` sets): made `datetime.isoformat`'s text by `iso_texts`. Asyncpg decoding a
    timestamp to a datetime and ``isoformat`` cost about 1.4 µs a value; this about 0.1, and
    PostgreSQL writes its text as `COPY` does."""
    utc = sa.func.timezone(sa.literal_column("'UTC'"), column)
    return sa.cast(utc, sa.Text).label(column.name)


# What `datetime.isoformat` adds to PostgreSQL's text of a UTC timestamp, by the text's length:
# PostgreSQL leaves out a fraction's trailing zeros (and a zero fraction), isoformat writes six
# digits (none for a zero fraction), and the offset.
_ISO_TAIL = {19: "+00:00", **{n: "0" * (26 - n) + "+00:00" for n in range(21, 27)}}


def _iso_text(text: str) -> str:
    """`iso_texts` for a text of another length: a year past 9999 or before 1, which no datetime
    holds (ValueError, as the generic path fails to read it)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).isoformat()


def iso_texts(texts: Sequence[str | None]) -> list[str | None]:
    """PostgreSQL's texts of UTC timestamps (`_utc_text`) as ``datetime.isoformat`` writes the
    same instants, timezone-aware in UTC: ``2026-01-01T09:30:00.250000+00:00``."""
    tails = _ISO_TAIL
    return [
        None if t is None else t[:10] + "T" + t[11:] + tails[len(t)] if len(t) in tails
        else _iso_text(t)
        for t in texts
    ]  # fmt: skip


def _people(table: Any, identified: bool) -> list[Any]:
    cols = [
        _text(table.c.episode_id, "episode_id"),
        _text(_E.c.client_id, "client_id"),
        _text(_E.c.clinician_id, "clinician_id"),
    ]
    if identified:
        cols += [
            _C.c.external_id.label("client_external_id"),
            _CL.c.external_id.label("clinician_external_id"),
        ]
    return cols


def _columns(dataset: str, identified: bool) -> list[Any]:
    if dataset == "alerts":
        cols = [_text(_A.c.id, "alert_id"), *_people(_A, identified)]
        cols += [
            _text(_A.c.submission_id, "submission_id"),
            _A.c.type,
            _A.c.severity,
            _A.c.status,
            _A.c.resolution,
            _or_null(_A.c.instrument),
            _or_null(_A.c.respondent),
            _or_null(_A.c.rater),
            _or_null(_A.c.subscale),
            _A.c.session_number,
            _A.c.rule_version,
            _text(_A.c.rule_params, "rule_params"),
            _text(_A.c.evidence, "evidence"),
            _days("alerts.created_at"),
            _micros_since_created("acknowledged_at").label("hours_to_acknowledge"),
            _micros_since_created("resolved_at").label("hours_to_resolve"),
        ]
        if identified:
            cols += [
                _A.c.message,
                _A.c.note,
                _utc_text(_A.c.created_at),
                _utc_text(_A.c.updated_at),
                _utc_text(_A.c.acknowledged_at),
                _utc_text(_A.c.resolved_at),
            ]
        return cols
    cols = [_text(_S.c.id, "submission_id"), *_people(_S, identified)]
    cols += [
        _C.c.population,
        _S.c.instrument,
        _S.c.instrument_version,
        _S.c.session_number,
        _S.c.respondent,
        _or_null(_S.c.rater),
        _S.c.status,
        _days("coalesce(submissions.occurred_at, submissions.created_at)"),
    ]
    if dataset == "scores":
        scores = _S.c.scores
        cols += [
            _text(scores["total"], "total"),
            _text(scores["mean"], "mean"),
            _text(scores["subscales"], "subscales"),
        ]
    else:
        cols += submission_scores()
    times = submission_times(dataset, identified)
    return cols + [
        _utc_text(c) if isinstance(c, sa.ColumnElement) and isinstance(c.type, UTCDateTime) else c
        for c in times
    ]


def statement(p: PreparedExport) -> tuple[str, list[Any], list[str]]:
    """The export's statement for asyncpg, its arguments, and its columns' names."""
    stmt = rows_statement(p, _columns(p.query.dataset, p.query.identified))
    compiled = stmt.compile(dialect=_DIALECT)
    params = compiled.construct_params()
    args = [params[name] for name in compiled.positiontup or ()]
    return str(compiled), args, [c.name for c in stmt.selected_columns]


class _Remembered(dict[Any, Any]):
    """A dict that forgets everything once it holds ``CACHE_SIZE`` entries."""

    def put(self, key: Any, value: Any) -> Any:
        if len(self) >= CACHE_SIZE:
            self.clear()
        self[key] = value
        return value


_MISSING = object()
# Export rows, their columns, and how they repeat (`services.exports.columnar.Repeat`).
Shaped = tuple[int, list[Sequence[Any]], Repeat | None]


class Columns:
    """Turns the statement's rows into the export's columns (`PreparedExport.columns`), with
    the values `services.exports.datasets.Shapers` gives."""

    def __init__(self, p: PreparedExport, names: list[str]) -> None:
        self._names = names
        self._identified = p.query.identified
        self._export = [c.name for c in p.columns]
        self._pseudonyms = Pseudonyms(p.secret)
        self._episodes = _Remembered()
        self._raters = _Remembered()
        self._json = _Remembered()
        self._numbers = _Remembered()
        self._per_score = [name in ("score", "subscale", "value") for name in self._export]
        self._times = [c.name for c in p.columns if c.kind == "timestamp"]
        self.shape: Callable[[list[Any]], Shaped] = {
            "submissions": self._submissions,
            "scores": self._scores,
            "alerts": self._alerts,
        }[p.query.dataset]

    def _by_name(self, rows: list[Any]) -> dict[str, Sequence[Any]]:
        return dict(zip(self._names, zip(*rows, strict=True), strict=True))

    def _keyed(self, by: dict[str, Sequence[Any]], name: str) -> None:
        """De-identified: ``name``'s ids (text) become their pseudonyms."""
        if self._identified:
            return
        of = self._pseudonyms.of_text(name.removesuffix("_id"))
        by[name] = [None if v is None else of(v) for v in by[name]]

    def _people(self, by: dict[str, Sequence[Any]]) -> None:
        """De-identified: the episode's, client's and clinician's pseudonyms (once per episode),
        and the rater's (once per rater)."""
        if self._identified:
            return
        of, episodes, raters = self._pseudonyms.of, self._episodes, self._raters

        def people(episode: str, client: str | None, clinician: str | None) -> tuple[Any, ...]:
            found = (of("episode", episode), of("client", client), of("clinician", clinician))
            return episodes.put(episode, found)  # type: ignore[no-any-return]

        trios = [
            episodes.get(e) or people(e, c, k)
            for e, c, k in zip(by["episode_id"], by["client_id"], by["clinician_id"], strict=True)
        ]
        by["episode_id"], by["client_id"], by["clinician_id"] = zip(*trios, strict=True)
        by["rater"] = [
            None if r is None else raters.get(r) or raters.put(r, of("rater", r))
            for r in by["rater"]
        ]

    def _ordered(self, by: dict[str, Sequence[object]]) -> list[Sequence[object]]:
        for name in self._times:
            by[name] = iso_texts(cast("Sequence[str | None]", by[name]))  # `_utc_text`'s
        return [by[name] for name in self._export]

    def _submissions(self, rows: list[Any]) -> Shaped:
        by = self._by_name(rows)
        self._keyed(by, "submission_id")
        self._people(by)
        return len(rows), self._ordered(by), None

    def _number(self, text: str | None) -> Any:
        """A JSON value's text as the generic path parses it (SQLAlchemy's `json.loads`)."""
        if text is None:
            return None
        found = self._numbers.get(text, _MISSING)
        if found is _MISSING:
            found = self._numbers.put(text, json.loads(text))
        return found

    def _scores(self, rows: list[Any]) -> Shaped:
        """One row per score: the total, the mean, then each subscale in the stored order."""
        by = self._by_name(rows)
        self._keyed(by, "submission_id")
        self._people(by)
        number = self._number
        totals = [number(t) for t in by.pop("total")]
        means = [number(m) for m in by.pop("mean")]
        subscales = [
            () if t is None or t == "{}" else (json.loads(t) or {}).items()
            for t in by.pop("subscales")
        ]
        score: list[str] = []
        subscale: list[str | None] = []
        value: list[Any] = []
        if not any(subscales):  # the common batch: no subscales (SRS, ORS, PHQ-9, GAD-7)
            score, subscale = ["total", "mean"] * len(totals), [None, None] * len(totals)
            value = [v for pair in zip(totals, means, strict=True) for v in pair]
            subscales = []
        for total, mean, items in zip(totals, means, subscales, strict=False):
            score += ("total", "mean")
            subscale += (None, None)
            value += (total, mean)
            for name, number_ in items:
                score.append("subscale")
                subscale.append(name)
                value.append(number_)
        # The submission's columns are written once per submission and repeated per score.
        counts = [2 + len(items) for items in subscales] if subscales else [2] * len(totals)
        repeat = Repeat(counts, self._per_score)
        by.update(score=score, subscale=subscale, value=value)
        return len(score), self._ordered(by), repeat

    def _json_value(self, text: str | None) -> Any:
        """JSON as the generic path writes it: parsed by SQLAlchemy (`json.loads`), and an
        object or array written again by orjson (here once, as text the encoders pass on)."""
        if text is None:
            return None
        found = self._json.get(text, _MISSING)
        if found is _MISSING:
            value = json.loads(text)
            if isinstance(value, dict | list):
                value = orjson.dumps(value).decode()
            found = self._json.put(text, value)
        return found

    def _alerts(self, rows: list[Any]) -> Shaped:
        by = self._by_name(rows)
        self._keyed(by, "alert_id")
        self._keyed(by, "submission_id")
        self._people(by)
        value = self._json_value
        by["rule_params"] = [value(t) for t in by["rule_params"]]
        if self._identified:
            by["evidence"] = [value(t) for t in by["evidence"]]
        else:
            # A concern's evidence names what the client raised: never de-identified.
            by["evidence"] = [
                None if kind == CONCERN else value(t)
                for kind, t in zip(by["type"], by["evidence"], strict=True)
            ]
        # `datasets.hours_between`: round(timedelta.total_seconds() / 3600, 2), where
        # total_seconds() is the microseconds divided by 10**6 (int / int, correctly rounded).
        for name in ("hours_to_acknowledge", "hours_to_resolve"):
            by[name] = [None if us is None else round(us / 1_000_000 / 3600, 2) for us in by[name]]
        return len(rows), self._ordered(by), None


class Encoded:
    """A batch of the statement's rows → (export rows, bytes)."""

    def __init__(self, columns: Columns, encoder: ColumnEncoder) -> None:
        self._shape, self._encode = columns.shape, encoder.encode_columns

    def __call__(self, rows: list[Any]) -> tuple[int, bytes]:
        count, batch, repeat = self._shape(rows)
        return count, self._encode(batch, repeat)


def encoder_of(p: PreparedExport) -> ColumnEncoder:
    return column_encoder(p.query.format, p.columns, PLAIN)


_Batch = TypeVar("_Batch")
_Encoded = TypeVar("_Encoded")


def _uncollected(encode: Callable[[_Batch], _Encoded], batch: _Batch) -> _Encoded:
    """``encode(batch)`` with the cyclic garbage collector paused. Encoding a batch allocates
    tens of thousands of short-lived tuples, lists and dicts (zip, pseudonym trios, parsed JSON),
    freed by reference counting, yet each 700 allocations start a collection, and every few
    batches a full one that walks every object not frozen at start-up (pyarrow's and its
    imports'): measured, 15-25 % of an export's CPU. Encoding is synchronous, so nothing else
    in the event loop runs meanwhile; the collector resumes right after (with one young
    collection, as the allocations counted)."""
    if not gc.isenabled():
        return encode(batch)
    gc.disable()
    try:
        return encode(batch)
    finally:
        gc.enable()


async def stream(
    driver: Driver,
    sql: str,
    args: list[Any],
    encode: Callable[[list[Any]], tuple[int, bytes]],
    *,
    batch_rows: int,
) -> AsyncGenerator[tuple[int, bytes], None]:
    """(rows, bytes) per batch, read through a server-side cursor on ``driver`` (an asyncpg
    connection) in a read-only transaction. The next batch is asked for before this one is
    encoded, so the database produces it while Python encodes: one batch ahead, no more."""
    async with driver.transaction(readonly=True):
        # Timestamps read as text (`_utc_text`) are written as DateStyle ISO writes them.
        await driver.execute("SET LOCAL DateStyle = 'ISO'")
        cursor = await driver.cursor(sql, *args)
        pending = asyncio.ensure_future(cursor.fetch(batch_rows))
        try:
            while True:
                batch = await pending
                if not batch:
                    return
                pending = asyncio.ensure_future(cursor.fetch(batch_rows))
                await asyncio.sleep(0)  # let the fetch send its request before encoding
                yield _uncollected(encode, batch)
        finally:
            # Broken off: the batch asked for arrives and is dropped; cancelling the fetch would
            # leave the connection busy with the cancellation when it goes back to the pool.
            await asyncio.wait([pending])
