"""POST /v1/submissions scores and stores ratings exactly; names bad answers; conflicts are 409."""

import json
from typing import Any

import pytest

from models.submissions import SubmissionPublic
from tests.support import (
    Attune,
    assert_audit_events_carry_no_content,
    bearer,
    expect,
    items,
    ors,
    srs,
    submit,
)


async def test_full_episode_scores_exactly_as_computed_by_hand(attune: Attune) -> None:
    """ORS at the start, SRS and rupture-check at the end of each of 6 sessions, PHQ-9 every
    other session. Expected values worked out by hand from reference/psychometrics.md."""
    tenant = await attune.tenant()
    episode = await tenant.episode()
    eid = episode["id"]

    ors_first = await submit(tenant, eid, "ors", 1, ors(4.5, 6.0, 5.5, 3.0))
    assert ors_first["scores"] == {
        "total": 19.0, "mean": 4.75, "subscales": {}, "band": None,
        "below_cutoff": True, "clinical": True, "risk_flags": [],
    }  # fmt: skip

    srs_series = [
        (srs(9.2, 8.7, 9.0, 9.5), 36.4, 9.1, False),
        (srs(9.0, 9.0, 9.0, 8.9), 35.9, 8.975, True),
        (srs(9, 9, 9, 9), 36.0, 9.0, False),
        (srs(9.5, 9.5, 9.5, 9.5), 38.0, 9.5, False),
        (srs(9.3, 9.2, 9.3, 9.2), 37.0, 9.25, False),
        (srs(0.1, 0.2, 0.3, 0.4), 1.0, 0.25, True),
    ]
    for session, (answers, total, mean, below) in enumerate(srs_series, start=1):
        got = await submit(tenant, eid, "srs", session, answers)
        assert got["instrument_version"] == "3.0"
        assert (got["scores"]["total"], got["scores"]["mean"]) == (total, mean), session
        assert got["scores"]["below_cutoff"] is below, session
        assert got["answers"] == answers

    no_tension = await submit(tenant, eid, "rupture-check", 1, {"tension": 0})
    assert no_tension["scores"]["total"] is None
    tension = await submit(
        tenant, eid, "rupture-check", 2, {"tension": 1, "intensity": 4, "resolution": 2}
    )
    assert tension["answers"] == {"tension": 1, "intensity": 4, "resolution": 2}
    for session in range(3, 7):
        await submit(tenant, eid, "rupture-check", session, {"tension": 0})

    phq = [
        (items("q", 2, 2, 1, 1, 0, 1, 1, 0, 1), 9.0, "mild", ["q9"]),
        (items("q", 3, 3, 2, 2, 2, 1, 1, 1, 0), 15.0, "moderately severe", []),
        (items("q", 1, 1, 1, 1, 0, 0, 0, 0, 0), 4.0, "minimal", []),
    ]
    for (answers, total, band, risk), session in zip(phq, (2, 4, 6), strict=True):
        got = await submit(tenant, eid, "phq-9", session, answers)
        assert (got["scores"]["total"], got["scores"]["band"]) == (total, band)
        assert got["scores"]["risk_flags"] == risk

    listed = expect(
        await attune.http.get(f"/v1/episodes/{eid}/submissions?limit=500", headers=tenant.admin),
        200,
    )
    counts: dict[str, int] = {}
    for sub in listed["items"]:
        counts[sub["instrument"]] = counts.get(sub["instrument"], 0) + 1
    assert counts == {"ors": 1, "srs": 6, "rupture-check": 6, "phq-9": 3}


