"""The facade's use cases on the database: a QuestionnaireResponse posted and read, Observations
and DetectedIssues searched and read. Scoring, alerts and audit are the submission service's
(`services.submissions.service.create_submission`); visibility rules are the ones the v1 API
applies."""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import ColumnElement, RowMapping, and_, false, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from models.episodes import Episode
from models.fhir import FhirIdentifier
from models.people import Client
from models.submissions import Submission, SubmissionCreate
from services.alerts import lifecycle as alert_lifecycle
from services.alerts.store import ALERTS
from services.fhir import resources
from services.fhir.codes import EXT_EPISODE
from services.fhir.ordering import SubmissionSelect, sorted_from
from services.fhir.resources import QR, FhirInputError, ScoreValues, SubmissionRow
from services.fhir.search import DateRange, ScoreCode, Sort
from services.fhir.shapes import DetectedIssue, Observation, QuestionnaireResponse
from services.instruments import InstrumentDefinition
from services.instruments import catalog as instrument_catalog
from services.kernel import audit, visibility
from services.kernel.auth import Actor
from services.kernel.database import UnitOfWork
from services.kernel.errors import Conflict, InvalidInput, NotFound
from services.kernel.store import kernel_store
from services.submissions import service as submissions

SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
EPISODES = Episode.__table__  # type: ignore[attr-defined]
IDENTIFIERS = FhirIdentifier.__table__  # type: ignore[attr-defined]
CLIENTS = Client.__table__  # type: ignore[attr-defined]
Definitions = Mapping[str, InstrumentDefinition]


def input_error(problems: Iterable[tuple[str, str]], detail: str) -> InvalidInput:
    return InvalidInput(
        detail,
        errors=[
            {"field": where, "message": message, "type": "fhir"} for where, message in problems
        ],
    )


async def definitions(session: AsyncSession, actor: Actor) -> dict[str, InstrumentDefinition]:
    return {d.code: d for d in await instrument_catalog.list_instruments(session, actor=actor)}


def visible_submissions(actor: Actor) -> SubmissionSelect:
    """Submissions the actor may see, with their episode's client and clinician and their FHIR
    identifier (if posted with one)."""
    return (
        select(
            SUBMISSIONS,
            EPISODES.c.client_id,
            EPISODES.c.clinician_id,
            IDENTIFIERS.c.system.label("identifier_system"),
            IDENTIFIERS.c.value.label("identifier_value"),
        )
        .join(EPISODES, EPISODES.c.id == SUBMISSIONS.c.episode_id)
        .outerjoin(
            IDENTIFIERS,
            and_(
                IDENTIFIERS.c.org_id == SUBMISSIONS.c.org_id,
                IDENTIFIERS.c.submission_id == SUBMISSIONS.c.id,
            ),
        )
        .where(visibility.visible_submissions(actor))
    )


def submission_row(row: RowMapping) -> SubmissionRow:
    """A row of `visible_submissions`."""
    identifier = None
    if row["identifier_value"] is not None:
        identifier = (row["identifier_system"], row["identifier_value"])
    return SubmissionRow(
        id=row["id"],
        episode_id=row["episode_id"],
        client_id=row["client_id"],
        clinician_id=row["clinician_id"],
        instrument=row["instrument"],
        instrument_version=row["instrument_version"],
        session_number=row["session_number"],
        respondent=row["respondent"],
        rater=row["rater"],
        status=row["status"],
        answers=row["answers"],
        scores=ScoreValues.of(row["scores"]),
        occurred_at=row["occurred_at"],
        created_at=row["created_at"],
        voided_at=row["voided_at"],
        identifier=identifier,
    )


