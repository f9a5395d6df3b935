"""Tenant isolation matrix (issue 7): every route of the app, against three organizations with
real objects and clinician-bound keys.

`MATRIX` says how each operation is exercised; `test_the_matrix_covers_every_route` fails the
build when the app gains (or loses) a route the matrix does not name, so a new route needs a
decision here. For each organization (A, B, C) the world holds two clinicians X and Y, a client
and an episode for each, submissions (one raising an alert), the alert, a spare api key, an
organization-defined instrument and a key bound to clinician X.

- object routes: B's admin key with A's id → 404, and A's objects, lists and audit trail are
  unchanged; A's key bound to X with Y's ids → 404 (caseload routes);
- list routes: B's lists never hold an id of A or C; filters naming A's ids come back empty;
  lists of A's key bound to X never hold Y's caseload;
- body routes: B sends A's ids inside the body → 404 or 422 naming the field; nothing is
  created in A;
- export routes: B's exports (identified, every dataset) never hold an id of A or C; exports of
  A's key bound to X never hold Y's caseload;
- FHIR searches (`/fhir/...`, answering searchset Bundles): as list routes, B's bundles never
  hold an id of A or C, searches naming A's ids come back empty, and a key bound to X never sees
  Y's caseload;
- exempt routes: not per-tenant, with the reason.

Inside one organisation (issue 14, DESIGN.md §10.8), `NEEDS` says which scope each route of
MATRIX needs, and `test_intra_organisation_every_route` calls every route with clinician X's
objects (ids in the path, the query or the body) under each scope alone and under a key bound to
clinician Y: a scope that is not the route's own is refused before anything is read, and the key
bound to Y reads nothing of X's caseload on any route (caseload objects 404, lists, searches and
exports without X's rows, id-bearing bodies refused). One organisation is seeded per module.
"""

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI

from tests.support import Attune, Tenant, bearer, expect, srs, submit
from tests.support.fhir import questionnaire_response
from tests.support.smart import new_key
from tests.support.smart import register as smart_register

Kind = Literal["object", "list", "fhir-search", "body", "own", "token", "export", "exempt"]


@dataclass(frozen=True)
class Probe:
    """How one operation is exercised. `kind`:
    object: its path names an object; called with a foreign (or out-of-caseload) id → 404.
    list:   answers a list; `filters` are query strings naming A's ids, which must come back empty.
    fhir-search: as list, answering a FHIR searchset Bundle.
    body:   its body carries object ids; `bodies` builds bodies naming A's ids (field → body).
    own:    creates or sets something of the caller's own organization only; must not touch A.
    token:  taken by an invitation token, which is bound to one episode of B: naming A's ids
            in the body is refused, and nothing of A is read or written.
    export: streams a dataset (`query` names it); never a row of A, nor out of the caseload.
    exempt: not per-tenant; `reason` says why."""

    kind: Kind
    query: str = ""
    body: dict[str, Any] | None = None
    caseload: bool = False  # a clinician-bound key is limited to its caseload on this route
    filters: tuple[str, ...] = ()
    reason: str = ""


