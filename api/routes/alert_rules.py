"""Alert-rule settings per organisation (DESIGN.md §4, §6)."""

from typing import Annotated

from fastapi import Path, Request

from api.deps import AdminActor, SessionDep, audit_target, require
from api.problems import responses
from api.routing import router as api_router
from models.alerts import AlertRuleSettingPublic, AlertRuleUpdate, RecomputedRuleSetting
from services.alerts import settings_store as alert_rules
from services.kernel.auth import Actor

router = api_router(prefix="/v1/alert-rules", tags=["alerts"])

AlertsRead = Annotated[Actor, require("alerts:read")]


@router.get("", responses=responses(401, 403))
async def list_alert_rules(
    actor: AlertsRead, session: SessionDep
) -> dict[str, list[AlertRuleSettingPublic]]:
    """Every rule's effective setting: the organisation's override merged over the defaults, and
    where each value comes from (``sources``)."""
    return {"items": await alert_rules.list_rules(session, actor=actor)}


@router.put("/{rule_id}", responses=responses(401, 403, 404, 409, 422))
async def put_alert_rule(
    rule_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z._]*$")],
    body: AlertRuleUpdate,
    request: Request,
    actor: AdminActor,
    session: SessionDep,
) -> RecomputedRuleSetting:
    """Replace the organisation's setting of one rule (parameters not named take their defaults)
    and recompute its alerts under it: alerts that no longer follow are resolved as
    ``retracted``; acknowledgements and notes stay."""
    audit_target(request, "alert_rule.update", "alert_rule", None)
    return await alert_rules.put_rule(
        session, actor=actor, rule_id=rule_id, body=body.model_dump(exclude_unset=True)
    )
