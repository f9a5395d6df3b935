"""The submission hot path on PostgreSQL, sent straight to asyncpg.

Measured on the 2-core reference box, SQLAlchemy's layers were the largest single cost of
`POST /v1/submissions`, where the floor it is benchmarked against pays nothing of the kind. These
statements are the ones every submission runs; they go to an asyncpg connection inside the
request's transaction (`UnitOfWork.driver_transaction()`), so the request still commits or rolls
back as one unit. Elsewhere the equivalent Core statements of `services/submissions/store_sql.py`
run instead (the key lookup: `services/kernel/store.py`); the test suite runs on both databases.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from models.base import new_id
from services.alerts import SeriesPoint
from services.alerts import engine as alert_engine
from services.alerts.engine import Writes, expected_for
from services.alerts.model import AlertRow
from services.alerts.replay import EVENT_RULES, history_needed
from services.alerts.store import WRITTEN_ON_UPDATE, EpisodeFacts, SeriesKey, as_alert_row, point
from services.kernel.audit import AuditValues
from services.kernel.database import Driver, UnitOfWork
from services.kernel.errors import Unauthorized
from services.submissions.rows import SubmissionValues
from services.submissions.store import NewSubmission, SubmissionContext, series_key_of
from services.trajectory.etr import ExpectedResponse
from services.trajectory.ruptures import DEFAULT_REPAIR_WINDOW
from services.webhooks import outbox
from services.webhooks.events import EventRow

# history_needed() = repair window + this; the context statement reads the window from settings.
_HISTORY_BEYOND_WINDOW = history_needed() - DEFAULT_REPAIR_WINDOW


def json_value(value: Any) -> Any:
    """json/jsonb as Python: a pooled asyncpg connection hands back text, the one under a
    SQLAlchemy connection (whose dialect registers JSON codecs) already decoded values."""
    return orjson.loads(value) if isinstance(value, str) else value


# What a new submission needs, in one statement (one snapshot): whether the key is still valid
# (the route may have taken it from services/auth.PrincipalCache; no key is a client's
# invitation, which services/care/invitations.py holds locked in the same transaction), the
# episode (none when the actor may not see it) with its alert_seq, and the series: its latest
# sessions (as many as history_needed asks: the rupture repair window, the organisation's or the
# default $7, plus $8, or the organisation's not-on-track high_from_session if more; greatest()
# ignores a NULL) and its first score, its unresolved alerts (and the alerts of discrete events a
# person resolved: services/alerts/store.load_alert_rows), the organisation's alert
# settings and its expected-response model for the instrument, and whether the episode has an open
# measurement.overdue alert for the submission to clear (so the common case, none, costs no
# statement more). No lock: the store below writes only if alert_seq is still what this read saw
# (the sweep bumps it when it raises an overdue alert: services/alerts/sweep.py).
SUBMISSION_CONTEXT = """
    SELECT ($9::uuid IS NULL
            OR EXISTS (SELECT 1 FROM api_keys k WHERE k.id = $9 AND k.revoked_at IS NULL)),
        e.status, c.population, e.client_id, e.clinician_id, e.alert_seq,
        (SELECT coalesce(json_agg(json_build_array(t.session_number, t.id, t.total,
                    t.scores -> 'subscales') ORDER BY t.session_number), '[]'::json)
         FROM (SELECT s.session_number, s.id, s.total, s.scores FROM submissions s
               WHERE s.org_id = $1 AND s.episode_id = $2 AND s.instrument = $4
                 AND s.respondent = $5 AND s.rater = $6 AND s.status = 'valid'
               ORDER BY s.session_number DESC
               LIMIT greatest(
                   coalesce((SELECT (r.body #>> '{params,repair_window}')::int
                             FROM alert_rule_settings r
                             WHERE r.org_id = $1 AND r.rule_id = 'alliance.rupture'), $7) + $8,
                   (SELECT (r.body #>> '{params,high_from_session}')::int
                    FROM alert_rule_settings r
                    WHERE r.org_id = $1 AND r.rule_id = 'outcome.not_on_track'))) t),
        (SELECT json_build_array(s.session_number, s.id, s.total, s.scores -> 'subscales')
         FROM submissions s
         WHERE s.org_id = $1 AND s.episode_id = $2 AND s.instrument = $4
           AND s.respondent = $5 AND s.rater = $6 AND s.status = 'valid'
           AND s.total IS NOT NULL
         ORDER BY s.session_number LIMIT 1),
        (SELECT coalesce(json_agg(a ORDER BY a.id), '[]'::json) FROM alerts a
         WHERE a.org_id = $1 AND a.episode_id = $2 AND a.instrument = $4
           AND a.respondent = $5 AND a.rater = $6
           AND (a.status <> 'resolved' OR (a.resolved_by_key_id IS NOT NULL
                AND a.type IN ($EVENT_TYPES)))
           AND a.type <> 'concern.reported'),
        (SELECT json_object_agg(r.rule_id, r.body) FROM alert_rule_settings r
         WHERE r.org_id = $1),
        (SELECT m.body FROM expected_response_models m
         WHERE m.org_id = $1 AND m.instrument = $4),
        EXISTS (SELECT 1 FROM alerts o WHERE o.org_id = $1 AND o.episode_id = $2
            AND o.type = 'measurement.overdue' AND o.status <> 'resolved')
    FROM episodes e JOIN clients c ON c.id = e.client_id
    WHERE e.org_id = $1 AND e.id = $2 AND ($3::uuid IS NULL OR e.clinician_id = $3::uuid)
""".replace("$EVENT_TYPES", ", ".join(f"'{rule}'" for rule in sorted(EVENT_RULES)))
# The WHERE above is services/kernel/visibility.py's visible_episodes, written for asyncpg;
# tests/api/test_visibility.py pins the two together.
LOCK_ALERT_SEQ = """
    UPDATE episodes SET alert_seq = alert_seq + 1 WHERE org_id = $1 AND id = $2
"""


async def lock_alert_seq(driver: Driver, org_id: uuid.UUID, episode_id: uuid.UUID) -> None:
    """Take the episode's row lock for the rest of the transaction (services/alerts/store.py
    lock_episode does the same on the ORM paths)."""
    await driver.execute(LOCK_ALERT_SEQ, org_id, episode_id)


_SERIES = """org_id = $1 AND episode_id = $2 AND instrument = $3 AND respondent = $4
    AND rater = $5"""


def _point(raw: list[Any]) -> SeriesPoint:
    # JSON renders the id as the canonical string SeriesPoint holds: no need to parse it.
    session_number, submission_id, total, subscales = raw
    return SeriesPoint(session_number, submission_id, total, subscales or {}, {})


_ALERT_UUIDS = ("id", "org_id", "episode_id", "submission_id", "acknowledged_by_key_id",
                "resolved_by_key_id")  # fmt: skip
_ALERT_TIMES = ("created_at", "updated_at", "acknowledged_at", "resolved_at", "escalated_at")


def alert_row(raw: dict[str, Any]) -> AlertRow:
    """An ``alerts`` row as PostgreSQL's JSON renders it, with the types SQLAlchemy would give."""
    row = dict(raw)
    for name in _ALERT_UUIDS:
        if row[name] is not None:
            row[name] = uuid.UUID(row[name])
    for name in _ALERT_TIMES:
        if row[name] is not None:
            row[name] = datetime.fromisoformat(row[name])
    return as_alert_row(row)


KEY_VALID = """
    SELECT $1::uuid IS NULL
        OR EXISTS (SELECT 1 FROM api_keys WHERE id = $1 AND revoked_at IS NULL)
"""


@dataclass(frozen=True, slots=True)
class ContextRow:
    """What `SUBMISSION_CONTEXT` read: the episode, the series' first score and latest sessions
    (as many as the stored settings ask; the store trims them to the settings in force), its
    unresolved alerts and the organisation's stored settings."""

    facts: EpisodeFacts
    first: SeriesPoint | None
    latest: list[SeriesPoint]
    alerts: list[AlertRow]
    overrides: dict[str, dict[str, object]]
    expected: ExpectedResponse | None
    overdue_open: bool


async def submission_context(
    driver: Driver,
    key: SeriesKey,
    clinician_id: uuid.UUID | None,
    api_key_id: uuid.UUID | None,
    *,
    default_window: int,
    extra: int,
) -> ContextRow | None:
    """The context of a new submission, or None when there is no such episode for the actor.
    Raises :class:`Unauthorized` when the API key was revoked."""
    row = await driver.fetchrow(
        SUBMISSION_CONTEXT, key.org_id, key.episode_id, clinician_id, key.instrument,
        key.respondent, key.rater, default_window, extra, api_key_id,
    )  # fmt: skip
    key_valid = row[0] if row is not None else await driver.fetchval(KEY_VALID, api_key_id)
    if not key_valid:
        raise Unauthorized("invalid or revoked API key")
    if row is None:
        return None
    _, status, population, client_id, clinician, alert_seq, *series = row.values()
    *rest, expected, overdue_open = series
    tail, first, alerts, overrides = (json_value(v) for v in rest)
    assert tail is not None  # coalesced to '[]' in SQL
    assert alerts is not None
    # uuid.UUID rather than asyncpg's subclass: these ids go into JSON responses.
    facts = EpisodeFacts(
        status,
        population,
        uuid.UUID(bytes=client_id.bytes),
        uuid.UUID(bytes=clinician.bytes),
        alert_seq,
    )
    return ContextRow(
        facts,
        _point(first) if first else None,
        [_point(raw) for raw in tail],
        [alert_row(a) for a in alerts],
        overrides or {},
        expected_for(key, expected),  # parsed once per distinct stored text
        overdue_open,
    )


LATEST_POINTS = """
    SELECT session_number, id::text, total, scores -> 'subscales' FROM submissions
    WHERE org_id = $1 AND episode_id = $2 AND instrument = $3 AND respondent = $4 AND rater = $5
        AND status = 'valid'
    ORDER BY session_number DESC LIMIT $6
"""


async def latest_points(driver: Driver, key: SeriesKey, count: int) -> list[SeriesPoint]:
    """The series' latest ``count`` sessions in session order, as `SUBMISSION_CONTEXT` reads
    them."""
    args = (key.org_id, key.episode_id, key.instrument, key.respondent, key.rater, count)
    rows = await driver.fetch(LATEST_POINTS, *args)
    return [_point([n, i, t, json_value(sc)]) for n, i, t, sc in reversed(rows)]


def judged_history(
    first: SeriesPoint | None, latest: Sequence[SeriesPoint], window: int
) -> list[SeriesPoint]:
    """The series' first score and its latest ``window`` sessions, in session order."""
    by_session = {p.session_number: p for p in [*([first] if first else []), *latest[-window:]]}
    return [by_session[n] for n in sorted(by_session)]


FULL_SERIES = f"""
    SELECT session_number, id, total, scores -> 'subscales', answers FROM submissions
    WHERE {_SERIES} AND status = 'valid' ORDER BY session_number
"""
ALL_ALERTS = f"""
    SELECT row_to_json(a) FROM alerts a
    WHERE {_SERIES} AND type <> 'concern.reported' ORDER BY id
"""


async def full_series(driver: Driver, key: SeriesKey) -> tuple[list[SeriesPoint], list[AlertRow]]:
    """Every valid submission of the series and every alert of it: for a late entry, which the
    series is recomputed for."""
    args = (key.org_id, key.episode_id, key.instrument, key.respondent, key.rater)
    points = [
        point(n, i, t, json_value(sc), json_value(a))
        for n, i, t, sc, a in await driver.fetch(FULL_SERIES, *args)
    ]
    alerts = [alert_row(json_value(r[0])) for r in await driver.fetch(ALL_ALERTS, *args)]
    return points, alerts


# Inserts new alerts and updates changed ones from one JSON array of rows. An update writes only
# what the rules own, never acknowledgements or notes: the columns the Core store updates too
# (services/alerts/store.WRITTEN_ON_UPDATE, from services/alerts/reconcile.DERIVED_COLUMNS).
_UPSERT_ALERTS = (
    """
    INSERT INTO alerts SELECT * FROM jsonb_populate_recordset(NULL::alerts, $ROWS::jsonb)
    {guard}
    ON CONFLICT (id) DO UPDATE SET """
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in WRITTEN_ON_UPDATE)
    + "\n"
)
# Outbox events from one JSON array, numbered in array order, and a pending delivery of each to
# every live endpoint of the organisation subscribed to its type (services/webhooks/outbox.py
# does the same for the other writers).
WRITE_EVENTS = """
    ev AS (
        INSERT INTO outbox_events (id, org_id, episode_id, type, subject_id, payload, created_at)
        SELECT e.id, e.org_id, e.episode_id, e.type, e.subject_id, e.payload, e.created_at
        FROM jsonb_populate_recordset(NULL::outbox_events, $EVENTS::jsonb) WITH ORDINALITY AS e
        {guard}
        ORDER BY e.ordinality
        RETURNING seq, id, org_id, episode_id, type, created_at
    ), deliveries AS (
        INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_seq, event_id, event_type,
            episode_id, status, attempts, next_attempt_at, created_at)
        SELECT gen_random_uuid(), ev.org_id, w.id, ev.seq, ev.id, ev.type, ev.episode_id,
            'pending', 0, ev.created_at, ev.created_at
        FROM ev JOIN webhook_endpoints w ON w.org_id = ev.org_id AND w.enabled
            AND w.deleted_at IS NULL AND w.event_types ? ev.type
    )"""
