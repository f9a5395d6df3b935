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
