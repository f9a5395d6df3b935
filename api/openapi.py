"""The OpenAPI document as integrators need it: the API-key scheme, and every problem response a
route can give (401/403 on guarded routes, 404 on routes with ids, 413/422 where input is read,
503 when the database is down), each as `application/problem+json` with the Problem schema.

And what client generators need (issue 17): operationIds from the route names, every enum and
every object branch of a union a named schema, plain fields whose values are always of a known
type documented as that type, and an example of every schema (api/openapi_examples.py). All of it
is documentation: request validation and responses are the models' own. The places named here
are checked by tests/api/test_openapi.py; a place a model change has removed is skipped, so the
document is still served while that test says what to update."""

from typing import Any, get_args

from fastapi import FastAPI
from fastapi.routing import APIRoute

from api import openapi_examples
from api.problems import PROBLEM_MEDIA_TYPE, Problem
from api.routes.charts import ChartFormat
from models.alerts import AlertChange, AlertResolution, AlertSeverity, AlertStatus, PersonResolution
from models.episodes import EpisodeStatus
from models.expected import ExpectedFitStatus, ExpectedSource
from models.invitations import ConcernCategory
from models.people import Population
from models.smart import SmartScope
from models.submissions import SubmissionStatus
from models.tenancy import Scope
from models.types import Respondent
from models.webhooks import DeliveryStatus, EventType
from services.alerts.settings import RuleId
from services.alerts.settings import Source as SettingSource
from services.exports import Dataset, Format
from services.instruments.schema import Direction, Kind
from services.kernel.replica import Source as ReadSource
from services.trajectory.reliable_change import Classification

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_DESCRIPTIONS = {
    "401": "Missing, invalid or revoked API key",
    "403": "The key lacks the scope this route needs",
    "404": "Not found, or another organization's object",
    "409": "Conflict",
    "413": "Body larger than allowed",
    "422": "Invalid input; `errors` names each bad field",
    "503": "Database unavailable; retry after `Retry-After` seconds",
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _values(literal: Any) -> tuple[str, ...]:
    return tuple(get_args(literal))


# Every enumeration the document holds, by name: pydantic writes a `Literal` inline, so a
# generated client names it after the field or the operation (`ListAlertsV1AlertsGetStatusType0`,
# `Status2`). Each inline enum is replaced by a reference to the named schema with the same
# values; tests/api/test_openapi.py fails when one is left without a name here.
NAMED_ENUMS: dict[str, tuple[tuple[str, ...], str]] = {
    "AlertType": (
        _values(RuleId),
        "An alert's type: the id of the rule that raised it (DESIGN.md §6)",
    ),
    "AlertStatus": (_values(AlertStatus), "Where an alert is in its lifecycle"),
    "AlertSeverity": (_values(AlertSeverity), "How urgent an alert is"),
    "AlertResolution": (
        _values(AlertResolution),
        "How an alert was resolved: by a person (repaired, discussed, referred, dismissed, "
        "other) or by the engine (condition_cleared, repaired, retracted)",
    ),
    "PersonResolution": (_values(PersonResolution), "How a person resolves an alert"),
    "AlertChange": (_values(AlertChange), "What a submission did to an alert"),
    "Respondent": (_values(Respondent), "Who gave the ratings"),
    "SubmissionStatus": (_values(SubmissionStatus), "A voided submission no longer counts"),
    "EpisodeStatus": (_values(EpisodeStatus), "Whether an episode of care is still going on"),
    "Population": (_values(Population), "The norms a client's scores are judged by"),
    "Scope": (_values(Scope), "What an API key may do (DESIGN.md §4)"),
    "SmartScope": (
        _values(SmartScope),
        "The Attune scopes a SMART Backend Services client may be granted",
    ),
    "WebhookEventType": (_values(EventType), "An event a webhook endpoint may receive"),
    "WebhookDeliveryStatus": (_values(DeliveryStatus), "Where a webhook delivery stands"),
    "ConcernCategory": (_values(ConcernCategory), "What a client's concern is about"),
    "InvitationStatus": (
        ("active", "used", "expired", "revoked"),
        "used: every instrument the invitation asks for has been sent",
    ),
    "ExportDataset": (_values(Dataset), "The rows an export holds"),
    "ExportFormat": (_values(Format), "The file format of an export"),
    "ExportSource": (_values(ReadSource), "The database an export read"),
    "ExportRunStatus": (
        ("running", "complete", "incomplete"),
        "complete: every row was sent; incomplete: the export was broken off",
    ),
    "ChartFormat": (_values(ChartFormat), "svg, png, or the Vega-Lite spec"),
    "InstrumentKind": (_values(Kind), "What an instrument measures"),
    "ScoreDirection": (_values(Direction), "Whether a higher total is better or worse"),
    "ScoringMethod": (("sum", "mean", "none"), "How an instrument's total is computed"),
    "ReliableChange": (
        ("improved", "deteriorated", "none"),
        "Change since the first session beyond the instrument's reliable-change index",
    ),
    "ChangeClassification": (
        _values(Classification),
        "Jacobson & Truax classification of the change over an episode",
    ),
    "ExpectedResponseSource": (
        _values(ExpectedSource),
        "Whether an expected-response model was uploaded or fitted",
    ),
    "ExpectedResponseFitStatus": (_values(ExpectedFitStatus), "Where a fit stands"),
    "SettingSource": (
        _values(SettingSource),
        "Whether a rule's setting is the default or the organisation's",
    ),
}
_ENUM_BY_VALUES = {frozenset(values): name for name, (values, _) in NAMED_ENUMS.items()}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(name: str) -> dict[str, Any]:
    return {"anyOf": [_ref(name), {"type": "null"}]}


# Fields stored as plain strings or dicts whose values are always of a known type: documented as
# such (the types the code builds them from; nothing else is ever written there).
TYPED_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    **{
        alert: {
            "type": _ref("AlertType"),
            "resolution": _nullable("AlertResolution"),
            "respondent": _nullable("Respondent"),
        }
        for alert in ("AlertPublic", "AlertInSubmission")
    },
    "AlertRule": {"id": _ref("AlertType")},
    "AlertRuleSettingPublic": {"rule_id": _ref("AlertType")},
    "RecomputedRuleSetting": {"rule_id": _ref("AlertType")},
    "ConcernPublic": {"category": _nullable("ConcernCategory")},
    # services/care/invitations.py: each the instrument's definition, as GET /v1/instruments/{code}.
    "InvitationView": {"instruments": {"type": "array", "items": _ref("InstrumentDefinition")}},
    "ApiKeyPublic": {"scopes": {"type": "array", "items": _ref("Scope")}},
    "ApiKeyCreated": {"scopes": {"type": "array", "items": _ref("Scope")}},
    "SmartClientPublic": {"scopes": {"type": "array", "items": _ref("SmartScope")}},
    "WebhookPublic": {"event_types": {"type": "array", "items": _ref("WebhookEventType")}},
    "WebhookCreated": {"event_types": {"type": "array", "items": _ref("WebhookEventType")}},
    "ExportRun": {"dataset": _ref("ExportDataset"), "format": _ref("ExportFormat")},
}
# Beside a reference, what still says something about the field (JSON Schema 2020-12 allows
# keywords next to $ref; OpenAPI 3.1 uses it).
_KEPT_BESIDE_REF = ("default", "description", "examples")


