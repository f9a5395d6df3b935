"""Exports prepared as the route prepares them, for tests that drive the runner directly."""

import dataclasses
import uuid
from typing import Any

from fastapi import FastAPI

from services.exports import runner as export_runner
from services.kernel.auth import Actor


async def prepared_export(
    app: FastAPI,
    actor: Actor,
    dataset: str,
    fmt: str,
    window: dict[str, Any],
    *,
    identified: bool = False,
) -> export_runner.PreparedExport:
    """``window``: any of ``since``, ``until``, ``instrument``, and ``clinician`` (a clinician's
    id: the export as a key bound to that clinician reads it, without concerns)."""
    query = export_runner.ExportQuery(
        dataset,
        fmt,
        window.get("since"),
        window.get("until"),
        window.get("instrument"),
        identified,
    )
    async with app.state.sessionmaker() as session:
        prepared = await export_runner.prepare(
            session,
            actor=actor,
            query=query,
            settle_seconds=0,
            secrets=app.state.settings.secret_box(),
        )
    if "clinician" in window:
        prepared = dataclasses.replace(
            prepared, clinician_id=uuid.UUID(window["clinician"]), sees_concerns=False
        )
    return prepared


async def both(
    app: FastAPI, actor: Actor, prepared: export_runner.PreparedExport
) -> tuple[bytes, bytes]:
    """The export's bytes from the PostgreSQL fast path and from the generic path, in batches
    of two rows."""
    outputs = []
    for driver_pool in (app.state.driver_pool, None):
        body = export_runner.stream(
            prepared,
            engine=app.state.engine,
            sessionmaker=app.state.sessionmaker,
            actor=actor,
            driver_pool=driver_pool,
            batch_rows=2,
        )
        outputs.append(b"".join([chunk async for chunk in body]))
    return outputs[0], outputs[1]
