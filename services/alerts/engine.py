"""The alert rules applied to stored data (DESIGN.md §6): after each submission, in its
transaction, and as a recompute from the full history after a void, a settings change or on
demand (`attune recompute-alerts`).

The rules and the reconciling of their verdicts with stored rows are pure
(`services/alerts/`); this module only reads and writes. After a new submission only the last
session's verdict is needed (:func:`services.alerts.step`), which reads the series' first score and
its latest sessions, however long the series; when the submission is not the latest session of its
series (a late entry), the series is recomputed from its whole history instead.
"""

import json
import logging
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from models.base import new_id, utcnow
from models.expected import ExpectedResponseModel
from models.submissions import StoredInstrument, Submission
from services.alerts import (
    RULES,
    RuleSetting,
    SeriesPoint,
    default_setting,
    replay,
    resolve_settings,
    settings_with_fallback,
    step,
)
from services.alerts import store as alert_store
from services.alerts.model import AlertRow, SeriesColumns
from services.alerts.reconcile import Change, closed_by_person, reconcile, to_state
from services.alerts.replay import history_needed
from services.alerts.store import EpisodeFacts, SeriesKey
from services.instruments import InstrumentDefinition, builtin_instruments
from services.instruments.schema import Population
from services.trajectory.etr import ExpectedResponse

log = logging.getLogger("attune.alerts")

Settings = Mapping[str, RuleSetting]
Writes = list[tuple[Change, AlertRow]]
_DEFAULTS: dict[str, RuleSetting] = {str(k): v for k, v in resolve_settings(None).items()}
_DEFAULT_WINDOW = history_needed(_DEFAULTS)
_SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
_INSTRUMENTS = StoredInstrument.__table__  # type: ignore[attr-defined]


# ----- settings -----------------------------------------------------------------------------------


def settings_for(overrides: Mapping[str, Mapping[str, object]]) -> dict[str, RuleSetting]:
    """The organisation's effective settings. A stored override that no longer validates (a
    release tightened a range) falls back to the rule's defaults, with a warning, rather than
    stopping alert evaluation."""
    if not overrides:
        return _DEFAULTS
    return _settings_from_json(json.dumps(overrides, sort_keys=True))[0]


# The rules whose parameters say how many latest sessions an evaluation reads
# (services/alerts/replay.history_needed).
_WINDOW_RULES = ("alliance.rupture", "outcome.not_on_track")


def history_window(overrides: Mapping[str, Mapping[str, object]]) -> tuple[int, bool]:
    """How many of the series' latest sessions a new submission is judged with: `history_needed`
    of the settings in force (:func:`settings_for`, so one definition). And whether a stored
    override of a rule that number depends on fell back to the defaults: a statement that read
    the stored body itself (services/submissions/store_pg.SUBMISSION_CONTEXT) may then have read
    too few; otherwise it read exactly as many, or the whole series."""
    if not overrides:
        return _DEFAULT_WINDOW, False
    settings, fallen_back = _settings_from_json(json.dumps(overrides, sort_keys=True))
    return history_needed(settings), bool(fallen_back & set(_WINDOW_RULES))


@lru_cache(maxsize=256)
def _settings_from_json(text: str) -> tuple[dict[str, RuleSetting], frozenset[str]]:
    """The settings in force, and the rules whose stored override fell back to the defaults."""
    settings, problems = settings_with_fallback(json.loads(text))
    if problems:
        log.warning(
            "stored alert-rule settings no longer valid; using the defaults for those rules",
            extra={"fields": {"fields_at_fault": [field for field, _ in problems]}},
        )
    fields = [field for field, _ in problems]
    fallen_back = frozenset(
        str(rule_id) for rule_id in RULES if any(f.startswith(f"{rule_id}.") for f in fields)
    )
    return {str(rule_id): setting for rule_id, setting in settings.items()}, fallen_back


