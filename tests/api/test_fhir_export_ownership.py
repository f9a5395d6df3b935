"""Bulk $export jobs belong to the key that started them, and absolute URLs come from
ATTUNE_PUBLIC_URL, never from the Host header (issue 14 finding 9)."""

import httpx
import pytest

from api.app import create_app
from services.fhir import export
from services.kernel.config import Settings
from tests.support import Attune, bearer, expect, srs, submit


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "SETTLE_SECONDS", 0.0)


async def test_another_key_of_the_organisation_cannot_read_or_cancel_a_job(
    attune: Attune, settled: None
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    await submit(tenant, episode["id"], "srs", 1, srs(9, 9, 9, 9))
    starter = bearer(await tenant.key("exports:identified"))
    colleague = bearer(await tenant.key("exports:identified"))
    kick_off = await attune.http.get("/fhir/$export", headers=starter)
    assert kick_off.status_code == 202, kick_off.text
    job = kick_off.headers["content-location"].rsplit("/", 1)[-1]
    status, file = f"/fhir/$export-status/{job}", f"/fhir/$export-files/{job}/Observation.ndjson"
    for headers in (colleague, tenant.admin):
        assert (await attune.http.get(status, headers=headers)).status_code == 404
        assert (await attune.http.get(file, headers=headers)).status_code == 404
        assert (await attune.http.delete(status, headers=headers)).status_code == 404
    manifest = expect(await attune.http.get(status, headers=starter), 200)
    assert manifest["output"]
    assert episode["client_id"] in (await attune.http.get(file, headers=starter)).text
    assert (await attune.http.delete(status, headers=starter)).status_code == 202


async def test_absolute_urls_come_from_the_public_url_never_the_host_header(
    settings: Settings, attune: Attune, settled: None
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    await submit(tenant, episode["id"], "srs", 1, srs(9, 9, 9, 9))
    await submit(tenant, episode["id"], "srs", 2, srs(9, 9, 9, 9))
    public = settings.model_copy(update={"public_url": "https://attune.example.org/api"})
    app = create_app(public)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://evil.test") as http:
            headers = {**tenant.admin, "Host": "evil.test", "X-Forwarded-Host": "evil.test"}
            kick_off = await http.get("/fhir/$export", headers=headers)
            location = kick_off.headers["content-location"]
            assert location.startswith("https://attune.example.org/api/fhir/$export-status/")
            path = location.removeprefix("https://attune.example.org/api")
            manifest = expect(await http.get(path, headers=headers), 200)
            assert "evil" not in str(manifest)
            assert manifest["request"].startswith("https://attune.example.org/api/fhir/$export")
            bundle = expect(await http.get("/fhir/Observation?_count=1", headers=headers), 200)
            links = {link["relation"]: link["url"] for link in bundle["link"]}
            assert links["self"].startswith("https://attune.example.org/api/fhir/Observation?")
            assert links["next"].startswith("https://attune.example.org/api/fhir/Observation?")
            assert "evil" not in str(bundle)
            metadata = expect(await http.get("/fhir/metadata", headers=headers), 200)
            assert "evil" not in str(metadata)
