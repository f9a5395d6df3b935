"""Clinicians, clients and episodes behave as DESIGN.md §4 describes."""

from tests.support import Attune, expect


async def test_duplicate_client_external_id_is_a_conflict_naming_the_existing_client(
    attune: Attune,
) -> None:
    tenant = await attune.tenant()
    first = await tenant.client(external_id="MRN-1")
    again = await attune.http.post(
        "/v1/clients", json={"external_id": "MRN-1"}, headers=tenant.admin
    )
    assert again.status_code == 409
    assert again.json()["existing_id"] == first["id"]


async def test_upsert_by_external_id_creates_then_updates(attune: Attune) -> None:
    tenant = await attune.tenant()
    path = "/v1/clients/by-external-id/EHR%2F123"
    created = await attune.http.put(path, json={"population": "child"}, headers=tenant.admin)
    assert created.status_code == 201
    assert created.json()["external_id"] == "EHR/123"
    updated = await attune.http.put(
        path, json={"population": "adolescent", "birth_year": 2011}, headers=tenant.admin
    )
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["population"] == "adolescent"
    found = expect(
        await attune.http.get("/v1/clients?external_id=EHR/123", headers=tenant.admin), 200
    )
    assert [c["id"] for c in found["items"]] == [created.json()["id"]]


async def test_duplicate_clinician_external_id_is_a_conflict(attune: Attune) -> None:
    tenant = await attune.tenant()
    await tenant.clinician(external_id="staff-7")
    again = await attune.http.post(
        "/v1/clinicians", json={"display_name": "B", "external_id": "staff-7"}, headers=tenant.admin
    )
    assert again.status_code == 409


async def test_duplicate_organization_slug_is_a_conflict(attune: Attune) -> None:
    from tests.support import SYSTEM_KEY, bearer

    tenant = await attune.tenant()
    again = await attune.http.post(
        "/v1/organizations", json={"name": "X", "slug": tenant.slug}, headers=bearer(SYSTEM_KEY)
    )
    assert again.status_code == 409


async def test_episode_closes_with_an_end_date_and_can_be_reopened(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    path = f"/v1/episodes/{episode['id']}"
    closed = expect(
        await attune.http.patch(
            path, json={"status": "closed", "ended_on": episode["started_on"]}, headers=tenant.admin
        ),
        200,
    )
    assert closed["status"] == "closed"
    assert closed["ended_on"] == episode["started_on"]
    listed = expect(await attune.http.get("/v1/episodes?status=closed", headers=tenant.admin), 200)
    assert [e["id"] for e in listed["items"]] == [episode["id"]]
    reopened = expect(
        await attune.http.patch(path, json={"status": "active"}, headers=tenant.admin), 200
    )
    assert reopened["ended_on"] is None


async def test_episode_cannot_end_before_it_starts(attune: Attune) -> None:
    tenant = await attune.tenant()
    episode = await tenant.episode()
    response = await attune.http.patch(
        f"/v1/episodes/{episode['id']}",
        json={"status": "closed", "ended_on": "1999-01-01"},
        headers=tenant.admin,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.ended_on"


async def test_episode_list_filters_by_client_and_clinician(attune: Attune) -> None:
    tenant = await attune.tenant()
    first = await tenant.episode()
    await tenant.episode()
    by_client = expect(
        await attune.http.get(f"/v1/episodes?client_id={first['client_id']}", headers=tenant.admin),
        200,
    )
    assert [e["id"] for e in by_client["items"]] == [first["id"]]
    by_clinician = expect(
        await attune.http.get(
            f"/v1/episodes?clinician_id={first['clinician_id']}", headers=tenant.admin
        ),
        200,
    )
    assert [e["id"] for e in by_clinician["items"]] == [first["id"]]


async def test_health_and_readiness_need_no_key(attune: Attune) -> None:
    assert expect(await attune.http.get("/healthz"), 200) == {"status": "ok"}
    assert expect(await attune.http.get("/readyz"), 200)["database"] == "ok"


async def test_responses_carry_security_headers(attune: Attune) -> None:
    response = await attune.http.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


async def test_metrics_count_requests_by_route_template_without_ids(attune: Attune) -> None:
    tenant = await attune.tenant()
    client = await tenant.client(external_id="MRN-METRICS-1")
    expect(await attune.http.get(f"/v1/clients/{client['id']}", headers=tenant.admin), 200)
    body = (await attune.http.get("/metrics")).text
    assert 'route="/v1/clients/{client_id}"' in body
    assert client["id"] not in body
    assert "MRN-METRICS-1" not in body
