"""Submissions: validate, score and store one completed instrument for one session.

The hot path is lean (DESIGN.md §2): one query for the episode and its client's population, then
the session upsert, the submission insert (whose conflict clause enforces "one valid submission
per session, instrument, respondent and rater") and the audit insert. They go through the store
of `services/submissions/store.py`, chosen once per unit of work: asyncpg on PostgreSQL
(`store_pg.py`, the write as one CTE), prebuilt Core statements on SQLite (`store_sql.py`).
"""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.alerts import AlertInSubmission
from models.base import new_id, utcnow
from models.submissions import ScoresPublic, Submission, SubmissionCreate, SubmissionPublic
from services.alerts import engine as alert_engine
from services.alerts import lifecycle as alert_lifecycle
from services.alerts import store as alert_store
from services.alerts.engine import Writes
from services.alerts.store import EpisodeFacts, SeriesKey
from services.care.episodes import load_episode
from services.instruments import InstrumentDefinition
from services.instruments.catalog import resolve_named
from services.kernel import audit, metrics
from services.kernel.auth import Actor
from services.kernel.database import UnitOfWork
from services.kernel.errors import Conflict, InvalidInput, NotFound
from services.kernel.pagination import fetch_page
from services.kernel.visibility import visible_submissions
from services.scoring import InvalidAnswers, Scores, score
from services.submissions.rows import SubmissionValues
from services.submissions.store import (
    NewSubmission,
    SubmissionContext,
    SubmissionStore,
    submission_store,
)
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


async def _context(store: SubmissionStore, actor: Actor, key: SeriesKey) -> SubmissionContext:
    """The episode (404 when the actor may not see it) and what the alert rules need of the
    series."""
    found = await store.context(key, actor.clinician_id, actor.principal.key_id)
    if found is None:
        raise NotFound("episode not found")
    return found


async def _recompute_after_store(
    store: SubmissionStore, ctx: alert_engine.SeriesContext, facts: EpisodeFacts, late: str
) -> Writes:
    """A late entry (not the latest session of its series): the series from its whole history,
    now that the submission (id ``late``) is stored."""
    points, rows = await store.full_series(ctx.key)
    writes = alert_engine.derive_full(ctx, points, rows, utcnow(), [late])
    await store.write_alerts(
        writes, outbox.alert_events(writes, facts.client_id, facts.clinician_id)
    )
    return writes


def _score(
    definition: InstrumentDefinition, answers: Mapping[str, object], population: str
) -> Scores:
    """Scores of the answers, or a 422 naming every bad item (the engine validates as it scores);
    ``definition`` judges its respondent's ratings (DESIGN.md §10.3.5)."""
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
) -> SubmissionPublic:
    """Score and store a submission; returns it as the API shows it, with the alerts it
    changed."""
    # The definition first: an organisation's own instrument is read through SQLAlchemy, which
    # must come before the hot path's driver transaction opens (see UnitOfWork).
    definition = await resolve_named(
        uow, actor=actor, code=data.instrument, field="body.instrument"
    )
    key = SeriesKey(
        actor.org_id, data.episode_id, definition.code, data.respondent, data.rater or ""
    )
    values: SubmissionValues = {
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
    store = submission_store(uow)
    for attempt in range(2):
        if attempt:
            await store.lock_episode(key)
        context = await _context(store, actor, key)
        facts = context.facts
        if facts.status != "active":
            raise Conflict("the episode is closed; reopen it to add submissions")
        if data.respondent not in definition.respondents:
            raise InvalidInput.at(
                "body.respondent",
                f"allowed: {', '.join(definition.respondents)}",
                type="respondent",
                detail=f"{definition.code} is not rated by a {data.respondent}",
            )
        rated = definition.for_respondent(data.respondent)  # norms per respondent, §10.3.5
        scores = _score(rated, data.answers, facts.population)
        now = utcnow()
        values["scores"] = scores.model_dump(mode="json")
        values["total"] = scores.total
        values["created_at"] = now
        ctx = alert_engine.SeriesContext(
            key,
            rated,
            facts.population,
            alert_engine.settings_for(context.overrides),
            context.expected,
        )
        new = alert_store.point(
            data.session_number, values["id"], scores.total, scores.subscales, data.answers
        )
        alerts = alert_engine.evaluate_new(ctx, context.history, new, context.open_alerts, now)
        if alerts is None:
            # A late entry: the series is recomputed once it is stored, in one transaction.
            await store.hold_transaction()
        written = alerts or []
        current, inserted = await store.store(
            NewSubmission(
                values=values,
                audit=audit_event,
                alerts=written,
                events=[
                    events.submission_created(values, facts.client_id, facts.clinician_id),
                    *outbox.alert_events(written, facts.client_id, facts.clinician_id),
                ],
                alert_seq=facts.alert_seq,
            )
        )
        if current:
            break
    else:
        raise Conflict("the episode's alerts kept changing during this submission; send it again")
    if inserted is None:
        existing = await store.existing_valid(values)
        raise Conflict(
            f"session {data.session_number} already has a valid {definition.code} submission "
            f"from this respondent; void it to replace it",
            extra={"existing_id": str(existing) if existing else None},
        )
    if alerts is None:
        alerts = await _recompute_after_store(store, ctx, facts, str(inserted))
    if context.overdue_open:
        people = (facts.client_id, facts.clinician_id)
        alerts = [*alerts, *await store.clear_overdue(key, people, now)]
    metrics.SUBMISSIONS.inc()
    metrics.count_alerts(alerts)
    return to_public(values, alerts=alert_lifecycle.public_many(alerts, facts))


def to_public(
    values: SubmissionValues | Submission, *, alerts: Sequence[AlertInSubmission] = ()
) -> SubmissionPublic:
    """A submission as the API shows it; ``alerts``: those the request changed. Built without
    validating again what was validated on the way in and scored here (on the busiest route,
    validation cost several times the rendering); the route's response_model renders it."""
    row: Mapping[str, Any] = values.model_dump() if isinstance(values, Submission) else values
    scores = row["scores"]
    return SubmissionPublic.model_construct(
        id=row["id"],
        episode_id=row["episode_id"],
        instrument=row["instrument"],
        instrument_version=row["instrument_version"],
        session_number=row["session_number"],
        occurred_at=row["occurred_at"],
        respondent=row["respondent"],
        rater=row["rater"] or None,
        status=row["status"],
        answers=row["answers"],
        scores=ScoresPublic.model_construct(**{k: scores.get(k) for k in PUBLIC_SCORE_FIELDS}),
        alerts=list(alerts),
        created_at=row["created_at"],
        voided_at=row.get("voided_at"),
        void_reason=row.get("void_reason"),
    )


def _visible_submissions(actor: Actor) -> Select[Submission]:
    return select(Submission).where(visible_submissions(actor))


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
) -> SubmissionPublic:
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
    return to_public(
        row, alerts=alert_lifecycle.public_many(alerts, facts) if facts is not None else ()
    )
