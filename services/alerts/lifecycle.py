"""Alerts as people see and handle them: list, get, acknowledge, resolve (DESIGN.md §4, §6).

Who sees what: an organisation's keys see its alerts; a clinician-bound key only those of the
episodes its clinician treats. ``concern.reported`` alerts are seen only by keys with
``concerns:read`` (or ``admin``) that are not bound to a clinician — never by the clinician a
concern may be about, in lists, gets or anything else; for everyone else they do not exist (404).

Acknowledging and resolving are idempotent: a second acknowledgement, or resolving what is already
resolved, changes nothing and answers the alert as it is. Both take the episode's lock first, as
the rule engine does, so a person's decision and a submission's re-evaluation never overwrite one
another.
"""

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypedDict, cast

from pydantic import JsonValue
from sqlalchemy import RowMapping, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.alerts import CONCERN, AlertInSubmission, AlertPublic
from models.base import new_id, utcnow
from models.episodes import Episode
from models.invitations import Concern
from services.alerts import store as alert_store
from services.alerts.model import AlertRow
from services.alerts.store import ALERTS, EpisodeFacts
from services.kernel import audit, visibility
from services.kernel.auth import Actor
from services.kernel.database import UntypedSelect
from services.kernel.errors import NotFound
from services.kernel.pagination import decode_cursor, encode_cursor
from services.kernel.visibility import sees_concerns as sees_concerns  # where it was
from services.webhooks import events, outbox

_EPISODES = Episode.__table__  # type: ignore[attr-defined]


class AlertWithPeople(AlertRow):
    """An alert row with its episode's client and clinician (:func:`visible_alerts`)."""

    client_id: uuid.UUID
    clinician_id: uuid.UUID


class PersonChange(TypedDict, total=False):
    """What a person's acknowledgement, resolution or note sets on an alert."""

    status: str
    resolution: str | None
    acknowledged_at: datetime | None
    acknowledged_by_key_id: uuid.UUID | None
    resolved_at: datetime | None
    resolved_by_key_id: uuid.UUID | None
    note: str | None
    updated_at: datetime


def public(row: AlertRow, facts: EpisodeFacts | AlertWithPeople) -> AlertPublic:
    """An alert as the API shows it; ``facts``: the episode's client and clinician."""
    return AlertPublic.model_validate(_shown(row, facts))


def _shown(row: AlertRow, facts: EpisodeFacts | AlertWithPeople) -> dict[str, object]:
    if isinstance(facts, EpisodeFacts):
        client_id, clinician_id = facts.client_id, facts.clinician_id
    else:
        client_id, clinician_id = facts["client_id"], facts["clinician_id"]
    return {
        "id": row["id"],
        "type": row["type"],
        "severity": row["severity"],
        "status": row["status"],
        "resolution": row["resolution"],
        "episode_id": row["episode_id"],
        "client_id": client_id,
        "clinician_id": clinician_id,
        "instrument": row["instrument"] or None,
        "respondent": row["respondent"] or None,
        "rater": row["rater"] or None,
        "subscale": row["subscale"] or None,
        "session_number": row["session_number"],
        "submission_id": row["submission_id"],
        "message": row["message"],
        "evidence": row["evidence"],
        "rule": {"id": row["type"], "version": row["rule_version"], "params": row["rule_params"]},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "acknowledged_at": row["acknowledged_at"],
        "resolved_at": row["resolved_at"],
        "note": row["note"],
        "escalated_at": row["escalated_at"],
        # Filled in only when a concern.reported alert is read by itself (get_alert).
        "concern": None,
    }


def visible_alerts(actor: Actor) -> UntypedSelect:
    """Alerts the actor may see, with their episode's ``client_id`` and ``clinician_id``."""
    return _visible(actor)


def _visible(actor: Actor) -> UntypedSelect:
    return (
        select(ALERTS, _EPISODES.c.client_id, _EPISODES.c.clinician_id)
        .join(_EPISODES, _EPISODES.c.id == ALERTS.c.episode_id)
        .where(visibility.visible_alerts(actor))
    )


async def list_alerts(
    session: AsyncSession,
    *,
    actor: Actor,
    filters: Mapping[str, object],
    limit: int,
    cursor: str | None,
) -> tuple[list[AlertPublic], str | None]:
    """Newest first. ``filters``: status, type, severity, episode_id, client_id, clinician_id
    (``None`` = any)."""
    stmt = _visible(actor)
    for name in ("status", "type", "severity", "episode_id"):
        if filters.get(name) is not None:
            stmt = stmt.where(ALERTS.c[name] == filters[name])
    for name in ("client_id", "clinician_id"):
        if filters.get(name) is not None:
            stmt = stmt.where(_EPISODES.c[name] == filters[name])
    if cursor is not None:
        stmt = stmt.where(ALERTS.c.id < decode_cursor(cursor))
    rows = (
        (await session.execute(stmt.order_by(ALERTS.c.id.desc()).limit(limit + 1))).mappings().all()
    )
    next_cursor = encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None
    audit.record(session, actor, action="alert.list", resource_type="alert")
    alerts = [with_people(r) for r in rows[:limit]]
    return [public(a, a) for a in alerts], next_cursor


def with_people(row: RowMapping) -> AlertWithPeople:
    """A row of :func:`visible_alerts`: the alerts table's columns and the episode's people."""
    return cast("AlertWithPeople", dict(row))


