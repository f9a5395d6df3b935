"""Malformed input anywhere gives a 4xx problem+json naming the field, never a 500."""

import copy
import json
import random
import re
import uuid
from typing import Any

import pytest
from fastapi import FastAPI

from tests.support import SYSTEM_KEY, Attune, Tenant, bearer, expect, srs, submit
from tests.support.instruments import LOCAL
from tests.support.smart import new_key

BAD_VALUES: list[Any] = [
    "bad\x00nul",
    "x" * 100_000,
    10**40,
    -1,
    1.5e308,
    True,
    None,
    [],
    {"nested": {"deeper": [1, 2, 3]}},
    "",
    "\u202e\u0007",
    "2026-11-20T15:00:00",  # a time without an offset
    "0001-01-01T00:00:00+14:00",  # leaves the calendar when converted to UTC
    "9999-12-31T23:59:59-14:00",
    "2026-02-30",
    float("nan"),  # sent as the NaN literal, which is not JSON; parsed, refused by the field
    float("inf"),
    float("-inf"),
]


def _json(body: Any) -> bytes:
    """As a client would send it; NaN and infinities as the (non-JSON) literals NaN, Infinity."""
    return json.dumps(body, allow_nan=True).encode()


def _path(template: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), template)


def _assert_problem(response: Any, context: Any) -> None:
    assert 400 <= response.status_code < 500, (context, response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", context
    body = response.json()
    assert body["status"] == response.status_code


async def _fixture_ids(tenant: Tenant) -> dict[str, str]:
    episode = await tenant.episode()
    submission = await submit(tenant, episode["id"], "srs", 1, srs(9, 9, 9, 9))
    low = await submit(tenant, episode["id"], "srs", 2, srs(5, 5, 5, 5))
    return {
        "alert_id": low["alerts"][0]["id"],
        "rule_id": "alliance.low",
        "episode_id": episode["id"],
        "client_id": episode["client_id"],
        "clinician_id": episode["clinician_id"],
        "submission_id": submission["id"],
        "org_id": tenant.org_id,
        "external_id": "MRN-1",
        "code": "phq-9",
        "invitation_token": expect(
            await tenant.http.post(
                f"/v1/episodes/{episode['id']}/invitations",
                json={"instruments": ["srs"], "session_number": 50},
                headers=tenant.admin,
            ),
            201,
        )["token"],
    }


def _headers(template: str, tenant: Tenant, ids: dict[str, str]) -> dict[str, str]:
    if "/organizations" in template:
        return bearer(SYSTEM_KEY)
    if template.startswith("/v1/invitation"):
        return bearer(ids["invitation_token"])
    return tenant.admin


def _valid_body(method: str, template: str, ids: dict[str, str]) -> dict[str, Any]:
    """A body each write route accepts; a new write route must be added here."""
    fresh = uuid.uuid4().hex[:10]
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/v1/organizations"): {"name": "Clinic", "slug": f"c-{fresh}"},
        ("POST", "/v1/organizations/{org_id}/api-keys"): {"name": "k", "scopes": ["admin"]},
        ("POST", "/v1/api-keys"): {"name": "k", "scopes": ["clients:read"]},
        ("POST", "/v1/clinicians"): {"display_name": "Dr A"},
        ("POST", "/v1/clients"): {"external_id": f"E-{fresh}", "population": "adult"},
        ("PUT", "/v1/clients/by-external-id/{external_id}"): {"population": "adult"},
        ("POST", "/v1/episodes"): {
            "client_id": ids["client_id"], "clinician_id": ids["clinician_id"]
        },
        ("PATCH", "/v1/episodes/{episode_id}"): {"status": "active"},
        ("POST", "/v1/instruments"): {**LOCAL, "code": f"l-{fresh}"},
        ("POST", "/v1/submissions"): {
            "episode_id": ids["episode_id"], "instrument": "srs",
            "session_number": random.randint(2, 90_000), "respondent": "client",
            "occurred_at": "2026-11-20T15:00:00+00:00", "answers": srs(9, 9, 9, 9),
        },
        ("POST", "/v1/submissions/{submission_id}/void"): {"reason": "entered twice"},
        ("POST", "/v1/alerts/{alert_id}/acknowledge"): {"note": "seen"},
        ("POST", "/v1/alerts/{alert_id}/resolve"): {"resolution": "discussed", "note": "ok"},
        ("PUT", "/v1/alert-rules/{rule_id}"): {"enabled": True, "params": {"cutoff": 36}},
        ("POST", "/v1/episodes/{episode_id}/invitations"): {
            "instruments": ["srs"], "session_number": random.randint(2, 90_000),
            "expires_in_hours": 2,
        },
        ("POST", "/v1/invitation/submissions"): {
            "instrument": "srs", "answers": srs(9, 9, 9, 9), "session_number": 50,
            "episode_id": ids["episode_id"], "occurred_at": "2026-11-20T15:00:00+00:00",
        },
        ("POST", "/v1/invitation/concerns"): {"message": "hello", "category": "other"},
        ("POST", "/v1/webhooks"): {
            "url": "https://ehr.example.org/hooks", "event_types": ["alert.created"],
            "description": "EHR",
        },
        ("PUT", "/v1/instruments/{code}/etr"): {
            "bands": [{"intake_min": 0, "intake_max": 27,
                       "sessions": [{"session": 1, "p10": 12, "p50": 15.5, "p90": 19}]}],
        },
        ("POST", "/v1/instruments/{code}/etr/fit"): {
            "intake_bands": [{"intake_min": 0, "intake_max": 27}],
        },
        ("POST", "/v1/smart-clients"): {
            "name": "EHR", "jwks": {"keys": [new_key("ES384").as_dict(private=False)]},
            "scopes": ["clients:read"],
        },
    }  # fmt: skip
    return copy.deepcopy(bodies[(method, template)])


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for template, operations in app.openapi()["paths"].items():
        for method, op in operations.items():
            ops.append((method.upper(), template, op))
    return ops


