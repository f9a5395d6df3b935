"""The chart of one series of an episode (DESIGN.md §10.4): the trajectory as the trajectory route
reads it (same visibility, same 404s), the series' alerts, one audit event."""

import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.alerts import Alert
from services.charts.spec import AlertMarker, Chart, trajectory_chart
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.errors import InvalidInput
from services.kernel.visibility import visible_alerts
from services.trajectory import service as trajectories


async def _series_alerts(
    session: AsyncSession,
    *,
    actor: Actor,
    episode_id: uuid.UUID,
    instrument: str,
    respondent: str,
    rater: str | None,
) -> list[AlertMarker]:
    """The series' alerts the caller may read, but for retracted ones (they no longer follow from
    the history: DESIGN.md §6)."""
    rows = (
        await session.execute(
            select(
                col(Alert.session_number),
                col(Alert.type),
                col(Alert.severity),
                col(Alert.status),
                col(Alert.subscale),
            )
            .where(visible_alerts(actor))
            .where(col(Alert.episode_id) == episode_id)
            .where(col(Alert.instrument) == instrument)
            .where(col(Alert.respondent) == respondent)
            .where(col(Alert.rater) == (rater or ""))
            .where(col(Alert.session_number).is_not(None))
            .where(or_(col(Alert.resolution).is_(None), col(Alert.resolution) != "retracted"))
            .order_by(col(Alert.session_number), col(Alert.created_at))
        )
    ).all()
    return [
        AlertMarker(
            session_number=n, type=kind, severity=severity, status=status, subscale=subscale or None
        )
        for n, kind, severity, status, subscale in rows
        if n is not None
    ]


async def episode_chart(
    session: AsyncSession,
    *,
    actor: Actor,
    episode_id: uuid.UUID,
    instrument: str,
    respondent: str,
    rater: str | None,
) -> Chart:
    """The chart's spec. Alert markers need ``alerts:read`` as well: a key that may read
    submissions but not alerts gets the chart without them (DESIGN.md §10.8)."""
    loaded = await trajectories.load_series_trajectory(
        session,
        actor=actor,
        episode_id=episode_id,
        instrument=instrument,
        respondent=respondent,
        rater=rater,
    )
    if loaded.definition.total_range is None:
        raise InvalidInput.at(
            "query.instrument",
            "this instrument has no total to chart",
            type="value_error",
            detail=f"'{loaded.definition.code}' reports its items one by one: no total to chart",
        )
    alerts: list[AlertMarker] = []
    if actor.principal.has("alerts:read"):
        alerts = await _series_alerts(
            session,
            actor=actor,
            episode_id=episode_id,
            instrument=loaded.definition.code,
            respondent=respondent,
            rater=rater,
        )
    audit.record(
        session, actor, action="chart.read", resource_type="episode", resource_id=episode_id
    )
    return trajectory_chart(loaded.definition, loaded.trajectory, alerts, rater=rater)
