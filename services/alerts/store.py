"""Reading a series and its alerts, and writing alert rows, with SQLAlchemy Core on the request's
connection (SQLite, and on PostgreSQL every path but the submission hot path, whose equivalents are
in `services/submissions/store_pg.py`)."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import cast

from sqlalchemy import ColumnElement, RowMapping, Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from models.alerts import Alert, AlertRuleSetting
from models.episodes import Episode
from models.people import Client
from models.submissions import Submission
from services.alerts import SeriesPoint
from services.alerts.model import AlertRow, SeriesColumns
from services.alerts.reconcile import DERIVED_COLUMNS, Change
from services.alerts.replay import EVENT_RULES
from services.instruments.schema import Population
from services.kernel import metrics
from services.webhooks import outbox

ALERTS = Alert.__table__  # type: ignore[attr-defined]
SETTINGS = AlertRuleSetting.__table__  # type: ignore[attr-defined]
_SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
_EPISODES = Episode.__table__  # type: ignore[attr-defined]
_CLIENTS = Client.__table__  # type: ignore[attr-defined]
# An update writes only what the rules own, never what people did (acknowledgement, note).
WRITTEN_ON_UPDATE = (*DERIVED_COLUMNS, "updated_at")
_written_on_update = itemgetter(*WRITTEN_ON_UPDATE)


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """An episode's submissions of one instrument by one respondent (and rater)."""

    org_id: uuid.UUID
    episode_id: uuid.UUID
    instrument: str
    respondent: str
    rater: str

    def columns(self) -> SeriesColumns:
        return {
            "org_id": self.org_id,
            "episode_id": self.episode_id,
            "respondent": self.respondent,
            "rater": self.rater,
        }


@dataclass(frozen=True, slots=True)
class EpisodeFacts:
    status: str
    population: Population
    client_id: uuid.UUID
    clinician_id: uuid.UUID
    alert_seq: int = 0


# An episode's facts by (org_id, episode_id), in EpisodeFacts' order; prebuilt, as the submission
# route runs it on every request on SQLite.
EPISODE_FACTS = (
    select(_EPISODES.c.status, _CLIENTS.c.population, _EPISODES.c.client_id)
    .add_columns(_EPISODES.c.clinician_id, _EPISODES.c.alert_seq)
    .join(_CLIENTS, _CLIENTS.c.id == _EPISODES.c.client_id)
    .where(_EPISODES.c.org_id == bindparam("org_id"))
    .where(_EPISODES.c.id == bindparam("episode_id"))
)


def point(
    session_number: int,
    submission_id: uuid.UUID,
    total: float | None,
    subscales: Mapping[str, float] | None,
    answers: Mapping[str, float] | None,
) -> SeriesPoint:
    return SeriesPoint(
        session_number, str(submission_id), total, dict(subscales or {}), dict(answers or {})
    )


def _where(table: Table, key: SeriesKey) -> list[ColumnElement[bool]]:
    return [
        table.c.org_id == key.org_id,
        table.c.episode_id == key.episode_id,
        table.c.instrument == key.instrument,
        table.c.respondent == key.respondent,
        table.c.rater == key.rater,
    ]


async def lock_episode(
    conn: AsyncConnection, org_id: uuid.UUID, episode_id: uuid.UUID
) -> EpisodeFacts | None:
    """The episode's facts, with its row locked to the end of the transaction and its
    ``alert_seq`` bumped: whoever changes an episode's alerts does this first, so voids,
    recomputes and people's acknowledgements take turns, and a submission that read the episode
    before them finds ``alert_seq`` changed and reads again (services/submissions/service.py).
    The read that follows the lock sees whatever the previous holder committed."""
    bumped = await conn.execute(
        update(_EPISODES)
        .where(_EPISODES.c.org_id == org_id, _EPISODES.c.id == episode_id)
        .values(alert_seq=_EPISODES.c.alert_seq + 1)
    )
    if bumped.rowcount == 0:
        return None
    row = (await conn.execute(EPISODE_FACTS, {"org_id": org_id, "episode_id": episode_id})).one()
    return EpisodeFacts(*row)


