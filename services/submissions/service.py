"""Submissions: validate, score and store one completed instrument for one session.

The hot path is lean (DESIGN.md §2): one query for the episode and its client's population, then
the session upsert, the submission insert (whose conflict clause enforces "one valid submission
per session, instrument, respondent and rater") and the audit insert. On PostgreSQL these go to
asyncpg (`services/submissions/store_pg.py`, the write as one CTE); on SQLite they run as
prebuilt Core statements.
"""

import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.audit import AuditEvent
from models.base import new_id, utcnow
from models.episodes import Episode
from models.submissions import CareSession, Submission, SubmissionCreate
from services.alerts import SeriesPoint
from services.alerts import engine as alert_engine
from services.alerts import lifecycle as alert_lifecycle
from services.alerts import store as alert_store
from services.alerts.engine import Writes
from services.alerts.replay import history_needed
from services.alerts.store import EpisodeFacts, SeriesKey
from services.care.episodes import load_episode
from services.instruments import InstrumentDefinition
from services.instruments.catalog import resolve_named
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.database import UnitOfWork
from services.kernel.errors import Conflict, InvalidInput, NotFound
from services.kernel.pagination import fetch_page
from services.scoring import InvalidAnswers, Scores, score
from services.submissions import store_pg as pg_hot_path
from services.trajectory.ruptures import DEFAULT_REPAIR_WINDOW
from services.webhooks import events, outbox

PUBLIC_SCORE_FIELDS = (
    "total",
    "mean",
    "subscales",
    "band",
    "below_cutoff",
    "clinical",
    "risk_flags",
)


# The hot path runs prebuilt Core statements on the request's connection: parameters are passed at
# execution, so SQLAlchemy compiles each statement once and skips the ORM's per-call machinery.
_EPISODES = Episode.__table__  # type: ignore[attr-defined]
_SESSIONS = CareSession.__table__  # type: ignore[attr-defined]
_SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]

# A clinician-bound key sees only the episodes its clinician treats.
_EPISODE_FACTS_BY_CLINICIAN = alert_store.EPISODE_FACTS.where(
    _EPISODES.c.clinician_id == bindparam("clinician_id")
)
_SERIES_KEY = ["org_id", "episode_id", "session_number", "instrument", "respondent", "rater"]
_INSERT_AUDIT = insert(_AUDIT)


@cache
def _sqlite_writes() -> tuple[Any, Any]:
    """The session upsert and the submission insert, as two statements."""
    new_session = sqlite.insert(_SESSIONS)
    upsert = new_session.on_conflict_do_update(
        index_elements=["org_id", "episode_id", "session_number"],
        # The first known time of a session wins; later submissions may fill it in.
        set_={
            "occurred_at": func.coalesce(_SESSIONS.c.occurred_at, new_session.excluded.occurred_at)
        },
    ).returning(_SESSIONS.c.id)
    submission = (
        sqlite.insert(_SUBMISSIONS)
        .on_conflict_do_nothing(index_elements=_SERIES_KEY, index_where=text("status = 'valid'"))
        .returning(_SUBMISSIONS.c.id)
    )
    return upsert, submission