MATRIX: dict[tuple[str, str], Probe] = {
    # Objects named in the path.
    ("GET", "/v1/submissions/{submission_id}"): Probe("object", caseload=True),
    ("POST", "/v1/submissions/{submission_id}/void"): Probe(
        "object", body={"reason": "isolation probe"}, caseload=True
    ),
    ("GET", "/v1/episodes/{episode_id}/submissions"): Probe("object", caseload=True),
    ("GET", "/v1/episodes/{episode_id}/trajectory"): Probe(
        "object", query="?instrument=srs", caseload=True
    ),
    ("GET", "/v1/episodes/{episode_id}/trajectory/chart"): Probe(
        "object", query="?instrument=srs&format=vega", caseload=True
    ),
    ("DELETE", "/v1/api-keys/{key_id}"): Probe("object"),
    ("GET", "/v1/clinicians/{clinician_id}"): Probe("object"),
    ("GET", "/v1/clients/{client_id}"): Probe("object", caseload=True),
    ("GET", "/v1/episodes/{episode_id}"): Probe("object", caseload=True),
    ("PATCH", "/v1/episodes/{episode_id}"): Probe(
        "object", body={"status": "closed"}, caseload=True
    ),
    ("GET", "/v1/alerts/{alert_id}"): Probe("object", caseload=True),
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): Probe(
        "object", body={"note": "probe"}, caseload=True
    ),
    ("POST", "/v1/alerts/{alert_id}/resolve"): Probe(
        "object", body={"resolution": "dismissed"}, caseload=True
    ),
    ("GET", "/v1/instruments/{code}"): Probe("object"),  # A's own instrument; built-ins shared
    ("GET", "/v1/instruments/{code}/etr"): Probe("object"),
    ("PUT", "/v1/instruments/{code}/etr"): Probe(
        "object",
        body={
            "bands": [
                {
                    "intake_min": 0,
                    "intake_max": 40,
                    "sessions": [{"session": 1, "p10": 30, "p50": 34, "p90": 38}],
                }
            ]
        },
    ),
    ("POST", "/v1/instruments/{code}/etr/fit"): Probe("object"),
    # No fit is queued in this world (fits below the worker's threshold run in the request):
    # another organisation's real fit is 404 in tests/api/test_expected_response_worker.py.
    ("GET", "/v1/instruments/{code}/etr/fits/{fit_id}"): Probe("object"),
    ("POST", "/v1/episodes/{episode_id}/invitations"): Probe(
        "object", body={"instruments": ["srs"], "session_number": 9}, caseload=True
    ),
    ("GET", "/v1/episodes/{episode_id}/invitations"): Probe("object", caseload=True),
    ("DELETE", "/v1/invitations/{invitation_id}"): Probe("object", caseload=True),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): Probe("object"),
    ("DELETE", "/v1/webhooks/{webhook_id}"): Probe("object"),
    ("GET", "/fhir/Questionnaire/{code}"): Probe("object"),
    ("GET", "/fhir/QuestionnaireResponse/{response_id}"): Probe("object", caseload=True),
    ("GET", "/fhir/Observation/{observation_id}"): Probe("object", caseload=True),
    ("GET", "/fhir/DetectedIssue/{issue_id}"): Probe("object", caseload=True),
    ("GET", "/fhir/Patient/{client_id}"): Probe("object", caseload=True),
    ("GET", "/fhir/Practitioner/{clinician_id}"): Probe("object"),
    ("GET", "/fhir/EpisodeOfCare/{episode_id}"): Probe("object", caseload=True),
    ("GET", "/fhir/$export-status/{job_id}"): Probe("object"),
    ("GET", "/v1/exports/runs/{export_id}"): Probe("object"),  # A's admin key's export
    ("DELETE", "/fhir/$export-status/{job_id}"): Probe("object"),
    ("GET", "/fhir/$export-files/{job_id}/{file_name}"): Probe("object"),
    ("DELETE", "/v1/smart-clients/{smart_client_id}"): Probe("object"),
    # Lists.
    ("GET", "/v1/clients"): Probe("list", caseload=True, filters=("external_id={external_id}",)),
    ("GET", "/v1/clinicians"): Probe("list", filters=("external_id={clinician_external_id}",)),
    ("GET", "/v1/episodes"): Probe(
        "list", caseload=True, filters=("client_id={client_id}", "clinician_id={clinician_id}")
    ),
    ("GET", "/v1/api-keys"): Probe("list"),
    ("GET", "/v1/alerts"): Probe(
        "list",
        caseload=True,
        filters=(
            "episode_id={episode_id}",
            "client_id={client_id}",
            "clinician_id={clinician_id}",
        ),
    ),
    ("GET", "/v1/audit-events"): Probe("list"),
    ("GET", "/v1/alert-rules"): Probe("list"),
    ("GET", "/v1/instruments"): Probe("list"),
    ("GET", "/v1/webhooks"): Probe("list"),
    ("GET", "/v1/smart-clients"): Probe("list"),
    # FHIR searches.
    ("GET", "/fhir/Questionnaire"): Probe(
        "fhir-search", filters=("url=https://w3id.org/attune/fhir/Questionnaire/{code}",)
    ),
    ("GET", "/fhir/Observation"): Probe(
        "fhir-search", caseload=True, filters=("subject=Patient/{client_id}",)
    ),
    ("GET", "/fhir/DetectedIssue"): Probe(
        "fhir-search", caseload=True, filters=("patient={client_id}",)
    ),
    ("GET", "/fhir/Patient"): Probe(
        "fhir-search", caseload=True, filters=("identifier={external_id}", "_id={client_id}")
    ),
    ("GET", "/fhir/Practitioner"): Probe(
        "fhir-search", filters=("identifier={clinician_external_id}", "_id={clinician_id}")
    ),
    ("GET", "/fhir/EpisodeOfCare"): Probe(
        "fhir-search",
        caseload=True,
        filters=("patient={client_id}", "patient:identifier={external_id}", "_id={episode_id}"),
    ),
    ("GET", "/fhir/QuestionnaireResponse"): Probe(
        "fhir-search",
        caseload=True,
        filters=("patient={client_id}", "patient:identifier={external_id}", "_id={response_id}"),
    ),
    # Ids inside the body.
    ("POST", "/v1/submissions"): Probe("body", caseload=True),
    ("POST", "/v1/episodes"): Probe("body", caseload=True),
    ("POST", "/v1/api-keys"): Probe("body"),
    ("POST", "/fhir/QuestionnaireResponse"): Probe("body", caseload=True),
    ("POST", "/v1/smart-clients"): Probe("body"),
    # Create or set the caller's own things; A must not see them or change.
    ("POST", "/v1/clinicians"): Probe("own", body={"display_name": "Dr B", "external_id": "X"}),
    ("POST", "/v1/clients"): Probe("own", body={"population": "child"}),
    ("PUT", "/v1/clients/by-external-id/{external_id}"): Probe("own", body={"population": "child"}),
    ("PUT", "/v1/alert-rules/{rule_id}"): Probe("own", body={"enabled": False}),
    ("POST", "/v1/instruments"): Probe("own"),
    ("POST", "/v1/webhooks"): Probe("own", body={"url": "https://ehr.example.org/b"}),
    # Invitation tokens.
    ("GET", "/v1/invitation"): Probe("token"),
    ("POST", "/v1/invitation/submissions"): Probe("token"),
    ("POST", "/v1/invitation/concerns"): Probe("token", body={"message": "probe"}),
    # Streamed exports of the caller's own rows.
    ("GET", "/v1/exports/{dataset}"): Probe("export", caseload=True),
    ("GET", "/v1/exports/{dataset}/datapackage.json"): Probe(
        "exempt", reason="the columns of an export, the same for every tenant; no data"
    ),
    # Not per-tenant.
    ("POST", "/v1/organizations"): Probe("exempt", reason="system scope: creates a tenant"),
    ("POST", "/v1/organizations/{org_id}/api-keys"): Probe(
        "exempt", reason="system scope (an admin key gets 403, see test_auth)"
    ),
    ("GET", "/healthz"): Probe("exempt", reason="public liveness, no tenant data"),
    ("GET", "/readyz"): Probe("exempt", reason="public readiness, no tenant data"),
    ("GET", "/metrics"): Probe("exempt", reason="public Prometheus metrics, no tenant data"),
    ("GET", "/openapi.json"): Probe("exempt", reason="the API's schema, no tenant data"),
    ("GET", "/docs"): Probe("exempt", reason="Swagger UI, no tenant data"),
    ("GET", "/docs/oauth2-redirect"): Probe("exempt", reason="Swagger UI helper"),
    ("GET", "/redoc"): Probe("exempt", reason="ReDoc, no tenant data"),
    # The rating page's static files: the token stays in the browser, the data comes through
    # the /v1/invitation routes (token probes).
    ("GET", "/r"): Probe("exempt", reason="redirect to the rating page, no tenant data"),
    ("GET", "/r/"): Probe("exempt", reason="the rating page's HTML, no tenant data"),
    ("GET", "/r/rating.js"): Probe("exempt", reason="the rating page's script, no tenant data"),
    ("GET", "/r/rating.css"): Probe("exempt", reason="the rating page's style, no tenant data"),
    ("GET", "/r/icon.svg"): Probe("exempt", reason="the rating page's icon, no tenant data"),
    ("GET", "/fhir/metadata"): Probe("exempt", reason="public CapabilityStatement, no tenant data"),
    ("GET", "/.well-known/smart-configuration"): Probe(
        "exempt", reason="public SMART discovery document, no tenant data"
    ),
    ("GET", "/fhir/.well-known/smart-configuration"): Probe(
        "exempt", reason="public SMART discovery document, no tenant data"
    ),
    ("POST", "/auth/token"): Probe(
        "exempt",
        reason="OAuth token endpoint: the caller is the client its signed assertion names "
        "(tests/api/test_smart.py)",
    ),
    ("GET", "/fhir/$export"): Probe(
        "exempt",
        reason="starts an export of the caller's own organization; its status and files are "
        "probed as objects above",
    ),
}


