"""The sweep: time-based alert checks (DESIGN.md §10.3.6), run by the worker every
``ATTUNE_SWEEP_SECONDS`` and by ``attune sweep [--now …]`` as of a given time.

What is due is decided in :mod:`services.alerts.due` (pure); this module finds it with set-based
SQL, in batches of ``batch`` rows, one transaction per batch, and writes each change with its
outbox event in that transaction.

Each change happens once even with several workers sweeping at the same time (PostgreSQL; SQLite
runs one worker):

- an escalation is a conditional update (``escalated_at IS NULL``) of rows claimed with
  ``FOR UPDATE SKIP LOCKED``: a second worker skips the rows the first holds, and once the first
  commits the condition no longer holds;
- an overdue alert is inserted only for episodes whose row the sweep holds (``FOR UPDATE SKIP
  LOCKED``), checked again under that lock in a fresh statement (no unresolved one, open or
  acknowledged), and the table allows one open ``measurement.overdue`` alert per episode
  (``uq_alerts_one_open_per_key``, ``ON CONFLICT DO NOTHING``). A submission of that episode
  waits for the lock (its store updates the episode row), so the overdue alert it clears is
  always the committed one;
- a rupture is raised to high only from ``warning``, on rows claimed like escalations.
"""

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    bindparam,
    exists,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.audit import AuditEvent
from models.base import new_id, utcnow
from models.episodes import Episode
from models.submissions import CareSession, Submission
from services.alerts import due
from services.alerts.model import AlertRow
from services.alerts.reconcile import Change
from services.alerts.store import ALERTS, SETTINGS, as_alert_row
from services.alerts.sweep_store import sweep_store
from services.kernel import audit, metrics
from services.kernel.auth import Actor, Principal
from services.kernel.config import Settings
from services.webhooks import events, outbox
from services.webhooks.events import EventRow

log = logging.getLogger("attune.sweep")

_EPISODES = Episode.__table__  # type: ignore[attr-defined]
_SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
_SESSIONS = CareSession.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
BATCH = 1000
People = tuple[uuid.UUID, uuid.UUID]  # an episode's client and clinician
Write = tuple[str, AlertRow]


@dataclass
class SweepResult:
    escalated: int = 0
    overdue: int = 0
    ruptures: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ----- shared pieces ------------------------------------------------------------------------------


def _orgs(column: ColumnElement[uuid.UUID], group: due.OrgGroup) -> ColumnElement[bool]:
    if group.org_ids is not None:
        return column.in_(sorted(group.org_ids))
    if group.exclude:
        return column.not_in(sorted(group.exclude))
    return true()


async def _groups(
    conn: AsyncConnection, org_ids: Collection[uuid.UUID] | None
) -> list[due.OrgGroup]:
    stmt = select(SETTINGS.c.org_id, SETTINGS.c.rule_id, SETTINGS.c.body).where(
        SETTINGS.c.rule_id.in_(due.SWEEP_RULES)
    )
    overrides: dict[uuid.UUID, dict[str, dict[str, object]]] = defaultdict(dict)
    for org_id, rule_id, body in (await conn.execute(stmt)).all():
        overrides[org_id][rule_id] = body
    return due.org_groups(overrides, org_ids)


async def _people(
    conn: AsyncConnection, episode_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]]:
    e = _EPISODES
    rows = await conn.execute(
        select(e.c.id, e.c.client_id, e.c.clinician_id).where(e.c.id.in_(sorted(episode_ids)))
    )
    return {episode_id: (client_id, clinician_id) for episode_id, client_id, clinician_id in rows}


_CONSOLE = "sweep"


async def _record(
    conn: AsyncConnection, writes: Sequence[Write], people: Mapping[uuid.UUID, People]
) -> None:
    """The outbox events of the changes and one audit event per organisation changed (made by
    no key: the system, from the sweep)."""
    event_rows = []
    for change, row in writes:
        client_id, clinician_id = people[row["episode_id"]]
        kind = "updated" if change == "escalated" else change
        event = events.alert_changed(kind, row, client_id, clinician_id)
        event["payload"]["data"]["change"] = change
        event_rows.append(event)
    await outbox.write(conn, event_rows)
    await _audit(conn, {row["org_id"] for _, row in writes})