async def _store(
    uow: UnitOfWork,
    values: dict[str, Any],
    audit_event: dict[str, Any],
    alerts: Writes,
    facts: EpisodeFacts,
) -> tuple[bool, uuid.UUID | None]:
    """Insert session (if new), submission, audit event, the alert changes and the outbox events
    of both, if the episode's ``alert_seq`` is still the one read; (it was, the new submission's
    id or None when a valid submission for the same session, instrument, respondent and rater
    exists already)."""
    session_values = {
        "org_id": values["org_id"],
        "episode_id": values["episode_id"],
        "session_number": values["session_number"],
        "occurred_at": values["occurred_at"],
        "created_at": values["created_at"],
    }
    driver = await uow.driver()
    if driver is not None:
        return await pg_hot_path.store_submission(
            driver,
            session_id=new_id(),
            values=values,
            audit=audit_event,
            alerts=alerts,
            events=[
                events.submission_created(values, facts.client_id, facts.clinician_id),
                *outbox.alert_events(alerts, facts.client_id, facts.clinician_id),
            ],
            alert_seq=facts.alert_seq,
        )
    conn = await uow.connection()
    bumped = await conn.execute(
        update(_EPISODES)
        .where(_EPISODES.c.org_id == values["org_id"], _EPISODES.c.id == values["episode_id"])
        .where(_EPISODES.c.alert_seq == facts.alert_seq)
        .values(alert_seq=_EPISODES.c.alert_seq + 1)
    )
    if bumped.rowcount == 0:
        return False, None
    upsert_session, insert_submission = _sqlite_writes()
    session_id = (
        await conn.execute(upsert_session, {"id": new_id(), **session_values})
    ).scalar_one()
    inserted: uuid.UUID | None = (
        await conn.execute(insert_submission, {**values, "session_id": session_id})
    ).scalar_one_or_none()
    if inserted is not None:
        await conn.execute(_INSERT_AUDIT, audit_event)
        event = events.submission_created(values, facts.client_id, facts.clinician_id)
        await outbox.write(conn, [event])
        await alert_store.write_alert_rows(conn, alerts, facts)
    return True, inserted


# history_needed() = repair window + this; the context function reads the window from settings.
_HISTORY_BEYOND_WINDOW = history_needed() - DEFAULT_REPAIR_WINDOW
SubmissionContext = tuple[EpisodeFacts, list[SeriesPoint], list[dict[str, Any]], dict[str, Any]]


async def _submission_context(uow: UnitOfWork, actor: Actor, key: SeriesKey) -> SubmissionContext:
    """The episode (404 when the actor may not see it) and what the alert rules need of the
    series: its first score and latest sessions, its unresolved alerts and the organisation's
    alert settings."""
    driver = await uow.driver()
    if driver is not None:
        found = await pg_hot_path.submission_context(
            driver,
            key,
            actor.clinician_id,
            actor.principal.key_id,
            default_window=DEFAULT_REPAIR_WINDOW,
            extra=_HISTORY_BEYOND_WINDOW,
        )
        if found is None:
            raise NotFound("episode not found")
        return found
    conn = await uow.connection()
    params = {"org_id": actor.org_id, "episode_id": key.episode_id}
    stmt = alert_store.EPISODE_FACTS
    if actor.clinician_id is not None:
        stmt = _EPISODE_FACTS_BY_CLINICIAN
        params["clinician_id"] = actor.clinician_id
    row = (await conn.execute(stmt, params)).one_or_none()
    if row is None:
        raise NotFound("episode not found")
    overrides = await alert_store.load_overrides(conn, key.org_id)
    history = await alert_store.load_points(
        conn, key, tail=history_needed(alert_engine.settings_for(overrides))
    )
    rows = await alert_store.load_alert_rows(conn, key, unresolved_only=True)
    return EpisodeFacts(*row), history, rows, overrides


async def _lock_episode_alerts(uow: UnitOfWork, key: SeriesKey) -> None:
    """Open the request's transaction and take the episode's alert lock in it (bumping
    ``alert_seq``, as every writer of an episode's alerts does)."""
    driver = await uow.driver_transaction()
    if driver is not None:
        await pg_hot_path.lock_alert_seq(driver, key.org_id, key.episode_id)
        return
    await alert_store.lock_episode(await uow.connection(), key.org_id, key.episode_id)


async def _recompute_after_store(
    uow: UnitOfWork, ctx: alert_engine.SeriesContext, facts: EpisodeFacts, late: str
) -> Writes:
    """A late entry (not the latest session of its series): the series from its whole history,
    now that the submission (id ``late``) is stored."""
    driver = await uow.driver_transaction()
    if driver is not None:
        points, rows = await pg_hot_path.full_series(driver, ctx.key)
        writes = alert_engine.derive_full(ctx, points, rows, utcnow(), [late])
        await pg_hot_path.write_alerts(
            driver, writes, outbox.alert_events(writes, facts.client_id, facts.clinician_id)
        )
        return writes
    conn = await uow.connection()
    return await alert_engine.recompute_series(
        conn, ctx.key, facts=facts, settings=ctx.settings, late=[late]
    )


