"""Analyst exports (DESIGN.md §8): `GET /v1/exports/{dataset}`, streamed from the database.

Two steps:
1. `prepare`, in the request's unit of work: checks the scopes and the format, fixes the window
   (`services.exports.window`), reads the organization's pseudonym secret and records an
   ``export.start`` audit event — committed with the request's transaction before the response
   starts, like every other request's, so an export that was begun is on record even if the
   stream later breaks.
2. `stream`, while the response is sent: one statement on a connection of its own (the request's
   transaction has ended by then), read through a server-side cursor in batches of
   ``BATCH_ROWS`` and encoded batch by batch, so memory stays flat whatever the export's size;
   the HTTP server's flow control holds the cursor back while the client is slow. The statement
   sees one snapshot, and it is only read: the rule "one transaction per request, committed
   before the response" is about writes, and none happens here. When the stream ends, the row
   count is known: an ``export.finish`` event (same resource id, ``outcome`` success or
   incomplete, with dataset, format, filters and rows in ``details``) is written in a short
   transaction of its own.
   On PostgreSQL every export is read through the app's asyncpg pool instead and encoded a
   column at a time (`services.exports.batches_pg`; de-identified NDJSON submissions, the common
   pull, by `services.exports.ndjson_pg`): the same bytes, faster.

Who sees what: the organization's rows only; a clinician-bound key only its caseload (the
episodes its clinician treats), as everywhere else; concerns only for keys that may read them
(`services.kernel.visibility`, as for every other read). ``identified=true`` needs
``exports:identified``.
"""

import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime

import anyio
import orjson
import sqlalchemy as sa
from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.alerts import Alert
from models.base import UTCDateTime, new_id, utcnow
from models.episodes import Episode
from models.people import Client, Clinician
from models.submissions import Submission
from models.tenancy import Organization
from services.exports import (
    Column,
    InvertedWindow,
    columns,
    export_window,
    parquet_available,
)
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.crypto import SecretBox
from services.kernel.database import DriverPool, UntypedSelect
from services.kernel.errors import InvalidInput, NotFound
from services.kernel.visibility import (
    Reader,
    sees_concerns,
    visible_alerts,
    visible_submissions,
)

log = logging.getLogger("attune.exports")
BATCH_ROWS = 5_000
# An execution option that makes SQLite open a deferred (reading) transaction instead of taking
# the write lock up front (services/kernel/database.py).
READ_ONLY_OPTION = "attune_read_only"

_S = Submission.__table__  # type: ignore[attr-defined]
_A = Alert.__table__  # type: ignore[attr-defined]
_E = Episode.__table__  # type: ignore[attr-defined]
_C = Client.__table__  # type: ignore[attr-defined]
_CL = Clinician.__table__  # type: ignore[attr-defined]
_O = Organization.__table__  # type: ignore[attr-defined]
# What an export selects: columns and labelled expressions, or a whole table (its columns).
Selected = sa.ColumnElement[object] | sa.Table


@dataclass(frozen=True, slots=True)
class ExportQuery:
    dataset: str
    format: str
    since: datetime | None
    until: datetime | None
    instrument: str | None
    identified: bool
    # NDJSON only: a last line {"_trailer": {"export_id": ..., "rows": N}} once every row is out,
    # so a reader can tell a whole file from a broken-off one.
    trailer: bool = False


@dataclass(frozen=True, slots=True)
class PreparedExport:
    run_id: uuid.UUID
    query: ExportQuery
    since: datetime | None
    until: datetime
    org_id: uuid.UUID
    clinician_id: uuid.UUID | None
    sees_concerns: bool
    secret: str
    columns: tuple[Column, ...]
    # Where the rows are read: "primary", or "replica" (services/kernel/replica.py).
    source: str = "primary"

    @property
    def reader(self) -> Reader:
        return Reader(self.org_id, self.clinician_id, self.sees_concerns)

    def details(self, **extra: JsonValue) -> dict[str, JsonValue]:
        q = self.query
        return {
            "dataset": q.dataset,
            "format": q.format,
            "identified": q.identified,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "instrument": q.instrument,
            "source": self.source,
            **extra,
        }