def _body_fields(app: FastAPI, op: dict[str, Any]) -> list[str]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return []
    schema = content["schema"]
    # An optional body is documented as anyOf [the body, null].
    ref = next(s["$ref"] for s in schema.get("anyOf", [schema]) if "$ref" in s).rsplit("/", 1)[-1]
    return list(app.openapi()["components"]["schemas"][ref]["properties"])


async def test_every_body_field_rejects_absurd_values_with_a_named_422(
    app: FastAPI, attune: Attune
) -> None:
    tenant = await attune.tenant()
    ids = await _fixture_ids(tenant)
    for method, template, op in _operations(app):
        headers = _headers(template, tenant, ids)
        headers = {**headers, "Content-Type": "application/json"}
        for field in _body_fields(app, op):
            for value in BAD_VALUES:
                response = await attune.http.request(
                    method, _path(template, ids), content=_json({field: value}), headers=headers
                )
                context = (method, template, field, repr(value)[:40])
                if response.status_code < 300:
                    continue  # a value that is valid for this field (e.g. a null optional)
                _assert_problem(response, context)


async def test_no_bad_value_in_an_otherwise_valid_body_causes_a_server_error(
    app: FastAPI, attune: Attune
) -> None:
    """Each field of a valid body in turn gets each absurd value: the answer is a 2xx (the value
    happened to be valid there) or a 4xx problem, never a 500 (which would raise here)."""
    tenant = await attune.tenant()
    ids = await _fixture_ids(tenant)
    for method, template, op in _operations(app):
        if "requestBody" not in op:
            continue
        headers = _headers(template, tenant, ids)
        headers = {**headers, "Content-Type": "application/json"}
        for field in _valid_body(method, template, ids):
            for value in BAD_VALUES:
                body = _valid_body(method, template, ids)
                body[field] = value
                response = await attune.http.request(
                    method, _path(template, ids), content=_json(body), headers=headers
                )
                if response.status_code >= 300:
                    _assert_problem(response, (method, template, field, repr(value)[:40]))


async def test_unknown_fields_are_rejected_naming_the_field(app: FastAPI, attune: Attune) -> None:
    tenant = await attune.tenant()
    ids = await _fixture_ids(tenant)
    for method, template, op in _operations(app):
        if not _body_fields(app, op):
            continue
        headers = _headers(template, tenant, ids)
        response = await attune.http.request(
            method, _path(template, ids), json={"surprise": 1}, headers=headers
        )
        _assert_problem(response, template)
        assert response.status_code == 422
        assert "body.surprise" in {e["field"] for e in response.json()["errors"]}


TEN_MEGABYTES = b'{"display_name": "' + b"x" * 10_000_000 + b'"}'

# Bodies no write route may accept, whatever its schema: each is a 422 problem (invalid JSON,
# or not a JSON object), but the one over the size limit, a 413.
BROKEN_BODIES = {
    "syntax error": (b"{not json", "application/json"),
    "not UTF-8": (b"\xff\xfe\xfa", "application/json"),
    "UTF-16": ('{"display_name": "A"}'.encode("utf-16"), "application/json"),
    "raw NUL in a string": (b'{"display_name": "a\x00b"}', "application/json"),
    "lone surrogate": (b'{"display_name": "\\ud800"}', "application/json"),
    "ten megabytes": (TEN_MEGABYTES, "application/json"),
    "an array": (b"[1, 2, 3]", "application/json"),
    "a string": (b'"just a string"', "application/json"),
    "nested 100k deep": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "objects nested 100k deep": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "application/json"),
    "NaN": (b'{"display_name": NaN}', "application/json"),
    "Infinity": (b'{"display_name": Infinity}', "application/json"),
    "-Infinity": (b'{"display_name": -Infinity}', "application/json"),
    "1e400": (b'{"display_name": 1e400}', "application/json"),
    "5000 digits": (b'{"display_name": ' + b"9" * 5000 + b"}", "application/json"),
    "duplicate keys": (b'{"display_name": "A", "display_name": "B"}', "application/json"),
    "empty": (b"", "application/json"),
    "text/plain": (b'{"display_name": "A"}', "text/plain"),
    "form": (b"display_name=A", "application/x-www-form-urlencoded"),
    "multipart": (b"--x\r\n\r\nA\r\n--x--\r\n", "multipart/form-data; boundary=x"),
    "XML": (b"<display_name>A</display_name>", "application/xml"),
    "no content type": (b'{"display_name": "A"}', None),
}


