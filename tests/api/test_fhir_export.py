"""FHIR Bulk Data export: kick-off (202 + Content-Location), polling (202 + Retry-After, then the
manifest), NDJSON files per type generated as of the transaction time, _type and _since, cancel,
scopes and audit."""

from typing import Any

import orjson
import pytest

from services.fhir import export
from tests.support import Attune, Tenant, bearer, expect, items, srs, submit
from tests.support.fhir import outcome, parses


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs complete as soon as they start (no settling time)."""
    monkeypatch.setattr(export, "SETTLE_SECONDS", 0.0)


async def kick_off(tenant: Tenant, query: str = "", headers: dict[str, str] | None = None) -> str:
    response = await tenant.http.get(
        f"/fhir/$export{query}",
        headers={**(headers or tenant.admin), "Prefer": "respond-async"},
    )
    assert response.status_code == 202, response.text
    status_url = response.headers["content-location"]
    assert "/fhir/$export-status/" in status_url
    return status_url


async def lines(tenant: Tenant, url: str) -> list[dict[str, Any]]:
    response = await tenant.http.get(url, headers=tenant.admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    return [parses(orjson.loads(line)) for line in response.content.splitlines()]


async def test_status_answers_202_with_retry_after_until_the_job_settles(attune: Attune) -> None:
    tenant = await attune.tenant()
    status_url = await kick_off(tenant)
    response = await attune.http.get(status_url, headers=tenant.admin)
    assert response.status_code == 202
    assert 1 <= int(response.headers["retry-after"]) <= 2


async def test_manifest_lists_one_ndjson_file_per_type_with_everything_visible(
    attune: Attune, settled: None
) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    phq = await submit(tenant, episode["id"], "phq-9", 1, items("q", *[1] * 9))
    wai = await submit(tenant, episode["id"], "wai-sr", 1, items("q", *[4] * 12))
    other = await attune.tenant()
    await submit(other, (await other.episode())["id"], "srs", 1, srs(5, 5, 5, 5))

    status_url = await kick_off(tenant)
    response = await attune.http.get(status_url, headers=tenant.admin)
    manifest = expect(response, 200)
    assert response.headers["content-type"] == "application/json"
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"].endswith("/fhir/$export")
    files = {o["type"]: o["url"] for o in manifest["output"]}
    assert set(files) == {"QuestionnaireResponse", "Observation", "DetectedIssue"}

    responses = await lines(tenant, files["QuestionnaireResponse"])
    assert sorted(r["id"] for r in responses) == sorted([phq["id"], wai["id"]])
    observations = await lines(tenant, files["Observation"])
    assert len(observations) == 1 + 4
    issues = await lines(tenant, files["DetectedIssue"])
    assert [i["code"]["coding"][0]["code"] for i in issues] == ["risk.item"]

    events = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)["items"]
    actions = [e["action"] for e in events]
    assert "fhir.export.start" in actions
    assert actions.count("fhir.export.download") == 3


async def test_files_hold_the_data_as_of_the_transaction_time(
    attune: Attune, settled: None
) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    before = await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    status_url = await kick_off(tenant, "?_type=QuestionnaireResponse")
    manifest = expect(await attune.http.get(status_url, headers=tenant.admin), 200)
    [file] = manifest["output"]
    await submit(tenant, eid, "srs", 2, srs(9, 9, 9, 9))  # after the export began
    expect(
        await attune.http.post(
            f"/v1/submissions/{before['id']}/void", json={"reason": "later"}, headers=tenant.admin
        ),
        200,
    )
    [only] = await lines(tenant, file["url"])
    assert only["id"] == before["id"]
    assert only["status"] == "completed"  # it was voided only after the transaction time


async def test_type_and_since_narrow_the_export(attune: Attune, settled: None) -> None:
    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    first = expect(
        await attune.http.get(await kick_off(tenant, "?_type=Observation"), headers=tenant.admin),
        200,
    )
    assert [o["type"] for o in first["output"]] == ["Observation"]
    later = await submit(tenant, eid, "srs", 2, srs(8, 8, 8, 8))
    since = first["transactionTime"]
    manifest = expect(
        await attune.http.get(
            await kick_off(tenant, f"?_type=Observation&_since={since}"), headers=tenant.admin
        ),
        200,
    )
    observations = await lines(tenant, manifest["output"][0]["url"])
    assert [o["id"] for o in observations] == [f"{later['id']}-total"]


async def test_cancelled_export_is_gone(attune: Attune, settled: None) -> None:
    tenant = await attune.tenant()
    status_url = await kick_off(tenant)
    manifest = expect(await attune.http.get(status_url, headers=tenant.admin), 200)
    response = await attune.http.delete(status_url, headers=tenant.admin)
    assert response.status_code == 202
    outcome(await attune.http.get(status_url, headers=tenant.admin), 404)
    outcome(await attune.http.get(manifest["output"][0]["url"], headers=tenant.admin), 404)


async def test_export_needs_the_identified_export_scope_and_valid_parameters(
    attune: Attune, settled: None
) -> None:
    tenant = await attune.tenant()
    deidentified = bearer(await tenant.key("exports:read", "submissions:read"))
    response = await attune.http.get("/fhir/$export", headers=deidentified)
    outcome(response, 403)
    identified = bearer(await tenant.key("exports:identified"))
    await kick_off(tenant, headers=identified)
    for query in ("?_type=Patient", "?_since=yesterday", "?_outputFormat=text/csv"):
        outcome(await attune.http.get(f"/fhir/$export{query}", headers=tenant.admin), 400)
    # Another organization's job does not exist for this one.
    other = await attune.tenant()
    status_url = await kick_off(other)
    outcome(await attune.http.get(status_url, headers=tenant.admin), 404)
    expect(await attune.http.get(status_url, headers=other.admin), 200)
