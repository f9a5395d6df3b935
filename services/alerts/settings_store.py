"""An organisation's alert-rule settings: read with their defaults and sources, change one rule
(validated), and re-derive the organisation's alerts under the new setting (DESIGN.md §6)."""

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.alerts import AlertRuleSetting
from models.base import utcnow
from services.alerts import RULES, RuleSetting, SettingsProblems, validate_override
from services.alerts import engine as alert_engine
from services.alerts import store as alert_store
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.database import insert_unique
from services.kernel.errors import InvalidInput, NotFound

_SETTINGS = AlertRuleSetting.__table__  # type: ignore[attr-defined]


def _public(setting: RuleSetting, updated_at: Any = None) -> dict[str, Any]:
    spec = RULES[setting.rule_id]
    return {
        "rule_id": spec.id,
        "version": spec.version,
        "enabled": setting.enabled,
        "can_disable": spec.can_disable,
        "severity": spec.severity,
        "clears": spec.clears,
        "summary": spec.summary,
        "params": setting.params.model_dump(mode="json"),
        "sources": dict(setting.sources),
        "updated_at": updated_at,
    }


async def list_rules(session: AsyncSession, *, actor: Actor) -> list[dict[str, Any]]:
    conn = await session.connection()
    rows = (
        await conn.execute(
            select(_SETTINGS.c.rule_id, _SETTINGS.c.updated_at).where(
                _SETTINGS.c.org_id == actor.org_id
            )
        )
    ).all()
    updated: dict[str, Any] = {str(rule_id): at for rule_id, at in rows}
    settings = alert_engine.settings_for(await alert_store.load_overrides(conn, actor.org_id))
    audit.record(session, actor, action="alert_rule.list", resource_type="alert_rule")
    return [_public(settings[rule_id], updated.get(rule_id)) for rule_id in RULES]


async def put_rule(
    session: AsyncSession, *, actor: Actor, rule_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Replace the organisation's override of ``rule_id`` with ``body`` (``enabled`` and/or
    ``params``; parameters not named take their defaults) and recompute every episode's alerts
    under it. Unknown rule → 404; an unknown parameter or a value out of range → 422 naming it."""
    if rule_id not in RULES:
        raise NotFound(f"no alert rule '{rule_id}'")
    try:
        setting = validate_override(rule_id, body)
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
    values: dict[str, Any] = {
        "body": body,
        "updated_at": now,
        "updated_by_key_id": actor.principal.key_id,
    }
    changed = await conn.execute(
        _SETTINGS.update()
        .where(_SETTINGS.c.org_id == actor.org_id, _SETTINGS.c.rule_id == rule_id)
        .values(**values)
    )
    if changed.rowcount == 0:
        await insert_unique(
            session,
            AlertRuleSetting(org_id=actor.org_id, rule_id=rule_id, **values),
            conflict="the setting was changed at the same time; try again",
        )
    episodes, writes = await alert_engine.recompute_organization(conn, actor.org_id)
    audit.record(
        session, actor, action="alert_rule.update", resource_type="alert_rule", resource_id=None
    )
    out = _public(setting, now)
    counts = Counter(change for change, _ in writes)
    out["recomputed"] = {
        "episodes": episodes,
        **{change: counts[change] for change in ("created", "updated", "resolved")},
    }
    return out