WRITE_ALERTS = (
    "WITH alert_writes AS ("
    + _UPSERT_ALERTS.format(guard="").replace("$ROWS", "$1")
    + "),"
    + WRITE_EVENTS.format(guard="").replace("$EVENTS", "$2")
    + " SELECT 1"
)


def rows_json(rows: Sequence[Mapping[str, object]]) -> str:
    # asyncpg hands back its own UUID subclass, which orjson leaves to `default`.
    return orjson.dumps(rows, default=str).decode()


def alert_rows_json(writes: Sequence[tuple[str, AlertRow]]) -> str:
    return rows_json([row for _, row in writes])


async def write_alerts(
    driver: Driver, writes: Sequence[tuple[str, AlertRow]], events: Sequence[EventRow]
) -> None:
    """Alert changes and their outbox events, in the caller's transaction."""
    if writes:
        await driver.execute(WRITE_ALERTS, alert_rows_json(writes), rows_json(events))


# The session upsert, the submission insert, its audit event, the alert changes and the outbox
# events with their webhook deliveries in one statement (data-modifying CTEs): one round trip,
# atomic without a transaction of its own. It writes only if the episode's alert_seq is still the
# one the context was read at ($19) and the key is still valid, and bumps alert_seq: a writer that
# came in between (another submission of the episode, a void, a person's acknowledgement) makes
# this one write nothing, and the caller reads and evaluates again. Under READ COMMITTED the
# UPDATE waits for such a writer and then checks its committed row, so the check cannot miss one.
# The partial index predicate is a literal: PostgreSQL must see it to infer the index, and a
# generic prepared plan would hide a parameter's value.
STORE_SUBMISSION = (
    """
    WITH v AS (
        UPDATE episodes SET alert_seq = alert_seq + 1
        WHERE org_id = $2 AND id = $3 AND alert_seq = $19
            AND ($15::uuid IS NULL
                OR EXISTS (SELECT 1 FROM api_keys k WHERE k.id = $15 AND k.revoked_at IS NULL))
        RETURNING id
    ), s AS (
        INSERT INTO sessions (id, org_id, episode_id, session_number, occurred_at, created_at)
        SELECT $1, $2, $3, $4, $5, $6 FROM v
        ON CONFLICT (org_id, episode_id, session_number)
        DO UPDATE SET occurred_at = COALESCE(sessions.occurred_at, EXCLUDED.occurred_at)
        RETURNING id
    ), sub AS (
        INSERT INTO submissions (id, org_id, episode_id, session_id, session_number, instrument,
            instrument_version, respondent, rater, answers, scores, total, status, occurred_at,
            created_at, created_by_key_id)
        SELECT $7, $2, $3, s.id, $4, $8, $9, $10, $11, $12::jsonb, $13::jsonb, $14, 'valid', $5,
            $6, $15
        FROM s
        ON CONFLICT (org_id, episode_id, session_number, instrument, respondent, rater)
            WHERE status = 'valid' DO NOTHING
        RETURNING id
    ), audit AS (
        INSERT INTO audit_events (id, org_id, key_id, action, resource_type, resource_id,
            outcome, client_address, occurred_at)
        SELECT $16, $2, $15, 'submission.create', 'submission', sub.id, 'success', $17, $6
        FROM sub
    ), alert_writes AS ("""
    + _UPSERT_ALERTS.format(guard="WHERE EXISTS (SELECT 1 FROM sub)").replace("$ROWS", "$18")
    + "),"
    + WRITE_EVENTS.format(guard="WHERE EXISTS (SELECT 1 FROM sub)").replace("$EVENTS", "$20")
    + """
    SELECT EXISTS (SELECT 1 FROM v), (SELECT id FROM sub)
"""
)


