"""Analyst exports: `GET /v1/exports/{dataset}`, streamed (DESIGN.md §4, §8)."""

import re
import uuid
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from api.deps import SessionDep, audit_target, require
from api.problems import responses
from api.routing import router as api_router
from models.types import Timestamp
from services.exports import MEDIA_TYPES, Dataset, Format, datapackage
from services.exports import leases as export_leases
from services.exports import runner as export_runner
from services.exports import runs as export_runs
from services.kernel.auth import Actor
from services.kernel.replica import read_source

router = api_router(prefix="/v1/exports", tags=["exports"])

ExportsRead = Annotated[Actor, require("exports:read")]
UNTIL_HEADER = "Attune-Export-Until"
EXPORT_ID_HEADER = "Attune-Export-Id"

_ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_8601(value: object) -> object:
    # Pydantic would take a bare number as Unix time; a query parameter documented as a
    # date-time takes ISO 8601 only.
    if not isinstance(value, str) or not _ISO_8601.match(value):
        raise ValueError("must be an ISO 8601 date-time with an offset")
    return value


QueryTimestamp = Annotated[Timestamp, BeforeValidator(_iso_8601)]
_EXTENSIONS = {"ndjson": "ndjson", "csv": "csv", "parquet": "parquet"}
_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The rows, streamed in change order. De-identified unless "
        "`identified=true`. Pass the `Attune-Export-Until` header as the next pull's `since`.",
        # Parquet first: a client generator that reads one media type per response
        # (openapi-python-client) takes the first, and the binary one must come back as bytes.
        "content": {
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
        "headers": {
            UNTIL_HEADER: {
                "description": "The end (exclusive) of the change window this export covers",
                "schema": {"type": "string", "format": "date-time"},
            },
            EXPORT_ID_HEADER: {
                "description": "This export's id: `GET /v1/exports/runs/{id}` gives its row count "
                "once it has finished",
                "schema": {"type": "string", "format": "uuid"},
            },
        },
    }
}


@router.get(
    "/runs/{export_id}",
    response_model=export_runs.ExportRun,
    responses=responses(401, 403, 404, 422),
    summary="An export this key ran: its window, and its row count once finished",
)
async def get_export_run(
    export_id: uuid.UUID, actor: ExportsRead, session: SessionDep
) -> export_runs.ExportRun:
    """The record of an export (its id is the `Attune-Export-Id` header of the export's
    response): dataset, format, window, and once it has finished `rows`, the number of rows
    it sent, with `status` `complete` (every row sent) or `incomplete` (broken off). Only the
    key that ran the export sees it."""
    return await export_runs.export_run(session, actor=actor, run_id=export_id)


def _filename(dataset: str, format: str) -> str:
    return f"attune-{dataset}.{_EXTENSIONS[format]}"


@router.get(
    "/{dataset}/datapackage.json",
    responses=responses(401, 403, 422),
    summary="The data package (Frictionless) of an export: its columns, typed and described",
)
async def get_export_datapackage(
    dataset: Dataset,
    actor: ExportsRead,
    identified: Annotated[
        bool, Query(description="describe the identified export's columns")
    ] = False,
) -> dict[str, Any]:
    """A Frictionless tabular data package describing the CSV export of `dataset` (same
    `identified`): every column's name, Table Schema type and meaning. Saved beside the export
    under its file name (`attune-{dataset}.csv`), `frictionless validate datapackage.json`
    checks it, and pandas, DuckDB or R can take the types from it (for example,
    `instrument_version` is text, not a number). Describes columns only, no data."""
    del actor  # the scope check is the dependency's
    return datapackage.package(dataset, identified=identified, filename=_filename(dataset, "csv"))


@router.get(
    "/{dataset}",
    response_class=StreamingResponse,
    responses={**_OK, **responses(401, 403, 422, 429)},
)
async def export_dataset(
    dataset: Dataset,
    request: Request,
    actor: ExportsRead,
    session: SessionDep,
    format: Format = "ndjson",
    since: Annotated[
        QueryTimestamp | None, Query(description="changes at or after this instant (ISO 8601)")
    ] = None,
    until: Annotated[
        QueryTimestamp | None,
        Query(description="changes before this instant; at most now minus the settle time"),
    ] = None,
    instrument: Annotated[
        str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", description="instrument code")
    ] = None,
    identified: Annotated[
        bool, Query(description="ids, external ids, dates and text; needs exports:identified")
    ] = False,
    trailer: Annotated[
        bool,
        Query(
            description='NDJSON: end with a line {"_trailer": {"export_id": …, "rows": N}} once '
            "every row is out, so a reader can tell a whole file from a broken-off one"
        ),
    ] = False,
) -> StreamingResponse:
    """`submissions` (one row per submission, answers and scores), `scores` (one row per
    submission and score: total, mean, each subscale) or `alerts` (with their lifecycle), as
    NDJSON, CSV (RFC 4180) or Parquet, of the changes in `since <= changed < until`.

    De-identified by default: stable pseudonyms instead of ids, `days_since_episode_start`
    instead of dates, no free text. A clinician-bound key exports its caseload only."""
    audit_target(request, "export.start", "export", None)
    query = export_runner.ExportQuery(
        dataset=dataset,
        format=format,
        since=since,
        until=until,
        instrument=instrument,
        identified=identified,
        trailer=trailer,
    )
    settings, state = request.app.state.settings, request.app.state
    # Long reads go to the read replica when there is a healthy one (services/kernel/replica.py).
    # A replica that has not yet replayed up to `since` cannot serve this window: the primary does.
    source = await read_source(
        state.replica, state.engine, state.sessionmaker, state.driver_pool, needs=since
    )
    prepared = await export_runner.prepare(
        session,
        actor=actor,
        query=query,
        settle_seconds=settings.export_settle_seconds,
        secrets=settings.secret_box(),
        source=source.name,
        safe_until=source.safe_until,
    )
    lease = await export_leases.acquire(session, actor=actor, cap=settings.export_max_concurrent)
    body = export_leases.held(
        export_runner.stream(
            prepared,
            engine=source.engine,
            sessionmaker=state.sessionmaker,  # the export.finish audit event: on the primary
            actor=actor,
            driver_pool=source.driver_pool,
        ),
        engine=request.app.state.engine,
        lease_id=lease,
    )
    filename = _filename(dataset, format)
    return StreamingResponse(
        body,
        media_type=MEDIA_TYPES[format],
        headers={
            UNTIL_HEADER: prepared.until.isoformat(),
            EXPORT_ID_HEADER: str(prepared.run_id),
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