def _score(definition: InstrumentDefinition, answers: dict[str, Any], population: str) -> Scores:
    """Scores of the answers, or a 422 naming every bad item (the engine validates as it scores)."""
    try:
        return score(definition, answers, population)  # type: ignore[arg-type]
    except InvalidAnswers as exc:
        raise InvalidInput(
            "some answers are invalid: " + ", ".join(p.item for p in exc.problems),
            errors=[
                {"field": f"body.answers.{p.item}", "message": p.message, "type": p.code}
                for p in exc.problems
            ],
        ) from None


async def create_submission(
    uow: UnitOfWork, *, actor: Actor, data: SubmissionCreate
) -> dict[str, Any]:
    """Score and store a submission; returns the row's values (as the API shows them)."""
    # The definition first: an organisation's own instrument is read through SQLAlchemy, which
    # must come before the hot path's driver transaction opens (see UnitOfWork).
    definition = await resolve_named(
        uow, actor=actor, code=data.instrument, field="body.instrument"
    )
    key = SeriesKey(
        actor.org_id, data.episode_id, definition.code, data.respondent, data.rater or ""
    )
    values: dict[str, Any] = {
        "id": new_id(),
        "org_id": actor.org_id,
        "episode_id": data.episode_id,
        "session_number": data.session_number,
        "instrument": definition.code,
        "instrument_version": definition.version,
        "respondent": data.respondent,
        "rater": data.rater or "",
        "answers": data.answers,
        "status": "valid",
        "occurred_at": data.occurred_at,
        "created_by_key_id": actor.principal.key_id,
    }
    audit_event = audit.event_values(
        actor, action="submission.create", resource_type="submission", resource_id=values["id"]
    )
    # Optimistic first: read, evaluate, and store if nothing changed the episode's alerts in
    # between; no lock is held while the rules run, and two writers of one episode at the same
    # moment are rare. If something did change them, the second attempt holds the episode's lock
    # from the read to the commit, so it cannot be overtaken.
    for attempt in range(2):
        if attempt:
            await _lock_episode_alerts(uow, key)
        facts, history, open_rows, overrides = await _submission_context(uow, actor, key)
        if facts.status != "active":
            raise Conflict("the episode is closed; reopen it to add submissions")
        if data.respondent not in definition.respondents:
            raise InvalidInput.at(
                "body.respondent",
                f"allowed: {', '.join(definition.respondents)}",
                type="respondent",
                detail=f"{definition.code} is not rated by a {data.respondent}",
            )
        scores = _score(definition, data.answers, facts.population)
        now = utcnow()
        values.update(scores=scores.model_dump(mode="json"), total=scores.total, created_at=now)
        ctx = alert_engine.SeriesContext(
            key, definition, facts.population, alert_engine.settings_for(overrides)
        )
        new = alert_store.point(
            data.session_number, values["id"], scores.total, scores.subscales, data.answers
        )
        alerts = alert_engine.evaluate_new(ctx, history, new, open_rows, now)
        if alerts is None:
            # A late entry: the series is recomputed once it is stored, in one transaction.
            await uow.driver_transaction()
        current, inserted = await _store(uow, values, audit_event, alerts or [], facts)
        if current:
            break
    else:
        raise Conflict("the episode's alerts kept changing during this submission; send it again")
    if inserted is None:
        existing = await _existing_valid(uow, values)
        raise Conflict(
            f"session {data.session_number} already has a valid {definition.code} submission "
            f"from this respondent; void it to replace it",
            extra={"existing_id": str(existing) if existing else None},
        )
    if alerts is None:
        alerts = await _recompute_after_store(uow, ctx, facts, str(inserted))
    values["alerts"] = alert_lifecycle.public_many(alerts, facts)
    return values


async def _existing_valid(uow: UnitOfWork, values: dict[str, Any]) -> uuid.UUID | None:
    """The valid submission that took this one's place (session, instrument, respondent, rater)."""
    key = [values[name] for name in _SERIES_KEY]
    driver = await uow.driver()
    if driver is not None:
        return await pg_hot_path.existing_valid(driver, *key)
    conn = await uow.connection()
    stmt = select(_SUBMISSIONS.c.id).where(_SUBMISSIONS.c.status == "valid")
    for name, value in zip(_SERIES_KEY, key, strict=True):
        stmt = stmt.where(_SUBMISSIONS.c[name] == value)
    existing: uuid.UUID | None = await conn.scalar(stmt)
    return existing


