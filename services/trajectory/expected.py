"""Expected-response models of an organisation (DESIGN.md §10.5): read, upload, fit from its own
closed episodes, and load one for the alert rules and the trajectory. The model itself, its
validation and its fit are pure (`services/trajectory/etr.py`)."""

import json
import uuid
from functools import lru_cache

from pydantic import JsonValue
from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.episodes import Episode
from models.expected import (
    ExpectedResponseFit,
    ExpectedResponseFitPublic,
    ExpectedResponseModel,
    ExpectedSource,
)
from models.submissions import Submission
from services.alerts import engine as alert_engine
from services.alerts import store as alert_store
from services.alerts.store import SeriesKey
from services.instruments import InstrumentDefinition
from services.instruments.catalog import resolve
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.errors import InvalidInput, NotFound
from services.trajectory import etr
from services.trajectory.etr import ExpectedResponse

_MODELS = ExpectedResponseModel.__table__  # type: ignore[attr-defined]
_SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
_EPISODES = Episode.__table__  # type: ignore[attr-defined]


def parse_stored(body: dict[str, JsonValue] | None) -> ExpectedResponse | None:
    """A stored model, parsed once per distinct body (per process)."""
    if body is None:
        return None
    return _parse(json.dumps(body, sort_keys=True))


@lru_cache(maxsize=256)
def _parse(text: str) -> ExpectedResponse:
    return ExpectedResponse.model_validate_json(text)


async def load_model(
    conn: AsyncConnection, org_id: uuid.UUID, instrument: str
) -> ExpectedResponse | None:
    """The organisation's model for an instrument, or ``None``."""
    body = await conn.scalar(
        select(_MODELS.c.body).where(_MODELS.c.org_id == org_id, _MODELS.c.instrument == instrument)
    )
    return parse_stored(body)


async def _definition(session: AsyncSession, actor: Actor, code: str) -> InstrumentDefinition:
    try:
        return await resolve(session, actor=actor, code=code)
    except NotFound:
        raise NotFound(f"no instrument '{code}'") from None


def _invalid(problems: list[tuple[str, str]], prefix: str = "body") -> InvalidInput:
    return InvalidInput(
        "invalid expected-response model: " + ", ".join(f for f, _ in problems),
        errors=[
            {"field": f"{prefix}.{field}", "message": message, "type": "etr"}
            for field, message in problems
        ],
    )


async def get_model(session: AsyncSession, *, actor: Actor, code: str) -> ExpectedResponse:
    definition = await _definition(session, actor, code)
    conn = await session.connection()
    model = await load_model(conn, actor.org_id, definition.code)
    audit.record(session, actor, action="etr.read", resource_type="instrument")
    if model is None:
        raise NotFound(f"no expected-response model for '{code}'")
    return model


async def store_model(
    conn: AsyncConnection,
    org_id: uuid.UUID,
    key_id: uuid.UUID | None,
    code: str,
    model: ExpectedResponse,
    source: ExpectedSource,
) -> None:
    """Insert or replace the model, then re-derive the alerts of every series it applies to (the
    organisation's client ratings on the instrument): their ``outcome.not_on_track`` now judges by
    the model (alerts are a function of the history, the settings and the model, DESIGN.md
    §2)."""
    values: dict[str, object] = {
        "source": source,
        "body": model.model_dump(mode="json"),
        "updated_at": utcnow(),
        "updated_by_key_id": key_id,
    }
    changed = await conn.execute(
        _MODELS.update()
        .where(_MODELS.c.org_id == org_id, _MODELS.c.instrument == code)
        .values(**values)
    )
    if changed.rowcount == 0:
        await conn.execute(_MODELS.insert().values(org_id=org_id, instrument=code, **values))
    await _recompute_client_series(conn, org_id, code)


async def _recompute_client_series(conn: AsyncConnection, org_id: uuid.UUID, code: str) -> None:
    """Only the series a model applies to, each under its episode's lock (as every writer of an
    episode's alerts takes it), in episode order."""
    s = _SUBMISSIONS
    episodes = await conn.scalars(
        select(s.c.episode_id)
        .distinct()
        .where(s.c.org_id == org_id, s.c.instrument == code)
        .where(s.c.respondent == "client", s.c.rater == "")
        .order_by(s.c.episode_id)
    )
    settings = alert_engine.settings_for(await alert_store.load_overrides(conn, org_id))
    for episode_id in list(episodes):
        facts = await alert_store.lock_episode(conn, org_id, episode_id)
        if facts is None:
            continue
        key = SeriesKey(org_id, episode_id, code, "client", "")
        await alert_engine.recompute_series(conn, key, facts=facts, settings=settings)


async def put_model(
    session: AsyncSession, *, actor: Actor, code: str, body: ExpectedResponse
) -> ExpectedResponse:
    """Upload a model (admin): bands tiling the total range, sessions ascending, percentiles in
    order (p10 ≤ p50 ≤ p90) and on the scale; 422 naming each field at fault."""
    definition = await _definition(session, actor, code)
    problems = etr.model_problems(definition, body)
    if problems:
        raise _invalid(problems)
    # An upload carries no fit statistics of its own.
    model = ExpectedResponse(
        bands=[b.model_copy(update={"n_episodes": None, "coverage": None}) for b in body.bands],
        source="uploaded",
    )
    conn = await session.connection()
    await store_model(
        conn, actor.org_id, actor.principal.key_id, definition.code, model, "uploaded"
    )
    audit.record(session, actor, action="etr.update", resource_type="instrument")
    return model


