"""The OpenAPI document states the auth scheme and every problem response, as problem+json."""

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from api.app import create_app
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