def to_public(values: dict[str, Any] | Submission) -> dict[str, Any]:
    row = values if isinstance(values, dict) else values.model_dump()
    scores = row["scores"]
    return {
        "id": row["id"],
        "episode_id": row["episode_id"],
        "instrument": row["instrument"],
        "instrument_version": row["instrument_version"],
        "session_number": row["session_number"],
        "occurred_at": row["occurred_at"],
        "respondent": row["respondent"],
        "rater": row["rater"] or None,
        "status": row["status"],
        "answers": row["answers"],
        "scores": {k: scores.get(k) for k in PUBLIC_SCORE_FIELDS},
        "alerts": row.get("alerts", []),
        "created_at": row["created_at"],
        "voided_at": row.get("voided_at"),
        "void_reason": row.get("void_reason"),
    }


def _visible_submissions(actor: Actor) -> Select[Any]:
    stmt = select(Submission).where(col(Submission.org_id) == actor.org_id)
    if actor.clinician_id is not None:
        stmt = stmt.join(Episode, col(Episode.id) == col(Submission.episode_id)).where(
            col(Episode.clinician_id) == actor.clinician_id
        )
    return stmt


async def get_submission(
    session: AsyncSession, *, actor: Actor, submission_id: uuid.UUID, audit_action: str = "read"
) -> Submission:
    row: Submission | None = await session.scalar(
        _visible_submissions(actor).where(col(Submission.id) == submission_id)
    )
    if row is None:
        raise NotFound("submission not found")
    if audit_action:
        audit.record(
            session,
            actor,
            action=f"submission.{audit_action}",
            resource_type="submission",
            resource_id=row.id,
        )
    return row


async def list_for_episode(
    session: AsyncSession,
    *,
    actor: Actor,
    episode_id: uuid.UUID,
    instrument: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Submission], str | None]:
    await load_episode(session, actor=actor, episode_id=episode_id)
    stmt = _visible_submissions(actor).where(col(Submission.episode_id) == episode_id)
    if instrument is not None:
        stmt = stmt.where(col(Submission.instrument) == instrument)
    if status is not None:
        stmt = stmt.where(col(Submission.status) == status)
    page = await fetch_page(session, stmt, id_column=col(Submission.id), limit=limit, cursor=cursor)
    audit.record(
        session, actor, action="submission.list", resource_type="episode", resource_id=episode_id
    )
    return page


async def void_submission(
    session: AsyncSession, *, actor: Actor, submission_id: uuid.UUID, reason: str
) -> dict[str, Any]:
    """Void a submission (kept, never deleted) and recompute its series' alerts; the result lists
    the alerts that changed. Voiding twice keeps the first reason."""
    row = await get_submission(session, actor=actor, submission_id=submission_id, audit_action="")
    alerts: Writes = []
    facts: EpisodeFacts | None = None
    if row.status != "voided":
        conn = await session.connection()
        # The episode's lock first, as every writer of its alerts takes it.
        facts = await alert_store.lock_episode(conn, actor.org_id, row.episode_id)
        row.status = "voided"
        row.voided_at = row.changed_at = utcnow()  # changed_at: exports pull the void again
        row.voided_by_key_id = actor.principal.key_id
        row.void_reason = reason
        await session.flush()
        audit.record(
            session, actor, action="submission.void", resource_type="submission", resource_id=row.id
        )
        assert facts is not None  # the episode of a visible submission exists
        settings = alert_engine.settings_for(await alert_store.load_overrides(conn, actor.org_id))
        key = SeriesKey(actor.org_id, row.episode_id, row.instrument, row.respondent, row.rater)
        alerts = await alert_engine.recompute_series(conn, key, facts=facts, settings=settings)
    out = to_public(row)
    if facts is not None:
        out["alerts"] = alert_lifecycle.public_many(alerts, facts)
    return out
