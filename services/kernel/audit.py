"""Audit events, written in the caller's transaction: one exists exactly when its change does.

A list or search read (an action ending in ``.list`` or ``.search``) also records the filters
it was asked for — its query parameters, as given — in ``details.filters``, so the trail says
whose data was read (issue 14 finding 10). The request boundary hands them over with
:func:`reading_with`, once per request, so no list route has to remember to.
"""

import uuid
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import TypedDict
from urllib.parse import parse_qsl

from pydantic import JsonValue
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.audit import AuditEvent
from models.base import new_id, utcnow
from services.kernel.auth import Actor
from services.kernel.pagination import fetch_page

_QUERY: ContextVar[bytes] = ContextVar("attune_audit_query", default=b"")
_READ_ACTIONS = (".list", ".search")
# Bounds, so a hostile query string cannot bloat the trail.
_MAX_FILTERS = 30
_MAX_VALUE = 200


def reading_with(query_string: bytes) -> None:
    """The current request's query string, for the filters of the list reads it audits."""
    _QUERY.set(query_string)


def filters_of(query_string: bytes) -> dict[str, JsonValue]:
    """Query parameters as filters: a repeated parameter becomes a list."""
    found: dict[str, JsonValue] = {}
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    for name, value in pairs[:_MAX_FILTERS]:
        value = value[:_MAX_VALUE]
        name = name[:_MAX_VALUE]
        if name in found:
            previous = found[name]
            found[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            found[name] = value
    return found


class AuditValues(TypedDict):
    """An ``audit_events`` row without its details."""

    id: uuid.UUID
    org_id: uuid.UUID | None
    key_id: uuid.UUID | None
    action: str
    resource_type: str
    resource_id: uuid.UUID | None
    outcome: str
    client_address: str | None
    occurred_at: datetime


def event_values(
    actor: Actor,
    *,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | None = None,
    outcome: str = "success",
) -> AuditValues:
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
    details: dict[str, JsonValue] | None = None,
) -> None:
    """``details``: what the event needs beyond the object it names (an export's dataset,
    filters and row count), never contents."""
    if action.endswith(_READ_ACTIONS) and (details is None or "filters" not in details):
        details = {**(details or {}), "filters": filters_of(_QUERY.get())}
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
    """A page of the organisation's trail, newest first. Reading the trail is itself audited
    (``audit.list``): who looked at whose reads is on record too (issue 14 finding 10)."""
    stmt = select(AuditEvent).where(col(AuditEvent.org_id) == actor.org_id)
    page = await fetch_page(
        session, stmt, id_column=col(AuditEvent.id), limit=limit, cursor=cursor, newest_first=True
    )
    record(session, actor, action="audit.list", resource_type="audit_event")
    return page
