"""What a caller may read (DESIGN.md §4): one statement per resource, used by every list, get, FHIR
read and export.

A caller reads its own organisation's rows only. A key bound to a clinician reads only that
clinician's caseload: the episodes the clinician treats, their clients, and those episodes'
submissions and alerts. Concerns (what a client wrote about their care, perhaps about that very
clinician) need ``concerns:read`` and a key bound to no clinician. What a caller may not read
answers 404, as if it did not exist.

Each function gives the condition on the resource's own table, to add to whatever a caller
selects (an ORM entity, a few columns, a join): the rule is written once. The two statements
written for asyncpg by hand (services/submissions/store_pg.py, services/exports/ndjson_pg.py)
are pinned to these by tests/api/test_visibility.py, which runs both on the same data.
"""

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, exists, select

from models.alerts import CONCERN, Alert
from models.episodes import Episode
from models.people import Client
from models.submissions import Submission
from services.kernel.auth import Actor

_EPISODES = Episode.__table__  # type: ignore[attr-defined]
_CLIENTS = Client.__table__  # type: ignore[attr-defined]
_SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
_ALERTS = Alert.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Reader:
    """What decides what a caller may read: its organisation, the clinician its key is bound to
    (if any), and whether it may read concerns."""

    org_id: uuid.UUID
    clinician_id: uuid.UUID | None = None
    concerns: bool = False

    @classmethod
    def of(cls, actor: Actor) -> "Reader":
        return cls(actor.org_id, actor.clinician_id, sees_concerns(actor))


Caller = Actor | Reader


def sees_concerns(actor: Actor) -> bool:
    return actor.clinician_id is None and actor.principal.has("concerns:read")


def _reader(caller: Caller) -> Reader:
    return caller if isinstance(caller, Reader) else Reader.of(caller)


def _caseload(reader: Reader) -> Select[tuple[uuid.UUID]]:
    """The ids of the episodes a clinician-bound caller's clinician treats."""
    return select(_EPISODES.c.id).where(
        _EPISODES.c.org_id == reader.org_id, _EPISODES.c.clinician_id == reader.clinician_id
    )


def visible_episodes(caller: Caller) -> ColumnElement[bool]:
    """On ``episodes``."""
    reader = _reader(caller)
    mine = _EPISODES.c.org_id == reader.org_id
    if reader.clinician_id is None:
        return mine  # type: ignore[no-any-return]
    return and_(mine, _EPISODES.c.clinician_id == reader.clinician_id)


def visible_clients(caller: Caller) -> ColumnElement[bool]:
    """On ``clients``: those with an episode in the caseload."""
    reader = _reader(caller)
    mine = _CLIENTS.c.org_id == reader.org_id
    if reader.clinician_id is None:
        return mine  # type: ignore[no-any-return]
    treated = _caseload(reader).where(_EPISODES.c.client_id == _CLIENTS.c.id)
    return and_(mine, exists(treated))


def visible_submissions(caller: Caller) -> ColumnElement[bool]:
    """On ``submissions``: those of episodes in the caseload."""
    reader = _reader(caller)
    mine = _SUBMISSIONS.c.org_id == reader.org_id
    if reader.clinician_id is None:
        return mine  # type: ignore[no-any-return]
    return and_(mine, _SUBMISSIONS.c.episode_id.in_(_caseload(reader)))


def visible_alerts(caller: Caller) -> ColumnElement[bool]:
    """On ``alerts``: those of episodes in the caseload; concerns only with ``concerns:read``."""
    reader = _reader(caller)
    condition = _ALERTS.c.org_id == reader.org_id
    if reader.clinician_id is not None:
        condition = and_(condition, _ALERTS.c.episode_id.in_(_caseload(reader)))
    if not reader.concerns:
        condition = and_(condition, _ALERTS.c.type != CONCERN)
    return condition  # type: ignore[no-any-return]


__all__ = [
    "Caller",
    "Reader",
    "sees_concerns",
    "visible_alerts",
    "visible_clients",
    "visible_episodes",
    "visible_submissions",
]
