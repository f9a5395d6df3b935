"""Alerts: list, get, acknowledge, resolve (DESIGN.md §4, §6)."""

import uuid
from typing import Annotated, Any

from fastapi import Query, Request

from api.deps import Cursor, Limit, SessionDep, audit_target, require
from api.problems import responses
from api.routing import router as api_router
from models.alerts import (
    AlertAcknowledge,
    AlertPublic,
    AlertResolve,
    AlertSeverity,
    AlertStatus,
)
from services.alerts import RuleId
from services.alerts import lifecycle as alert_lifecycle
from services.kernel.auth import Actor
from services.kernel.pagination import DEFAULT_LIMIT, Page

router = api_router(prefix="/v1/alerts", tags=["alerts"])

AlertsRead = Annotated[Actor, require("alerts:read")]
AlertsWrite = Annotated[Actor, require("alerts:write")]


@router.get("", responses=responses(401, 403, 422))
async def list_alerts(
    request: Request,
    actor: AlertsRead,
    session: SessionDep,
    status: AlertStatus | None = None,
    type: Annotated[RuleId | None, Query(description="rule id, e.g. alliance.rupture")] = None,
    severity: AlertSeverity | None = None,
    episode_id: uuid.UUID | None = None,
    client_id: uuid.UUID | None = None,
    clinician_id: uuid.UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AlertPublic]:
    """Newest first. Concerns are listed only for keys that may read them."""
    audit_target(request, "alert.list", "alert", None)
    filters: dict[str, Any] = {
        "status": status,
        "type": type,
        "severity": severity,
        "episode_id": episode_id,
        "client_id": client_id,
        "clinician_id": clinician_id,
    }
    items, next_cursor = await alert_lifecycle.list_alerts(
        session, actor=actor, filters=filters, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{alert_id}", responses=responses(401, 403, 404, 422))
async def get_alert(
    alert_id: uuid.UUID, request: Request, actor: AlertsRead, session: SessionDep
) -> AlertPublic:
    """One alert with its evidence and the rule that raised it; a client's concern
    (`concern.reported`) carries what the client wrote, for keys that may read concerns."""
    audit_target(request, "alert.read", "alert", alert_id)
    return await alert_lifecycle.get_alert(session, actor=actor, alert_id=alert_id)


@router.post("/{alert_id}/acknowledge", responses=responses(401, 403, 404, 422))
async def acknowledge_alert(
    alert_id: uuid.UUID,
    body: AlertAcknowledge,
    request: Request,
    actor: AlertsWrite,
    session: SessionDep,
) -> AlertPublic:
    """Body ``{}`` or ``{"note": …}``. Idempotent: acknowledging again changes nothing (a note, if
    given, is kept)."""
    audit_target(request, "alert.acknowledge", "alert", alert_id)
    return await alert_lifecycle.acknowledge(
        session, actor=actor, alert_id=alert_id, note=body.note
    )


@router.post("/{alert_id}/resolve", responses=responses(401, 403, 404, 422))
async def resolve_alert(
    alert_id: uuid.UUID,
    body: AlertResolve,
    request: Request,
    actor: AlertsWrite,
    session: SessionDep,
) -> AlertPublic:
    """Idempotent: resolving a resolved alert keeps its first resolution."""
    audit_target(request, "alert.resolve", "alert", alert_id)
    return await alert_lifecycle.resolve(
        session, actor=actor, alert_id=alert_id, resolution=body.resolution, note=body.note
    )
