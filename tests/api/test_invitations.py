"""Invitations: a client rates a session with a one-off token, and may raise a concern."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from models.base import utcnow
from models.invitations import Invitation
from services.webhooks.outbox import OUTBOX
from tests.support import Attune, Tenant, bearer, expect, ors, srs, submit


async def invite(
    tenant: Tenant, episode_id: str, *instruments: str, session_number: int = 1, **extra: Any
) -> dict[str, Any]:
    return expect(  # type: ignore[no-any-return]
        await tenant.http.post(
            f"/v1/episodes/{episode_id}/invitations",
            json={"instruments": list(instruments), "session_number": session_number, **extra},
            headers=tenant.admin,
        ),
        201,
    )


async def test_client_fills_in_both_instruments_and_the_clinician_sees_scores_and_alerts(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    created = await invite(tenant, episode["id"], "ors", "srs", session_number=2)
    assert created["token"].startswith("inv_")
    token = bearer(created["token"])

    view = expect(await attune.http.get("/v1/invitation", headers=token), 200)
    assert view["session_number"] == 2
    assert [d["code"] for d in view["instruments"]] == ["ors", "srs"]
    assert view["instruments"][1]["items"][0]["id"] == "relationship"
    assert view["remaining"] == ["ors", "srs"]
    assert episode["id"] not in str(view)  # the client's app learns nothing of the record
    assert episode["client_id"] not in str(view)

    receipt = expect(
        await attune.http.post(
            "/v1/invitation/submissions",
            json={"instrument": "ors", "answers": ors(5, 6, 7, 6)},
            headers=token,
        ),
        201,
    )
    assert receipt["remaining"] == ["srs"]
    assert "scores" not in receipt
    assert "alerts" not in receipt
    receipt = expect(
        await attune.http.post(
            "/v1/invitation/submissions",
            json={"instrument": "srs", "answers": srs(8, 8, 8, 8)},  # 32: weak alliance
            headers=token,
        ),
        201,
    )
    assert receipt["remaining"] == []

    stored = expect(
        await attune.http.get(f"/v1/submissions/{receipt['id']}", headers=tenant.admin), 200
    )
    assert stored["session_number"] == 2
    assert stored["respondent"] == "client"
    assert stored["scores"]["total"] == 32
    alerts = expect(
        await attune.http.get(f"/v1/alerts?episode_id={episode['id']}", headers=tenant.admin), 200
    )["items"]
    assert "alliance.low" in {a["type"] for a in alerts}
    view = expect(await attune.http.get("/v1/invitation", headers=token), 200)
    assert view["completed"] == ["ors", "srs"]
    audit = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)["items"]
    assert {"invitation.create", "invitation.read", "invitation.submit"} <= {
        e["action"] for e in audit
    }


async def test_submission_through_an_invitation_writes_its_outbox_events(
    attune: Attune, app: FastAPI
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    token = bearer((await invite(tenant, episode["id"], "srs"))["token"])
    receipt = expect(
        await attune.http.post(
            "/v1/invitation/submissions",
            json={"instrument": "srs", "answers": srs(5, 5, 5, 5)},
            headers=token,
        ),
        201,
    )
    async with app.state.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(OUTBOX.c.type, OUTBOX.c.subject_id)
                .where(OUTBOX.c.org_id == uuid.UUID(tenant.org_id))
                .order_by(OUTBOX.c.seq)
            )
        ).all()
    assert rows[0] == ("submission.created", uuid.UUID(receipt["id"]))
    assert [t for t, _ in rows[1:]] == ["alert.created"]


async def test_each_instrument_is_taken_once(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    token = bearer((await invite(tenant, episode["id"], "srs"))["token"])
    body = {"instrument": "srs", "answers": srs(9, 9, 9, 9)}
    expect(await attune.http.post("/v1/invitation/submissions", json=body, headers=token), 201)
    again = expect(
        await attune.http.post("/v1/invitation/submissions", json=body, headers=token), 409
    )
    assert "already submitted" in again["detail"]


async def test_idempotent_retry_replays_the_receipt(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    token = bearer((await invite(tenant, episode["id"], "srs"))["token"])
    body = {"instrument": "srs", "answers": srs(9, 9, 9, 9)}
    headers = {**token, "Idempotency-Key": "phone-retry-1"}
    first = await attune.http.post("/v1/invitation/submissions", json=body, headers=headers)
    second = await attune.http.post("/v1/invitation/submissions", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    # Another invitation of the same organisation with the same key is a different request.
    other = bearer((await invite(tenant, (await tenant.episode())["id"], "srs"))["token"])
    third = await attune.http.post(
        "/v1/invitation/submissions",
        json=body,
        headers={**other, "Idempotency-Key": "phone-retry-1"},
    )
    assert third.status_code == 201
    assert third.json()["id"] != first.json()["id"]


async def test_expired_invitation_is_gone(attune: Attune, app: FastAPI) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    created = await invite(tenant, episode["id"], "srs", expires_in_hours=1)
    async with app.state.engine.begin() as conn:
        await conn.execute(
            update(Invitation)
            .where(Invitation.id == uuid.UUID(created["id"]))  # type: ignore[arg-type]
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    token = bearer(created["token"])
    for method, path, body in (
        ("GET", "/v1/invitation", None),
        ("POST", "/v1/invitation/submissions", {"instrument": "srs", "answers": srs(9, 9, 9, 9)}),
        ("POST", "/v1/invitation/concerns", {"message": "hello"}),
    ):
        problem = expect(await attune.http.request(method, path, json=body, headers=token), 410)
        assert "expired" in problem["detail"]
    listed = expect(
        await attune.http.get(f"/v1/episodes/{episode['id']}/submissions", headers=tenant.admin),
        200,
    )
    assert listed["items"] == []


async def test_invitation_token_opens_no_other_route(app: FastAPI, attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    token = bearer((await invite(tenant, episode["id"], "srs"))["token"])
    paths = [
        ("GET", f"/v1/episodes/{episode['id']}"),
        ("GET", f"/v1/episodes/{episode['id']}/submissions"),
        ("GET", "/v1/alerts"),
        ("GET", "/v1/instruments"),
        ("POST", "/v1/submissions"),
        ("GET", "/v1/clients"),
    ]
    for template in app.openapi()["paths"]:
        if template.startswith("/v1/") and "{" not in template and "invitation" not in template:
            paths.append(("GET", template))
    for method, path in paths:
        response = await attune.http.request(method, path, headers=token, json={})
        assert response.status_code in (401, 405), (method, path, response.text)


async def test_body_naming_another_episode_or_session_is_refused(attune: Attune) -> None:
    tenant = await attune.tenant()
    mine, other = await tenant.episode(), await tenant.episode()
    token = bearer((await invite(tenant, mine["id"], "srs", session_number=3))["token"])
    answers = srs(9, 9, 9, 9)
    for extra, field in (
        ({"episode_id": other["id"]}, "body.episode_id"),
        ({"episode_id": str(uuid.uuid4())}, "body.episode_id"),
        ({"session_number": 4}, "body.session_number"),
        ({"instrument": "ors", "answers": srs(9, 9, 9, 9)}, "body.instrument"),
        ({"respondent": "clinician"}, "body.respondent"),
    ):
        body = {"instrument": "srs", "answers": answers, **extra}
        problem = expect(
            await attune.http.post("/v1/invitation/submissions", json=body, headers=token), 422
        )
        assert field in {e["field"] for e in problem["errors"]}, (extra, problem)
    for eid in (mine["id"], other["id"]):
        listed = expect(
            await attune.http.get(f"/v1/episodes/{eid}/submissions", headers=tenant.admin), 200
        )
        assert listed["items"] == []
    # Echoing the invitation's own episode and session is fine.
    body = {"instrument": "srs", "answers": answers, "episode_id": mine["id"], "session_number": 3}
    expect(await attune.http.post("/v1/invitation/submissions", json=body, headers=token), 201)


async def test_invitations_for_foreign_or_closed_episodes_or_clinician_instruments_are_refused(
    attune: Attune,
) -> None:
    tenant, other = await attune.tenant(), await attune.tenant()
    foreign = await other.episode()
    expect(
        await attune.http.post(
            f"/v1/episodes/{foreign['id']}/invitations",
            json={"instruments": ["srs"], "session_number": 1},
            headers=tenant.admin,
        ),
        404,
    )
    episode = await tenant.episode()
    problem = expect(
        await attune.http.post(
            f"/v1/episodes/{episode['id']}/invitations",
            json={"instruments": ["srs", "nope"], "session_number": 1},
            headers=tenant.admin,
        ),
        422,
    )
    assert problem["errors"][0]["field"] == "body.instruments.1"
    expect(
        await attune.http.patch(
            f"/v1/episodes/{episode['id']}", json={"status": "closed"}, headers=tenant.admin
        ),
        200,
    )
    expect(
        await attune.http.post(
            f"/v1/episodes/{episode['id']}/invitations",
            json={"instruments": ["srs"], "session_number": 1},
            headers=tenant.admin,
        ),
        409,
    )


@pytest.mark.parametrize("hours", [0, 241])
async def test_invitation_lifetime_is_bounded(attune: Attune, hours: int) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    problem = expect(
        await attune.http.post(
            f"/v1/episodes/{episode['id']}/invitations",
            json={"instruments": ["srs"], "session_number": 1, "expires_in_hours": hours},
            headers=tenant.admin,
        ),
        422,
    )
    assert problem["errors"][0]["field"] == "body.expires_in_hours"


async def test_default_lifetime_is_72_hours(attune: Attune) -> None:
    from datetime import datetime

    tenant = await attune.tenant()
    episode = await tenant.episode()
    created = await invite(tenant, episode["id"], "srs")
    lifetime = datetime.fromisoformat(created["expires_at"]) - utcnow()
    assert timedelta(hours=71, minutes=59) < lifetime <= timedelta(hours=72)


async def test_concern_reaches_supervisors_but_not_the_clinician(attune: Attune) -> None:
    tenant = await attune.tenant()
    clinician = await tenant.clinician()
    episode = await tenant.episode(clinician_id=clinician["id"])
    token = bearer((await invite(tenant, episode["id"], "srs", session_number=5))["token"])
    message = "My therapist keeps checking their phone during sessions."
    receipt = expect(
        await attune.http.post(
            "/v1/invitation/concerns",
            json={"message": message, "category": "relationship"},
            headers=token,
        ),
        201,
    )
    assert set(receipt) == {"id", "created_at"}

    clinician_key = bearer(
        await tenant.key("alerts:read", "alerts:write", clinician_id=clinician["id"])
    )
    assert expect(await attune.http.get("/v1/alerts", headers=clinician_key), 200)["items"] == []
    supervisor = bearer(await tenant.key("alerts:read", "concerns:read"))
    (alert,) = expect(await attune.http.get("/v1/alerts", headers=supervisor), 200)["items"]
    assert alert["type"] == "concern.reported"
    assert alert["session_number"] == 5
    assert message not in str(alert)  # the list and the alert itself carry no client text
    expect(await attune.http.get(f"/v1/alerts/{alert['id']}", headers=clinician_key), 404)
    read = expect(await attune.http.get(f"/v1/alerts/{alert['id']}", headers=supervisor), 200)
    assert read["concern"]["message"] == message
    assert read["concern"]["category"] == "relationship"


async def test_concerns_per_invitation_are_limited(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    token = bearer((await invite(tenant, episode["id"], "srs"))["token"])
    for n in range(5):
        expect(
            await attune.http.post(
                "/v1/invitation/concerns", json={"message": f"concern {n}"}, headers=token
            ),
            201,
        )
    expect(
        await attune.http.post("/v1/invitation/concerns", json={"message": "six"}, headers=token),
        429,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": ""}, "body.message"),
        ({"message": "   "}, "body.message"),
        ({"message": "x" * 4001}, "body.message"),
        ({"message": "ok", "category": "gossip"}, "body.category"),
        ({"message": "ok", "extra": 1}, "body.extra"),
    ],
)
async def test_bad_concerns_are_refused_naming_the_field(
    attune: Attune, body: dict[str, Any], field: str
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    token = bearer((await invite(tenant, episode["id"], "srs"))["token"])
    problem = expect(
        await attune.http.post("/v1/invitation/concerns", json=body, headers=token), 422
    )
    assert problem["errors"][0]["field"] == field


async def test_invitation_survives_a_clinician_entered_rating_with_a_clear_conflict(
    attune: Attune,
) -> None:
    """The clinician entered the session's SRS on paper first: the client's gets a 409 naming
    the existing submission, and the instrument stays open on the invitation."""
    tenant = await attune.tenant()
    episode = await tenant.episode()
    token = bearer((await invite(tenant, episode["id"], "srs", session_number=1))["token"])
    await submit(tenant, episode["id"], "srs", 1, srs(9, 9, 9, 9))
    problem = expect(
        await attune.http.post(
            "/v1/invitation/submissions",
            json={"instrument": "srs", "answers": srs(9, 9, 9, 9)},
            headers=token,
        ),
        409,
    )
    assert problem["existing_id"]
    view = expect(await attune.http.get("/v1/invitation", headers=token), 200)
    assert view["remaining"] == ["srs"]


@pytest.mark.parametrize("dataset", ["alerts", "submissions", "scores"])
@pytest.mark.parametrize("identified", [False, True])
async def test_concern_text_leaves_through_no_export(
    attune: Attune, dataset: str, identified: bool
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    token = bearer((await invite(tenant, episode["id"], "srs"))["token"])
    message = "Concern-text-7f3a: the sessions feel rushed."
    expect(
        await attune.http.post("/v1/invitation/concerns", json={"message": message}, headers=token),
        201,
    )
    key = bearer(await tenant.key("exports:read", "exports:identified", "concerns:read"))
    for fmt in ("ndjson", "csv"):
        response = await attune.http.get(
            f"/v1/exports/{dataset}",
            params={"format": fmt, "identified": str(identified).lower()},
            headers=key,
        )
        assert response.status_code == 200, response.text
        assert "Concern-text-7f3a" not in response.text
        if dataset == "alerts":
            assert "concern.reported" in response.text  # the alert is there, its text is not