def _name_enums(node: Any) -> Any:
    """``node`` with every inline string enum replaced by a reference to its named schema."""
    if isinstance(node, list):
        return [_name_enums(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "enum" in node and node.get("type", "string") == "string":
        name = _ENUM_BY_VALUES.get(frozenset(node["enum"]))
        if name is not None:
            return _ref(name) | {k: node[k] for k in _KEPT_BESIDE_REF if k in node}
    return {key: _name_enums(value) for key, value in node.items()}


# Objects that are one branch of a union: a generator names them after their position
# (`InstrumentDefinitionCutoffType2`). Each is moved to a schema of its own, by where it is:
# (schema, path inside it) -> name, in this order (a schema named here may hold a later place).
# One name may stand at several places of the same shape.
_BY_POPULATION = "A cut-off per client population (adult, adolescent, child)"
NAMED_BRANCHES: list[tuple[str, tuple[str | int, ...], str, str]] = [
    (
        "InstrumentDefinition",
        ("properties", "cutoff", "anyOf", 2),
        "CutoffByPopulation",
        _BY_POPULATION,
    ),
    (
        "InstrumentDefinition",
        ("properties", "cutoff", "anyOf", 3),
        "CutoffByRespondent",
        "Cut-offs per respondent (client, clinician, collateral): a number or a population map",
    ),
    (
        "CutoffByRespondent",
        ("additionalProperties", "anyOf", 2),
        "CutoffByPopulation",
        _BY_POPULATION,
    ),
    (
        "InstrumentDefinition",
        ("properties", "reliable_change", "anyOf", 3),
        "ReliableChangeByRespondent",
        "Reliable-change points per respondent: a number, or the norms to compute them from",
    ),
    (
        "Item",
        ("properties", "display", "anyOf", 0),
        "ItemDisplays",
        "The item's wording by BCP 47 language tag",
    ),
    (
        "AuditEventPublic",
        ("properties", "details", "anyOf", 0),
        "AuditDetails",
        "What the action recorded (for reads: `filters`, the query it was given)",
    ),
]


def _name_branches(schemas: dict[str, Any]) -> None:
    for owner, path, name, description in NAMED_BRANCHES:
        *parents, last = path
        node: Any = schemas.get(owner)
        try:
            for step in parents:
                node = node[step]
            branch = node[last]
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(branch, dict) or branch.get("type") != "object":
            continue
        if name not in schemas:
            schemas[name] = {**branch, "title": name, "description": description}
        node[last] = _ref(name)


def _install_enums_and_types(schema: dict[str, Any]) -> None:
    schemas = schema["components"]["schemas"]
    _name_branches(schemas)
    for name, fields in TYPED_FIELDS.items():
        properties = schemas.get(name, {}).get("properties", {})
        for field, typed in fields.items():
            if field not in properties:
                continue
            kept = {k: properties[field][k] for k in _KEPT_BESIDE_REF if k in properties[field]}
            properties[field] = typed | kept
    schema["paths"] = _name_enums(schema["paths"])
    schema["components"]["schemas"] = {name: _name_enums(body) for name, body in schemas.items()}
    for name, (values, description) in NAMED_ENUMS.items():
        schemas = schema["components"]["schemas"]
        schemas[name] = {
            "type": "string",
            "enum": list(values),
            "title": name,
            "description": description,
            "examples": [values[0]],
        }


def _install_examples(schema: dict[str, Any]) -> None:
    schemas = schema["components"]["schemas"]
    for name, example in openapi_examples.SCHEMAS.items():
        if name in schemas:  # tests/api/test_openapi.py checks that every name is one
            schemas[name]["examples"] = [example]
    for operations in schema["paths"].values():
        for operation in operations.values():
            inline = openapi_examples.RESPONSES.get(operation["operationId"], {})
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                for media_type, media in response.get("content", {}).items():
                    if media_type in inline:
                        media["example"] = inline[media_type]


def operation_id(route: APIRoute) -> str:
    """The route's name (its function's, unless named): unique across the app, which
    tests/api/test_openapi.py checks."""
    return route.name


def _problem_statuses(path: str, operation: dict[str, Any]) -> set[str]:
    statuses: set[str] = set()
    if path not in PUBLIC_PATHS:
        statuses |= {"401", "403", "503"}
    if "requestBody" in operation:
        statuses |= {"413", "422"}
    parameters = operation.get("parameters", [])
    if parameters:
        statuses.add("422")
    if any(p.get("in") == "path" for p in parameters):
        statuses.add("404")
    return statuses


def install(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components["schemas"].update(components["schemas"]["Problem"].pop("$defs", {}))
        components["securitySchemes"] = {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An Attune API key: `Authorization: Bearer att_…`",
            }
        }
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                if path not in PUBLIC_PATHS:
                    operation["security"] = [{"apiKey": []}]
                documented = operation.setdefault("responses", {})
                for response in documented.values():
                    for media in response.get("content", {}).values():
                        # FastAPI titles an inline response schema after the function ("Response
                        # Healthz"), which a generated client turns into a class name; without
                        # it, the client names it after the operation (HealthzResponse200).
                        if media.get("schema", {}).get("title", "").startswith("Response "):
                            del media["schema"]["title"]
                for status in _problem_statuses(path, operation) | {
                    s for s in documented if s.startswith(("4", "5"))
                }:
                    entry = documented.setdefault(status, {})
                    entry["description"] = entry.get("description") or _DESCRIPTIONS.get(
                        status, "Problem"
                    )
                    if (
                        status == "422"
                        or "content" not in entry
                        or entry["content"].get("application/json", {}).get("schema")
                        == _PROBLEM_REF
                    ):
                        entry["content"] = {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}
        for unused in ("HTTPValidationError", "ValidationError"):
            components["schemas"].pop(unused, None)
        _install_enums_and_types(schema)
        _install_examples(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
