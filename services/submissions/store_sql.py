"""The submission store on SQLAlchemy Core, in the request's transaction: SQLite's, and
PostgreSQL's where no driver pool is configured. Prebuilt statements, parameters passed at
execution, so SQLAlchemy compiles each once and the ORM's per-call machinery is skipped. The same
behaviour as `store_pg` (the store tests run against both)."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import cache

from sqlalchemy import Insert, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from models.audit import AuditEvent
from models.base import new_id
from models.episodes import Episode
from models.submissions import CareSession, Submission
from services.alerts import engine as alert_engine
from services.alerts import store as alert_store
from services.alerts import sweep as alert_sweep
from services.alerts.engine import Writes
from services.alerts.model import AlertRow, SeriesPoint
from services.alerts.replay import history_needed
from services.alerts.store import SeriesKey
from services.kernel.database import UnitOfWork
from services.kernel.visibility import Reader, visible_episodes
from services.submissions.rows import SubmissionValues
from services.submissions.store import SERIES_KEY, NewSubmission, SubmissionContext, series_key_of
from services.webhooks import outbox
from services.webhooks.events import EventRow

_EPISODES = Episode.__table__  # type: ignore[attr-defined]
_SESSIONS = CareSession.__table__  # type: ignore[attr-defined]
_SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
_INSERT_AUDIT = insert(_AUDIT)


@cache
def _writes(dialect: str) -> tuple[Insert, Insert]:
    """The session upsert and the submission insert, as two statements."""
    insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
    new_session = insert_into(_SESSIONS)
    upsert = new_session.on_conflict_do_update(
        index_elements=["org_id", "episode_id", "session_number"],
        # The first known time of a session wins; later submissions may fill it in.
        set_={
            "occurred_at": func.coalesce(_SESSIONS.c.occurred_at, new_session.excluded.occurred_at)
        },
    ).returning(_SESSIONS.c.id)
    submission = (
        insert_into(_SUBMISSIONS)
        .on_conflict_do_nothing(index_elements=SERIES_KEY, index_where=text("status = 'valid'"))
        .returning(_SUBMISSIONS.c.id)
    )
    return upsert, submission


class SqlSubmissionStore:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def context(
        self, key: SeriesKey, clinician_id: uuid.UUID | None, api_key_id: uuid.UUID | None
    ) -> SubmissionContext | None:
        # The key was checked by authentication, in this same transaction's reads.
        conn = await self.uow.connection()
        reader = Reader(key.org_id, clinician_id)
        stmt = alert_store.EPISODE_FACTS.where(visible_episodes(reader))
        row = (
            await conn.execute(stmt, {"org_id": key.org_id, "episode_id": key.episode_id})
        ).one_or_none()
        if row is None:
            return None
        overrides = await alert_store.load_overrides(conn, key.org_id)
        history = await alert_store.load_points(
            conn, key, tail=history_needed(alert_engine.settings_for(overrides))
        )
        rows = await alert_store.load_alert_rows(conn, key, unresolved_only=True)
        expected = await alert_engine.load_expected(conn, key)
        return SubmissionContext(alert_store.EpisodeFacts(*row), history, rows, overrides, expected)

    async def lock_episode(self, key: SeriesKey) -> None:
        await alert_store.lock_episode(await self.uow.connection(), key.org_id, key.episode_id)

    async def hold_transaction(self) -> None:
        await self.uow.connection()  # its transaction is open from the start

    async def store(self, new: NewSubmission) -> tuple[bool, uuid.UUID | None]:
        values = new.values
        conn = await self.uow.connection()
        bumped = await conn.execute(
            update(_EPISODES)
            .where(_EPISODES.c.org_id == values["org_id"], _EPISODES.c.id == values["episode_id"])
            .where(_EPISODES.c.alert_seq == new.alert_seq)
            .values(alert_seq=_EPISODES.c.alert_seq + 1)
        )
        if bumped.rowcount == 0:
            return False, None
        upsert_session, insert_submission = _writes(conn.dialect.name)
        session_values = {
            "id": new_id(),
            "org_id": values["org_id"],
            "episode_id": values["episode_id"],
            "session_number": values["session_number"],
            "occurred_at": values["occurred_at"],
            "created_at": values["created_at"],
        }
        session_id = (await conn.execute(upsert_session, session_values)).scalar_one()
        inserted: uuid.UUID | None = (
            await conn.execute(insert_submission, {**values, "session_id": session_id})
        ).scalar_one_or_none()
        if inserted is not None:
            await conn.execute(_INSERT_AUDIT, new.audit)
            await alert_store.write_alert_changes(conn, new.alerts)
            await outbox.write(conn, new.events)
        return True, inserted

    async def full_series(self, key: SeriesKey) -> tuple[list[SeriesPoint], list[AlertRow]]:
        conn = await self.uow.connection()
        points = await alert_store.load_points(conn, key)
        rows = await alert_store.load_alert_rows(conn, key, unresolved_only=False)
        return points, rows

    async def write_alerts(self, writes: Writes, events: Sequence[EventRow]) -> None:
        conn = await self.uow.connection()
        await alert_store.write_alert_changes(conn, writes)
        await outbox.write(conn, events)

    async def existing_valid(self, values: SubmissionValues) -> uuid.UUID | None:
        conn = await self.uow.connection()
        stmt = select(_SUBMISSIONS.c.id).where(_SUBMISSIONS.c.status == "valid")
        for name, value in zip(SERIES_KEY, series_key_of(values), strict=True):
            stmt = stmt.where(_SUBMISSIONS.c[name] == value)
        existing: uuid.UUID | None = await conn.scalar(stmt)
        return existing

    async def clear_overdue(
        self, key: SeriesKey, people: tuple[uuid.UUID, uuid.UUID], now: datetime
    ) -> Writes:
        conn = await self.uow.connection()
        return await alert_sweep.clear_overdue(conn, key.org_id, key.episode_id, people, now)
