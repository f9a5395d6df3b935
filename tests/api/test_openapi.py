"""The OpenAPI document states the auth scheme and every problem response, as problem+json; and
what a generated client is made from (issue 17): operationIds from the route names, a summary and
a description on every operation, an example of every schema, named enums, the export's media
types, and `servers` from ATTUNE_PUBLIC_URL."""

import re
from typing import Any, get_args

import httpx
from fastapi import FastAPI
from jsonschema import Draft202012Validator
from pydantic import SecretStr
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api import openapi, openapi_examples
from api.app import create_app
from services.alerts.settings import RuleId
from services.exports import MEDIA_TYPES
from services.kernel.config import Settings

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_every_operation_documents_its_problem_responses(app: FastAPI) -> None:
    schema = app.openapi()
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            errors = {s: r for s, r in responses.items() if s.startswith(("4", "5"))}
            for status, response in errors.items():
                assert response["content"] == PROBLEM, (method, path, status)
            if path in ("/healthz", "/readyz", "/metrics"):
                assert "security" not in operation
                continue
            assert operation["security"] == [{"apiKey": []}]
            assert {"401", "403", "503"} <= set(errors), (method, path)
            if "requestBody" in operation:
                assert {"413", "422"} <= set(errors), (method, path)
            if "{" in path:
                assert "404" in errors, (method, path)


