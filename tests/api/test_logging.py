"""Logs carry route templates and statuses, never answers, identifiers, notes or keys."""

import io
import json
import logging
from collections.abc import Iterator

import pytest

from api import logs
from tests.support import Attune, bearer, expect, srs, submit


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What `attune serve` writes: every record through the JSON formatter (api.logs)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


async def test_a_full_scenario_logs_no_health_data_identifiers_notes_or_keys(
    attune: Attune, caplog: pytest.LogCaptureFixture, json_log: io.StringIO
) -> None:
    logs.quiet_third_party()  # as `attune serve` configures logging
    caplog.set_level(logging.DEBUG)
    tenant = await attune.tenant()
    clinician = await tenant.clinician("Dr Logcheck", external_id="HR-LOGCHECK-77")
    client = await tenant.client(external_id="MRN-LOGCHECK-4242", birth_year=1971)
    episode = await tenant.episode(client_id=client["id"], clinician_id=clinician["id"])
    reader = await tenant.key("submissions:read")
    bound = await tenant.key("alerts:read", clinician_id=clinician["id"])
    first = await submit(tenant, episode["id"], "srs", 1, srs(9.7, 9.3, 9.9, 9.1))
    low = await submit(tenant, episode["id"], "srs", 2, srs(3.7, 4.1, 2.9, 3.3))
    phq = await submit(tenant, episode["id"], "phq-9", 1, {f"q{i}": 3 for i in range(1, 10)})
    await submit(tenant, episode["id"], "phq-9", 2, {"q1": 7}, status=422)
    alert_ids = [a["id"] for a in low["alerts"] + phq["alerts"]]
    assert alert_ids  # the scenario raised alerts
    alert = alert_ids[0]
    expect(
        await attune.http.post(
            f"/v1/alerts/{alert}/acknowledge",
            json={"note": "NOTE-LOGCHECK-ack client mentioned grief"},
            headers=tenant.admin,
        ),
        200,
    )
    expect(
        await attune.http.post(
            f"/v1/alerts/{alert}/resolve",
            json={"resolution": "discussed", "note": "NOTE-LOGCHECK-resolve talked it through"},
            headers=tenant.admin,
        ),
        200,
    )
    expect(
        await attune.http.post(
            f"/v1/submissions/{first['id']}/void",
            json={"reason": "REASON-LOGCHECK entered for the wrong client"},
            headers=tenant.admin,
        ),
        200,
    )
    expect(await attune.http.get(f"/v1/submissions/{low['id']}", headers=bearer(reader)), 200)
    expect(await attune.http.get("/v1/alerts", headers=bearer(bound)), 200)
    await attune.http.get("/v1/clients?external_id=MRN-LOGCHECK-4242", headers=tenant.admin)
    await attune.http.put(
        "/v1/clients/by-external-id/MRN-LOGCHECK-4242", json={"population": "adult"},
        headers=tenant.admin,
    )  # fmt: skip
    await attune.http.get(f"/v1/episodes/{episode['id']}", headers=bearer("att_wrong-key"))

    def logged(record: logging.LogRecord) -> str:
        # The request duration is left out: as a number it could equal an answer by chance.
        fields = {k: v for k, v in getattr(record, "fields", {}).items() if k != "ms"}
        return f"{record.getMessage()} {fields}"

    def written(line: str) -> str:
        entry = json.loads(line)
        return " ".join(str(v) for k, v in entry.items() if k not in ("ms", "ts"))

    records = "\n".join(logged(r) for r in caplog.records)
    output = "\n".join(written(line) for line in json_log.getvalue().splitlines())
    assert "request" in records  # the access log did run
    assert '"logger": "attune.access"' in json_log.getvalue()
    secrets = [
        "MRN-LOGCHECK-4242", "HR-LOGCHECK-77", "Dr Logcheck", "1971", "LOGCHECK",
        "grief", "wrong client", "talked it through",
        "9.7", "9.3", "9.9", "9.1", "3.7", "4.1", "2.9", "3.3",
        reader, bound, tenant.admin_key, "att_wrong-key",
        reader[4:12], tenant.admin_key[4:12],
        client["id"], episode["id"], clinician["id"], first["id"], low["id"], phq["id"], *alert_ids,
    ]  # fmt: skip
    for text in (records, output):
        for secret in secrets:
            assert secret not in text, secret
