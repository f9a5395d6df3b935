"""Logs carry route templates and statuses, never answers, identifiers or keys."""

import logging

import pytest

from api import logs
from tests.support import Attune, bearer, expect, srs, submit


async def test_a_full_scenario_logs_no_health_data_identifiers_or_keys(
    attune: Attune, caplog: pytest.LogCaptureFixture
) -> None:
    logs.quiet_third_party()  # as `attune serve` configures logging
    caplog.set_level(logging.DEBUG)
    tenant = await attune.tenant()
    client = await tenant.client(external_id="MRN-LOGCHECK-4242", birth_year=1971)
    episode = await tenant.episode(client_id=client["id"])
    reader = await tenant.key("submissions:read")
    sub = await submit(tenant, episode["id"], "srs", 1, srs(7.3, 6.1, 5.9, 4.7))
    await submit(tenant, episode["id"], "phq-9", 1, {"q1": 7}, status=422)
    expect(await attune.http.get(f"/v1/submissions/{sub['id']}", headers=bearer(reader)), 200)
    await attune.http.get("/v1/clients?external_id=MRN-LOGCHECK-4242", headers=tenant.admin)
    await attune.http.get(f"/v1/episodes/{episode['id']}", headers=bearer("att_wrong-key"))

    def logged(record: logging.LogRecord) -> str:
        # The request duration is left out: as a number it could equal an answer by chance.
        fields = {k: v for k, v in getattr(record, "fields", {}).items() if k != "ms"}
        return f"{record.getMessage()} {fields}"

    text = "\n".join(logged(r) for r in caplog.records)
    assert "request" in text  # the access log did run
    for secret in (
        "MRN-LOGCHECK-4242",
        "1971",
        "7.3",
        "6.1",
        "5.9",
        "4.7",
        reader,
        tenant.admin_key,
        client["id"],
        episode["id"],
        sub["id"],
        "att_wrong-key",
    ):
        assert secret not in text, secret
