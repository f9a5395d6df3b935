"""What a clinician-bound key may see: episodes its clinician treats, and their clients."""

from typing import Any, TypeVar

from sqlalchemy import Select, exists, select
from sqlmodel import col

from models.episodes import Episode
from models.people import Client
from services.kernel.auth import Actor

S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def visible_episodes(stmt: S, actor: Actor) -> S:
    stmt = stmt.where(col(Episode.org_id) == actor.org_id)
    if actor.clinician_id is not None:
        stmt = stmt.where(col(Episode.clinician_id) == actor.clinician_id)
    return stmt


def visible_clients(stmt: S, actor: Actor) -> S:
    stmt = stmt.where(col(Client.org_id) == actor.org_id)
    if actor.clinician_id is not None:
        treats = (
            select(col(Episode.id))
            .where(col(Episode.org_id) == actor.org_id)
            .where(col(Episode.client_id) == Client.id)
            .where(col(Episode.clinician_id) == actor.clinician_id)
        )
        stmt = stmt.where(exists(treats))
    return stmt
