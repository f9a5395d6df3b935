"""Helpers that drive the API the way an integrator would."""

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.kernel.config import Settings

SYSTEM_KEY = "att_test-system-key-0123456789abcdefghijkl"
TEST_SECRET = "test-secret-key-0123456789abcdef"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def expect(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json() if response.content else None


@dataclass
class Tenant:
    """An organization with an admin key, and shortcuts to create its objects."""

    http: httpx.AsyncClient
    org_id: str
    slug: str
    admin_key: str
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.admin_key)

    async def key(self, *scopes: str, clinician_id: str | None = None) -> str:
        body: dict[str, Any] = {"name": "test key", "scopes": list(scopes)}
        if clinician_id is not None:
            body["clinician_id"] = clinician_id
        data = expect(await self.http.post("/v1/api-keys", json=body, headers=self.admin), 201)
        return str(data["key"])

    async def clinician(self, name: str = "Dr Test", **extra: Any) -> dict[str, Any]:
        return expect(  # type: ignore[no-any-return]
            await self.http.post(
                "/v1/clinicians", json={"display_name": name, **extra}, headers=self.admin
            ),
            201,
        )

    async def client(self, **body: Any) -> dict[str, Any]:
        return expect(  # type: ignore[no-any-return]
            await self.http.post("/v1/clients", json=body, headers=self.admin), 201
        )

    async def episode(
        self, *, client_id: str | None = None, clinician_id: str | None = None
    ) -> dict[str, Any]:
        client_id = client_id or (await self.client())["id"]
        clinician_id = clinician_id or (await self.clinician())["id"]
        return expect(  # type: ignore[no-any-return]
            await self.http.post(
                "/v1/episodes",
                json={"client_id": client_id, "clinician_id": clinician_id},
                headers=self.admin,
            ),
            201,
        )


@dataclass
class Attune:
    http: httpx.AsyncClient

    async def post_from_two_apps(
        self, settings: Settings, path: str, body: Any, headers: dict[str, str], times: int
    ) -> list[httpx.Response]:
        """``times`` identical POSTs at once, alternating between this app and a second
        instance with its own engine and pool, which stands in for a second process."""
        from api.app import create_app

        other = create_app(settings)
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other)
            async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as second:
                clients = [self.http, second]
                return list(
                    await asyncio.gather(
                        *(
                            clients[i % 2].post(path, json=body, headers=headers)
                            for i in range(times)
                        )
                    )
                )

    async def tenant(self, name: str = "Clinic") -> Tenant:
        slug = f"t-{uuid.uuid4().hex[:12]}"
        org = expect(
            await self.http.post(
                "/v1/organizations", json={"name": name, "slug": slug}, headers=bearer(SYSTEM_KEY)
            ),
            201,
        )
        key = expect(
            await self.http.post(
                f"/v1/organizations/{org['id']}/api-keys",
                json={"name": "admin", "scopes": ["admin"]},
                headers=bearer(SYSTEM_KEY),
            ),
            201,
        )
        return Tenant(http=self.http, org_id=org["id"], slug=slug, admin_key=key["key"])


async def submit(
    tenant: Tenant,
    episode_id: str,
    instrument: str,
    session_number: int,
    answers: dict[str, Any],
    *,
    status: int = 201,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Any:
    body = {
        "episode_id": episode_id,
        "instrument": instrument,
        "session_number": session_number,
        "answers": answers,
        **extra,
    }
    response = await tenant.http.post(
        "/v1/submissions", json=body, headers={**tenant.admin, **(headers or {})}
    )
    return expect(response, status)


AUDIT_EVENT_FIELDS = {
    "id", "key_id", "action", "resource_type", "resource_id", "outcome", "client_address",
    "occurred_at", "details",
}  # fmt: skip


def assert_audit_events_carry_no_content(events: list[dict[str, Any]], *secrets: str) -> None:
    """Audit events hold who/what/when/where only: no field beyond those, and none of `secrets`
    in the descriptive fields (ids and timestamps are left out of the search: a random UUID or a
    clock reading can contain any short digit string by chance)."""
    for event in events:
        assert set(event) == AUDIT_EVENT_FIELDS, event
        described = (
            event["action"], event["resource_type"], event["outcome"], str(event["details"] or "")
        )  # fmt: skip
        for secret in secrets:
            assert all(secret not in text for text in described), (secret, event)