async def _audit(conn: AsyncConnection, org_ids: Collection[uuid.UUID]) -> None:
    for org_id in sorted(org_ids):
        actor = Actor(Principal(None, org_id, frozenset({"system"}), None), _CONSOLE)
        await conn.execute(
            _AUDIT.insert(),
            audit.event_values(
                actor, action="alert.sweep", resource_type="organization", resource_id=org_id
            ),
        )


def _created_events(rows: Sequence[AlertRow], people: Mapping[uuid.UUID, People]) -> list[EventRow]:
    """The outbox events of new alerts, as :func:`_record` writes them."""
    event_rows = []
    for row in rows:
        event = events.alert_changed("created", row, *people[row["episode_id"]])
        event["payload"]["data"]["change"] = "created"
        event_rows.append(event)
    return event_rows


# ----- escalation ---------------------------------------------------------------------------------


async def _escalate(
    engine: AsyncEngine, group: due.OrgGroup, rule_id: str, hours: int, now: datetime, batch: int
) -> int:
    stamp = utcnow()
    a = ALERTS
    claim = (
        select(a.c.id)
        .where(
            a.c.status == "open",
            a.c.escalated_at.is_(None),
            a.c.severity.in_(("critical", "high")),
            a.c.type == rule_id,
            a.c.created_at <= now - timedelta(hours=hours),
            _orgs(a.c.org_id, group),
        )
        .order_by(a.c.created_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(a)
        .where(a.c.id.in_(claim), a.c.status == "open", a.c.escalated_at.is_(None))
        .values(escalated_at=stamp, updated_at=stamp)
        .returning(*a.c)
    )
    done = 0
    while True:
        async with engine.begin() as conn:
            rows = [as_alert_row(r) for r in (await conn.execute(stmt)).mappings().all()]
            if rows:
                people = await _people(conn, {r["episode_id"] for r in rows})
                await _record(conn, [("escalated", r) for r in rows], people)
        done += len(rows)
        if len(rows) < batch:
            return done


# ----- measurement.overdue ------------------------------------------------------------------------


def _last_measured() -> ScalarSelect[datetime | None]:
    s, e = _SUBMISSIONS, _EPISODES
    return (
        select(func.max(func.coalesce(s.c.occurred_at, s.c.created_at)))
        .where(s.c.org_id == e.c.org_id, s.c.episode_id == e.c.id, s.c.status == "valid")
        .scalar_subquery()
    )


def _open_overdue() -> ColumnElement[bool]:
    a, e = ALERTS, _EPISODES
    return exists().where(
        a.c.org_id == e.c.org_id,
        a.c.episode_id == e.c.id,
        a.c.type == due.OVERDUE,
        a.c.status != "resolved",
    )


def _measured_since(cutoff: datetime) -> ColumnElement[bool]:
    """The episode has a valid submission at or after ``cutoff`` (its session's time, else its
    creation). Written as EXISTS, so PostgreSQL answers "is the latest older than the cutoff"
    for every episode at once with an anti-join, not one subquery per episode."""
    s, e = _SUBMISSIONS, _EPISODES
    return exists().where(
        s.c.org_id == e.c.org_id,
        s.c.episode_id == e.c.id,
        s.c.status == "valid",
        func.coalesce(s.c.occurred_at, s.c.created_at) >= cutoff,
    )


def _ever_measured() -> ColumnElement[bool]:
    s, e = _SUBMISSIONS, _EPISODES
    return exists().where(s.c.org_id == e.c.org_id, s.c.episode_id == e.c.id, s.c.status == "valid")


async def _overdue(
    engine: AsyncEngine, group: due.OrgGroup, days: int, now: datetime, batch: int
) -> int:
    e = _EPISODES
    cutoff = now - timedelta(days=days)
    # Latest measurement before the cutoff; never measured: created before it.
    due_here = (
        e.c.status == "active",
        _orgs(e.c.org_id, group),
        ~_measured_since(cutoff),
        or_(e.c.created_at < cutoff, _ever_measured()),
    )
    # The candidates without locks, less the episodes that have their overdue alert already
    # (taken apart and subtracted here: right after a sweep created thousands, stale planner
    # statistics would turn a NOT EXISTS on alerts into a nested loop). Then, a batch at a time,
    # each episode is claimed and checked again under its lock.
    a = ALERTS
    store = sweep_store(engine)
    async with engine.begin() as conn:
        await store.before_big_scan(conn)
        overdue_already = set(
            (
                await conn.scalars(
                    select(a.c.episode_id).where(
                        a.c.type == due.OVERDUE, a.c.status != "resolved", _orgs(a.c.org_id, group)
                    )
                )
            ).all()
        )
        found = (await conn.scalars(select(e.c.id).where(*due_here))).all()
    candidates = sorted(set(found) - overdue_already)
    done = 0
    for start in range(0, len(candidates), batch):
        chunk = candidates[start : start + batch]
        async with engine.begin() as conn:
            claim = (
                select(e.c.id)
                .where(e.c.id.in_(chunk), e.c.status == "active")
                .order_by(e.c.id)
                .with_for_update(skip_locked=True, of=e)
            )
            locked = list((await conn.scalars(claim)).all())
            if not locked:
                continue
            # Again under the locks, in a statement of its own (a fresh snapshot under READ
            # COMMITTED): a submission or an overdue alert committed meanwhile counts. Per
            # episode (index lookups for this batch only), decided here.
            check = select(
                e.c.id, e.c.org_id, e.c.client_id, e.c.clinician_id, _last_measured(),
                e.c.created_at, _open_overdue(),
            ).where(e.c.id.in_(locked))  # fmt: skip
            rows = []
            people = {}
            for episode_id, org_id, client_id, clinician_id, measured, created, has_open in (
                await conn.execute(check)
            ).all():
                if has_open or (measured or created) >= cutoff:
                    continue
                people[episode_id] = (client_id, clinician_id)
                rows.append(
                    due.overdue_row(
                        org_id=org_id,
                        episode_id=episode_id,
                        last_measured_at=measured or created,
                        measured=measured is not None,
                        overdue_days=days,
                        now=now,
                        stamp=utcnow(),
                        alert_id=new_id(),
                    )
                )
            if not rows:
                continue
            rows.sort(key=lambda r: r["id"])
            inserted = await store.insert_alerts(conn, rows, _created_events(rows, people))
            if inserted:
                await _audit(conn, {row["org_id"] for row in rows if row["id"] in inserted})
                # A submission that read its episode before this commit must not store as if it
                # had no overdue alert to clear: its store checks alert_seq and reads again
                # (services/submissions/store_pg.py). Episode rows are held already (lock order
                # episode, then alerts, as in the submission path).
                await conn.execute(
                    update(e)
                    .where(e.c.id.in_([r["episode_id"] for r in rows if r["id"] in inserted]))
                    .values(alert_seq=e.c.alert_seq + 1)
                )
                metrics.ALERTS_RAISED.labels(due.OVERDUE, rows[0]["severity"]).inc(len(inserted))
            done += len(inserted)
    return done


_CLEARED = {"status": "resolved", "resolution": "condition_cleared"}


async def clear_overdue(
    conn: AsyncConnection,
    org_id: uuid.UUID,
    episode_id: uuid.UUID,
    people: tuple[uuid.UUID, uuid.UUID],
    now: datetime,
) -> list[tuple[Change, AlertRow]]:
    """The episode's open ``measurement.overdue`` alert resolved (``condition_cleared``), with
    its ``alert.resolved`` event: a new submission came in, or the episode was closed. A
    conditional update, so two clearing at once resolve it (and announce it) once."""
    a = ALERTS
    stmt = (
        update(a)
        .where(
            a.c.org_id == org_id,
            a.c.episode_id == episode_id,
            a.c.type == due.OVERDUE,
            a.c.status != "resolved",
        )
        .values(**_CLEARED, resolved_at=now, updated_at=now)
        .returning(*a.c)
    )
    rows = [as_alert_row(r) for r in (await conn.execute(stmt)).mappings().all()]
    writes: list[tuple[Change, AlertRow]] = [("resolved", row) for row in rows]
    if writes:
        await outbox.write(conn, outbox.alert_events(writes, *people))
    return writes


# ----- ruptures without a later session -----------------------------------------------------------


async def _ruptures(
    engine: AsyncEngine, group: due.OrgGroup, days: int, now: datetime, batch: int
) -> int:
    a, e, s = ALERTS, _EPISODES, _SESSIONS
    rupture_session = (
        select(s.c.occurred_at)
        .where(
            s.c.org_id == a.c.org_id,
            s.c.episode_id == a.c.episode_id,
            s.c.session_number == a.c.session_number,
        )
        .scalar_subquery()
    )
    since = func.coalesce(rupture_session, a.c.created_at)
    later_session = exists().where(
        s.c.org_id == a.c.org_id,
        s.c.episode_id == a.c.episode_id,
        s.c.session_number > a.c.session_number,
    )
    raise_stmt = (
        update(a)
        .where(a.c.id == bindparam("_id"), a.c.severity == "warning")
        .values(
            severity=bindparam("severity"),
            message=bindparam("message"),
            evidence=bindparam("evidence"),
            updated_at=bindparam("updated_at"),
        )
    )
    done = 0
    after: uuid.UUID | None = None
    while True:
        async with engine.begin() as conn:
            claim = (
                select(a, since.label("since"), e.c.client_id, e.c.clinician_id)
                .join(e, e.c.id == a.c.episode_id)
                .where(
                    a.c.type == due.RUPTURE,
                    a.c.status.in_(("open", "acknowledged")),
                    a.c.severity == "warning",
                    e.c.status == "active",
                    _orgs(a.c.org_id, group),
                    ~later_session,
                    since < now - timedelta(days=days),
                    a.c.id > after if after is not None else true(),
                )
                .order_by(a.c.id)
                .limit(batch)
                .with_for_update(skip_locked=True, of=a)
            )
            found = [dict(r) for r in (await conn.execute(claim)).mappings().all()]
            if not found:
                return done
            after = found[-1]["id"]
            people = {r["episode_id"]: (r["client_id"], r["clinician_id"]) for r in found}
            writes: list[Write] = []
            for found_row in found:
                since_at = found_row.pop("since")
                for name in ("client_id", "clinician_id"):
                    found_row.pop(name)
                row = as_alert_row(found_row)
                writes.append(
                    (
                        "updated",
                        due.rupture_without_session(
                            row, since=since_at, repair_days=days, now=now, stamp=utcnow()
                        ),
                    )
                )
            await conn.execute(
                raise_stmt,
                [
                    {
                        "_id": r["id"],
                        "severity": r["severity"],
                        "message": r["message"],
                        "evidence": r["evidence"],
                        "updated_at": r["updated_at"],
                    }
                    for _, r in writes
                ],
            )
            await _record(conn, writes, people)
            done += len(writes)


# ----- the sweep ----------------------------------------------------------------------------------


async def sweep(
    engine: AsyncEngine,
    *,
    now: datetime | None = None,
    org_ids: Collection[uuid.UUID] | None = None,
    batch: int = BATCH,
) -> SweepResult:
    """One sweep as of ``now`` (default: the clock), over every organisation or ``org_ids``.
    ``now`` decides what is due; what the sweep writes is stamped with the clock (a sweep run
    "as of" another time still happened now, and its webhooks are due now)."""
    now = now or utcnow()
    async with engine.connect() as conn:
        groups = await _groups(conn, org_ids)
    result = SweepResult()
    for group in groups:
        for rule_id, hours in group.params.escalate_after_hours:
            result.escalated += await _escalate(engine, group, rule_id, hours, now, batch)
        if group.params.overdue_days is not None:
            result.overdue += await _overdue(engine, group, group.params.overdue_days, now, batch)
        if group.params.repair_days is not None:
            result.ruptures += await _ruptures(engine, group, group.params.repair_days, now, batch)
    return result


async def run(
    engine: AsyncEngine,
    settings: Settings,
    stop: asyncio.Event,
    *,
    org_ids: Collection[uuid.UUID] | None = None,
) -> None:
    """Sweep every ``sweep_seconds`` until ``stop`` is set. A failed sweep (the database away) is
    logged and tried again next time, never fatal."""
    while not stop.is_set():
        try:
            result = await sweep(engine, org_ids=org_ids)
            if any(result.as_dict().values()):
                log.info("sweep", extra={"fields": result.as_dict()})
        except (TimeoutError, OSError) as exc:
            log.warning("sweep waiting for the database: %s", type(exc).__name__)
        except Exception as exc:
            # SQLAlchemy wraps driver errors; a worker that stopped on one would stop sweeping.
            log.error("sweep failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.sweep_seconds)
