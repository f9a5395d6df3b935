"""A webhook receiver on a real HTTP server, and worker rounds driven by the test."""

import threading
import uuid
from typing import Any

from fastapi import FastAPI
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from services.kernel.crypto import SecretBox
from services.webhooks import delivery as webhook_delivery
from tests.support.api import TEST_SECRET, Tenant, expect


def policy(**overrides: Any) -> webhook_delivery.Policy:
    values: dict[str, Any] = {
        "timeout_seconds": 5.0,
        "max_attempts": 12,
        "retry_base_seconds": 0.0,  # retry at once: the tests drive rounds themselves
        "retry_max_seconds": 0.0,
        "disable_after_failures": 50,
        "allow_private": True,
        "secrets": SecretBox(TEST_SECRET),
    }
    return webhook_delivery.Policy(**{**values, **overrides})


async def drain(app: FastAPI, tenant: Tenant, pol: webhook_delivery.Policy | None = None) -> int:
    """Worker rounds for one organisation until nothing is due; the attempts made."""
    pol = pol or policy()
    total = 0
    async with webhook_delivery.http_client(pol) as client:
        for _ in range(200):
            done = await webhook_delivery.deliver_due(
                app.state.engine, client, pol, org_ids=[uuid.UUID(tenant.org_id)]
            )
            if done == 0:
                return total
            total += done
    raise AssertionError("the worker never ran out of due deliveries")


class Receiver:
    """Records every request with its headers and body; answers from a script of statuses."""

    def __init__(
        self, server: HTTPServer, statuses: list[int] | None = None, path: str = "/hook"
    ) -> None:
        self.server = server
        self.path = path
        self.statuses = list(statuses or [])
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        server.expect_request(path, method="POST").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        with self.lock:
            self.received.append((dict(request.headers), request.get_data()))
            status = self.statuses.pop(0) if self.statuses else 204
        return Response(status=status)

    @property
    def url(self) -> str:
        return self.server.url_for(self.path)

    def verified(self, secret: str) -> list[dict[str, Any]]:
        hook = Webhook(secret)
        return [hook.verify(body, headers) for headers, body in self.received]


async def endpoint(tenant: Tenant, url: str, **extra: Any) -> dict[str, Any]:
    return expect(  # type: ignore[no-any-return]
        await tenant.http.post("/v1/webhooks", json={"url": url, **extra}, headers=tenant.admin),
        201,
    )