@lru_cache(maxsize=1)
def _risk_only() -> dict[str, RuleSetting]:
    """Every rule switched off but those that cannot be: what still runs when the others fail."""
    return {
        rule_id: default_setting(rule_id).model_copy(update={"enabled": not spec.can_disable})
        for rule_id, spec in RULES.items()
    }


# ----- pure steps around the rules ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesContext:
    key: SeriesKey
    definition: InstrumentDefinition
    population: Population
    settings: Settings = field(default_factory=lambda: _DEFAULTS)
    # The organisation's expected-response model for the series (DESIGN.md §10.5), if any.
    expected: ExpectedResponse | None = None

    def row_columns(self) -> SeriesColumns:
        return self.key.columns()


def _rules_failed(exc: Exception, ctx: SeriesContext) -> None:
    # The exception's type and the instrument only: a message or traceback could quote scores.
    log.error(
        "alert rules failed; evaluating the risk rule alone",
        extra={"fields": {"error": type(exc).__name__, "instrument": ctx.definition.code}},
    )


def evaluate_new(
    ctx: SeriesContext,
    history: Sequence[SeriesPoint],
    new: SeriesPoint,
    open_rows: Sequence[AlertRow],
    now: datetime,
) -> Writes | None:
    """What one new submission does to its series' alerts; ``history``: the series' first score
    and latest sessions before it (see :func:`services.alerts.replay.history_needed`);
    ``open_rows``: the series' unresolved alerts (and the event alerts a person resolved).
    ``None`` when ``new`` is not the latest session of the series: the caller recomputes the
    series instead."""
    if history and history[-1].session_number >= new.session_number:
        return None
    series = [*history, new]
    # ``open_rows`` also holds the event alerts a person resolved, for evidence.previous_alert_id.
    states = [to_state(r) for r in open_rows if r["status"] != "resolved"]
    closed = closed_by_person(open_rows)
    population = ctx.population
    try:
        after = step(
            states, ctx.definition, series, population, ctx.settings, closed, expected=ctx.expected
        )
    except Exception as exc:
        # Risk answers must raise their alert whatever else fails (DESIGN.md §6).
        _rules_failed(exc, ctx)
        after = step(states, ctx.definition, series, population, _risk_only(), closed)
    return reconcile(after, open_rows, series=ctx.row_columns(), now=now, full=False, new_id=new_id)


def derive_full(
    ctx: SeriesContext,
    points: Sequence[SeriesPoint],
    rows: Sequence[AlertRow],
    now: datetime,
    late: Collection[str] = (),
) -> Writes:
    """The writes that bring all of a series' rows in line with its whole history; ``late``: the
    id of a submission entered late, which this recompute is for."""
    population = ctx.population
    closed = closed_by_person(rows)
    try:
        derived = replay(
            ctx.definition, points, population, ctx.settings, closed, late, expected=ctx.expected
        )
    except Exception as exc:
        _rules_failed(exc, ctx)
        derived = replay(ctx.definition, points, population, _risk_only(), closed, late)
    return reconcile(
        derived,
        rows,
        series=ctx.row_columns(),
        now=now,
        full=True,
        new_id=new_id,
        valid_submissions={p.submission_id for p in points},
    )


# ----- recompute from the database ----------------------------------------------------------------

_MODELS = ExpectedResponseModel.__table__  # type: ignore[attr-defined]


def expected_for(key: SeriesKey, body: dict[str, object] | str | None) -> ExpectedResponse | None:
    """The stored model (``body``, as a value or as JSON text) as it applies to the series: models
    are of client ratings (fitted from them, DESIGN.md §10.5), so another respondent's series has
    none (norms belong to a respondent, §10.3.5). Parsed once per distinct body."""
    if body is None or key.respondent != "client" or key.rater:
        return None
    text = body if isinstance(body, str) else json.dumps(body, sort_keys=True)
    return _expected_from_json(text)


