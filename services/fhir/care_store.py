"""The facade's reads of people and episodes (Patient, Practitioner, EpisodeOfCare), the
QuestionnaireResponse search, and clients found by their external id (an MRN), for searches and
for a response whose subject names the client by identifier. What a caller may read is the v1
API's: `services.kernel.visibility` for clients and episodes, the organisation for clinicians."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped
from sqlmodel import col

from models.episodes import Episode
from models.people import Client, Clinician
from services.fhir import people, resources
from services.fhir.ordering import SubmissionSelect, effective, sorted_from
from services.fhir.resources import QR
from services.fhir.search import DateRange, PatientRef, Sort
from services.fhir.shapes import (
    EpisodeOfCare,
    Patient,
    Practitioner,
    QuestionnaireResponse,
    Resource,
)
from services.fhir.store import (
    EPISODES,
    IDENTIFIERS,
    SUBMISSIONS,
    definitions,
    submission_row,
    visible_submissions,
)
from services.kernel import audit, visibility
from services.kernel.auth import Actor
from services.kernel.errors import NotFound


class Identified(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


Row = TypeVar("Row", bound=Identified)
NOWHERE = uuid.UUID(int=0)  # a client id no row has: a reference that resolves to no one


@dataclass(frozen=True)
class Page:
    resources: Sequence[Resource]
    next_start: uuid.UUID | None  # the first row of the next page
    total: int | None = None


async def client_by_identifier(
    session: AsyncSession, actor: Actor, identifier: tuple[str, str]
) -> uuid.UUID | None:
    """The visible client whose external id is the identifier's value (any system: Attune keeps
    the value the EHR gave, unique in the organisation)."""
    found: uuid.UUID | None = await session.scalar(
        select(col(Client.id))
        .where(visibility.visible_clients(actor))
        .where(col(Client.external_id) == identifier[1])
    )
    return found


async def resolve(
    session: AsyncSession, actor: Actor, refs: Sequence[PatientRef]
) -> list[uuid.UUID]:
    """Client ids of reference search values; an identifier no visible client has → `NOWHERE`."""
    out = []
    for ref in refs:
        if ref.id is not None:
            out.append(ref.id)
        else:
            assert ref.identifier is not None
            out.append(await client_by_identifier(session, actor, ref.identifier) or NOWHERE)
    return out


async def _page(
    session: AsyncSession,
    stmt: Select[Row],
    *,
    id_column: Mapped[uuid.UUID],
    count: int,
    start: uuid.UUID | None,
    want_total: bool,
) -> tuple[Sequence[Row], uuid.UUID | None, int | None]:
    total = None
    if want_total:
        total = int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    if start is not None:
        stmt = stmt.where(id_column >= start)
    rows = (await session.scalars(stmt.order_by(id_column).limit(count + 1))).all()
    following = rows[count].id if len(rows) > count else None
    return rows[:count], following, total


# Patient.


def _patients(actor: Actor) -> Select[Client]:
    return select(Client).where(visibility.visible_clients(actor))


async def read_patient(session: AsyncSession, *, actor: Actor, client_id: uuid.UUID) -> Patient:
    row = await session.scalar(_patients(actor).where(col(Client.id) == client_id))
    if row is None:
        raise NotFound(f"Patient/{client_id} not found")
    audit.record(session, actor, action="client.read", resource_type="client", resource_id=row.id)
    return people.patient(row)


def _by_ids_and_identifiers(
    stmt: Select[Row], id_column: Mapped[uuid.UUID], external_id: Mapped[str | None],
    ids: Sequence[uuid.UUID] | None, identifiers: Sequence[tuple[str, str]] | None,
) -> Select[Row]:  # fmt: skip
    if ids is not None:
        stmt = stmt.where(id_column.in_(list(ids)))
    if identifiers is not None:
        stmt = stmt.where(external_id.in_([value for _, value in identifiers]))
    return stmt


async def search_patients(
    session: AsyncSession, *, actor: Actor, ids: Sequence[uuid.UUID] | None,
    identifiers: Sequence[tuple[str, str]] | None, count: int, start: uuid.UUID | None,
    want_total: bool,
) -> Page:  # fmt: skip
    stmt = _by_ids_and_identifiers(
        _patients(actor), col(Client.id), col(Client.external_id), ids, identifiers
    )
    rows, following, total = await _page(
        session, stmt, id_column=col(Client.id), count=count, start=start, want_total=want_total
    )
    audit.record(session, actor, action="client.list", resource_type="client")
    return Page([people.patient(r) for r in rows], following, total)


# Practitioner: every clinician of the organisation, as GET /v1/clinicians.


def _practitioners(actor: Actor) -> Select[Clinician]:
    return select(Clinician).where(col(Clinician.org_id) == actor.org_id)


async def read_practitioner(
    session: AsyncSession, *, actor: Actor, clinician_id: uuid.UUID
) -> Practitioner:
    row = await session.scalar(_practitioners(actor).where(col(Clinician.id) == clinician_id))
    if row is None:
        raise NotFound(f"Practitioner/{clinician_id} not found")
    audit.record(
        session, actor, action="clinician.read", resource_type="clinician", resource_id=row.id
    )
    return people.practitioner(row)


async def search_practitioners(
    session: AsyncSession, *, actor: Actor, ids: Sequence[uuid.UUID] | None,
    identifiers: Sequence[tuple[str, str]] | None, count: int, start: uuid.UUID | None,
    want_total: bool,
) -> Page:  # fmt: skip
    stmt = _by_ids_and_identifiers(
        _practitioners(actor), col(Clinician.id), col(Clinician.external_id), ids, identifiers
    )
    rows, following, total = await _page(
        session, stmt, id_column=col(Clinician.id), count=count, start=start,
        want_total=want_total,
    )  # fmt: skip
    audit.record(session, actor, action="clinician.list", resource_type="clinician")
    return Page([people.practitioner(r) for r in rows], following, total)


# EpisodeOfCare.


def _episodes(actor: Actor) -> Select[Episode]:
    return select(Episode).where(visibility.visible_episodes(actor))


async def read_episode(
    session: AsyncSession, *, actor: Actor, episode_id: uuid.UUID
) -> EpisodeOfCare:
    row = await session.scalar(_episodes(actor).where(col(Episode.id) == episode_id))
    if row is None:
        raise NotFound(f"EpisodeOfCare/{episode_id} not found")
    audit.record(session, actor, action="episode.read", resource_type="episode", resource_id=row.id)
    return people.episode_of_care(row)


_EPISODE_STATUS = {"active": "active", "finished": "closed"}


async def search_episodes(
    session: AsyncSession, *, actor: Actor, ids: Sequence[uuid.UUID] | None,
    patients: Sequence[uuid.UUID], status: str | None, count: int, start: uuid.UUID | None,
    want_total: bool,
) -> Page:  # fmt: skip
    stmt = _episodes(actor)
    if ids is not None:
        stmt = stmt.where(col(Episode.id).in_(list(ids)))
    for patient in patients:
        stmt = stmt.where(col(Episode.client_id) == patient)
    if status is not None:
        stmt = stmt.where(col(Episode.status) == _EPISODE_STATUS[status])
    rows, following, total = await _page(
        session, stmt, id_column=col(Episode.id), count=count, start=start, want_total=want_total
    )
    audit.record(session, actor, action="episode.list", resource_type="episode")
    return Page([people.episode_of_care(r) for r in rows], following, total)


# QuestionnaireResponse search.


@dataclass(frozen=True)
class ResponseQuery:
    ids: Sequence[uuid.UUID] | None = None
    patients: Sequence[uuid.UUID] = ()
    questionnaire: tuple[str, str | None] | None = None
    authored: Sequence[DateRange] = ()
    identifier: tuple[str, str] | None = None


def _response_filter(stmt: SubmissionSelect, query: ResponseQuery) -> SubmissionSelect:
    if query.ids is not None:
        stmt = stmt.where(SUBMISSIONS.c.id.in_(list(query.ids)))
    for patient in query.patients:
        stmt = stmt.where(EPISODES.c.client_id == patient)
    if query.questionnaire is not None:
        code, version = query.questionnaire
        stmt = stmt.where(SUBMISSIONS.c.instrument == code)
        if version is not None:
            stmt = stmt.where(SUBMISSIONS.c.instrument_version == version)
    for bounds in query.authored:
        if bounds.start is not None:
            stmt = stmt.where(effective() >= bounds.start)
        if bounds.end is not None:
            stmt = stmt.where(effective() < bounds.end)
    if query.identifier is not None:
        system, value = query.identifier
        stmt = stmt.where(IDENTIFIERS.c.value == value)
        if system:
            stmt = stmt.where(IDENTIFIERS.c.system == system)
    return stmt


async def search_responses(
    session: AsyncSession, *, actor: Actor, query: ResponseQuery, sort: Sort | None, count: int,
    start: uuid.UUID | None, want_total: bool,
) -> Page:  # fmt: skip
    stmt = _response_filter(visible_submissions(actor), query)
    total = None
    if want_total:
        total = int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = (
        (await session.execute(sorted_from(stmt, sort, start, actor.org_id).limit(count + 1)))
        .mappings()
        .all()
    )
    defs = await definitions(session, actor)
    found = [submission_row(r) for r in rows]
    audit.record(session, actor, action="submission.search", resource_type="submission")
    return Page(
        [resources.questionnaire_response(r, defs.get(r.instrument)) for r in found[:count]],
        found[count].id if len(found) > count else None,
        total,
    )


async def responses_by_id(
    session: AsyncSession, *, actor: Actor, submission_ids: Sequence[uuid.UUID]
) -> list[QuestionnaireResponse]:
    """The visible QuestionnaireResponses among ``submission_ids`` (for ``_include``)."""
    if not submission_ids:
        return []
    stmt = visible_submissions(actor).where(SUBMISSIONS.c.id.in_(list(submission_ids)))
    rows = (await session.execute(stmt.order_by(SUBMISSIONS.c.id))).mappings().all()
    defs = await definitions(session, actor)
    out = []
    for raw in rows:
        row = submission_row(raw)
        out.append(resources.questionnaire_response(row, defs.get(row.instrument)))
    return out


__all__ = ["NOWHERE", "QR", "Page", "ResponseQuery"]