@pytest.mark.parametrize(
    ("content", "content_type"), list(BROKEN_BODIES.values()), ids=list(BROKEN_BODIES)
)
async def test_broken_bodies_are_refused_on_every_write_route(
    app: FastAPI, attune: Attune, content: bytes, content_type: str | None
) -> None:
    tenant = await attune.tenant()
    ids = await _fixture_ids(tenant)
    for method, template, op in _operations(app):
        if "requestBody" not in op:
            continue
        headers = _headers(template, tenant, ids)
        if content_type is not None:
            headers = {**headers, "Content-Type": content_type}
        response = await attune.http.request(
            method, _path(template, ids), content=content, headers=headers
        )
        _assert_problem(response, (template, content[:20]))
        expected = 413 if len(content) > 1024 * 1024 else 422
        assert response.status_code == expected, (template, content[:20], response.text)


async def test_a_duplicate_key_is_a_422_naming_the_key_on_every_write_route(
    app: FastAPI, attune: Attune
) -> None:
    """The standard parser keeps the last of two equal keys: one set of answers, say, would be
    dropped without a word. Every write route refuses the body instead, naming the key."""
    tenant = await attune.tenant()
    ids = await _fixture_ids(tenant)
    for method, template, op in _operations(app):
        if "requestBody" not in op:
            continue
        headers = _headers(template, tenant, ids)
        body = json.dumps(_valid_body(method, template, ids))
        field = next(iter(json.loads(body)))
        doubled = body[:-1] + f", {json.dumps(field)}: null}}"
        response = await attune.http.request(
            method,
            _path(template, ids),
            content=doubled,
            headers={**headers, "Content-Type": "application/json"},
        )
        _assert_problem(response, template)
        assert response.status_code == 422, (template, response.text)
        assert response.json()["errors"] == [
            {"field": "body", "message": f'duplicate key "{field}"', "type": "json_invalid"}
        ], template


async def test_a_duplicate_answer_in_a_submission_is_refused_not_dropped(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    body = (
        f'{{"episode_id": "{episode["id"]}", "instrument": "srs", "session_number": 1, '
        '"answers": {"relationship": 9, "goals_topics": 9, "approach_method": 9, '
        '"overall": 9, "relationship": 2}}'
    )
    response = await attune.http.post(
        "/v1/submissions",
        content=body,
        headers={**tenant.admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["message"] == 'duplicate key "relationship"'
    listed = expect(
        await attune.http.get(f"/v1/episodes/{episode['id']}/submissions", headers=tenant.admin),
        200,
    )
    assert listed["items"] == []


async def test_bodies_over_one_mebibyte_get_413(attune: Attune) -> None:
    tenant = await attune.tenant()
    big = json.dumps({"display_name": "x" * (1024 * 1024 + 10)})
    response = await attune.http.post(
        "/v1/clinicians",
        content=big,
        headers={**tenant.admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_chunked_bodies_over_the_limit_get_413(attune: Attune) -> None:
    tenant = await attune.tenant()

    async def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 100_000

    response = await attune.http.post(
        "/v1/clinicians",
        content=chunks(),
        headers={**tenant.admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "query",
    [
        "limit=501",
        "limit=0",
        "limit=abc",
        "cursor=%00",
        "cursor=not-a-real-cursor",
        "external_id=%00",
        f"external_id={'x' * 500}",
    ],
)
async def test_bad_query_parameters_are_rejected_naming_the_parameter(
    attune: Attune, query: str
) -> None:
    tenant = await attune.tenant()
    response = await attune.http.get(f"/v1/clients?{query}", headers=tenant.admin)
    assert response.status_code == 422, response.text
    name = query.split("=")[0]
    assert any(e["field"] == f"query.{name}" for e in response.json()["errors"])


async def test_bad_path_ids_are_rejected(attune: Attune) -> None:
    tenant = await attune.tenant()
    for path in ("/v1/clients/not-a-uuid", "/v1/episodes/%00", "/v1/clinicians/" + "9" * 300):
        response = await attune.http.get(path, headers=tenant.admin)
        _assert_problem(response, path)


async def test_cursor_from_listing_pages_through_everything(attune: Attune) -> None:
    tenant = await attune.tenant()
    created = [(await tenant.client())["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        query = "/v1/clients?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = expect(await attune.http.get(query, headers=tenant.admin), 200)
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created
