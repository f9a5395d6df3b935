"""Trajectory of one series of an episode (DESIGN.md §7), from its valid submissions."""

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from models.base import UTCDateTime
from models.people import Client
from models.submissions import CareSession, Submission
from services.alerts import engine as alert_engine
from services.alerts import store as alert_store
from services.alerts.settings import alliance_cutoff, rupture_scales
from services.alerts.store import SeriesKey
from services.care.episodes import load_episode
from services.instruments.catalog import resolve_named
from services.instruments.schema import InstrumentDefinition
from services.kernel import audit
from services.kernel.auth import Actor
from services.trajectory import Trajectory, build_trajectory
from services.trajectory.pairs import PAIR, PairedOutcome, paired_outcome

_SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class SeriesTrajectory:
    """A series' trajectory and the definition it was judged by (as its respondent is judged)."""

    definition: InstrumentDefinition
    trajectory: Trajectory


async def load_series_trajectory(
    session: AsyncSession,
    *,
    actor: Actor,
    episode_id: uuid.UUID,
    instrument: str,
    respondent: str,
    rater: str | None,
) -> SeriesTrajectory:
    """The trajectory of an episode the actor may see (else 404), unaudited: the caller records
    what it read."""
    episode = await load_episode(session, actor=actor, episode_id=episode_id)
    definition = await resolve_named(
        session, actor=actor, code=instrument, field="query.instrument"
    )
    population = await session.scalar(
        select(col(Client.population)).where(col(Client.id) == episode.client_id)
    )
    # When the session took place: as the submission says, else as its session was first told.
    occurred_at = func.coalesce(
        col(Submission.occurred_at), col(CareSession.occurred_at), type_=UTCDateTime()
    )
    rows = (
        await session.execute(
            select(col(Submission.session_number), col(Submission.scores), occurred_at)
            .join(CareSession, col(CareSession.id) == col(Submission.session_id))
            .where(col(Submission.org_id) == actor.org_id)
            .where(col(Submission.episode_id) == episode_id)
            .where(col(Submission.instrument) == definition.code)
            .where(col(Submission.respondent) == respondent)
            .where(col(Submission.rater) == (rater or ""))
            .where(col(Submission.status) == "valid")
            .order_by(col(Submission.session_number))
        )
    ).all()
    observations = [(n, s.get("total"), s.get("subscales") or {}, when) for n, s, when in rows]
    # The respondent's norms (DESIGN.md §10.3.5): a collateral series is not judged on the client's.
    rated = definition.for_respondent(respondent)
    # The organisation's settings, read through the code the alert rules use (DESIGN.md §10.2;
    # issue 13 finding 7): a rupture listed here is one alliance.rupture would raise, and an
    # alliance instrument's clinical range is the one alliance.low judges by.
    conn = await session.connection()
    key = SeriesKey(actor.org_id, episode_id, definition.code, respondent, rater or "")
    expected = await alert_engine.load_expected(conn, key)  # client ratings only
    paired = await _paired(conn, key)
    settings = alert_engine.settings_for(await alert_store.load_overrides(conn, actor.org_id))
    rupture = rupture_scales(settings["alliance.rupture"], rated)
    cutoff = (
        alliance_cutoff(settings["alliance.low"], rated)[0] if rated.kind == "alliance" else None
    )
    trajectory = build_trajectory(
        rated,
        observations,
        population or "adult",
        cutoff=cutoff,
        k=rupture.k,
        repair_window=rupture.repair_window,
        min_drops=rupture.min_drops,
        expected=expected,
        paired=paired,
    )
    return SeriesTrajectory(definition=rated, trajectory=trajectory)


async def episode_trajectory(
    session: AsyncSession,
    *,
    actor: Actor,
    episode_id: uuid.UUID,
    instrument: str,
    respondent: str,
    rater: str | None,
) -> Trajectory:
    loaded = await load_series_trajectory(
        session,
        actor=actor,
        episode_id=episode_id,
        instrument=instrument,
        respondent=respondent,
        rater=rater,
    )
    audit.record(
        session, actor, action="trajectory.read", resource_type="episode", resource_id=episode_id
    )
    return loaded.trajectory


async def _paired(conn: AsyncConnection, key: SeriesKey) -> PairedOutcome | None:
    """The episode's PHQ-9 + GAD-7 outcome (NHS Talking Therapies), on either's client
    trajectory when the episode has both."""
    if key.instrument not in PAIR or key.respondent != "client" or key.rater:
        return None
    s = _SUBMISSIONS
    rows = await conn.execute(
        select(s.c.instrument, s.c.session_number, s.c.total)
        .where(s.c.org_id == key.org_id, s.c.episode_id == key.episode_id)
        .where(s.c.instrument.in_(PAIR), s.c.respondent == "client", s.c.rater == "")
        .where(s.c.status == "valid", s.c.total.is_not(None))
    )
    by_instrument: dict[str, dict[int, float]] = {code: {} for code in PAIR}
    for instrument, session_number, total in rows:
        by_instrument[instrument][session_number] = float(total)
    return paired_outcome(by_instrument[PAIR[0]], by_instrument[PAIR[1]])