async def test_wai_sr_subscales_and_chs_reverse_keying(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    wai = await submit(tenant, eid, "wai-sr", 1, items("q", 4, 4, 5, 3, 5, 4, 5, 4, 4, 4, 3, 4))
    assert wai["scores"]["subscales"] == {"task": 16.0, "bond": 19.0, "goal": 14.0}
    assert (wai["scores"]["total"], wai["scores"]["mean"]) == (49.0, 4.0833)
    chs = await submit(tenant, eid, "chs", 1, items("q", *([5] * 12)))
    # Items 3, 6, 8, 10 and 11 are reverse keyed (6 - x): 7 * 5 + 5 * 1.
    assert chs["scores"]["total"] == 40.0


async def test_ors_cutoff_follows_the_clients_population(attune: Attune) -> None:
    tenant = await attune.tenant()
    child = await tenant.client(population="child")
    adult = await tenant.client(population="adult")
    child_episode = await tenant.episode(client_id=child["id"])
    adult_episode = await tenant.episode(client_id=adult["id"])
    as_child = await submit(tenant, child_episode["id"], "ors", 1, ors(7.5, 7.5, 7.5, 7.5))
    as_adult = await submit(tenant, adult_episode["id"], "ors", 1, ors(7.5, 7.5, 7.5, 7.5))
    assert as_child["scores"]["clinical"] is True  # 30 < 32 (CORS)
    assert as_adult["scores"]["clinical"] is False  # 30 >= 25


BAD_ANSWERS: list[tuple[str, dict[str, Any], str, str]] = [
    ("srs", {**srs(9, 9, 9, 9), "mood": 3}, "mood", "unknown_item"),
    ("srs", {"relationship": 9, "goals_topics": 9, "approach_method": 9}, "overall", "missing"),
    ("srs", srs(9, 9, 9, 10.5), "overall", "out_of_range"),
    ("srs", srs(9, 9, 9, -0.1), "overall", "out_of_range"),
    ("srs", srs(9, 9, 9.05, 9), "approach_method", "off_step"),
    ("srs", {**srs(9, 9, 9, 9), "overall": "nine"}, "overall", "wrong_type"),
    ("srs", {**srs(9, 9, 9, 9), "overall": None}, "overall", "wrong_type"),
    ("srs", {**srs(9, 9, 9, 9), "overall": True}, "overall", "wrong_type"),
    ("srs", {**srs(9, 9, 9, 9), "overall": [9]}, "overall", "wrong_type"),
    ("phq-9", items("q", 0, 0, 0, 0, 0, 0, 0, 0, 4), "q9", "out_of_range"),
    ("rupture-check", {"tension": 1, "intensity": 3}, "resolution", "missing"),
    ("rupture-check", {"tension": 0, "intensity": 3}, "intensity", "unexpected"),
    ("rupture-check", {"tension": 2}, "tension", "out_of_range"),
]


@pytest.mark.parametrize(("instrument", "answers", "item", "code"), BAD_ANSWERS)
async def test_each_class_of_bad_answer_is_a_422_naming_the_item(
    attune: Attune, instrument: str, answers: dict[str, Any], item: str, code: str
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    problem = await submit(tenant, eid, instrument, 1, answers, status=422)
    assert {"field": f"body.answers.{item}", "type": code} in [
        {"field": e["field"], "type": e["type"]} for e in problem["errors"]
    ]
    listed = expect(
        await attune.http.get(f"/v1/episodes/{eid}/submissions", headers=tenant.admin), 200
    )
    assert listed["items"] == []


async def test_nan_and_infinity_answers_are_wrong_types(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    body = (
        f'{{"episode_id": "{eid}", "instrument": "srs", "session_number": 1, "answers": '
        '{"relationship": NaN, "goals_topics": Infinity, "approach_method": 9, "overall": 9}}'
    )
    response = await attune.http.post(
        "/v1/submissions",
        content=body,
        headers={**tenant.admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"body.answers.relationship", "body.answers.goals_topics"} <= fields


async def test_unknown_instrument_and_wrong_respondent_are_named(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    unknown = await submit(tenant, eid, "bdi-ii", 1, {"q1": 1}, status=422)
    assert unknown["errors"][0]["field"] == "body.instrument"
    wrong = await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), status=422, respondent="clinician")
    assert wrong["errors"][0]["field"] == "body.respondent"


async def test_second_valid_submission_for_a_session_is_409_naming_the_first(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    first = await submit(tenant, eid, "srs", 3, srs(9, 9, 9, 9))
    again = await submit(tenant, eid, "srs", 3, srs(8, 8, 8, 8), status=409)
    assert again["existing_id"] == first["id"]
    # Another rater of the same session is a different series, and so is another session.
    await submit(tenant, eid, "ors", 3, ors(5, 5, 5, 5), respondent="collateral", rater="mother")
    await submit(tenant, eid, "ors", 3, ors(6, 6, 6, 6), respondent="collateral", rater="father")
    await submit(
        tenant, eid, "ors", 3, ors(6, 6, 6, 6), respondent="collateral", rater="father", status=409
    )


async def test_voiding_keeps_the_row_and_makes_room_for_a_replacement(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    first = await submit(tenant, eid, "srs", 1, srs(1, 1, 1, 1))
    voided = expect(
        await attune.http.post(
            f"/v1/submissions/{first['id']}/void",
            json={"reason": "entered on the wrong scale"},
            headers=tenant.admin,
        ),
        200,
    )
    assert voided["status"] == "voided"
    assert voided["void_reason"] == "entered on the wrong scale"
    again = expect(
        await attune.http.post(
            f"/v1/submissions/{first['id']}/void",
            json={"reason": "second try"},
            headers=tenant.admin,
        ),
        200,
    )
    assert again["void_reason"] == "entered on the wrong scale"
    replacement = await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    got = expect(await attune.http.get(f"/v1/submissions/{first['id']}", headers=tenant.admin), 200)
    assert got["status"] == "voided"
    valid = expect(
        await attune.http.get(f"/v1/episodes/{eid}/submissions?status=valid", headers=tenant.admin),
        200,
    )
    assert [s["id"] for s in valid["items"]] == [replacement["id"]]


async def test_void_needs_a_reason(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    sub = await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    response = await attune.http.post(
        f"/v1/submissions/{sub['id']}/void", json={"reason": ""}, headers=tenant.admin
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.reason"


async def test_closed_episode_refuses_submissions_with_409(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    expect(
        await attune.http.patch(
            f"/v1/episodes/{eid}", json={"status": "closed"}, headers=tenant.admin
        ),
        200,
    )
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9), status=409)


async def test_other_tenants_episode_and_submissions_are_404(attune: Attune) -> None:
    mine = await attune.tenant()
    theirs = await attune.tenant()
    their_episode = (await theirs.episode())["id"]
    their_sub = await submit(theirs, their_episode, "srs", 1, srs(9, 9, 9, 9))
    await submit(mine, their_episode, "srs", 1, srs(9, 9, 9, 9), status=404)
    h = mine.admin
    assert (
        await attune.http.get(f"/v1/submissions/{their_sub['id']}", headers=h)
    ).status_code == 404
    void = await attune.http.post(
        f"/v1/submissions/{their_sub['id']}/void", json={"reason": "x"}, headers=h
    )
    assert void.status_code == 404
    for path in (
        f"/v1/episodes/{their_episode}/submissions",
        f"/v1/episodes/{their_episode}/trajectory?instrument=srs",
    ):
        assert (await attune.http.get(path, headers=h)).status_code == 404
    still = expect(
        await attune.http.get(f"/v1/submissions/{their_sub['id']}", headers=theirs.admin), 200
    )
    assert still["status"] == "valid"


async def test_clinician_key_sees_only_its_own_clients_submissions(attune: Attune) -> None:
    tenant = await attune.tenant()
    me = await tenant.clinician("Dr Me")
    mine = (await tenant.episode(clinician_id=me["id"]))["id"]
    other = (await tenant.episode())["id"]
    other_sub = await submit(tenant, other, "srs", 1, srs(9, 9, 9, 9))
    key = bearer(await tenant.key("submissions:read", "submissions:write", clinician_id=me["id"]))
    response = await attune.http.post(
        "/v1/submissions",
        json={
            "episode_id": other,
            "instrument": "srs",
            "session_number": 2,
            "answers": srs(9, 9, 9, 9),
        },
        headers=key,
    )
    assert response.status_code == 404
    assert (
        await attune.http.get(f"/v1/submissions/{other_sub['id']}", headers=key)
    ).status_code == 404
    ok = await attune.http.post(
        "/v1/submissions",
        json={
            "episode_id": mine,
            "instrument": "srs",
            "session_number": 1,
            "answers": srs(9, 9, 9, 9),
        },
        headers=key,
    )
    assert ok.status_code == 201


async def test_submission_is_audited_without_its_answers(attune: Attune) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    sub = await submit(tenant, eid, "srs", 1, srs(9.1, 8.4, 9.0, 8.8))
    events = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)["items"]
    created = [e for e in events if e["action"] == "submission.create"]
    assert [e["resource_id"] for e in created] == [sub["id"]]
    assert_audit_events_carry_no_content(events, "9.1", "8.4", "8.8", "35.3")


async def test_a_submission_reads_back_exactly_as_it_was_answered(attune: Attune) -> None:
    """The POST's body (rendered by orjson) and a GET's (rendered by pydantic) agree to the
    character, timestamps in UTC as Z included."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    posted = await submit(
        tenant, eid, "srs", 1, srs(8, 8, 8, 8), occurred_at="2026-11-20T16:00:00+01:00"
    )
    got = expect(
        await attune.http.get(f"/v1/submissions/{posted['id']}", headers=tenant.admin), 200
    )
    assert posted["created_at"].endswith("Z")
    assert posted["occurred_at"] == "2026-11-20T15:00:00Z"
    assert {k: v for k, v in got.items() if k != "alerts"} == {
        k: v for k, v in posted.items() if k != "alerts"
    }


async def test_a_created_submission_is_rendered_by_its_response_model(attune: Attune) -> None:
    """What POST /v1/submissions sends is SubmissionPublic's rendering, alerts included: the
    declared response_model is applied, not a hand-built dict beside it."""
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    posted = await submit(tenant, eid, "srs", 2, srs(2, 2, 2, 2))
    assert posted["alerts"]
    rendered = SubmissionPublic.model_validate(posted).model_dump(mode="json")
    assert posted == rendered


async def test_a_submission_is_answered_alike_by_the_fast_path_and_by_fastapis_handler(
    attune: Attune,
) -> None:
    """`application/json` takes the route's fast path (api.routing.fast_path); a content type
    with a charset takes FastAPI's own handler. The same series on two episodes, one each way,
    gets the same answers: status, headers, scores and the alerts raised and resolved."""
    tenant = await attune.tenant()
    series = [srs(9, 9, 9, 9), srs(8, 8, 8, 8), srs(5, 5, 5, 5), srs(9, 9, 9, 9)]
    answers: dict[str, list[Any]] = {}
    for content_type in ("application/json", "application/json; charset=utf-8"):
        episode = (await tenant.episode())["id"]
        got = answers.setdefault(content_type, [])
        for session, ratings in enumerate(series, start=1):
            body = {"episode_id": episode, "instrument": "srs", "session_number": session}
            response = await tenant.http.post(
                "/v1/submissions",
                content=json.dumps({**body, "answers": ratings}),
                headers={**tenant.admin, "Content-Type": content_type},
            )
            shown = expect(response, 201)
            for alert in shown["alerts"]:  # less what differs between two episodes
                for field in PER_EPISODE:
                    alert.pop(field)
            got.append(
                (
                    response.status_code,
                    sorted(k for k in response.headers if k not in {"date", "x-request-id"}),
                    response.headers["content-type"],
                    {k: v for k, v in shown.items() if k not in {"id", "episode_id", "created_at"}},
                )
            )
    fast, handler = answers.values()
    assert fast == handler
    assert [len(shown["alerts"]) for *_, shown in fast] == [0, 2, 2, 1]


PER_EPISODE = (
    "id", "episode_id", "client_id", "clinician_id", "submission_id", "created_at", "updated_at",
    "resolved_at",
)  # fmt: skip