def app_operations(app: FastAPI) -> set[tuple[str, str]]:
    """Every operation the app documents, and every undocumented route it serves."""
    operations = {
        (method.upper(), template)
        for template, methods in app.openapi()["paths"].items()
        for method in methods
    }
    routes: list[Any] = list(app.routes)
    while routes:
        route = routes.pop()
        # Routers included in the app hold their routes (FastAPI's included-router wrapper).
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            routes += list(contexts())
            continue
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path is not None and methods:
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)  # as the OpenAPI writes it
            operations |= {(m, path) for m in methods if m != "HEAD"}
    return operations


def test_the_matrix_covers_every_route(app: FastAPI) -> None:
    operations = app_operations(app)
    assert operations - MATRIX.keys() == set(), "routes missing from the isolation matrix"
    assert MATRIX.keys() - operations == set(), "matrix names routes the app lacks"
    assert all(p.reason for p in MATRIX.values() if p.kind == "exempt")


@dataclass
class Org:
    tenant: Tenant
    # Path/query/body values naming objects of clinician X's caseload (and the org's own).
    x: dict[str, str] = field(default_factory=dict)
    # The same for clinician Y's caseload.
    y: dict[str, str] = field(default_factory=dict)
    bound_key: str = ""  # bound to clinician X
    ids: set[str] = field(default_factory=set)  # every id (and code) the org holds


SCOPES = (
    "clients:read", "clients:write", "submissions:read", "submissions:write",
    "alerts:read", "alerts:write", "exports:read", "exports:identified",
)  # fmt: skip


async def build_org(attune: Attune, name: str) -> Org:
    tenant = await attune.tenant(name)
    org = Org(tenant=tenant)
    http, h = tenant.http, tenant.admin
    definitions = expect(await http.get("/v1/instruments", headers=h), 200)
    srs_definition = next(d for d in definitions if d["code"] == "srs")
    code = f"own-{uuid.uuid4().hex[:8]}"
    expect(
        await http.post("/v1/instruments", json={**srs_definition, "code": code}, headers=h), 201
    )
    hook = expect(
        await http.post("/v1/webhooks", json={"url": f"https://ehr.example.org/{name}"}, headers=h),
        201,
    )
    kick_off = await http.get("/fhir/$export", headers=h)
    smart_client = await smart_register(tenant, "clients:read")
    job_id = kick_off.headers["content-location"].rsplit("/", 1)[-1]
    pulled = await http.get("/v1/exports/alerts", headers=h)
    export_id = pulled.headers["attune-export-id"]
    for values, label in ((org.x, "x"), (org.y, "y")):
        staff = f"staff-{label}-{uuid.uuid4().hex[:8]}"
        clinician = await tenant.clinician(f"Dr {label}", external_id=staff)
        external_id = f"MRN-{uuid.uuid4().hex[:8]}"
        client = await tenant.client(external_id=external_id)
        episode = await tenant.episode(client_id=client["id"], clinician_id=clinician["id"])
        first = await submit(tenant, episode["id"], "srs", 1, srs(9, 9, 9, 9))
        await submit(tenant, episode["id"], "srs", 2, srs(5, 5, 5, 5))
        alerts = expect(await http.get(f"/v1/alerts?episode_id={episode['id']}", headers=h), 200)[
            "items"
        ]
        assert alerts, "the weak alliance rating raises an alert"
        invitation = expect(
            await http.post(
                f"/v1/episodes/{episode['id']}/invitations",
                json={"instruments": ["srs"], "session_number": 3},
                headers=h,
            ),
            201,
        )
        spare = expect(
            await http.post(
                "/v1/api-keys", json={"name": "spare", "scopes": ["clients:read"]}, headers=h
            ),
            201,
        )
        values.update(
            org_id=tenant.org_id,
            clinician_id=clinician["id"],
            clinician_external_id=staff,
            client_id=client["id"],
            external_id=external_id,
            episode_id=episode["id"],
            submission_id=first["id"],
            alert_id=alerts[0]["id"],
            key_id=spare["id"],
            invitation_id=invitation["id"],
            code=code,
            rule_id=alerts[0]["type"],
            webhook_id=hook["id"],
            response_id=first["id"],
            observation_id=f"{first['id']}-total",
            issue_id=alerts[0]["id"],
            job_id=job_id,
            export_id=export_id,
            fit_id=str(uuid.uuid4()),
            file_name="Observation.ndjson",
            smart_client_id=smart_client.client_id,
        )
    org.bound_key = await tenant.key(*SCOPES, clinician_id=org.x["clinician_id"])
    keys = expect(await http.get("/v1/api-keys", headers=h), 200)["items"]
    submissions = [
        s["id"]
        for values in (org.x, org.y)
        for s in expect(
            await http.get(f"/v1/episodes/{values['episode_id']}/submissions", headers=h), 200
        )["items"]
    ]
    org.ids = {
        *(
            v
            for values in (org.x, org.y)
            for k, v in values.items()
            if k not in ("rule_id", "file_name")
        ),
        *(k["id"] for k in keys),
        *submissions,
    }
    return org


def fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], template)


async def snapshot(org: Org) -> dict[str, Any]:
    """Everything A can read about itself except its audit trail (its own reads add to that)."""
    http, h = org.tenant.http, org.tenant.admin
    paths = [
        "/v1/clients", "/v1/clinicians", "/v1/episodes", "/v1/alerts", "/v1/alert-rules",
        "/v1/instruments", "/v1/api-keys", "/v1/webhooks",
        fill("/v1/webhooks/{webhook_id}/deliveries", org.x),
    ]  # fmt: skip
    for values in (org.x, org.y):
        paths += [
            fill(template, values)
            for template in (
                "/v1/clients/{client_id}",
                "/v1/clinicians/{clinician_id}",
                "/v1/episodes/{episode_id}",
                "/v1/episodes/{episode_id}/submissions",
                "/v1/episodes/{episode_id}/trajectory?instrument=srs",
                "/v1/submissions/{submission_id}",
                "/v1/alerts/{alert_id}",
                "/v1/instruments/{code}",
            )
        ]
    return {path: expect(await http.get(path, headers=h), 200) for path in paths}


async def foreign_key_events(victim: Org, attacker: Org) -> list[dict[str, Any]]:
    """Audit events in the victim's organization written under one of the attacker's keys."""
    http = victim.tenant.http
    attacker_keys = {
        k["id"]
        for k in expect(await http.get("/v1/api-keys", headers=attacker.tenant.admin), 200)["items"]
    }
    events = expect(await http.get("/v1/audit-events?limit=500", headers=victim.tenant.admin), 200)[
        "items"
    ]
    return [e for e in events if e["key_id"] in attacker_keys]


def expect_export(response: httpx.Response) -> str:
    assert response.status_code == 200, (response.request.url, response.text)
    return response.text


def assert_refused(response: httpx.Response, *fields: str) -> None:
    """404, or 422 naming one of `fields` of the body."""
    assert response.status_code in (404, 422), (response.request.url, response.text)
    if response.status_code == 422:
        named = {e["field"] for e in response.json().get("errors", [])}
        assert named & {f"body.{f}" for f in fields}, (response.request.url, response.text)


def body_probes(
    victim: dict[str, str], own: dict[str, str]
) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, body, field naming the victim's id) for every id-bearing body."""
    return [
        (
            "POST",
            "/v1/submissions",
            {
                "episode_id": victim["episode_id"],
                "instrument": "srs",
                "session_number": 3,
                "answers": srs(5, 5, 5, 5),
            },
            "episode_id",
        ),
        (
            "POST",
            "/v1/episodes",
            {"client_id": victim["client_id"], "clinician_id": own["clinician_id"]},
            "client_id",
        ),
        (
            "POST",
            "/fhir/QuestionnaireResponse",
            questionnaire_response(victim["episode_id"], "srs", 3, srs(5, 5, 5, 5)),
            "episode_id",
        ),
        (
            "POST",
            "/v1/episodes",
            {"client_id": own["client_id"], "clinician_id": victim["clinician_id"]},
            "clinician_id",
        ),
        (
            "POST",
            "/v1/api-keys",
            {"name": "probe", "scopes": ["clients:read"], "clinician_id": victim["clinician_id"]},
            "clinician_id",
        ),
        (
            "POST",
            "/v1/smart-clients",
            {
                "name": "probe",
                "jwks": {"keys": [new_key("ES384").as_dict(private=False)]},
                "scopes": ["clients:read"],
                "clinician_id": victim["clinician_id"],
            },
            "clinician_id",
        ),
        (
            "PATCH",
            fill("/v1/episodes/{episode_id}", own),
            {"clinician_id": victim["clinician_id"]},
            "clinician_id",
        ),
    ]


