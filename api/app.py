"""The FastAPI application: routers, error handling, limits, and the database lifecycle."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import problems
from api.limits import BodySizeLimit
from api.logs import AccessLog, SecurityHeaders
from api.routes import (
    api_keys,
    audit,
    clients,
    clinicians,
    episodes,
    health,
    instruments,
    organizations,
    submissions,
)
from services.auth import ensure_bootstrap_key
from services.config import Settings, get_settings
from services.database import create_engine, create_sessionmaker

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
        if settings.bootstrap_key is not None:
            async with app.state.sessionmaker() as session:
                await ensure_bootstrap_key(
                    session,
                    key=settings.bootstrap_key.get_secret_value(),
                    secret=settings.secret_key.get_secret_value(),
                )
                await session.commit()
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Attune",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    problems.install(app)
    for router in (
        health.router,
        organizations.router,
        api_keys.router,
        clinicians.router,
        clients.router,
        episodes.router,
        instruments.router,
        submissions.router,
        audit.router,
    ):
        app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog)
    return app
