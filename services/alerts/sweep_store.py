"""What the sweep (`services.alerts.sweep`) writes differently per database: its storage seam,
chosen once from the engine (:func:`sweep_store`), so the sweep never asks which database it is
on (tests/unit/test_codebase.py reads it for that)."""

import uuid
from collections.abc import Collection, Sequence
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.alerts.model import AlertRow
from services.alerts.store import ALERTS
from services.webhooks import outbox
from services.webhooks.events import EventRow


class SweepStore(Protocol):
    async def before_big_scan(self, conn: AsyncConnection) -> None:
        """Ready the transaction for one scan over every active episode."""
        ...

    async def insert_alerts(
        self, conn: AsyncConnection, rows: Sequence[AlertRow], events: Sequence[EventRow]
    ) -> Collection[uuid.UUID]:
        """Insert the alerts the table takes (``ON CONFLICT DO NOTHING``: one open overdue
        alert per episode) and the outbox events of those, each event naming its alert as
        ``subject_id``; the ids inserted."""
        ...


class SqliteSweepStore:
    async def before_big_scan(self, conn: AsyncConnection) -> None:
        return None

    async def insert_alerts(
        self, conn: AsyncConnection, rows: Sequence[AlertRow], events: Sequence[EventRow]
    ) -> Collection[uuid.UUID]:
        stmt = sqlite.insert(ALERTS).on_conflict_do_nothing().returning(ALERTS.c.id)
        inserted = set((await conn.execute(stmt, list(rows))).scalars().all())
        await outbox.write(conn, [e for e in events if e["subject_id"] in inserted])
        return inserted


def _insert_with_events_sql() -> str:
    """A batch of new alerts, their outbox events and webhook deliveries in one statement from
    two JSON arrays (the submission hot path's statement, with the events kept only for the
    alerts actually inserted); returns the inserted ids."""
    from services.submissions import store_pg

    events_sql = store_pg.WRITE_EVENTS.format(
        guard="WHERE e.subject_id IN (SELECT id FROM ins)"
    ).replace("$EVENTS", "CAST(:events AS jsonb)")
    # Only constant SQL is put together here; the rows travel as bound parameters.
    return (
        "WITH ins AS (INSERT INTO alerts SELECT * FROM jsonb_populate_recordset(NULL::alerts, "  # noqa: S608
        "CAST(:rows AS jsonb)) ON CONFLICT DO NOTHING RETURNING id),"
        + events_sql
        + " SELECT id FROM ins"
    )


class PostgresSweepStore:
    async def before_big_scan(self, conn: AsyncConnection) -> None:
        # One big scan: compiling it just in time costs more than it saves.
        await conn.execute(text("SET LOCAL jit = off"))

    async def insert_alerts(
        self, conn: AsyncConnection, rows: Sequence[AlertRow], events: Sequence[EventRow]
    ) -> Collection[uuid.UUID]:
        from services.submissions import store_pg

        params = {"rows": store_pg.rows_json(rows), "events": store_pg.rows_json(events)}
        inserted = (await conn.execute(text(_insert_with_events_sql()), params)).scalars().all()
        return {uuid.UUID(str(alert_id)) for alert_id in inserted}


def sweep_store(engine: AsyncEngine) -> SweepStore:
    return SqliteSweepStore() if engine.dialect.name == "sqlite" else PostgresSweepStore()