async def _load_submission(
    db: AsyncSession | AsyncConnection, actor: Actor, submission_id: uuid.UUID
) -> SubmissionRow:
    row = (
        (await db.execute(visible_submissions(actor).where(SUBMISSIONS.c.id == submission_id)))
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound(f"{QR}/{submission_id} not found")
    return submission_row(row)


# POST QuestionnaireResponse.

_FIELDS = {
    "body.instrument": f"{QR}.questionnaire",
    "body.respondent": f"{QR}.source",
    "body.rater": f"{QR}.source.display",
    "body.occurred_at": f"{QR}.authored",
    "body.session_number": f"{QR}.extension",
    "body.episode_id": f"{QR}.extension",
}


def _as_fhir_fields(exc: InvalidInput) -> InvalidInput:
    """The submission service names body fields; a FHIR client needs FHIRPath expressions."""
    errors = []
    for error in exc.extra.get("errors", []):
        field = str(error.get("field", ""))
        if field.startswith("body.answers."):
            link_id = field.removeprefix("body.answers.")
            field = f"{QR}.item.where(linkId='{link_id}')"
        else:
            field = _FIELDS.get(field, QR)
        errors.append({**error, "field": field})
    return InvalidInput(exc.detail, errors=errors)


async def _claim(uow: UnitOfWork, actor: Actor, identifier: tuple[str, str]) -> bool:
    """Claim the identifier for this request (True), or find it taken (False). A concurrent
    request with the same identifier waits here until the first commits or rolls back."""
    values = {"org_id": actor.org_id, "system": identifier[0], "value": identifier[1]}
    return await kernel_store(uow).insert_if_absent(IDENTIFIERS, values)


async def _claimed_submission(
    conn: AsyncConnection, actor: Actor, identifier: tuple[str, str]
) -> uuid.UUID:
    found: uuid.UUID | None = await conn.scalar(
        select(IDENTIFIERS.c.submission_id).where(
            IDENTIFIERS.c.org_id == actor.org_id,
            IDENTIFIERS.c.system == identifier[0],
            IDENTIFIERS.c.value == identifier[1],
        )
    )
    if found is None:  # only while a first request is still in flight
        raise Conflict("a QuestionnaireResponse with this identifier is being processed")
    return found


async def _readable_submission(
    conn: AsyncConnection, actor: Actor, submission_id: uuid.UUID
) -> SubmissionRow:
    """The response an identifier already names, for a caller who may read it as
    ``GET QuestionnaireResponse/{id}`` would let them (DESIGN.md §10.8, issue 14 finding 1):
    `submissions:read` and, for a clinician-bound key, its caseload. Anyone else gets 409 with
    no id: their own response is not stored, and they learn nothing of the other one."""
    if actor.principal.has("submissions:read"):
        row = (
            (
                await conn.execute(
                    visible_submissions(actor).where(SUBMISSIONS.c.id == submission_id)
                )
            )
            .mappings()
            .one_or_none()
        )
        if row is not None:
            return submission_row(row)
    raise Conflict(
        "a QuestionnaireResponse with this identifier exists already; this one was not stored"
    )


async def subject_client(
    conn: AsyncConnection, actor: Actor, identifier: tuple[str, str]
) -> uuid.UUID:
    """The client a subject names by identifier (its external id, whatever the system: Attune
    keeps the value the EHR gave, unique in the organisation), among those the actor may see."""
    found: uuid.UUID | None = await conn.scalar(
        select(CLIENTS.c.id).where(
            visibility.visible_clients(actor), CLIENTS.c.external_id == identifier[1]
        )
    )
    if found is None:
        raise input_error(
            [(f"{QR}.subject", "no client of this organization has this identifier")],
            "the subject names no known client",
        )
    return found


async def only_active_episode(
    conn: AsyncConnection, actor: Actor, client_id: uuid.UUID
) -> uuid.UUID:
    """A response that names no episode belongs to its subject's one active episode (visible to
    the actor); with none or several, the EHR must name one."""
    found = (
        await conn.scalars(
            select(EPISODES.c.id)
            .where(visibility.visible_episodes(actor))
            .where(EPISODES.c.client_id == client_id, EPISODES.c.status == "active")
            .limit(2)
        )
    ).all()
    if len(found) != 1:
        raise input_error(
            [
                (
                    f"{QR}.extension('{EXT_EPISODE}')",
                    "the subject has no active episode"
                    if not found
                    else "the subject has several active episodes: name one",
                )
            ],
            "the QuestionnaireResponse names no episode of care",
        )
    return uuid.UUID(str(found[0]))


@dataclass(frozen=True)
class Posted:
    row: SubmissionRow
    created: bool
    definition: InstrumentDefinition


async def post_response(uow: UnitOfWork, *, actor: Actor, resource: Mapping[str, object]) -> Posted:
    """Score and store a QuestionnaireResponse as a submission, in the request's transaction.
    Idempotent on ``identifier``: the same identifier again gives the submission it created
    (``created`` False), whatever the body (FHIR conditional create)."""
    try:
        parsed = resources.parse_response(resource)
    except FhirInputError as exc:
        raise input_error(exc.problems, "the QuestionnaireResponse cannot be scored") from None
    # The request's SQLAlchemy transaction first: the submission service then runs inside it
    # (on PostgreSQL its driver statements go to the connection under it), so the identifier
    # claim, the submission, its alerts and audit commit or roll back together.
    conn = await uow.connection()
    if parsed.identifier is not None and not await _claim(uow, actor, parsed.identifier):
        existing = await _claimed_submission(conn, actor, parsed.identifier)
        row = await _readable_submission(conn, actor, existing)
        audit.record(
            await uow.orm(),
            actor,
            action="submission.read",
            resource_type="submission",
            resource_id=row.id,
        )
        definition = await instrument_catalog.resolve(uow, actor=actor, code=row.instrument)
        return Posted(row, False, definition)
    definition = await instrument_catalog.resolve_named(
        uow, actor=actor, code=parsed.code, field=f"{QR}.questionnaire"
    )
    if parsed.version is not None and parsed.version != definition.version:
        raise input_error(
            [(f"{QR}.questionnaire", f"version {definition.version} is the one scored")],
            f"Questionnaire {parsed.code} version {parsed.version} is not served",
        )
    subject = parsed.subject
    if parsed.subject_identifier is not None:
        subject = await subject_client(conn, actor, parsed.subject_identifier)
    episode_id = parsed.episode_id
    if episode_id is None:
        assert subject is not None  # parse_response wants an episode or a subject
        episode_id = await only_active_episode(conn, actor, subject)
    # The episode as the actor may see it (a key bound to a clinician: its caseload only), so
    # that the subject check below discloses nothing about other episodes.
    visible = select(EPISODES.c.client_id, EPISODES.c.clinician_id).where(
        visibility.visible_episodes(actor), EPISODES.c.id == episode_id
    )
    episode = (await conn.execute(visible)).one_or_none()
    if episode is not None and subject is not None and subject != episode[0]:
        raise input_error(
            [(f"{QR}.subject", "the episode's client")],
            "the subject is not the client of the episode",
        )
    try:
        data = SubmissionCreate.model_validate(
            {
                "episode_id": episode_id,
                "instrument": definition.code,
                "session_number": parsed.session_number,
                "occurred_at": parsed.occurred_at,
                "respondent": parsed.respondent,
                "rater": parsed.rater,
                "answers": resources.resolve_answers(definition, parsed.answers),
            }
        )
    except ValidationError as exc:
        raise _as_fhir_fields(
            InvalidInput(
                "the QuestionnaireResponse cannot be scored",
                errors=[
                    {
                        "field": "body." + ".".join(str(p) for p in e["loc"]),
                        "message": e["msg"],
                        "type": e["type"],
                    }
                    for e in exc.errors()
                ],
            )
        ) from None
    try:
        created = await submissions.create_submission(uow, actor=actor, data=data)
    except InvalidInput as exc:
        raise _as_fhir_fields(exc) from None
    if parsed.identifier is not None:
        await conn.execute(
            update(IDENTIFIERS)
            .where(
                IDENTIFIERS.c.org_id == actor.org_id,
                IDENTIFIERS.c.system == parsed.identifier[0],
                IDENTIFIERS.c.value == parsed.identifier[1],
            )
            .values(submission_id=created.id)
        )
    assert episode is not None  # create_submission found the episode
    row = SubmissionRow(
        id=created.id,
        episode_id=created.episode_id,
        client_id=episode[0],
        clinician_id=episode[1],
        instrument=created.instrument,
        instrument_version=created.instrument_version,
        session_number=created.session_number,
        respondent=created.respondent,
        rater=created.rater or "",
        status=created.status,
        answers=created.answers,
        scores=ScoreValues(created.scores.total, created.scores.subscales, created.scores.band),
        occurred_at=created.occurred_at,
        created_at=created.created_at,
        identifier=parsed.identifier,
    )
    return Posted(row, True, definition)


# Reads.


async def read_response(
    session: AsyncSession, *, actor: Actor, submission_id: uuid.UUID
) -> QuestionnaireResponse:
    row = await _load_submission(session, actor, submission_id)
    audit.record(
        session, actor, action="submission.read", resource_type="submission", resource_id=row.id
    )
    defs = await definitions(session, actor)
    return resources.questionnaire_response(row, defs.get(row.instrument))


async def read_observation(
    session: AsyncSession, *, actor: Actor, observation_id: str
) -> Observation:
    parts = resources.split_observation_id(observation_id)
    if parts is None:
        raise NotFound(f"Observation/{observation_id} not found")
    row = await _load_submission(session, actor, parts[0])
    defs = await definitions(session, actor)
    found = [
        o
        for o in resources.observations(row, defs.get(row.instrument))
        if o["id"] == observation_id
    ]
    if not found:
        raise NotFound(f"Observation/{observation_id} not found")
    audit.record(
        session, actor, action="observation.read", resource_type="submission", resource_id=row.id
    )
    return found[0]


@dataclass(frozen=True)
class ObservationQuery:
    # Every one must hold (FHIR ANDs repeated parameters; subject and patient are one filter).
    subjects: Sequence[uuid.UUID] = ()
    codes: Sequence[ScoreCode] = ()
    dates: Sequence[DateRange] = ()


def _score_matches(
    codes: Sequence[ScoreCode], definition: InstrumentDefinition | None, instrument: str,
    subscale: str | None,
) -> bool:  # fmt: skip
    if not codes:
        return True
    for code in codes:
        if code.loinc is not None:
            if subscale is None and definition is not None and definition.total_loinc == code.loinc:
                return True
        elif code.instrument == instrument and (
            (code.total_only and subscale is None)
            or (code.subscale is not None and code.subscale == subscale)
            or (not code.total_only and code.subscale is None)
        ):
            return True
    return False


def _instruments_for(codes: Sequence[ScoreCode], defs: Definitions) -> set[str] | None:
    """The instruments a code filter can match (None: any)."""
    if not codes:
        return {code for code, d in defs.items() if d.scoring.method != "none" or d.subscales}
    found: set[str] = set()
    for code in codes:
        if code.loinc is not None:
            found |= {c for c, d in defs.items() if d.total_loinc == code.loinc}
        elif code.instrument is not None:
            found.add(code.instrument)
    return found


def observation_filter(
    stmt: SubmissionSelect, query: ObservationQuery, defs: Definitions
) -> SubmissionSelect:
    for subject in query.subjects:
        stmt = stmt.where(EPISODES.c.client_id == subject)
    instruments = _instruments_for(query.codes, defs)
    if instruments is not None:
        stmt = stmt.where(SUBMISSIONS.c.instrument.in_(sorted(instruments)))
    effective = func.coalesce(SUBMISSIONS.c.occurred_at, SUBMISSIONS.c.created_at)
    for bounds in query.dates:
        if bounds.start is not None:
            stmt = stmt.where(effective >= bounds.start)
        if bounds.end is not None:
            stmt = stmt.where(effective < bounds.end)
    return stmt


def expand(row: SubmissionRow, defs: Definitions, codes: Sequence[ScoreCode]) -> list[Observation]:
    """A submission's Observations that the code filter selects."""
    definition = defs.get(row.instrument)
    selected = {
        suffix
        for suffix, subscale, _ in resources.score_suffixes(row)
        if _score_matches(codes, definition, row.instrument, subscale)
    }
    return [o for o in resources.observations(row, definition) if o["id"][37:] in selected]


async def search_observations(
    session: AsyncSession,
    *,
    actor: Actor,
    query: ObservationQuery,
    count: int,
    cursor: tuple[uuid.UUID, int] | None,
    sort: Sort | None = None,
) -> tuple[list[Observation], tuple[uuid.UUID, int] | None]:
    """A page of Observations in submission order (or by date with ``sort``), and where the next
    page starts (the first submission of it, and how many of its Observations were sent
    already)."""
    defs = await definitions(session, actor)
    stmt = observation_filter(visible_submissions(actor), query, defs)
    start, skip = cursor if cursor is not None else (None, 0)
    found: list[tuple[uuid.UUID, int, Observation]] = []
    while len(found) <= count:
        batch = sorted_from(stmt, sort, start, actor.org_id)
        rows = (await session.execute(batch.limit(count + 1))).mappings().all()
        for raw in rows:
            row = submission_row(raw)
            for position, resource in enumerate(expand(row, defs, query.codes)):
                if row.id == start and position < skip:
                    continue
                found.append((row.id, position, resource))
        if len(rows) <= count:
            break
        start, skip = rows[-1]["id"], 0
        # The last submission of this batch is read again by the next one: skip what it gave.
        found = [f for f in found if f[0] != start]
    audit.record(session, actor, action="observation.search", resource_type="submission")
    page = [resource for _, _, resource in found[:count]]
    if len(found) > count:
        submission_id, position, _ = found[count]
        return page, (submission_id, position)
    return page, None


async def count_observations(
    session: AsyncSession, *, actor: Actor, query: ObservationQuery
) -> int:
    """How many Observations a search matches (``_total``): a submission gives one per score the
    code filter selects, so its rows are expanded as the search does."""
    defs = await definitions(session, actor)
    stmt = observation_filter(visible_submissions(actor), query, defs)
    rows = (await session.execute(stmt)).mappings().all()
    return sum(len(expand(submission_row(raw), defs, query.codes)) for raw in rows)


# DetectedIssue.


async def _issue(session: AsyncSession, actor: Actor, alert: RowMapping) -> DetectedIssue:
    return issue_resource(await definitions(session, actor), alert)


def issue_resource(defs: Definitions, row: RowMapping) -> DetectedIssue:
    """An alert row (with its episode's client and clinician) as a DetectedIssue."""
    alert = alert_lifecycle.with_people(row)
    public = alert_lifecycle.public(alert, alert)
    suffix = resources.evidence_suffix(public, defs.get(alert["instrument"]))
    evidence = (
        resources.observation_id(public.submission_id, suffix)
        if suffix is not None and public.submission_id is not None
        else None
    )
    return resources.detected_issue(public, evidence_observation=evidence)


async def read_issue(session: AsyncSession, *, actor: Actor, alert_id: uuid.UUID) -> DetectedIssue:
    row = (
        (
            await session.execute(
                alert_lifecycle.visible_alerts(actor).where(ALERTS.c.id == alert_id)
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound(f"DetectedIssue/{alert_id} not found")
    audit.record(session, actor, action="alert.read", resource_type="alert", resource_id=alert_id)
    return await _issue(session, actor, row)


def _issue_status_is(status: str) -> ColumnElement[bool]:
    """The alerts `resources.issue_status` shows with ``status``: open → preliminary, resolved
    as retracted → entered-in-error, any other → final; no alert has another status."""
    retracted = and_(
        ALERTS.c.status == "resolved", func.coalesce(ALERTS.c.resolution, "") == "retracted"
    )
    if status == "preliminary":
        still_open: ColumnElement[bool] = ALERTS.c.status == "open"
        return still_open
    if status == "entered-in-error":
        return retracted
    if status == "final":
        return and_(ALERTS.c.status != "open", not_(retracted))
    return false()


async def search_issues(
    session: AsyncSession,
    *,
    actor: Actor,
    patients: Sequence[uuid.UUID],
    types: Sequence[str],
    statuses: Sequence[str] = (),
    count: int,
    after: uuid.UUID | None,
) -> tuple[list[DetectedIssue], uuid.UUID | None]:
    """Alerts the actor may see (concerns only for keys that may read them), oldest first.
    ``statuses``: DetectedIssue statuses, any of them (`resources.issue_status` maps alerts)."""
    stmt = alert_lifecycle.visible_alerts(actor)
    for patient in patients:
        stmt = stmt.where(EPISODES.c.client_id == patient)
    if types:
        stmt = stmt.where(ALERTS.c.type.in_(list(types)))
    if statuses:
        stmt = stmt.where(or_(false(), *(_issue_status_is(s) for s in set(statuses))))
    if after is not None:
        stmt = stmt.where(ALERTS.c.id > after)
    rows = (await session.execute(stmt.order_by(ALERTS.c.id).limit(count + 1))).mappings().all()
    audit.record(session, actor, action="alert.list", resource_type="alert")
    defs = await definitions(session, actor)
    page = [issue_resource(defs, r) for r in rows[:count]]
    return page, rows[count - 1]["id"] if len(rows) > count else None