async def load_points(
    conn: AsyncConnection, key: SeriesKey, *, tail: int | None = None
) -> list[SeriesPoint]:
    """The series' valid submissions in session order: all of them, or the first score and the
    last ``tail`` sessions."""
    s = _SUBMISSIONS
    cols = (s.c.session_number, s.c.id, s.c.total, s.c.scores, s.c.answers)
    base = select(*cols).where(*_where(s, key), s.c.status == "valid")
    if tail is None:
        rows = (await conn.execute(base.order_by(s.c.session_number))).all()
    else:
        latest = (await conn.execute(base.order_by(s.c.session_number.desc()).limit(tail))).all()
        first = (
            await conn.execute(
                base.where(s.c.total.is_not(None)).order_by(s.c.session_number).limit(1)
            )
        ).all()
        by_session = {r[0]: r for r in [*first, *latest]}
        rows = [by_session[n] for n in sorted(by_session)]
    return [point(n, i, t, (sc or {}).get("subscales"), a) for n, i, t, sc, a in rows]


async def load_alert_rows(
    conn: AsyncConnection, key: SeriesKey, *, unresolved_only: bool
) -> list[AlertRow]:
    """``unresolved_only``: what a new submission needs, the unresolved alerts and the alerts of
    discrete events a person resolved (a new one names its predecessor, DESIGN.md §10.3.2)."""
    stmt = select(ALERTS).where(*_where(ALERTS, key), ALERTS.c.type != "concern.reported")
    if unresolved_only:
        stmt = stmt.where(
            (ALERTS.c.status != "resolved")
            | (ALERTS.c.resolved_by_key_id.is_not(None) & ALERTS.c.type.in_(sorted(EVENT_RULES)))
        )
    rows = (await conn.execute(stmt.order_by(ALERTS.c.id))).mappings().all()
    return [as_alert_row(r) for r in rows]


def as_alert_row(row: RowMapping | Mapping[str, object]) -> AlertRow:
    """A row of ``select(ALERTS)``: the table's columns, typed as the table types them (the
    store tests hold both stores' rows to the same values)."""
    return cast("AlertRow", dict(row))


async def latest_handled_alert_id(
    conn: AsyncConnection, org_id: uuid.UUID, episode_id: uuid.UUID, rule_id: str
) -> uuid.UUID | None:
    """The episode's latest alert of ``rule_id`` (by creation) that a person acknowledged or
    resolved: a new alert of a discrete event names it in ``evidence.previous_alert_id``
    (DESIGN.md §10.3.2)."""
    handled = ALERTS.c.acknowledged_at.is_not(None) | ALERTS.c.resolved_by_key_id.is_not(None)
    found = await conn.scalar(
        select(ALERTS.c.id)
        .where(
            ALERTS.c.org_id == org_id,
            ALERTS.c.episode_id == episode_id,
            ALERTS.c.type == rule_id,
            handled,
        )
        .order_by(ALERTS.c.id.desc())
        .limit(1)
    )
    return None if found is None else uuid.UUID(str(found))


async def load_overrides(conn: AsyncConnection, org_id: uuid.UUID) -> dict[str, dict[str, object]]:
    rows = (
        await conn.execute(
            select(SETTINGS.c.rule_id, SETTINGS.c.body).where(SETTINGS.c.org_id == org_id)
        )
    ).all()
    return {str(rule_id): dict(body) for rule_id, body in rows}


async def write_alert_rows(
    conn: AsyncConnection,
    writes: Sequence[tuple[Change, AlertRow]],
    facts: EpisodeFacts,
) -> None:
    """Store the alert changes and, in the same transaction, their outbox events."""
    await write_alert_changes(conn, writes)
    await outbox.write(conn, outbox.alert_events(writes, facts.client_id, facts.clinician_id))
    metrics.count_alerts(writes)


async def write_alert_changes(
    conn: AsyncConnection, writes: Sequence[tuple[Change, AlertRow]]
) -> None:
    """Store the alert changes only: the caller writes their outbox events."""
    for change, row in writes:
        if change == "created":
            await conn.execute(insert(ALERTS), dict(row))
        else:
            values = dict(zip(WRITTEN_ON_UPDATE, _written_on_update(row), strict=True))
            await conn.execute(update(ALERTS).where(ALERTS.c.id == row["id"]), values)