@lru_cache(maxsize=256)
def _expected_from_json(text: str) -> ExpectedResponse:
    return ExpectedResponse.model_validate_json(text)


async def load_expected(conn: AsyncConnection, key: SeriesKey) -> ExpectedResponse | None:
    body = await conn.scalar(
        select(_MODELS.c.body).where(
            _MODELS.c.org_id == key.org_id, _MODELS.c.instrument == key.instrument
        )
    )
    return expected_for(key, body)


async def definition_for(
    conn: AsyncConnection, org_id: uuid.UUID, code: str
) -> InstrumentDefinition | None:
    builtin = builtin_instruments().get(code)
    if builtin is not None:
        return builtin
    raw = await conn.scalar(
        select(_INSTRUMENTS.c.definition)
        .where(_INSTRUMENTS.c.org_id == org_id, _INSTRUMENTS.c.code == code)
        .order_by(_INSTRUMENTS.c.id.desc())
        .limit(1)
    )
    return None if raw is None else InstrumentDefinition.model_validate(raw)


async def recompute_series(
    conn: AsyncConnection,
    key: SeriesKey,
    *,
    facts: EpisodeFacts,
    settings: Settings,
    now: datetime | None = None,
    late: Collection[str] = (),
) -> Writes:
    """Re-derive one series' alerts from its whole history and store the result. The caller holds
    the episode's lock (:func:`services.alerts.store.lock_episode`). ``late``: see
    :func:`derive_full`."""
    definition = await definition_for(conn, key.org_id, key.instrument)
    if definition is None:
        return []
    # The respondent's norms (DESIGN.md §10.3.5): a collateral series is not judged on the client's.
    ctx = SeriesContext(
        key,
        definition.for_respondent(key.respondent),
        facts.population,
        settings,
        await load_expected(conn, key),
    )
    points = await alert_store.load_points(conn, key)
    rows = await alert_store.load_alert_rows(conn, key, unresolved_only=False)
    writes = derive_full(ctx, points, rows, now or utcnow(), late)
    await alert_store.write_alert_rows(conn, writes, facts)
    return writes


async def recompute_episode(
    conn: AsyncConnection,
    org_id: uuid.UUID,
    episode_id: uuid.UUID,
    *,
    settings: Settings | None = None,
) -> Writes:
    """Every series of one episode, under the episode's lock."""
    facts = await alert_store.lock_episode(conn, org_id, episode_id)
    if facts is None:
        return []
    if settings is None:
        settings = settings_for(await alert_store.load_overrides(conn, org_id))
    assert settings is not None
    s = _SUBMISSIONS
    stmt = (
        select(s.c.instrument, s.c.respondent, s.c.rater)
        .distinct()
        .where(s.c.org_id == org_id, s.c.episode_id == episode_id)
        .order_by(s.c.instrument, s.c.respondent, s.c.rater)
    )
    writes: Writes = []
    for instrument, respondent, rater in (await conn.execute(stmt)).all():
        key = SeriesKey(org_id, episode_id, instrument, respondent, rater)
        writes += await recompute_series(conn, key, facts=facts, settings=settings)
    return writes


async def episodes_with_submissions(
    conn: AsyncConnection, org_id: uuid.UUID | None
) -> list[uuid.UUID]:
    s = _SUBMISSIONS
    stmt = select(s.c.episode_id).distinct().where(s.c.org_id == org_id)
    return list((await conn.scalars(stmt.order_by(s.c.episode_id))).all())


async def recompute_organization(conn: AsyncConnection, org_id: uuid.UUID) -> tuple[int, Writes]:
    """Every episode with submissions; returns (episodes, writes)."""
    settings = settings_for(await alert_store.load_overrides(conn, org_id))
    episodes = await episodes_with_submissions(conn, org_id)
    writes: Writes = []
    for episode_id in episodes:
        writes += await recompute_episode(conn, org_id, episode_id, settings=settings)
    return len(episodes), writes