async def prepare(
    session: AsyncSession,
    *,
    actor: Actor,
    query: ExportQuery,
    settle_seconds: float,
    secrets: SecretBox,
    source: str = "primary",
    safe_until: datetime | None = None,
) -> PreparedExport:
    """``safe_until``: read from a replica, the instant up to which it has every commit; the
    window's ``until`` never passes it (less the settle time), so a lagging replica gives a
    shorter window, never a gap."""
    if query.identified:
        actor.principal.require("exports:identified")
    if query.format == "parquet" and not parquet_available():
        raise InvalidInput.at(
            "query.format",
            "parquet is not available on this server",
            type="format_unavailable",
            detail="Parquet needs the optional 'parquet' extra (pyarrow); ask for ndjson or csv",
        )
    try:
        now = utcnow() if safe_until is None else min(utcnow(), safe_until)
        since, until = export_window(
            now=now, since=query.since, until=query.until, settle_seconds=settle_seconds
        )
    except InvertedWindow as inverted:
        raise InvalidInput.at(
            "query.since", "since is later than until", type="window", detail=str(inverted)
        ) from None
    stored = await session.scalar(sa.select(_O.c.export_secret).where(_O.c.id == actor.org_id))
    if stored is None:  # pragma: no cover - a key's organization exists
        raise NotFound("organization not found")
    secret = secrets.open(stored)  # encrypted at rest (services/kernel/crypto.py)
    prepared = PreparedExport(
        run_id=new_id(),
        query=query,
        since=since,
        until=until,
        org_id=actor.org_id,
        clinician_id=actor.clinician_id,
        sees_concerns=sees_concerns(actor),
        secret=secret,
        columns=columns(query.dataset, identified=query.identified),
        source=source,
    )
    audit.record(
        session,
        actor,
        action="export.start",
        resource_type="export",
        resource_id=prepared.run_id,
        details=prepared.details(),
    )
    return prepared


def _window(
    stmt: UntypedSelect, changed: sa.ColumnElement[datetime], p: PreparedExport
) -> UntypedSelect:
    if p.since is not None:
        stmt = stmt.where(changed >= p.since)
    return stmt.where(changed < p.until)


def _people(identified: bool) -> list[Selected]:
    cols = [_E.c.client_id, _E.c.clinician_id, _E.c.started_on, _C.c.population]
    if identified:
        cols += [_C.c.external_id.label("client_external_id")]
        cols += [_CL.c.external_id.label("clinician_external_id")]
    return cols


def _joined(table: sa.Table, identified: bool) -> sa.Join:
    joined = table.join(_E, sa.and_(_E.c.id == table.c.episode_id, _E.c.org_id == table.c.org_id))
    joined = joined.join(_C, sa.and_(_C.c.id == _E.c.client_id, _C.c.org_id == _E.c.org_id))
    if identified:
        joined = joined.join(
            _CL, sa.and_(_CL.c.id == _E.c.clinician_id, _CL.c.org_id == _E.c.org_id)
        )
    return joined


def table_of(dataset: str) -> tuple[sa.Table, sa.ColumnElement[datetime]]:
    """The table an export of ``dataset`` reads, and its change-time column (the window's)."""
    if dataset == "alerts":
        return _A, _A.c.updated_at
    return _S, _S.c.changed_at


def rows_statement(p: PreparedExport, cols: Sequence[Selected]) -> UntypedSelect:
    """``cols`` for the export's rows: its table (`table_of`) joined to the episode and the client
    (and the clinician when identified), what the caller may read, in the window and of the
    instrument asked for, in change order. `statement` and the PostgreSQL readers
    (`services.exports.batches_pg`) select their columns through this, so they read the same rows
    in the same order."""
    identified, dataset = p.query.identified, p.query.dataset
    table, changed = table_of(dataset)
    visible = visible_alerts if dataset == "alerts" else visible_submissions
    stmt = sa.select(*cols).select_from(_joined(table, identified)).where(visible(p.reader))
    stmt = _window(stmt, changed, p)
    if p.query.instrument is not None:
        stmt = stmt.where(table.c.instrument == p.query.instrument)
    return stmt.order_by(changed, table.c.id)