async def test_tenant_isolation_matrix(attune: Attune) -> None:
    a, b, c = [await build_org(attune, name) for name in ("Clinic A", "Clinic B", "Clinic C")]
    http = attune.http
    b_admin = b.tenant.admin
    before_a, before_c = await snapshot(a), await snapshot(c)
    foreign = a.ids | c.ids
    assert foreign.isdisjoint(b.ids)

    # Lists (and FHIR searchset Bundles) of B never hold A's or C's ids; filters naming A's ids
    # come back empty.
    results = {"list": "items", "fhir-search": "entry"}
    for (_method, template), probe in MATRIX.items():
        if probe.kind not in results:
            continue
        response = expect(await http.get(template, headers=b_admin), 200)
        if template == "/v1/audit-events":
            # B's trail records the filters B itself sent (A's ids, in the probes below): what
            # B asked for, not what it was given.
            for event in response["items"]:
                (event["details"] or {}).pop("filters", None)
        leaked = {i for i in foreign if i in str(response)}
        assert not leaked, (template, leaked)
        for query in probe.filters:
            for values in (a.x, a.y, c.x):
                url = f"{template}?{fill(query, values)}"
                found = expect(await http.get(url, headers=b_admin), 200)[results[probe.kind]]
                assert found == [], url
    for values in (b.x, b.y):  # episode-scoped lists of B's own episodes
        for template in (
            "/v1/episodes/{episode_id}/submissions",
            "/v1/episodes/{episode_id}/trajectory?instrument=srs",
        ):
            response = expect(await http.get(fill(template, values), headers=b_admin), 200)
            assert not {i for i in foreign if i in str(response)}, template

    # A's key bound to X: Y's caseload never shows up in its lists.
    bound = bearer(a.bound_key)
    y_caseload = {a.y[k] for k in ("client_id", "episode_id", "submission_id", "alert_id")}
    for (_method, template), probe in MATRIX.items():
        if probe.kind in ("list", "fhir-search") and probe.caseload:
            response = expect(await http.get(template, headers=bound), 200)
            found = response["items"] if probe.kind == "list" else response["entry"]
            assert found, template  # X's own caseload is there
            assert not {i for i in y_caseload if i in str(response)}, template
    for filtered in (
        f"/v1/episodes?clinician_id={a.y['clinician_id']}",
        f"/v1/episodes?client_id={a.y['client_id']}",
        f"/v1/alerts?episode_id={a.y['episode_id']}",
    ):
        assert expect(await http.get(filtered, headers=bound), 200)["items"] == [], filtered
    expect(await http.get(f"/v1/episodes/{a.x['episode_id']}/submissions", headers=bound), 200)

    # Exports: B's never hold A's or C's rows; those of X's key never hold Y's caseload.
    for (_method, template), probe in MATRIX.items():
        if probe.kind != "export":
            continue
        for dataset in ("submissions", "scores", "alerts"):
            path = template.replace("{dataset}", dataset) + "?identified=true&format=csv"
            content = expect_export(await http.get(path, headers=b_admin))
            assert b.x["episode_id"] in content, path  # B's own rows are there
            assert not {i for i in foreign if i in content}, path
            content = expect_export(await http.get(path, headers=bound))
            assert a.x["episode_id"] in content, path
            assert not {i for i in y_caseload | {a.y["episode_id"]} if i in content}, path
            code = path + f"&instrument={a.x['code']}"
            assert expect_export(await http.get(code, headers=b_admin)).count("\r\n") == 1

    # Objects named in the path: B with A's ids, and X's key with Y's ids → 404.
    for (method, template), probe in MATRIX.items():
        if probe.kind != "object":
            continue
        cases = [(b_admin, a.x), (b_admin, a.y), (b_admin, c.x)]
        if probe.caseload:
            cases.append((bound, a.y))
        for headers, values in cases:
            path = fill(template, values) + probe.query
            response = await http.request(method, path, json=probe.body, headers=headers)
            assert response.status_code == 404, (method, path, response.text)

    # Ids inside the body: B with A's ids, X's key with Y's ids → 404 or 422 naming the field.
    for victim, headers, own in ((a.x, b_admin, b.x), (a.y, bound, a.x)):
        for method, path, body, name in body_probes(victim, own):
            if headers is bound and path in ("/v1/api-keys", "/v1/smart-clients"):
                continue  # admin scope; the bound key gets 403 before any lookup
            response = await http.request(method, path, json=body, headers=headers)
            if headers is bound and "/v1/episodes" in path and name == "clinician_id":
                # Assigning an episode to a colleague is refused outright (test_tenancy).
                assert response.status_code == 403, response.text
                continue
            assert_refused(response, name)
    own_episode = expect(await http.get(f"/v1/episodes/{b.x['episode_id']}", headers=b_admin), 200)
    assert own_episode["clinician_id"] == b.x["clinician_id"]

    # B creates or sets its own things, reusing A's external ids, codes and rule ids.
    for (method, template), probe in MATRIX.items():
        if probe.kind != "own":
            continue
        payload = probe.body
        if template == "/v1/instruments":
            payload = {**before_a[fill("/v1/instruments/{code}", a.x)], "code": a.x["code"]}
        if template == "/v1/clinicians":
            payload = {"display_name": "Dr B", "external_id": a.x["clinician_external_id"]}
        response = await http.request(method, fill(template, a.x), json=payload, headers=b_admin)
        assert response.status_code in (200, 201), (method, template, response.text)
        created = response.json()
        assert not {i for i in foreign if i in str(created.get("id", ""))}, template

    # B's client, holding an invitation of B's, names A's ids: refused; reads show only B's.
    invitation = expect(
        await http.post(
            fill("/v1/episodes/{episode_id}/invitations", b.x),
            json={"instruments": ["srs"], "session_number": 7},
            headers=b_admin,
        ),
        201,
    )
    token = bearer(invitation["token"])
    for (method, template), probe in MATRIX.items():
        if probe.kind != "token":
            continue
        if method == "GET":
            response = expect(await http.get(template, headers=token), 200)
            assert not {i for i in foreign if i in str(response)}, template
            continue
        for field_name, value in (
            ("episode_id", a.x["episode_id"]),
            ("episode_id", c.x["episode_id"]),
        ):
            body = probe.body or {"instrument": "srs", "answers": srs(5, 5, 5, 5)}
            response = await http.post(template, json={**body, field_name: value}, headers=token)
            assert_refused(response, field_name)
        if probe.body is not None:  # a concern names no ids: it lands on B's own episode
            expect(await http.post(template, json=probe.body, headers=token), 201)

    # Nothing of A or C changed, and A's audit trail holds nothing written under B's keys.
    assert await snapshot(a) == before_a
    assert await snapshot(c) == before_c
    assert await foreign_key_events(a, b) == []
    assert await foreign_key_events(c, b) == []
    # B's objects did not leak into A's lists through what B created either.
    assert not {i for i in b.ids if i in str(await snapshot(a))}


async def test_bound_key_cannot_open_an_episode_for_a_colleagues_client(attune: Attune) -> None:
    tenant = await attune.tenant()
    me, colleague = await tenant.clinician("Dr Me"), await tenant.clinician("Dr Colleague")
    theirs = await tenant.episode(clinician_id=colleague["id"])
    key = bearer(await tenant.key("clients:read", "clients:write", clinician_id=me["id"]))
    assert (
        await tenant.http.get(f"/v1/clients/{theirs['client_id']}", headers=key)
    ).status_code == 404
    response = await tenant.http.post(
        "/v1/episodes",
        json={"client_id": theirs["client_id"], "clinician_id": me["id"]},
        headers=key,
    )
    assert_refused(response, "client_id")
    episodes = expect(await tenant.http.get("/v1/episodes", headers=tenant.admin), 200)["items"]
    assert [e["id"] for e in episodes] == [theirs["id"]]


