"""The FastAPI application: routers, error handling, limits, security headers, CORS, and the
database lifecycle."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import openapi, problems, security
from api.fhir import export as fhir_export
from api.fhir import responses as fhir_responses
from api.fhir import routes as fhir
from api.limits import BodySizeLimit, RequestTimeout
from api.logs import AccessLog
from api.ratelimit import RateLimit
from api.routes import (
    alert_rules,
    alerts,
    api_keys,
    audit,
    charts,
    clients,
    clinicians,
    episodes,
    expected,
    exports,
    health,
    instruments,
    invitations,
    organizations,
    rating_page,
    smart,
    submissions,
    webhooks,
)
from services.kernel import metrics
from services.kernel.auth import PrincipalCache, ensure_bootstrap_key
from services.kernel.config import Settings, get_settings
from services.kernel.database import create_driver_pool, create_engine, create_sessionmaker
from services.kernel.replica import Replica

DESCRIPTION = """
Attune scores session ratings, follows every episode of care, and raises alerts when the
therapeutic alliance weakens or ruptures. Authenticate with `Authorization: Bearer <API key>`.
Errors are RFC 9457 `application/problem+json`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.driver_pool = await create_driver_pool(settings)
        app.state.replica = Replica.from_settings(settings)
        metrics.watch_pool("sqlalchemy", engine)
        if app.state.driver_pool is not None:
            metrics.watch_pool("asyncpg", app.state.driver_pool)
        if settings.bootstrap_key is not None:
            async with app.state.sessionmaker() as session:
                await ensure_bootstrap_key(
                    session,
                    key=settings.bootstrap_key.get_secret_value(),
                    secret=settings.secret_key.get_secret_value(),
                )
                await session.commit()
        # Move everything loaded at start-up out of the collector's reach: full collections
        # then scan only what requests allocate, which trims latency spikes (p99).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            metrics.unwatch_pool(engine)
            metrics.unwatch_pool(app.state.driver_pool)
            if app.state.driver_pool is not None:
                await app.state.driver_pool.close()
            if app.state.replica is not None:
                await app.state.replica.dispose()
            await engine.dispose()

    app = FastAPI(
        title="Attune",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # operationIds are the route names (create_submission, list_alerts): a generated client's
        # methods read as the API's verbs, not as paths (issue 17).
        generate_unique_id_function=openapi.operation_id,
        # Where the API is reached, as the integrator's generated client should call it.
        servers=[{"url": settings.public_url.rstrip("/")}] if settings.public_url else None,
        # No OpenTelemetry providers are configured; skip the per-request instrumentation.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.key_cache = PrincipalCache()
    problems.install(app)
    fhir_responses.install(app)
    smart.install(app)
    # Routes are matched in order: the busiest (submissions) first.
    for router in (
        submissions.router,
        health.router,
        organizations.router,
        api_keys.router,
        clinicians.router,
        clients.router,
        episodes.router,
        instruments.router,
        charts.router,
        expected.router,
        alerts.router,
        alert_rules.router,
        audit.router,
        webhooks.router,
        invitations.router,
        rating_page.router,
        exports.router,
        fhir.router,
        fhir_export.router,
        smart.router,
    ):
        app.include_router(router)
    # Outermost last: AccessLog (logs, metrics, security headers) sees every answer below it.
    app.add_middleware(RequestTimeout, seconds=settings.request_timeout_seconds)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimit, settings=settings)
    security.install_cors(app, settings)
    app.add_middleware(AccessLog)
    if settings.trusted_proxies:
        # X-Forwarded-For / -Proto only from the proxies named (DESIGN.md §10.8); outermost, so
        # rate limits, logs and audit events all see the address they vouch for.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    openapi.install(app)
    return app
