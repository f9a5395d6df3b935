"""Audit events, written in the caller's transaction: one exists exactly when its change does."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.audit import AuditEvent
from models.base import new_id, utcnow
from services.kernel.auth import Actor
from services.kernel.pagination import fetch_page


def event_values(
    actor: Actor,
    *,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | None = None,
    outcome: str = "success",
) -> dict[str, Any]:
    """An audit event's column values; the submission hot path inserts them with its own SQL."""
    return {
        "id": new_id(),
        "org_id": actor.principal.org_id,
        "key_id": actor.principal.key_id,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "outcome": outcome,
        "client_address": actor.client_address,
        "occurred_at": utcnow(),
    }


def record(
    session: AsyncSession,
    actor: Actor,
    *,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """``details``: what the event needs beyond the object it names (an export's dataset,
    filters and row count), never contents."""
    session.add(
        AuditEvent(
            **event_values(
                actor,
                action=action,
                resource_type=resource_type,
                resource_id=resource_id,
                outcome=outcome,
            ),
            details=details,
        )
    )


async def list_events(
    session: AsyncSession, *, actor: Actor, limit: int, cursor: str | None
) -> tuple[Sequence[AuditEvent], str | None]:
    stmt = select(AuditEvent).where(col(AuditEvent.org_id) == actor.org_id)
    return await fetch_page(
        session, stmt, id_column=col(AuditEvent.id), limit=limit, cursor=cursor, newest_first=True
    )