async def store_submission(
    driver: Driver,
    *,
    session_id: uuid.UUID,
    values: SubmissionValues,
    audit: AuditValues,
    alerts: Sequence[tuple[str, AlertRow]],
    events: Sequence[EventRow],
    alert_seq: int,
) -> tuple[bool, uuid.UUID | None]:
    """(alert_seq was still current, the inserted submission's id or None for a duplicate)."""
    occurred_at: datetime | None = values["occurred_at"]
    current, inserted = await driver.fetchrow(
        STORE_SUBMISSION,
        session_id,
        values["org_id"],
        values["episode_id"],
        values["session_number"],
        occurred_at,
        values["created_at"],
        values["id"],
        values["instrument"],
        values["instrument_version"],
        values["respondent"],
        values["rater"],
        orjson.dumps(values["answers"]).decode(),
        orjson.dumps(values["scores"]).decode(),
        values["total"],
        values["created_by_key_id"],
        audit["id"],
        audit["client_address"],
        alert_rows_json(alerts),
        alert_seq,
        rows_json(events),
    )
    return current, inserted


EXISTING_VALID = """
    SELECT id FROM submissions
    WHERE org_id = $1 AND episode_id = $2 AND session_number = $3 AND instrument = $4
        AND respondent = $5 AND rater = $6 AND status = 'valid'
"""


