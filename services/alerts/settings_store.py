"""An organisation's alert-rule settings: read with their defaults and sources, change one rule
(validated against the organisation's instruments), and re-derive the organisation's alerts under
the new setting (DESIGN.md §6, §10.2)."""

from collections import Counter
from collections.abc import Mapping
from datetime import datetime

from pydantic import JsonValue
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.alerts import (
    AlertRuleSetting,
    AlertRuleSettingPublic,
    Recomputed,
    RecomputedRuleSetting,
)
from models.base import utcnow
from services.alerts import RULES, RuleSetting, SettingsProblems, validate_override
from services.alerts import engine as alert_engine
from services.alerts import store as alert_store
from services.alerts.settings import effective_instruments
from services.instruments import InstrumentDefinition
from services.instruments.catalog import list_instruments
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.database import insert_unique
from services.kernel.errors import InvalidInput, NotFound

_SETTINGS = AlertRuleSetting.__table__  # type: ignore[attr-defined]


def _public(
    setting: RuleSetting,
    definitions: Mapping[str, InstrumentDefinition],
    updated_at: datetime | None = None,
) -> AlertRuleSettingPublic:
    """One rule as ``GET /v1/alert-rules`` shows it: rule-wide ``params``, every instrument's
    effective values under ``instruments`` (DESIGN.md §10.2), and the source of each value."""
    spec = RULES[setting.rule_id]
    instruments, instrument_sources = effective_instruments(setting, definitions)
    sources = {k: v for k, v in setting.sources.items() if not k.startswith("instruments.")}
    return AlertRuleSettingPublic.model_validate(
        {
            "rule_id": spec.id,
            "version": spec.version,
            "enabled": setting.enabled,
            "can_disable": spec.can_disable,
            "severity": spec.severity,
            "clears": spec.clears,
            "summary": spec.summary,
            "params": setting.public_params(),
            "instruments": instruments,
            "sources": {**sources, **instrument_sources},
            "updated_at": updated_at,
        }
    )


async def list_rules(session: AsyncSession, *, actor: Actor) -> list[AlertRuleSettingPublic]:
    conn = await session.connection()
    rows = (
        await conn.execute(
            select(_SETTINGS.c.rule_id, _SETTINGS.c.updated_at).where(
                _SETTINGS.c.org_id == actor.org_id
            )
        )
    ).all()
    updated: dict[str, datetime] = {str(rule_id): at for rule_id, at in rows}
    settings = alert_engine.settings_for(await alert_store.load_overrides(conn, actor.org_id))
    definitions = await _definitions(session, actor)
    audit.record(session, actor, action="alert_rule.list", resource_type="alert_rule")
    return [_public(settings[rule_id], definitions, updated.get(rule_id)) for rule_id in RULES]


async def _definitions(session: AsyncSession, actor: Actor) -> dict[str, InstrumentDefinition]:
    """The instruments the organisation can use (built-ins and its own latest versions)."""
    return {d.code: d for d in await list_instruments(session, actor=actor)}


async def put_rule(
    session: AsyncSession, *, actor: Actor, rule_id: str, body: dict[str, JsonValue]
) -> RecomputedRuleSetting:
    """Replace the organisation's override of ``rule_id`` with ``body`` (``enabled``, ``params``
    and/or ``instruments``; values not named take their defaults) and recompute every episode's
    alerts under it. Unknown rule → 404; an unknown instrument, subscale, item or parameter, or a
    value that means nothing on the instrument's scale → 422 naming it (DESIGN.md §10.2)."""
    if rule_id not in RULES:
        raise NotFound(f"no alert rule '{rule_id}'")
    definitions = await _definitions(session, actor)
    try:
        setting = validate_override(rule_id, body, definitions)
    except SettingsProblems as problems:
        raise InvalidInput(
            "invalid alert-rule setting: " + ", ".join(f for f, _ in problems.problems),
            errors=[
                {"field": f"body.{field}", "message": message, "type": "alert_rule"}
                for field, message in problems.problems
            ],
        ) from None
    now = utcnow()
    conn = await session.connection()
    changed = await conn.execute(
        _SETTINGS.update()
        .where(_SETTINGS.c.org_id == actor.org_id, _SETTINGS.c.rule_id == rule_id)
        .values(body=body, updated_at=now, updated_by_key_id=actor.principal.key_id)
    )
    if changed.rowcount == 0:
        await insert_unique(
            session,
            AlertRuleSetting(
                org_id=actor.org_id,
                rule_id=rule_id,
                body=body,
                updated_at=now,
                updated_by_key_id=actor.principal.key_id,
            ),
            conflict="the setting was changed at the same time; try again",
        )
    episodes, writes = await alert_engine.recompute_organization(conn, actor.org_id)
    audit.record(
        session, actor, action="alert_rule.update", resource_type="alert_rule", resource_id=None
    )
    counts = Counter(change for change, _ in writes)
    recomputed = Recomputed(
        episodes=episodes,
        created=counts["created"],
        updated=counts["updated"],
        resolved=counts["resolved"],
    )
    return RecomputedRuleSetting(
        **_public(setting, definitions, now).model_dump(), recomputed=recomputed
    )
