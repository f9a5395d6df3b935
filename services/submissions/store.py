"""The storage seam of the submission use case: what `services.submissions.service` asks of the
database, as one `Protocol` with two stores behind it — SQLAlchemy Core on the request's
connection (`store_sql`, SQLite, and PostgreSQL without a driver pool) and asyncpg (`store_pg`,
the PostgreSQL hot path). The store is chosen once per unit of work, here; the use case never asks
which database it is on (tests/unit/test_codebase.py reads it for that)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Protocol

from services.alerts.engine import Writes
from services.alerts.model import AlertRow, SeriesPoint
from services.alerts.store import EpisodeFacts, SeriesKey
from services.kernel.audit import AuditValues
from services.kernel.database import UnitOfWork
from services.submissions.rows import SubmissionValues
from services.trajectory.etr import ExpectedResponse
from services.webhooks.events import EventRow

# One valid submission per (session, instrument, respondent, rater) of an episode.
SERIES_KEY = ("org_id", "episode_id", "session_number", "instrument", "respondent", "rater")
# The values of SERIES_KEY, in its order.
series_key_of = itemgetter(*SERIES_KEY)


@dataclass(frozen=True, slots=True)
class SubmissionContext:
    """What a new submission is judged against: the episode, the series' first score and latest
    sessions (in session order), its unresolved alerts, the organisation's alert settings and its
    expected-response model for the series (DESIGN.md §10.5). ``overdue_open``: False only when
    the read saw no open ``measurement.overdue`` alert of the episode; the sweep bumps the
    episode's ``alert_seq`` when it raises one, so a store that succeeds after such a read has
    none to clear (services/alerts/sweep.py)."""

    facts: EpisodeFacts
    history: list[SeriesPoint]
    open_alerts: list[AlertRow]
    overrides: dict[str, dict[str, object]]
    expected: ExpectedResponse | None = None
    overdue_open: bool = True


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """Everything one submission writes, together: its row's values, its audit event, the alert
    changes it caused, and the outbox events of both (submission.created first)."""

    values: SubmissionValues
    audit: AuditValues
    alerts: Writes
    events: list[EventRow]
    alert_seq: int


class SubmissionStore(Protocol):
    async def context(
        self, key: SeriesKey, clinician_id: uuid.UUID | None, api_key_id: uuid.UUID | None
    ) -> SubmissionContext | None:
        """None when the episode does not exist or is outside the clinician's caseload."""
        ...

    async def lock_episode(self, key: SeriesKey) -> None:
        """Open the transaction and take the episode's alert lock in it (bumping ``alert_seq``)."""
        ...

    async def hold_transaction(self) -> None:
        """Open the transaction now: what follows must commit with the store."""
        ...

    async def store(self, new: NewSubmission) -> tuple[bool, uuid.UUID | None]:
        """If the episode's ``alert_seq`` is still ``new.alert_seq``, write it all: (it was, the
        submission's id, or None when a valid one for the same series and session exists)."""
        ...

    async def full_series(self, key: SeriesKey) -> tuple[list[SeriesPoint], list[AlertRow]]:
        """Every valid submission of the series, and every alert of it (no concerns)."""
        ...

    async def write_alerts(self, writes: Writes, events: Sequence[EventRow]) -> None:
        """Alert changes and their outbox events, in the unit of work's transaction."""
        ...

    async def existing_valid(self, values: SubmissionValues) -> uuid.UUID | None:
        """The valid submission holding this one's place (session, instrument, respondent,
        rater)."""
        ...

    async def clear_overdue(
        self, key: SeriesKey, people: tuple[uuid.UUID, uuid.UUID], now: datetime
    ) -> Writes:
        """A measurement came in: the episode's open ``measurement.overdue`` alert, if any,
        resolved with its event (DESIGN.md §10.3.6); after the store, which waited for a sweep
        holding the episode's row."""
        ...


def submission_store(uow: UnitOfWork) -> SubmissionStore:
    """The unit of work's store: asyncpg when it has a driver pool (PostgreSQL), else Core."""
    # Imported here: each store imports this module for its types.
    from services.submissions.store_pg import PgSubmissionStore
    from services.submissions.store_sql import SqlSubmissionStore

    return PgSubmissionStore(uow) if uow.has_driver else SqlSubmissionStore(uow)
