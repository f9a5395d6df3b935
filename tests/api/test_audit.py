"""Every read and change of client data writes exactly one audit event, refusals included."""

from typing import Any

from tests.support import Attune, Tenant, assert_audit_events_carry_no_content, bearer, expect


async def _events(tenant: Tenant) -> list[dict[str, Any]]:
    """The trail, without the events of reading it (each read of the trail adds one)."""
    page = expect(await tenant.http.get("/v1/audit-events?limit=500", headers=tenant.admin), 200)
    return [e for e in page["items"] if e["action"] != "audit.list"]


async def test_each_read_and_change_writes_one_audit_event(attune: Attune) -> None:
    tenant = await attune.tenant()
    clinician = await tenant.clinician()
    client = await tenant.client(external_id="MRN-9")
    episode = await tenant.episode(client_id=client["id"], clinician_id=clinician["id"])
    h = tenant.admin
    calls: list[tuple[str, str, dict[str, Any] | None, str, str | None]] = [
        ("GET", f"/v1/clients/{client['id']}", None, "client.read", client["id"]),
        ("GET", "/v1/clients", None, "client.list", None),
        (
            "PUT",
            "/v1/clients/by-external-id/MRN-9",
            {"population": "adolescent"},
            "client.update",
            client["id"],
        ),
        ("POST", "/v1/clients", {"external_id": "MRN-10"}, "client.create", None),
        ("GET", f"/v1/episodes/{episode['id']}", None, "episode.read", episode["id"]),
        ("GET", "/v1/episodes", None, "episode.list", None),
        (
            "PATCH",
            f"/v1/episodes/{episode['id']}",
            {"status": "closed"},
            "episode.update",
            episode["id"],
        ),
        ("GET", f"/v1/clinicians/{clinician['id']}", None, "clinician.read", clinician["id"]),
        ("GET", "/v1/clinicians", None, "clinician.list", None),
    ]
    for method, path, body, action, resource_id in calls:
        before = await _events(tenant)
        response = await attune.http.request(method, path, json=body, headers=h)
        assert response.status_code < 300, (path, response.text)
        new = [e for e in await _events(tenant) if e["id"] not in {b["id"] for b in before}]
        assert len(new) == 1, (path, new)
        event = new[0]
        assert event["action"] == action
        assert event["outcome"] == "success"
        assert event["client_address"] == "203.0.113.7"
        assert event["key_id"] is not None
        if resource_id is not None:
            assert event["resource_id"] == resource_id
        elif method == "POST":
            assert event["resource_id"] == response.json()["id"]


async def test_refused_read_of_a_client_is_audited_as_not_found(attune: Attune) -> None:
    tenant = await attune.tenant()
    me = await tenant.clinician()
    other_episode = await tenant.episode()
    key = bearer(await tenant.key("clients:read", clinician_id=me["id"]))
    response = await attune.http.get(f"/v1/clients/{other_episode['client_id']}", headers=key)
    assert response.status_code == 404
    events = await _events(tenant)
    refused = [e for e in events if e["outcome"] == "not_found"]
    assert [(e["action"], e["resource_id"]) for e in refused] == [
        ("client.read", other_episode["client_id"])
    ]


async def test_audit_events_hold_no_client_data(attune: Attune) -> None:
    tenant = await attune.tenant()
    await tenant.client(external_id="MRN-SECRET-77", birth_year=1987)
    events = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)
    assert events["items"]
    assert_audit_events_carry_no_content(events["items"], "MRN-SECRET-77", "1987")


async def test_audit_events_are_for_admins_only(attune: Attune) -> None:
    tenant = await attune.tenant()
    reader = bearer(await tenant.key("clients:read", "clients:write"))
    assert (await attune.http.get("/v1/audit-events", headers=reader)).status_code == 403


async def test_reads_and_changes_of_submissions_write_one_audit_event_each(attune: Attune) -> None:
    from tests.support import srs, submit

    tenant = await attune.tenant()
    eid = (await tenant.episode())["id"]
    sub = await submit(tenant, eid, "srs", 1, srs(9, 9, 9, 9))
    calls: list[tuple[str, str, dict[str, Any] | None, str, str]] = [
        ("GET", f"/v1/submissions/{sub['id']}", None, "submission.read", sub["id"]),
        ("GET", f"/v1/episodes/{eid}/submissions", None, "submission.list", eid),
        ("GET", f"/v1/episodes/{eid}/trajectory?instrument=srs", None, "trajectory.read", eid),
        (
            "POST",
            f"/v1/submissions/{sub['id']}/void",
            {"reason": "test"},
            "submission.void",
            sub["id"],
        ),
    ]
    for method, path, body, action, resource_id in calls:
        before = {e["id"] for e in await _events(tenant)}
        response = await attune.http.request(method, path, json=body, headers=tenant.admin)
        assert response.status_code == 200, (path, response.text)
        new = [e for e in await _events(tenant) if e["id"] not in before]
        assert [(e["action"], e["resource_id"]) for e in new] == [(action, resource_id)], path


async def test_list_and_search_reads_record_the_filters_they_used(attune: Attune) -> None:
    from tests.support import srs, submit

    tenant = await attune.tenant()
    clinician = await tenant.clinician()
    client = await tenant.client(external_id="MRN-77")
    episode = await tenant.episode(client_id=client["id"], clinician_id=clinician["id"])
    await submit(tenant, episode["id"], "srs", 1, srs(4, 4, 4, 4))
    reads = [
        (f"/v1/episodes?client_id={client['id']}&status=active", "episode.list",
         {"client_id": client["id"], "status": "active"}),
        ("/v1/clients?external_id=MRN-77", "client.list", {"external_id": "MRN-77"}),
        (f"/v1/alerts?clinician_id={clinician['id']}&limit=5", "alert.list",
         {"clinician_id": clinician["id"], "limit": "5"}),
        (f"/v1/episodes/{episode['id']}/submissions?instrument=srs", "submission.list",
         {"instrument": "srs"}),
        (f"/fhir/Observation?subject=Patient/{client['id']}&code=srs", "observation.search",
         {"subject": f"Patient/{client['id']}", "code": "srs"}),
        (f"/fhir/DetectedIssue?patient={client['id']}", "alert.list",
         {"patient": client["id"]}),
        ("/v1/clinicians", "clinician.list", {}),
    ]  # fmt: skip
    for path, action, filters in reads:
        before = {e["id"] for e in await _events(tenant)}
        expect(await attune.http.get(path, headers=tenant.admin), 200)
        new = [e for e in await _events(tenant) if e["id"] not in before]
        assert [e["action"] for e in new] == [action], path
        assert new[0]["details"]["filters"] == filters, path


async def test_reading_the_audit_trail_is_itself_audited(attune: Attune) -> None:
    tenant = await attune.tenant()
    await tenant.client()
    expect(await attune.http.get("/v1/audit-events?limit=3", headers=tenant.admin), 200)
    page = expect(await attune.http.get("/v1/audit-events", headers=tenant.admin), 200)
    newest = page["items"][0]
    assert newest["action"] == "audit.list"
    assert newest["details"]["filters"] == {"limit": "3"}
    assert newest["key_id"] is not None
    assert newest["client_address"] == "203.0.113.7"
