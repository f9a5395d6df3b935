"""Episodes of care."""

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.episodes import Episode, EpisodeCreate, EpisodeStatus, EpisodeUpdate
from models.people import Client, Clinician
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.errors import Forbidden, InvalidInput, NotFound
from services.kernel.pagination import fetch_page
from services.kernel.visibility import visible_episodes


async def _check_clinician(session: AsyncSession, actor: Actor, clinician_id: uuid.UUID) -> None:
    if actor.clinician_id is not None and clinician_id != actor.clinician_id:
        raise Forbidden("a clinician-bound key may only assign episodes to its own clinician")
    found = await session.scalar(
        select(col(Clinician.id))
        .where(col(Clinician.org_id) == actor.org_id)
        .where(col(Clinician.id) == clinician_id)
    )
    if found is None:
        raise InvalidInput.unknown_reference("clinician_id", "clinician")


async def _in_reach(session: AsyncSession, actor: Actor, client_id: uuid.UUID) -> bool:
    """A clinician-bound key may open an episode for a client in its caseload, or for a client
    nobody treats yet (one it has just registered); never for a colleague's client, whose
    record that would pull into its caseload."""
    if actor.clinician_id is None:
        return True
    treated_by = set(
        (
            await session.scalars(
                select(col(Episode.clinician_id))
                .where(col(Episode.org_id) == actor.org_id)
                .where(col(Episode.client_id) == client_id)
            )
        ).all()
    )
    return not treated_by or actor.clinician_id in treated_by


async def create_episode(session: AsyncSession, *, actor: Actor, data: EpisodeCreate) -> Episode:
    client = await session.scalar(
        select(col(Client.id))
        .where(col(Client.org_id) == actor.org_id)
        .where(col(Client.id) == data.client_id)
    )
    if client is None or not await _in_reach(session, actor, data.client_id):
        raise InvalidInput.unknown_reference("client_id", "client")
    await _check_clinician(session, actor, data.clinician_id)
    row = Episode(
        org_id=actor.org_id,
        client_id=data.client_id,
        clinician_id=data.clinician_id,
        started_on=data.started_on or date.today(),
    )
    session.add(row)
    await session.flush()
    audit.record(
        session, actor, action="episode.create", resource_type="episode", resource_id=row.id
    )
    return row


async def load_episode(session: AsyncSession, *, actor: Actor, episode_id: uuid.UUID) -> Episode:
    """An episode the actor may see, or 404 (never 403: existence is not disclosed)."""
    row: Episode | None = await session.scalar(
        select(Episode).where(visible_episodes(actor)).where(col(Episode.id) == episode_id)
    )
    if row is None:
        raise NotFound("episode not found")
    return row


async def get_episode(session: AsyncSession, *, actor: Actor, episode_id: uuid.UUID) -> Episode:
    row = await load_episode(session, actor=actor, episode_id=episode_id)
    audit.record(session, actor, action="episode.read", resource_type="episode", resource_id=row.id)
    return row


async def list_episodes(
    session: AsyncSession,
    *,
    actor: Actor,
    client_id: uuid.UUID | None,
    clinician_id: uuid.UUID | None,
    status: EpisodeStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Episode], str | None]:
    stmt = select(Episode).where(visible_episodes(actor))
    if client_id is not None:
        stmt = stmt.where(col(Episode.client_id) == client_id)
    if clinician_id is not None:
        stmt = stmt.where(col(Episode.clinician_id) == clinician_id)
    if status is not None:
        stmt = stmt.where(col(Episode.status) == status)
    page = await fetch_page(session, stmt, id_column=col(Episode.id), limit=limit, cursor=cursor)
    audit.record(session, actor, action="episode.list", resource_type="episode")
    return page


async def update_episode(
    session: AsyncSession, *, actor: Actor, episode_id: uuid.UUID, data: EpisodeUpdate
) -> Episode:
    row = await load_episode(session, actor=actor, episode_id=episode_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("clinician_id") is not None:
        await _check_clinician(session, actor, changes["clinician_id"])
        row.clinician_id = changes["clinician_id"]
    status = changes.get("status")
    if status == "closed" and row.status != "closed":
        row.status = "closed"
        row.ended_on = changes.get("ended_on") or date.today()
    elif status == "active" and row.status != "active":
        row.status = "active"
        row.ended_on = None
    elif changes.get("ended_on") is not None:
        if row.status != "closed" and status != "closed":
            raise InvalidInput.at(
                "body.ended_on",
                "episode is not closed",
                type="state",
                detail="ended_on can be set only on a closed episode",
            )
        row.ended_on = changes["ended_on"]
    if row.ended_on is not None and row.ended_on < row.started_on:
        raise InvalidInput.at(
            "body.ended_on",
            "before started_on",
            type="range",
            detail="ended_on is before started_on",
        )
    row.updated_at = utcnow()
    await session.flush()
    if status == "closed":
        # A closed episode is no longer overdue for a measurement (DESIGN.md §10.3.6).
        from services.alerts import sweep as alert_sweep

        await alert_sweep.clear_overdue(
            await session.connection(), row.org_id, row.id, (row.client_id, row.clinician_id),
            row.updated_at,
        )  # fmt: skip
    audit.record(
        session, actor, action="episode.update", resource_type="episode", resource_id=row.id
    )
    return row
