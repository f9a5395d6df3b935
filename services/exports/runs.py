"""An export's record, for the key that ran it (issue 17): what it covered and, once it has
finished, how many rows it sent, so an analyst can check a file is whole.

Read from the export's own audit events (``export.start``, then ``export.finish`` with the row
count; `services.exports.runner`): the record exists once, where every export is audited anyway.
Only the key that ran the export sees it; anyone else gets 404, as for any object they may not
see.
"""

import uuid
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from models.audit import AuditEvent
from services.kernel.auth import Actor
from services.kernel.errors import NotFound

_AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]


class ExportRun(BaseModel):
    id: uuid.UUID
    dataset: str
    format: str
    identified: bool
    instrument: str | None
    since: datetime | None
    until: datetime
    # Where the rows were read: the primary or the read replica (services/kernel/replica.py).
    source: Literal["primary", "replica"]
    status: Literal["running", "complete", "incomplete"]
    rows: int | None
    started_at: datetime
    finished_at: datetime | None


async def export_run(session: AsyncSession, *, actor: Actor, run_id: uuid.UUID) -> ExportRun:
    events = (
        await session.execute(
            sa.select(_AUDIT.c.action, _AUDIT.c.outcome, _AUDIT.c.occurred_at, _AUDIT.c.details)
            .where(
                _AUDIT.c.org_id == actor.org_id,
                _AUDIT.c.resource_type == "export",
                _AUDIT.c.resource_id == run_id,
                _AUDIT.c.key_id == actor.principal.key_id,
                _AUDIT.c.action.in_(("export.start", "export.finish")),
            )
            .order_by(_AUDIT.c.occurred_at)
        )
    ).all()
    by_action = {action: (outcome, at, details or {}) for action, outcome, at, details in events}
    if actor.principal.key_id is None or "export.start" not in by_action:
        raise NotFound("export not found")
    _, started_at, details = by_action["export.start"]
    # (outcome, time, details with ``rows``), once the export has finished
    finished = by_action.get("export.finish")
    return ExportRun(
        id=run_id,
        dataset=details["dataset"],
        format=details["format"],
        identified=details["identified"],
        instrument=details.get("instrument"),
        since=details.get("since"),
        until=details["until"],
        source=details.get("source", "primary"),
        status="running"
        if finished is None
        else ("complete" if finished[0] == "success" else "incomplete"),
        rows=None if finished is None else finished[2].get("rows"),
        started_at=started_at,
        finished_at=None if finished is None else finished[1],
    )
