"""FHIR Bulk Data export: kick-off, status (poll, cancel) and the NDJSON files."""

import uuid
from typing import Annotated

from fastapi import Path, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import SessionDep, audit_target, require
from api.fhir.responses import SearchRefused
from api.fhir.routes import base_url, public_url
from api.routing import router as api_router
from models.base import utcnow
from services.exports import leases as export_leases
from services.fhir import export, store
from services.fhir.codes import EXPORTABLE, NDJSON_MEDIA_TYPE
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.errors import NotFound
from services.kernel.replica import read_source

router = api_router(prefix="/fhir", tags=["fhir"], include_in_schema=False)

# Exported resources carry client ids: identified data (admin keys have the scope too).
Exporter = Annotated[Actor, require("exports:identified")]
_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
FileName = Annotated[str, Path(pattern="^(" + "|".join(EXPORTABLE) + r")\.ndjson$")]


@router.get("/$export")
async def kick_off(request: Request, actor: Exporter, session: SessionDep) -> Response:
    params = request.query_params
    try:
        types = export.requested_types(params.get("_type"))
        since = export.since_instant(params.get("_since"))
    except export.ExportRefused as exc:
        raise SearchRefused(exc.parameter, str(exc)) from None
    output_format = params.get("_outputFormat")
    if output_format is not None and output_format not in _FORMATS:
        raise SearchRefused("_outputFormat", "application/fhir+ndjson")
    job = await export.start(
        session, actor=actor, types=types, since=since, request_url=public_url(request)
    )
    return Response(
        status_code=202,
        headers={"Content-Location": f"{base_url(request)}/$export-status/{job.id}"},
    )


@router.get("/$export-status/{job_id}")
async def export_status(
    job_id: uuid.UUID, request: Request, actor: Exporter, session: SessionDep
) -> Response:
    audit_target(request, "fhir.export.status", "export", job_id)
    job = await export.load(session, actor=actor, job_id=job_id)
    wait = export.retry_after(job, utcnow())
    if wait is not None:
        return Response(
            status_code=202, headers={"Retry-After": str(wait), "X-Progress": "in progress"}
        )
    # The manifest is plain JSON, not a FHIR resource (Bulk Data IG).
    return JSONResponse(export.manifest(job, base_url(request)))


@router.delete("/$export-status/{job_id}")
async def cancel_export(
    job_id: uuid.UUID, request: Request, actor: Exporter, session: SessionDep
) -> Response:
    audit_target(request, "fhir.export.cancel", "export", job_id)
    await export.cancel(session, actor=actor, job_id=job_id)
    return Response(status_code=202)


@router.get("/$export-files/{job_id}/{file_name}")
async def export_file(
    job_id: uuid.UUID, file_name: FileName, request: Request, actor: Exporter, session: SessionDep
) -> StreamingResponse:
    audit_target(request, "fhir.export.download", "export", job_id)
    job = await export.load(session, actor=actor, job_id=job_id)
    resource_type = file_name.removesuffix(".ndjson")
    if resource_type not in job.types or export.retry_after(job, utcnow()) is not None:
        raise NotFound("this export has no such file (yet)")
    audit.record(
        session, actor, action="fhir.export.download", resource_type="export", resource_id=job.id
    )
    file = export.FileRequest(
        actor=actor,
        job=job,
        resource_type=resource_type,
        definitions=await store.definitions(session, actor),
    )
    cap = request.app.state.settings.export_max_concurrent
    lease = await export_leases.acquire(session, actor=actor, cap=cap)
    state = request.app.state
    # From the read replica when it has every commit up to the job's transaction time.
    source = await read_source(
        state.replica, state.engine, state.sessionmaker, None, needs=job.transaction_time
    )
    body = export.ndjson(source.sessionmaker, file)
    return StreamingResponse(
        export_leases.held(body, engine=request.app.state.engine, lease_id=lease),
        media_type=NDJSON_MEDIA_TYPE,
    )
