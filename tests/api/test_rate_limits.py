"""Rate limits (issue 14 finding 8, DESIGN.md §10.8): failed authentication per client address
(on by default) and traffic per API key (a setting), 429 problem+json with Retry-After, counted
in the database so that replicas agree; X-Forwarded-For only from trusted proxies."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from api.ratelimit import COUNTERS
from services.kernel.config import Settings
from tests.support import Attune, bearer, expect


@asynccontextmanager
async def _replica(settings: Settings, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A separate app instance (its own engine and memory), as another replica would be."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(address, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as client:
            yield client


def _address() -> str:
    # An address of its own per test: the counters live in the shared test database.
    return f"2001:db8::{uuid.uuid4().hex[:4]}"


def _too_many(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.json()["status"] == 429


async def test_failed_authentication_is_limited_per_address_across_replicas(
    settings: Settings, attune: Attune
) -> None:
    tenant = await attune.tenant()
    limited = settings.model_copy(update={"rate_limit_auth_failures": "5/minute"})
    address = _address()
    async with _replica(limited, address) as one, _replica(limited, address) as two:
        statuses = []
        for n in range(12):
            replica = (one, two)[n % 2]
            response = await replica.get("/v1/clients", headers=bearer(f"att_wrong{n}"))
            statuses.append(response.status_code)
        # Five failures in the window, and at most one more per replica that had not heard yet.
        assert statuses.count(401) <= 5 + 2
        assert statuses[-4:] == [429] * 4
        _too_many(await one.get("/v1/clients", headers=bearer("att_wrong")))
        # The address is blocked, whatever key it sends next.
        _too_many(await two.get("/v1/clients", headers=tenant.admin))
        fhir = await one.get("/fhir/Observation", headers=tenant.admin)
        assert fhir.status_code == 429
        assert fhir.json()["resourceType"] == "OperationOutcome"
        assert "retry-after" in fhir.headers
    # Another address is untouched.
    async with _replica(limited, _address()) as other:
        expect(await other.get("/v1/clients", headers=tenant.admin), 200)


async def test_failed_invitation_tokens_are_limited_per_address(
    settings: Settings, attune: Attune
) -> None:
    limited = settings.model_copy(update={"rate_limit_auth_failures": "3/minute"})
    async with _replica(limited, _address()) as client:
        statuses = [
            (await client.get("/v1/invitation", headers=bearer(f"inv_guess{n}"))).status_code
            for n in range(6)
        ]
        assert statuses[:3] == [401] * 3
        assert statuses[-2:] == [429, 429]


async def test_successful_requests_are_not_limited_by_default(
    settings: Settings, attune: Attune
) -> None:
    tenant = await attune.tenant()
    limited = settings.model_copy(update={"rate_limit_auth_failures": "3/minute"})
    async with _replica(limited, _address()) as client:
        for _ in range(10):
            expect(await client.get("/v1/clients", headers=tenant.admin), 200)


async def test_traffic_per_api_key_is_limited_when_set(settings: Settings, attune: Attune) -> None:
    tenant = await attune.tenant()
    other_key = await tenant.key("clients:read")
    limited = settings.model_copy(update={"rate_limit_per_key": "4/minute"})
    async with _replica(limited, _address()) as one, _replica(limited, _address()) as two:
        statuses = [
            (await (one, two)[n % 2].get("/v1/clients", headers=tenant.admin)).status_code
            for n in range(9)
        ]
        assert statuses[:4] == [200] * 4
        assert statuses.count(200) <= 4 + 2
        assert statuses[-3:] == [429] * 3
        _too_many(await one.get("/v1/clients", headers=tenant.admin))
        # Another key, from the same address, is not held back.
        expect(await one.get("/v1/clients", headers=bearer(other_key)), 200)


async def test_a_burst_from_one_key_is_counted_in_full(
    settings: Settings, attune: Attune, app: FastAPI
) -> None:
    """Concurrent hits of one key share the counter updates under way, and none is lost."""
    tenant = await attune.tenant()
    (key,) = expect(await attune.http.get("/v1/api-keys", headers=tenant.admin), 200)["items"]
    limited = settings.model_copy(update={"rate_limit_per_key": "1000/minute"})
    counter = select(COUNTERS.c.count).where(COUNTERS.c.key.contains(f"/{key['id']}/"))
    async with _replica(limited, _address()) as client:
        responses = await asyncio.gather(
            *(client.get("/v1/clients", headers=tenant.admin) for _ in range(30))
        )
        assert [r.status_code for r in responses] == [200] * 30
        # The hits left over from the burst are counted by a task of their own, after the
        # responses: wait for it (a bounded wait, not a timing assertion).
        for _ in range(100):
            async with app.state.engine.connect() as conn:
                counted = await conn.scalar(counter)
            if counted == 30:
                break
            await asyncio.sleep(0.05)
    assert counted == 30


async def test_x_forwarded_for_is_ignored_unless_from_a_trusted_proxy(
    settings: Settings, app: FastAPI, attune: Attune
) -> None:
    tenant = await attune.tenant()
    spoofed = {**tenant.admin, "X-Forwarded-For": "192.0.2.99", "X-Forwarded-Proto": "https"}
    expect(await attune.http.get("/v1/clients", headers=spoofed), 200)
    trusted = settings.model_copy(update={"trusted_proxies": ["10.1.2.3"]})
    async with _replica(trusted, "10.1.2.3") as via_proxy:
        expect(await via_proxy.get("/v1/clients", headers=spoofed), 200)
    async with _replica(trusted, "10.9.9.9") as direct:
        expect(await direct.get("/v1/clients", headers=spoofed), 200)
    events = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)
    addresses = [e["client_address"] for e in events["items"] if e["action"] == "client.list"]
    # Newest first: direct (not trusted), through the proxy, the first client (not a proxy).
    assert addresses[:3] == ["10.9.9.9", "192.0.2.99", "203.0.113.7"]
