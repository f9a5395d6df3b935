"""Alerts through the API: listing, reading, acknowledging and resolving them."""

import uuid
from typing import Any

from fastapi import FastAPI

from services.alerts import lifecycle as alert_lifecycle
from services.kernel.database import UnitOfWork
from tests.support.api import Tenant, expect

Brief = tuple[Any, ...]


def changed(alerts: list[dict[str, Any]]) -> list[Brief]:
    """A submission's (or void's) alerts as (type, severity, status, change, subscale, session)."""
    return [
        (a["type"], a["severity"], a["status"], a["change"], a["subscale"], a["session_number"])
        for a in alerts
    ]


def listed(alerts: list[dict[str, Any]]) -> list[Brief]:
    """Listed alerts as (type, severity, status, resolution, instrument, subscale, session)."""
    return [
        (a["type"], a["severity"], a["status"], a["resolution"], a["instrument"], a["subscale"],
         a["session_number"])
        for a in alerts
    ]  # fmt: skip


async def alert_list(
    tenant: Tenant, headers: dict[str, str] | None = None, /, **filters: Any
) -> list[dict[str, Any]]:
    response = await tenant.http.get(
        "/v1/alerts", params={"limit": 500, **filters}, headers=headers or tenant.admin
    )
    page = expect(response, 200)
    assert page["next_cursor"] is None
    return page["items"]  # type: ignore[no-any-return]


async def alert_ids(
    tenant: Tenant, headers: dict[str, str] | None = None, /, **filters: Any
) -> list[str]:
    return [a["id"] for a in await alert_list(tenant, headers, **filters)]


async def get_alert(tenant: Tenant, alert_id: str) -> dict[str, Any]:
    return expect(  # type: ignore[no-any-return]
        await tenant.http.get(f"/v1/alerts/{alert_id}", headers=tenant.admin), 200
    )


async def acknowledge(
    tenant: Tenant, alert_id: str, note: str | None = None, *, status: int = 200
) -> Any:
    body = {} if note is None else {"note": note}
    response = await tenant.http.post(
        f"/v1/alerts/{alert_id}/acknowledge", json=body, headers=tenant.admin
    )
    return expect(response, status)


async def resolve(
    tenant: Tenant, alert_id: str, resolution: str, note: str | None = None, *, status: int = 200
) -> Any:
    body: dict[str, Any] = {"resolution": resolution}
    if note is not None:
        body["note"] = note
    response = await tenant.http.post(
        f"/v1/alerts/{alert_id}/resolve", json=body, headers=tenant.admin
    )
    return expect(response, status)


async def void(tenant: Tenant, submission_id: str, reason: str = "entered by mistake") -> Any:
    response = await tenant.http.post(
        f"/v1/submissions/{submission_id}/void", json={"reason": reason}, headers=tenant.admin
    )
    return expect(response, 200)


async def put_rule(tenant: Tenant, rule_id: str, body: dict[str, Any], *, status: int = 200) -> Any:
    response = await tenant.http.put(f"/v1/alert-rules/{rule_id}", json=body, headers=tenant.admin)
    return expect(response, status)


def as_stored(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert as a submission lists it, without the submission's ``change``: every route
    renders it alike, timestamps included."""
    return {k: v for k, v in alert.items() if k != "change"}


def error_fields(problem: dict[str, Any]) -> set[str]:
    return {e["field"] for e in problem["errors"]}


async def raise_concern(app: FastAPI, tenant: Tenant, episode_id: str) -> dict[str, Any]:
    """A concern alert, as the (not yet built) invitation route will raise it, committed in a unit
    of work of its own on the app's engine."""
    uow = UnitOfWork(app.state.engine)
    try:
        concern = await alert_lifecycle.raise_concern(
            await uow.orm(),
            org_id=uuid.UUID(tenant.org_id),
            episode_id=uuid.UUID(episode_id),
            session_number=2,
            category="conduct",
        )
        await uow.commit()
    finally:
        await uow.close()
    return concern.model_dump()