async def test_bound_key_opens_the_first_episode_of_a_client_it_registered(
    attune: Attune,
) -> None:
    """The other side of the rule above: a client nobody treats yet is within reach."""
    tenant = await attune.tenant()
    me = await tenant.clinician("Dr Me")
    key = bearer(await tenant.key("clients:read", "clients:write", clinician_id=me["id"]))
    client = expect(
        await tenant.http.post("/v1/clients", json={"external_id": "NEW-1"}, headers=key), 201
    )
    expect(
        await tenant.http.post(
            "/v1/episodes", json={"client_id": client["id"], "clinician_id": me["id"]}, headers=key
        ),
        201,
    )
    expect(await tenant.http.get(f"/v1/clients/{client['id']}", headers=key), 200)


# Inside one organisation (issue 14, DESIGN.md §10.8): each scope alone, and a key bound to the
# other clinician, read nothing beyond their scope and binding — through reads, FHIR searches,
# FHIR identifiers, Idempotency-Key replays, the client upsert or key minting.

ALONE = (*SCOPES, "webhooks:write", "concerns:read")
# Reads of the routes this dimension covers, and the one scope each needs.
SCOPED_READS: dict[str, str] = {
    "/fhir/QuestionnaireResponse/{response_id}": "submissions:read",
    "/fhir/Observation/{observation_id}": "submissions:read",
    "/fhir/Observation?subject=Patient/{client_id}": "submissions:read",
    "/fhir/Observation?subject:Patient={client_id}": "submissions:read",
    "/fhir/DetectedIssue/{issue_id}": "alerts:read",
    "/fhir/DetectedIssue?patient={client_id}&status=preliminary,final": "alerts:read",
    "/v1/submissions/{submission_id}": "submissions:read",
    "/v1/clients/{client_id}": "clients:read",
    "/v1/alerts/{alert_id}": "alerts:read",
    "/v1/api-keys": "admin",
}


def _content_of(values: dict[str, str]) -> set[str]:
    """What must not reach a caller who may not read this caseload."""
    return {values[k] for k in ("client_id", "episode_id", "submission_id", "alert_id")}


async def test_intra_organisation_matrix(attune: Attune) -> None:
    org = await build_org(attune, "Clinic A")
    tenant, http, admin = org.tenant, attune.http, org.tenant.admin
    x_content = _content_of(org.x)
    # X's clinic posts through FHIR with an identifier, and through v1 with an Idempotency-Key.
    visit = questionnaire_response(org.x["episode_id"], "srs", 5, srs(7.3, 7.3, 7.3, 7.3))
    visit["identifier"] = {"system": "urn:ehr:visits", "value": "visit-x"}
    fhir_json = {"Content-Type": "application/fhir+json"}
    first = await http.post(
        "/fhir/QuestionnaireResponse", json=visit, headers={**admin, **fhir_json}
    )
    assert first.status_code == 201, first.text
    retried = {"episode_id": org.x["episode_id"], "instrument": "srs", "session_number": 6,
               "answers": srs(6.1, 6.1, 6.1, 6.1)}  # fmt: skip
    shared = {"Idempotency-Key": "ehr-visit-6"}
    expect(await http.post("/v1/submissions", json=retried, headers={**admin, **shared}), 201)
    secrets = {"7.3", "6.1", first.json()["id"]}

    alone = {scope: bearer(await tenant.key(scope)) for scope in ALONE}
    other = bearer(await tenant.key(*SCOPES, "webhooks:write", clinician_id=org.y["clinician_id"]))

    # Reads: only with their scope; a key bound to Y never reads X's caseload.
    for template, needed in SCOPED_READS.items():
        url = fill(template, org.x)
        # Ids the caller named itself may come back (a 404's detail, a self link); no others.
        unnamed = {i for i in x_content if i not in url}
        for scope, headers in alone.items():
            response = await http.get(url, headers=headers)
            if scope == needed:
                assert response.status_code == 200, (scope, template, response.text)
            else:
                assert response.status_code == 403, (scope, template, response.text)
                assert not {i for i in unnamed if i in response.text}, (scope, template)
        response = await http.get(url, headers=other)
        assert response.status_code in (403, 404) or "entry" in response.json(), template
        if response.status_code == 200:
            assert response.json().get("entry", []) == [], template
        assert not {i for i in unnamed if i in response.text}, template
        assert (await http.get(fill(template, org.y), headers=other)).status_code in (200, 403)

    # Writes that could answer with someone else's content.
    for scope, headers in [*alone.items(), ("bound to Y", other)]:
        replay = await http.post("/v1/submissions", json=retried, headers={**headers, **shared})
        assert "idempotent-replayed" not in replay.headers, scope
        assert replay.status_code in (403, 404, 409), (scope, replay.text)
        identified = await http.post(
            "/fhir/QuestionnaireResponse", json=visit, headers={**headers, **fhir_json}
        )
        assert identified.status_code in (403, 409), (scope, identified.text)
        for response in (replay, identified):
            assert not {s for s in secrets if s in response.text}, (scope, response.text)
        minted = await http.post(
            "/v1/api-keys",
            json={"name": "wider", "scopes": ["admin"]},
            headers=headers,
        )
        assert minted.status_code == 403, (scope, minted.text)

    # Exports and webhooks, each scope alone: only exports:read streams, and only de-identified
    # rows (identified ones need exports:identified too); only webhooks:write reads the endpoints
    # (and their delivery log); a key bound to Y manages no webhooks at all.
    pseudonymous_export = "/v1/exports/submissions?format=ndjson"
    identified_export = pseudonymous_export + "&identified=true"
    for scope, headers in alone.items():
        streamed = await http.get(pseudonymous_export, headers=headers)
        assert streamed.status_code == (200 if scope == "exports:read" else 403), scope
        assert (await http.get(identified_export, headers=headers)).status_code == 403, scope
        hooks = await http.get("/v1/webhooks", headers=headers)
        assert hooks.status_code == (200 if scope == "webhooks:write" else 403), scope
        assert not {i for i in x_content if i in hooks.text}, scope
    assert (await http.get("/v1/webhooks", headers=other)).status_code == 403

    # The upsert tells a clients:write-only key what it wrote, never the client's other fields.
    written = expect(
        await http.put(
            fill("/v1/clients/by-external-id/{external_id}", org.x),
            json={"birth_year": 1990},
            headers=alone["clients:write"],
        ),
        200,
    )
    assert set(written) == {"id", "external_id", "birth_year", "updated_at"}