async def existing_valid(driver: Driver, *series_key: object) -> uuid.UUID | None:
    found: uuid.UUID | None = await driver.fetchval(EXISTING_VALID, *series_key)
    return found


# The episode's measurement.overdue alert, cleared by a new submission (DESIGN.md §10.3.6; the
# sweep raises it: services/alerts/sweep.py).
_CLEAR_OVERDUE = """
    UPDATE alerts SET status = 'resolved', resolution = 'condition_cleared', resolved_at = $3,
        updated_at = $3
    WHERE org_id = $1 AND episode_id = $2 AND type = 'measurement.overdue'
        AND status <> 'resolved'
    RETURNING row_to_json(alerts)
"""


class PgSubmissionStore:
    """The submission store on asyncpg (`services.submissions.store.SubmissionStore`): reads go
    to a pooled connection before any transaction; writes to the unit of work's transaction."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def _driver(self) -> Driver:
        driver = await self.uow.driver()
        assert driver is not None  # chosen only for a unit of work with a driver pool
        return driver

    async def _in_transaction(self) -> Driver:
        driver = await self.uow.driver_transaction()
        assert driver is not None
        return driver

    async def context(
        self, key: SeriesKey, clinician_id: uuid.UUID | None, api_key_id: uuid.UUID | None
    ) -> SubmissionContext | None:
        driver = await self._driver()
        found = await submission_context(
            driver,
            key,
            clinician_id,
            api_key_id,
            default_window=DEFAULT_REPAIR_WINDOW,
            extra=_HISTORY_BEYOND_WINDOW,
        )
        if found is None:
            return None
        # The window of the settings in force, as the Core store reads it: the statement read
        # the stored body's, which differs only when a stored override no longer validates.
        window, stored_may_differ = alert_engine.history_window(found.overrides)
        latest = found.latest
        if stored_may_differ and len(latest) < window:
            latest = await latest_points(driver, key, window)  # one statement more, then only
        history = judged_history(found.first, latest, window)
        return SubmissionContext(
            found.facts, history, found.alerts, found.overrides, found.expected, found.overdue_open
        )

    async def lock_episode(self, key: SeriesKey) -> None:
        await lock_alert_seq(await self._in_transaction(), key.org_id, key.episode_id)

    async def hold_transaction(self) -> None:
        await self._in_transaction()

    async def store(self, new: NewSubmission) -> tuple[bool, uuid.UUID | None]:
        return await store_submission(
            await self._driver(),
            session_id=new_id(),
            values=new.values,
            audit=new.audit,
            alerts=new.alerts,
            events=new.events,
            alert_seq=new.alert_seq,
        )

    async def full_series(self, key: SeriesKey) -> tuple[list[SeriesPoint], list[AlertRow]]:
        return await full_series(await self._in_transaction(), key)

    async def write_alerts(self, writes: Writes, events: Sequence[EventRow]) -> None:
        await write_alerts(await self._in_transaction(), writes, events)

    async def existing_valid(self, values: SubmissionValues) -> uuid.UUID | None:
        return await existing_valid(await self._driver(), *series_key_of(values))

    async def clear_overdue(
        self, key: SeriesKey, people: tuple[uuid.UUID, uuid.UUID], now: datetime
    ) -> Writes:
        """`services.alerts.sweep.clear_overdue` on asyncpg, called when the context read saw an
        open overdue alert: a conditional update in the transaction, so two clearing at once
        resolve it (and announce it) once."""
        driver = await self._in_transaction()
        rows = await driver.fetch(_CLEAR_OVERDUE, key.org_id, key.episode_id, now)
        writes: Writes = [("resolved", alert_row(json_value(r[0]))) for r in rows]
        # The rows are written back as they are (an upsert of the same values), with their events.
        if writes:
            await write_alerts(driver, writes, outbox.alert_events(writes, *people))
        return writes
