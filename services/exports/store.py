"""Where an export's rows are read, per database: the storage seam of `services.exports.runner`,
chosen once from the engine and the driver pool (:func:`export_store`), so the runner never asks
which database it is on (tests/unit/test_codebase.py reads it for that)."""

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from services.exports import Pseudonyms, Shapers, batches_pg, encoder
from services.exports import ndjson_pg as export_pg
from services.exports.columnar import ColumnEncoder
from services.exports.runner import READ_ONLY_OPTION, PreparedExport, has_fast_path, statement
from services.kernel.database import DriverPool, DriverRecord

Batches = AsyncGenerator[tuple[int, bytes], None]


class ExportStore(Protocol):
    def batches(self, p: PreparedExport, batch_rows: int) -> Batches:
        """(rows, bytes) per batch of the export, from its header to its trailer."""
        ...


class SqlExportStore:
    """Through SQLAlchemy: every dataset and format, on both databases. One statement on a
    connection of its own, in a read-only transaction, through a server-side cursor."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def batches(self, p: PreparedExport, batch_rows: int) -> Batches:
        shape = Shapers(Pseudonyms(p.secret), identified=p.query.identified).for_dataset(
            p.query.dataset
        )
        out = encoder(p.query.format, p.columns)
        yield 0, out.start()
        async with self.engine.connect() as conn:
            reader = await conn.execution_options(**{READ_ONLY_OPTION: True})
            result = await reader.stream(statement(p).execution_options(yield_per=batch_rows))
            async for batch in result.partitions(batch_rows):
                shaped = list(shape(batch))
                yield len(shaped), out.encode(shaped)
        yield 0, out.finish()


class PgExportStore(SqlExportStore):
    """PostgreSQL with the asyncpg pool: every export is read on a pooled connection and encoded
    a column at a time (`services.exports.batches_pg`); de-identified NDJSON submissions, the
    common pull, by their own line writer (`services.exports.ndjson_pg`). The same bytes as on
    SQLAlchemy, faster."""

    def __init__(self, engine: AsyncEngine, pool: DriverPool) -> None:
        super().__init__(engine)
        self.pool = pool

    async def batches(self, p: PreparedExport, batch_rows: int) -> Batches:
        if has_fast_path(p):
            sql, args = export_pg.submissions_statement(
                org_id=p.org_id,
                since=p.since,
                until=p.until,
                instrument=p.query.instrument,
                clinician_id=p.clinician_id,
            )
            lines = export_pg.SubmissionLines(Pseudonyms(p.secret))
            encode: Callable[[list[DriverRecord]], tuple[int, bytes]] = lines.counted
            out: ColumnEncoder = ColumnEncoder()
        else:
            sql, args, names = batches_pg.statement(p)
            out = batches_pg.encoder_of(p)
            encode = batches_pg.Encoded(batches_pg.Columns(p, names), out)
        yield 0, out.start()
        # The connection goes back when the stream ends or is closed, broken off or not.
        async with self.pool.acquire() as driver:
            fast = batches_pg.stream(driver, sql, args, encode, batch_rows=batch_rows)
            async with aclosing(fast):
                async for batch in fast:
                    yield batch
        yield 0, out.finish()


def export_store(engine: AsyncEngine, pool: DriverPool | None) -> ExportStore:
    return SqlExportStore(engine) if pool is None else PgExportStore(engine, pool)