async def test_readiness_reports_an_unreachable_database_as_503_problem() -> None:
    settings = Settings(
        environment="test",
        # Nothing listens on port 1: connections are refused at once.
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/attune",
        secret_key=SecretStr("test-secret-key-0123456789abcdef"),
        db_timeout_seconds=2,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/readyz")
            alive = await client.get("/healthz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.headers["retry-after"]
    assert alive.status_code == 200


# ----- what a generated client is made from (issue 17) --------------------------------------------


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    ]


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return {name for item in node for name in _refs(item)}
    if not isinstance(node, dict):
        return set()
    found = {node["$ref"].rsplit("/", 1)[1]} if "$ref" in node else set()
    return found | {name for value in node.values() for name in _refs(value)}


def _used_schemas(schema: dict[str, Any]) -> set[str]:
    """Every component schema an operation reaches, through references in references."""
    components = schema["components"]["schemas"]
    used: set[str] = set()
    todo = _refs(schema["paths"])
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            todo |= _refs(components[name]) - used
    return used


def test_operation_ids_are_the_route_names_unique_and_snake_case(app: FastAPI) -> None:
    schema = app.openapi()
    ids = [operation["operationId"] for _, _, operation in _operations(schema)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for operation_id in ids:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", operation_id), operation_id
    by_route = {(method, path): o["operationId"] for method, path, o in _operations(schema)}
    assert by_route[("post", "/v1/submissions")] == "create_submission"
    assert by_route[("get", "/v1/alerts")] == "list_alerts"
    assert by_route[("get", "/v1/episodes/{episode_id}/trajectory")] == "get_trajectory"
    assert by_route[("get", "/v1/exports/{dataset}")] == "export_dataset"


def test_every_operation_has_a_summary_and_a_description(app: FastAPI) -> None:
    for method, path, operation in _operations(app.openapi()):
        assert operation.get("summary", "").strip(), (method, path)
        description = operation.get("description", "").strip()
        assert description, (method, path)
        assert description != operation["summary"], (method, path)


def test_every_schema_an_operation_uses_has_an_example_valid_against_it(app: FastAPI) -> None:
    schema = app.openapi()
    components = schema["components"]["schemas"]
    registry: Registry[Any] = Registry().with_resource(
        "urn:attune:openapi", Resource.from_contents(schema, default_specification=DRAFT202012)
    )
    unknown = set(openapi_examples.SCHEMAS) - set(components)
    assert not unknown, f"examples of schemas the document does not have: {sorted(unknown)}"
    for name in sorted(_used_schemas(schema)):
        examples = components[name].get("examples")
        assert examples, f"{name} has no example"
        validator = Draft202012Validator(
            {"$ref": f"urn:attune:openapi#/components/schemas/{name}"}, registry=registry
        )
        for example in examples:
            errors = [
                f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(example)
            ]
            assert not errors, (name, errors)


def test_every_request_and_response_body_has_an_example(app: FastAPI) -> None:
    schema = app.openapi()
    components = schema["components"]["schemas"]

    def exemplified(media: dict[str, Any]) -> bool:
        body = media.get("schema", {})
        body = body.get("items", body) if body.get("type") == "array" else body
        body = next((b for b in body.get("anyOf", []) if "$ref" in b), body)  # optional bodies
        if "$ref" in body:
            return bool(components[body["$ref"].rsplit("/", 1)[1]].get("examples"))
        return "example" in media or body.get("format") == "binary"

    for method, path, operation in _operations(schema):
        bodies = [("request", operation.get("requestBody", {}))] + [
            (status, response)
            for status, response in operation["responses"].items()
            if status.startswith("2")
        ]
        for where, body in bodies:
            for media_type, media in body.get("content", {}).items():
                assert exemplified(media), (method, path, where, media_type)


def test_every_enum_is_a_named_schema(app: FastAPI) -> None:
    """No inline enum is left for a generator to name after a field or an operation
    (`ListAlertsV1AlertsGetStatusType0`, `Status2`)."""
    schema = app.openapi()
    components = schema["components"]["schemas"]
    inline: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "enum" in node and not re.fullmatch(r"/components/schemas/[A-Za-z]+", where):
                inline.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for n, value in enumerate(node):
                walk(value, f"{where}/{n}")

    walk(schema, "")
    assert not inline, inline
    assert components["AlertPublic"]["properties"]["type"] == {
        "$ref": "#/components/schemas/AlertType"
    }
    assert set(components["AlertType"]["enum"]) == set(get_args(RuleId))
    assert components["AlertStatus"]["enum"] == ["open", "acknowledged", "resolved"]
    assert components["InvitationView"]["properties"]["instruments"]["items"] == {
        "$ref": "#/components/schemas/InstrumentDefinition"
    }
    alert_filters = {
        p["name"]: p["schema"] for p in schema["paths"]["/v1/alerts"]["get"]["parameters"]
    }
    assert alert_filters["status"]["anyOf"][0] == {"$ref": "#/components/schemas/AlertStatus"}
    assert alert_filters["type"]["anyOf"][0] == {"$ref": "#/components/schemas/AlertType"}


def test_exports_are_documented_binary_for_parquet_and_text_for_csv_and_ndjson(
    app: FastAPI,
) -> None:
    content = app.openapi()["paths"]["/v1/exports/{dataset}"]["get"]["responses"]["200"]["content"]
    sent = {format: media_type.split(";")[0] for format, media_type in MEDIA_TYPES.items()}
    assert set(content) == set(sent.values())
    assert content[sent["parquet"]]["schema"] == {"type": "string", "format": "binary"}
    assert content[sent["csv"]]["schema"] == {"type": "string"}
    assert content[sent["ndjson"]]["schema"] == {"type": "string"}


def test_servers_name_the_public_url_when_it_is_set(settings: Settings) -> None:
    public = settings.model_copy(update={"public_url": "https://care.example.org/attune/"})
    assert create_app(public).openapi()["servers"] == [{"url": "https://care.example.org/attune"}]
    assert "servers" not in create_app(settings).openapi()


def test_every_named_branch_and_typed_field_is_in_place(app: FastAPI) -> None:
    """The places api/openapi.py names still exist: a model change that moved one fails here,
    not as a generated client's `...Type2` class."""
    components = app.openapi()["components"]["schemas"]
    for owner, path, name, _ in openapi.NAMED_BRANCHES:
        node: Any = components[owner]
        for step in path:
            node = node[step]
        assert node == {"$ref": f"#/components/schemas/{name}"}, (owner, path)
    for name, fields in openapi.TYPED_FIELDS.items():
        for field, typed in fields.items():
            documented = components[name]["properties"][field]
            assert {k: documented[k] for k in typed} == typed, (name, field)