# Every route, inside one organisation (issue 14): what each route needs, checked for each
# scope alone and for a key bound to the other clinician, against clinician X's objects.
# "any": any key of the organisation (definitions, not health data); "token": invitation
# tokens only (API keys get 401); "system": the system key only; "public": no key, no tenant
# data. `test_every_route_says_what_it_needs` keeps this table in step with MATRIX (and so with
# the app's routes).
NEEDS: dict[tuple[str, str], str] = {
    ("GET", "/v1/submissions/{submission_id}"): "submissions:read",
    ("POST", "/v1/submissions/{submission_id}/void"): "submissions:write",
    ("GET", "/v1/episodes/{episode_id}/submissions"): "submissions:read",
    ("GET", "/v1/episodes/{episode_id}/trajectory"): "submissions:read",
    ("DELETE", "/v1/api-keys/{key_id}"): "admin",
    ("GET", "/v1/clinicians/{clinician_id}"): "clients:read",
    ("GET", "/v1/clients/{client_id}"): "clients:read",
    ("GET", "/v1/episodes/{episode_id}"): "clients:read",
    ("PATCH", "/v1/episodes/{episode_id}"): "clients:write",
    ("GET", "/v1/alerts/{alert_id}"): "alerts:read",
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): "alerts:write",
    ("POST", "/v1/alerts/{alert_id}/resolve"): "alerts:write",
    ("GET", "/v1/instruments/{code}"): "any",
    ("POST", "/v1/episodes/{episode_id}/invitations"): "submissions:write",
    ("GET", "/v1/episodes/{episode_id}/invitations"): "submissions:read",
    ("DELETE", "/v1/invitations/{invitation_id}"): "submissions:write",
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): "webhooks:write",
    ("DELETE", "/v1/webhooks/{webhook_id}"): "webhooks:write",
    ("GET", "/fhir/Questionnaire/{code}"): "any",
    ("GET", "/fhir/QuestionnaireResponse/{response_id}"): "submissions:read",
    ("GET", "/fhir/Observation/{observation_id}"): "submissions:read",
    ("GET", "/fhir/DetectedIssue/{issue_id}"): "alerts:read",
    ("GET", "/fhir/$export-status/{job_id}"): "exports:identified",
    ("DELETE", "/fhir/$export-status/{job_id}"): "exports:identified",
    ("GET", "/fhir/$export-files/{job_id}/{file_name}"): "exports:identified",
    ("GET", "/v1/clients"): "clients:read",
    ("GET", "/v1/clinicians"): "clients:read",
    ("GET", "/v1/episodes"): "clients:read",
    ("GET", "/v1/api-keys"): "admin",
    ("GET", "/v1/alerts"): "alerts:read",
    ("GET", "/v1/audit-events"): "admin",
    ("GET", "/v1/alert-rules"): "alerts:read",
    ("GET", "/v1/instruments"): "any",
    ("GET", "/v1/webhooks"): "webhooks:write",
    ("GET", "/fhir/Questionnaire"): "any",
    ("GET", "/fhir/Observation"): "submissions:read",
    ("GET", "/fhir/DetectedIssue"): "alerts:read",
    ("POST", "/v1/submissions"): "submissions:write",
    ("POST", "/v1/episodes"): "clients:write",
    ("POST", "/v1/api-keys"): "admin",
    ("POST", "/fhir/QuestionnaireResponse"): "submissions:write",
    ("POST", "/v1/clinicians"): "clients:write",
    ("POST", "/v1/clients"): "clients:write",
    ("PUT", "/v1/clients/by-external-id/{external_id}"): "clients:write",
    ("PUT", "/v1/alert-rules/{rule_id}"): "admin",
    ("POST", "/v1/instruments"): "admin",
    ("POST", "/v1/webhooks"): "webhooks:write",
    ("GET", "/v1/invitation"): "token",
    ("POST", "/v1/invitation/submissions"): "token",
    ("POST", "/v1/invitation/concerns"): "token",
    ("GET", "/v1/exports/{dataset}"): "exports:read",
    ("POST", "/v1/organizations"): "system",
    ("POST", "/v1/organizations/{org_id}/api-keys"): "system",
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/docs/oauth2-redirect"): "public",
    ("GET", "/redoc"): "public",
    ("GET", "/fhir/metadata"): "public",
    ("GET", "/fhir/$export"): "exports:identified",
    ("GET", "/r"): "public",
    ("GET", "/r/"): "public",
    ("GET", "/r/rating.js"): "public",
    ("GET", "/r/rating.css"): "public",
    ("GET", "/r/icon.svg"): "public",
    ("GET", "/v1/episodes/{episode_id}/trajectory/chart"): "submissions:read",
    ("GET", "/v1/exports/runs/{export_id}"): "exports:read",
    ("GET", "/v1/exports/{dataset}/datapackage.json"): "exports:read",
    ("GET", "/v1/instruments/{code}/etr"): "submissions:read",
    ("PUT", "/v1/instruments/{code}/etr"): "admin",
    ("POST", "/v1/instruments/{code}/etr/fit"): "admin",
    ("GET", "/v1/instruments/{code}/etr/fits/{fit_id}"): "admin",
    ("GET", "/fhir/Patient/{client_id}"): "clients:read",
    ("GET", "/fhir/Practitioner/{clinician_id}"): "clients:read",
    ("GET", "/fhir/EpisodeOfCare/{episode_id}"): "clients:read",
    ("GET", "/fhir/Patient"): "clients:read",
    ("GET", "/fhir/Practitioner"): "clients:read",
    ("GET", "/fhir/EpisodeOfCare"): "clients:read",
    ("GET", "/fhir/QuestionnaireResponse"): "submissions:read",
    ("DELETE", "/v1/smart-clients/{smart_client_id}"): "admin",
    ("GET", "/v1/smart-clients"): "admin",
    ("POST", "/v1/smart-clients"): "admin",
    ("GET", "/.well-known/smart-configuration"): "public",
    ("GET", "/fhir/.well-known/smart-configuration"): "public",
    ("POST", "/auth/token"): "public",
}


