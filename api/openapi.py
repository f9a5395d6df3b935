"""The OpenAPI document as integrators need it: the API-key scheme, and every problem response a
route can give (401/403 on guarded routes, 404 on routes with ids, 413/422 where input is read,
503 when the database is down), each as `application/problem+json` with the Problem schema."""

from typing import Any

from fastapi import FastAPI

from api.problems import PROBLEM_MEDIA_TYPE, Problem

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
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