def statement(p: PreparedExport) -> UntypedSelect:
    """The one statement an export reads, in change order."""
    identified, dataset = p.query.identified, p.query.dataset
    if dataset == "alerts":
        return rows_statement(p, [_A, *_people(identified)])
    event_at = sa.func.coalesce(_S.c.occurred_at, _S.c.created_at, type_=UTCDateTime())
    cols: list[Selected] = [
        _S.c.id,
        _S.c.episode_id,
        _S.c.instrument,
        _S.c.instrument_version,
        _S.c.session_number,
        _S.c.respondent,
        _S.c.rater,
        _S.c.status,
        event_at.label("event_at"),
        *_people(identified),
    ]
    if dataset == "scores":
        cols.append(_S.c.scores)
    else:
        cols += submission_scores()
    return rows_statement(p, cols + submission_times(dataset, identified))


def submission_times(dataset: str, identified: bool) -> list[Selected]:
    """The times an identified export of submissions or scores adds (and a void's, for the
    submissions dataset); none for a de-identified one."""
    if not identified:
        return []
    times: list[Selected] = [_S.c.occurred_at, _S.c.created_at, _S.c.changed_at]
    if dataset == "submissions":
        times += [_S.c.voided_at, _S.c.void_reason]
    return times


def submission_scores() -> list[Selected]:
    """The ``submissions`` export's score columns, from the stored scores object."""
    scores = _S.c.scores
    return [
        _S.c.total,
        scores["mean"].as_float().label("mean"),
        scores["band"].as_string().label("band"),
        scores["below_cutoff"].as_boolean().label("below_cutoff"),
        scores["clinical"].as_boolean().label("clinical"),
        # JSON text straight from the database: passed through, never parsed.
        sa.cast(scores["subscales"], sa.Text).label("subscales"),
        sa.cast(_S.c.answers, sa.Text).label("answers"),
    ]


def has_fast_path(p: PreparedExport) -> bool:
    """Whether `services.exports.ndjson_pg` writes this export on PostgreSQL."""
    q = p.query
    return q.dataset == "submissions" and q.format == "ndjson" and not q.identified


async def stream(
    p: PreparedExport,
    *,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    actor: Actor,
    driver_pool: DriverPool | None = None,
    batch_rows: int = BATCH_ROWS,
) -> AsyncGenerator[bytes, None]:
    """The export's bytes, batch by batch; audits the finished (or broken off) export. Read by
    the store of the database (`services.exports.store`): with ``driver_pool`` (PostgreSQL's
    asyncpg pool), exports that `services.exports.ndjson_pg` writes go through it."""
    # Imported here: the stores import this module for the statement they read.
    from services.exports.store import export_store

    rows, complete = 0, False
    try:
        batches = export_store(engine, driver_pool).batches(p, batch_rows)
        # Closed here, before the connection goes back, also when the stream is broken off.
        async with contextlib.aclosing(batches):
            async for count, chunk in batches:
                rows += count
                if chunk:
                    yield chunk
        if p.query.trailer and p.query.format == "ndjson":
            yield orjson.dumps(
                {"_trailer": {"export_id": str(p.run_id), "rows": rows}},
                option=orjson.OPT_APPEND_NEWLINE,
            )
        complete = True
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await _audit_finish(sessionmaker, actor, p, rows=rows, complete=complete)


async def _audit_finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    actor: Actor,
    p: PreparedExport,
    *,
    rows: int,
    complete: bool,
) -> None:
    try:
        async with sessionmaker() as session:
            audit.record(
                session,
                actor,
                action="export.finish",
                resource_type="export",
                resource_id=p.run_id,
                outcome="success" if complete else "incomplete",
                details=p.details(rows=rows),
            )
            await session.commit()
    except Exception:  # the export itself has been sent; its record must not crash the server
        log.exception("could not audit a finished export")