def test_every_route_says_what_it_needs() -> None:
    assert NEEDS.keys() == MATRIX.keys()
    known = {*ALONE, "admin", "any", "token", "system", "public"}
    assert set(NEEDS.values()) <= known


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    body: dict[str, Any] | None
    needs: frozenset[str]  # every scope the call needs (empty: any key of the organisation)
    names_in_body: bool = False  # X's ids are in the body (refused: 403, 404 or 422)


def calls_of(route: tuple[str, str], x: dict[str, str], y: dict[str, str]) -> list[Call]:
    """The requests that exercise one route with X's objects (its ids in the path, the query or
    the body; Y's own objects where the route also needs one)."""
    method, template = route
    probe, needs = MATRIX[route], NEEDS[route]
    scopes = frozenset() if needs == "any" else frozenset({needs})
    values = {**x, "dataset": "submissions"}
    url = fill(template, values) + probe.query
    body = probe.body
    if probe.kind == "own" and template == "/v1/instruments":
        body = None  # admin only; the scope check comes first
    calls = [Call(method, url, body, scopes)]
    if probe.kind in ("list", "fhir-search"):
        calls += [Call(method, f"{url}?{fill(q, values)}", None, scopes) for q in probe.filters]
    if probe.kind == "export":
        identified = f"{url}?format=ndjson&identified=true"
        calls = [
            Call(method, f"{url}?format=ndjson", None, scopes),
            Call(method, identified, None, scopes | {"exports:identified"}),
        ]
    if probe.kind == "token":
        body = probe.body or {"instrument": "srs", "answers": srs(5, 5, 5, 5)}
        calls = [Call(method, url, None if method == "GET" else body, scopes)]
    for call_method, path, call_body, _ in body_probes(x, y):
        if call_method == method and (path == template or path == fill(template, y)):
            calls.append(Call(method, path, call_body, scopes, names_in_body=True))
    if probe.kind == "body":
        calls = calls[1:]  # only bodies that name X's objects
    return calls


@dataclass
class IntraWorld:
    org: Org
    alone: dict[str, dict[str, str]]  # each scope alone
    other: dict[str, str]  # every caseload scope, bound to clinician Y
    x_content: set[str]  # ids of X's caseload: what neither may read


_WORLD: list[IntraWorld] = []  # seeded once per module: the database outlives each test's app


@pytest.fixture
async def intra(attune: Attune) -> IntraWorld:
    if not _WORLD:
        org = await build_org(attune, "Clinic intra")
        tenant = org.tenant
        alone = {scope: bearer(await tenant.key(scope)) for scope in ALONE}
        other = bearer(
            await tenant.key(*SCOPES, "webhooks:write", clinician_id=org.y["clinician_id"])
        )
        content = {
            org.x[k]
            for k in ("client_id", "episode_id", "submission_id", "alert_id", "invitation_id")
        }
        _WORLD.append(IntraWorld(org, alone, other, content))
    return _WORLD[0]


def _unnamed(content: set[str], call: Call) -> set[str]:
    """Ids the caller named itself may come back (a 404's detail, a self link); no others."""
    named = call.url + str(call.body)
    return {i for i in content if i not in named}


@pytest.mark.parametrize("route", sorted(MATRIX), ids=" ".join)
async def test_intra_organisation_every_route(
    route: tuple[str, str], intra: IntraWorld, attune: Attune
) -> None:
    needs, probe = NEEDS[route], MATRIX[route]
    http = attune.http
    for call in calls_of(route, intra.org.x, intra.org.y):
        unnamed = _unnamed(intra.x_content, call)

        # Each scope alone: the route's own scope passes its check; every other is refused
        # before anything is read (API keys get 401 on the invitation routes).
        if needs != "public":
            for scope, headers in intra.alone.items():
                if call.needs <= {scope}:
                    if call.method == "GET" and probe.kind != "exempt":
                        response = await http.get(call.url, headers=headers)
                        assert response.status_code not in (401, 403), (scope, call, response.text)
                    continue  # a write the scope allows: X's clinic may make it
                response = await http.request(
                    call.method, call.url, json=call.body, headers=headers
                )
                refused = 401 if needs == "token" else 403
                assert response.status_code == refused, (scope, call, response.text)
                assert not {i for i in unnamed if i in response.text}, (scope, call)

        # A key bound to clinician Y, with every caseload scope: nothing of X's caseload.
        response = await http.request(call.method, call.url, json=call.body, headers=intra.other)
        assert response.status_code < 500, (call, response.text)
        assert not {i for i in unnamed if i in response.text}, (call, response.text)
        if needs == "token":
            assert response.status_code == 401, (call, response.text)
        elif needs in ("admin", "system") or route[1].startswith("/v1/webhooks"):
            assert response.status_code == 403, (call, response.text)
        elif call.names_in_body and probe.caseload:
            assert response.status_code in (403, 404, 422), (call, response.text)
        elif probe.caseload and probe.kind == "object":
            assert response.status_code == 404, (call, response.text)
        elif probe.kind in ("list", "fhir-search", "export"):
            assert response.status_code == 200, (call, response.text)