async def closed_series(
    conn: AsyncConnection, org_id: uuid.UUID, instrument: str
) -> list[list[tuple[int, float]]]:
    """The client-rated totals of every closed episode of the organisation on the instrument, one
    series per episode (by episode id, so the held-out fifth is the same on every run)."""
    s, e = _SUBMISSIONS, _EPISODES
    rows = await conn.execute(
        select(s.c.episode_id, s.c.session_number, s.c.total)
        .join(e, (e.c.org_id == s.c.org_id) & (e.c.id == s.c.episode_id))
        .where(s.c.org_id == org_id, s.c.instrument == instrument)
        .where(s.c.respondent == "client", s.c.rater == "", s.c.status == "valid")
        .where(s.c.total.is_not(None), e.c.status == "closed")
        .order_by(s.c.episode_id, s.c.session_number)
    )
    series: list[list[tuple[int, float]]] = []
    current: uuid.UUID | None = None
    for episode_id, session_number, total in rows:
        if episode_id != current:
            series.append([])
            current = episode_id
        series[-1].append((session_number, float(total)))
    return series


def too_few(exc: etr.TooFewEpisodes, bands_given: bool) -> InvalidInput:
    return InvalidInput(
        str(exc),
        errors=[
            {
                "field": "body.intake_bands" if bands_given else "body",
                "message": f"at least {exc.needed} closed episodes per intake band are needed; "
                f"by band: {exc.have}",
                "type": "too_few_episodes",
                "needed": exc.needed,
                "have": [*exc.have],  # as list[JsonValue]: lists are invariant
            }
        ],
    )


async def count_closed(conn: AsyncConnection, org_id: uuid.UUID, instrument: str) -> int:
    s, e = _SUBMISSIONS, _EPISODES
    found = await conn.scalar(
        select(func.count(distinct(s.c.episode_id)))
        .join(e, (e.c.org_id == s.c.org_id) & (e.c.id == s.c.episode_id))
        .where(s.c.org_id == org_id, s.c.instrument == instrument)
        .where(s.c.respondent == "client", s.c.rater == "", s.c.status == "valid")
        .where(e.c.status == "closed")
    )
    return int(found or 0)


async def fit_runs_in_worker(
    session: AsyncSession, *, actor: Actor, code: str, inline_max_episodes: int
) -> bool:
    """Whether the organisation has more closed episodes on the instrument than a request should
    fit (``ATTUNE_ETR_FIT_INLINE_MAX_EPISODES``)."""
    definition = await _definition(session, actor, code)
    conn = await session.connection()
    return await count_closed(conn, actor.org_id, definition.code) > inline_max_episodes


async def fit_model(
    session: AsyncSession,
    *,
    actor: Actor,
    code: str,
    intake_bands: list[tuple[float, float]] | None,
    queue: bool,
) -> ExpectedResponse | ExpectedResponseFitPublic:
    """Fit the model from the organisation's closed episodes (client ratings) and store it; 422
    when the bands are invalid or hold too few episodes, saying how many are needed. ``queue``
    (:func:`fit_runs_in_worker`): queue the fit for the worker instead
    (services/trajectory/fit_worker.py) and return the job."""
    definition = await _definition(session, actor, code)
    problems = etr.scale_problems(definition)
    if not problems and intake_bands is not None:
        problems = etr.band_problems(definition, intake_bands, field="intake_bands")
    if problems:
        raise _invalid(problems)
    conn = await session.connection()
    audit.record(session, actor, action="etr.fit", resource_type="instrument")
    if queue:
        job = ExpectedResponseFit(
            org_id=actor.org_id,
            instrument=definition.code,
            intake_bands=None if intake_bands is None else [list(b) for b in intake_bands],
            created_by_key_id=actor.principal.key_id,
        )
        session.add(job)
        await session.flush()
        return ExpectedResponseFitPublic.model_validate(job)
    episodes = await closed_series(conn, actor.org_id, definition.code)
    try:
        model = etr.fit(definition, episodes, intake_bands)
    except etr.TooFewEpisodes as exc:
        raise too_few(exc, intake_bands is not None) from None
    await store_model(conn, actor.org_id, actor.principal.key_id, definition.code, model, "fitted")
    return model


async def get_fit(
    session: AsyncSession, *, actor: Actor, code: str, fit_id: uuid.UUID
) -> ExpectedResponseFitPublic:
    """A queued fit of the organisation's (404 for another's)."""
    job = await session.scalar(
        select(ExpectedResponseFit).where(
            col(ExpectedResponseFit.org_id) == actor.org_id,
            col(ExpectedResponseFit.id) == fit_id,
            col(ExpectedResponseFit.instrument) == code,
        )
    )
    if job is None:
        raise NotFound("fit not found")
    return ExpectedResponseFitPublic.model_validate(job)
