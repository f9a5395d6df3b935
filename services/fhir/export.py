"""FHIR Bulk Data export (``GET /fhir/$export``): jobs in the database, files generated on
download.

A job records what was asked and its ``transaction_time``; nothing is written to disk. Each NDJSON
file is generated from the database when it is downloaded, in batches of short transactions
(constant memory, and SQLite writers are never held up for a whole download), holding what
existed as of the transaction time: rows created later are left out, and a submission voided later
is shown as it was then (valid). Alerts are shown as they are now (their lifecycle keeps no
history). A job is in progress for ``SETTLE_SECONDS`` after its transaction time, so that requests
that started before it have committed what they wrote by then; until then its status answers 202
with ``Retry-After``.
"""

import math
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, TypedDict

import orjson
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.base import utcnow
from models.fhir import FhirExportJob
from services.alerts import lifecycle as alert_lifecycle
from services.alerts.store import ALERTS
from services.fhir import resources, store
from services.fhir.codes import EXPORTABLE
from services.fhir.shapes import DetectedIssue, Observation, QuestionnaireResponse, Resource
from services.instruments import InstrumentDefinition
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.errors import NotFound

SETTLE_SECONDS = 2.0
BATCH = 500
JOBS = FhirExportJob.__table__  # type: ignore[attr-defined]


class ExportRefused(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(message)


def requested_types(value: str | None) -> list[str]:
    if value is None:
        return list(EXPORTABLE)
    types = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in types if t not in EXPORTABLE]
    if unknown or not types:
        raise ExportRefused("_type", "exportable types: " + ", ".join(EXPORTABLE))
    return list(dict.fromkeys(types))


def since_instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ExportRefused("_since", "a FHIR instant, with a time zone") from None
    if moment.tzinfo is None:
        raise ExportRefused("_since", "a FHIR instant, with a time zone")
    return moment


async def start(
    session: AsyncSession,
    *,
    actor: Actor,
    types: Sequence[str],
    since: datetime | None,
    request_url: str,
) -> FhirExportJob:
    job = FhirExportJob(
        org_id=actor.org_id,
        key_id=actor.principal.key_id,
        types=list(types),
        since=since,
        transaction_time=utcnow(),
        request_url=request_url[:2000],
    )
    session.add(job)
    audit.record(
        session, actor, action="fhir.export.start", resource_type="export", resource_id=job.id
    )
    return job


async def load(session: AsyncSession, *, actor: Actor, job_id: uuid.UUID) -> FhirExportJob:
    """A job the actor's key started, not cancelled; 404 otherwise. Jobs belong to their key,
    not to the organisation: another key of it may see less (issue 14 finding 9)."""
    job: FhirExportJob | None = await session.scalar(
        select(FhirExportJob).where(
            FhirExportJob.org_id == actor.org_id,  # type: ignore[arg-type]
            FhirExportJob.key_id == actor.principal.key_id,  # type: ignore[arg-type]
            FhirExportJob.id == job_id,  # type: ignore[arg-type]
            FhirExportJob.status != "cancelled",  # type: ignore[arg-type]
        )
    )
    if job is None:
        raise NotFound("no such export")
    return job


def retry_after(job: FhirExportJob, now: datetime) -> int | None:
    """Seconds until the job is complete, or None when it is."""
    remaining = (job.transaction_time + timedelta(seconds=SETTLE_SECONDS) - now).total_seconds()
    return max(1, math.ceil(remaining)) if remaining > 0 else None


class OutputFile(TypedDict):
    type: str
    url: str


class Manifest(TypedDict):
    """The completed job's answer (Bulk Data IG, "Response - Complete Status")."""

    transactionTime: str
    request: str
    requiresAccessToken: Literal[True]
    output: list[OutputFile]
    error: list[OutputFile]


def manifest(job: FhirExportJob, base: str) -> Manifest:
    return {
        "transactionTime": resources.instant(job.transaction_time),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {"type": t, "url": f"{base}/$export-files/{job.id}/{t}.ndjson"} for t in job.types
        ],
        "error": [],
    }


async def cancel(session: AsyncSession, *, actor: Actor, job_id: uuid.UUID) -> None:
    await load(session, actor=actor, job_id=job_id)
    await session.execute(update(JOBS).where(JOBS.c.id == job_id).values(status="cancelled"))
    audit.record(
        session, actor, action="fhir.export.cancel", resource_type="export", resource_id=job_id
    )


@dataclass(frozen=True)
class FileRequest:
    actor: Actor
    job: FhirExportJob
    resource_type: str
    definitions: dict[str, InstrumentDefinition]


def as_of(row: resources.SubmissionRow, moment: datetime) -> resources.SubmissionRow:
    """The submission as it was at ``moment``: valid if it was voided only later."""
    if row.voided_at is not None and row.voided_at > moment:
        return replace(row, status="valid", voided_at=None)
    return row


async def ndjson(
    sessionmaker: async_sessionmaker[AsyncSession], request: FileRequest
) -> AsyncIterator[bytes]:
    """One export file, in batches: one line per resource."""
    after: uuid.UUID | None = None
    lines: Sequence[Resource]
    while True:
        async with sessionmaker() as session:
            if request.resource_type == "DetectedIssue":
                rows, lines = await _issue_batch(session, request, after)
            else:
                rows, lines = await _submission_batch(session, request, after)
            await session.rollback()
        if lines:
            yield b"".join(orjson.dumps(line) + b"\n" for line in lines)
        if len(rows) < BATCH:
            return
        after = rows[-1]


async def _submission_batch(
    session: AsyncSession, request: FileRequest, after: uuid.UUID | None
) -> tuple[list[uuid.UUID], list[QuestionnaireResponse | Observation]]:
    job = request.job
    subs = store.SUBMISSIONS
    stmt = store.visible_submissions(request.actor).where(subs.c.created_at < job.transaction_time)
    if job.since is not None:
        stmt = stmt.where(
            or_(
                subs.c.created_at >= job.since,
                (subs.c.voided_at >= job.since) & (subs.c.voided_at < job.transaction_time),
            )
        )
    if after is not None:
        stmt = stmt.where(subs.c.id > after)
    found = (await session.execute(stmt.order_by(subs.c.id).limit(BATCH))).mappings().all()
    lines: list[QuestionnaireResponse | Observation] = []
    for raw in found:
        row = as_of(store.submission_row(raw), job.transaction_time)
        definition = request.definitions.get(row.instrument)
        if request.resource_type == "QuestionnaireResponse":
            lines.append(resources.questionnaire_response(row, definition))
        else:
            lines += resources.observations(row, definition)
    return [r["id"] for r in found], lines


async def _issue_batch(
    session: AsyncSession, request: FileRequest, after: uuid.UUID | None
) -> tuple[list[uuid.UUID], list[DetectedIssue]]:
    job = request.job
    stmt = alert_lifecycle.visible_alerts(request.actor).where(
        ALERTS.c.created_at < job.transaction_time
    )
    if job.since is not None:
        stmt = stmt.where(ALERTS.c.updated_at >= job.since)
    if after is not None:
        stmt = stmt.where(ALERTS.c.id > after)
    found = (await session.execute(stmt.order_by(ALERTS.c.id).limit(BATCH))).mappings().all()
    lines = [store.issue_resource(request.definitions, r) for r in found]
    return [r["id"] for r in found], lines