async def _load(session: AsyncSession, actor: Actor, alert_id: uuid.UUID) -> AlertWithPeople:
    row = (
        (await session.execute(_visible(actor).where(ALERTS.c.id == alert_id)))
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound("alert not found")
    return with_people(row)


async def get_alert(session: AsyncSession, *, actor: Actor, alert_id: uuid.UUID) -> AlertPublic:
    row = await _load(session, actor, alert_id)
    audit.record(session, actor, action="alert.read", resource_type="alert", resource_id=alert_id)
    out = _shown(row, row)
    if row["type"] == CONCERN:
        # _visible let it through, so this actor reads concerns.
        concern = await session.scalar(
            select(Concern)
            .where(col(Concern.org_id) == actor.org_id)
            .where(col(Concern.alert_id) == alert_id)
        )
        if concern is not None:
            out["concern"] = concern.model_dump(include={"id", "category", "message", "created_at"})
    return AlertPublic.model_validate(out)


async def _change(
    session: AsyncSession,
    actor: Actor,
    alert_id: uuid.UUID,
    action: str,
    note: str | None,
    transition: Callable[[AlertWithPeople], PersonChange],
) -> AlertPublic:
    """Load the alert, take its episode's lock, read it again under the lock and apply
    ``transition(row)`` (the columns to set, or nothing) and the note, if it is a new one."""
    found = await _load(session, actor, alert_id)
    await alert_store.lock_episode(await session.connection(), actor.org_id, found["episode_id"])
    row = await _load(session, actor, alert_id)
    values = transition(row)
    if note is not None and note != row["note"]:
        values["note"] = note
    if values:
        values["updated_at"] = utcnow()
        await session.execute(update(ALERTS).where(ALERTS.c.id == alert_id).values(**values))
        row = cast("AlertWithPeople", {**row, **values})
        event = events.alert_changed("updated", row, row["client_id"], row["clinician_id"])
        await outbox.write(await session.connection(), [event])
    audit.record(session, actor, action=action, resource_type="alert", resource_id=alert_id)
    return public(row, row)


async def acknowledge(
    session: AsyncSession, *, actor: Actor, alert_id: uuid.UUID, note: str | None
) -> AlertPublic:
    def transition(row: AlertWithPeople) -> PersonChange:
        if row["status"] != "open":
            return {}
        return {
            "status": "acknowledged",
            "acknowledged_at": utcnow(),
            "acknowledged_by_key_id": actor.principal.key_id,
        }

    return await _change(session, actor, alert_id, "alert.acknowledge", note, transition)


async def resolve(
    session: AsyncSession,
    *,
    actor: Actor,
    alert_id: uuid.UUID,
    resolution: str,
    note: str | None,
) -> AlertPublic:
    """A person resolves the alert; the rules never change it again. Resolving what is already
    resolved keeps the first resolution (a note may still be added)."""

    def transition(row: AlertWithPeople) -> PersonChange:
        if row["status"] == "resolved":
            return {}
        return {
            "status": "resolved",
            "resolution": resolution,
            "resolved_at": utcnow(),
            "resolved_by_key_id": actor.principal.key_id,
        }

    return await _change(session, actor, alert_id, "alert.resolve", note, transition)


async def raise_concern(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    episode_id: uuid.UUID,
    session_number: int | None,
    category: str | None,
) -> AlertInSubmission:
    """A ``concern.reported`` alert (high) for a concern a client raised. Its text is kept apart
    from the alert, which only says that there is one: alerts travel to places (lists, webhooks,
    exports) where a client's own words must not."""
    conn = await session.connection()
    facts = await alert_store.lock_episode(conn, org_id, episode_id)
    if facts is None:
        raise NotFound("episode not found")
    now = utcnow()
    about = f" ({category})" if category else ""
    evidence: dict[str, JsonValue] = {"category": category, "session_number": session_number}
    # Every concern is its own alert; one after a concern a person has handled names it
    # (DESIGN.md §10.3.2), so the reader knows the client has raised one before.
    previous = await alert_store.latest_handled_alert_id(conn, org_id, episode_id, CONCERN)
    if previous is not None:
        evidence["previous_alert_id"] = str(previous)
    row: AlertRow = {
        "id": new_id(),
        "org_id": org_id,
        "episode_id": episode_id,
        "type": CONCERN,
        "severity": "high",
        "status": "open",
        "resolution": None,
        "instrument": "",
        "respondent": "client",
        "rater": "",
        "subscale": "",
        "session_number": session_number,
        "submission_id": None,
        "first_session_number": None,
        "message": f"The client raised a concern about their care{about}. A supervisor should "
        "read it and follow up; it is not shown to the treating clinician.",
        "evidence": evidence,
        "rule_version": "1",
        "rule_params": {},
        "created_at": now,
        "updated_at": now,
        "acknowledged_at": None,
        "acknowledged_by_key_id": None,
        "resolved_at": None,
        "resolved_by_key_id": None,
        "note": None,
        "escalated_at": None,
    }
    await alert_store.write_alert_rows(conn, [("created", row)], facts)
    return AlertInSubmission.model_validate({**_shown(row, facts), "change": "created"})


def public_many(
    rows: Sequence[tuple[str, AlertRow]], facts: EpisodeFacts
) -> list[AlertInSubmission]:
    """Alerts as a submission's (or void's) response lists them, with what it did to each.
    Validated (pydantic's validator costs no more than model_construct here, measured)."""
    return [
        AlertInSubmission.model_validate({**_shown(row, facts), "change": change})
        for change, row in rows
    ]
