"""Helpers for the schema fuzz test: real objects to aim at, the keys to send, and the ASGI app
that schemathesis calls."""

import uuid
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send

from tests.support import SYSTEM_KEY, Attune, expect, srs, submit

# Its parameter is the operation type, which carries four more; any operation will do here.
Case = schemathesis.Case[Any]


@dataclass
class FuzzWorld:
    """One organization with an object of each kind, and its admin key. A route for a new kind
    of object is fuzzed anyway; give it a real one in `values` (under the name its path, query
    or body uses, e.g. `alert_id`) and its handler gets past the lookup too."""

    admin_key: str
    # A client's invitation token, for the /v1/invitation routes.
    invitation_token: str = ""
    # Real values by the name a path, query or body field carries.
    values: dict[str, Any] = field(default_factory=dict)
    # The instrument definitions the organization sees.
    definitions: list[dict[str, Any]] = field(default_factory=list)
    # Each alert rule's parameter names.
    rule_params: dict[str, list[str]] = field(default_factory=dict)


async def build_world(attune: Attune) -> FuzzWorld:
    tenant = await attune.tenant("Fuzz clinic")
    episode = await tenant.episode()
    external_id = f"MRN-{uuid.uuid4().hex[:8]}"
    expect(
        await tenant.http.put(
            f"/v1/clients/by-external-id/{external_id}",
            json={"population": "adult"},
            headers=tenant.admin,
        ),
        201,
    )
    submission = await submit(tenant, episode["id"], "srs", 1, srs(9, 9, 9, 9))
    # A key the fuzzer may revoke: revoking the admin key would turn the rest into 401s.
    spare = expect(
        await tenant.http.post(
            "/v1/api-keys", json={"name": "spare", "scopes": ["clients:read"]}, headers=tenant.admin
        ),
        201,
    )
    definitions = expect(await tenant.http.get("/v1/instruments", headers=tenant.admin), 200)
    # A weak alliance rating in the next session raises an alert.
    await submit(tenant, episode["id"], "srs", 2, srs(4, 4, 4, 4))
    alerts = expect(await tenant.http.get("/v1/alerts", headers=tenant.admin), 200)["items"]
    rules = expect(await tenant.http.get("/v1/alert-rules", headers=tenant.admin), 200)["items"]
    hook = expect(
        await tenant.http.post(
            "/v1/webhooks", json={"url": "https://ehr.example.org/fuzz"}, headers=tenant.admin
        ),
        201,
    )
    invitation = expect(
        await tenant.http.post(
            f"/v1/episodes/{episode['id']}/invitations",
            json={"instruments": ["srs", "ors"], "session_number": 60},
            headers=tenant.admin,
        ),
        201,
    )
    return FuzzWorld(
        admin_key=tenant.admin_key,
        invitation_token=invitation["token"],
        definitions=definitions,
        rule_params={rule["rule_id"]: sorted(rule["params"]) for rule in rules},
        values={
            "org_id": tenant.org_id,
            "episode_id": episode["id"],
            "client_id": episode["client_id"],
            "clinician_id": episode["clinician_id"],
            "submission_id": submission["id"],
            "key_id": spare["id"],
            "external_id": external_id,
            "instrument": "srs",
            "code": "phq-9",
            "rule_id": alerts[0]["type"] if alerts else rules[0]["rule_id"],
            "webhook_id": hook["id"],
            **({"alert_id": alerts[0]["id"]} if alerts else {}),
        },
    )


# Any JSON value an answer (or a rule parameter) could be.
_ANSWER = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)


def aim(case: Case, world: FuzzWorld, draw: st.DrawFn) -> None:
    """Point the case at real objects: every field named like one gets its id; a submission
    names a real instrument and answers its items; an instrument definition is a real one under
    the generated code; an alert rule's parameters are its own. Handlers then get past their
    lookups and run their core."""
    values = world.values
    for container in (case.path_parameters, case.query):
        if container:
            for name in container:
                if name in values:
                    container[name] = values[name]
    body = case.body
    if not isinstance(body, dict):
        return
    if "items" in body and "code" in body:
        definition = draw(st.sampled_from(world.definitions))
        case.body = {**definition, "code": body["code"]}
        return
    for name in body:
        if name in values:
            body[name] = values[name]
    rule_id = (case.path_parameters or {}).get("rule_id")
    if "params" in body and rule_id in world.rule_params:
        names = world.rule_params[rule_id]
        body["params"] = draw(
            st.dictionaries(st.sampled_from(names), _ANSWER) if names else st.just({})
        )
    if "answers" in body:
        definition = draw(st.sampled_from(world.definitions))
        items = definition["items"]
        valid = {item["id"]: item["min"] for item in items if item.get("when") is None}
        fuzzed = st.dictionaries(st.sampled_from([item["id"] for item in items]), _ANSWER)
        body["instrument"] = definition["code"]
        body["answers"] = draw(st.one_of(st.just(valid), fuzzed))


# What requests carry in place of the running test's admin key: schemathesis attaches keys while
# it builds cases, some of them at collection time, before the key exists. `Target` swaps it.
ADMIN_KEY_PLACEHOLDER = "att_fuzz-placeholder-for-the-admin-key"
INVITATION_TOKEN_PLACEHOLDER = "inv_fuzz-invitation-token-placeholder"


class Target:
    """The ASGI app schemathesis calls: it forwards to the app of the running test, with the
    admin-key placeholder replaced by that test's admin key.

    Operations are collected from the OpenAPI document before any fixture exists, but the app
    must run on the suite's database, which only a fixture knows. Schemathesis starts the app's
    lifespan on first use and ends it when the test ends.
    """

    def __init__(self) -> None:
        self.app: FastAPI | None = None
        self.world: FuzzWorld | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the fuzz fixtures set the app"
        if scope["type"] == "http" and self.world is not None:
            swaps = (
                (ADMIN_KEY_PLACEHOLDER.encode(), self.world.admin_key.encode()),
                (INVITATION_TOKEN_PLACEHOLDER.encode(), self.world.invitation_token.encode()),
            )
            headers = []
            for name, value in scope["headers"]:
                if name == b"authorization":
                    for placeholder, real in swaps:
                        value = value.replace(placeholder, real)
                headers.append((name, value))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


TARGET = Target()


class BearerKeys:
    """Schemathesis auth provider: the `system` key on /v1/organizations, the client's
    invitation token on /v1/invitation, the admin key elsewhere. Through the provider (rather
    than fixed headers) schemathesis knows when it left the key out on purpose, and expects a
    401 then."""

    def get(self, case: Case, context: schemathesis.AuthContext) -> str:
        if context.operation.path.startswith("/v1/organizations"):
            return SYSTEM_KEY
        if context.operation.path.startswith("/v1/invitation"):
            return INVITATION_TOKEN_PLACEHOLDER
        return ADMIN_KEY_PLACEHOLDER

    def set(self, case: Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


@st.composite
def sometimes_aimed(draw: st.DrawFn, case: Case) -> Case:
    """Half the valid cases, aimed at real objects; invalid ones are refused before any lookup,
    so they stay as generated."""
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if positive and TARGET.world is not None and draw(st.booleans()):
        aim(case, TARGET.world, draw)
    return case
