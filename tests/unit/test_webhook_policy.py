"""The worker's pure decisions: back-off, verdicts, which addresses are public, what events say."""

import ipaddress
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.webhooks import events
from services.webhooks.delivery import backoff_seconds, verdict
from services.webhooks.targets import is_public


@given(
    failures=st.integers(min_value=1, max_value=10_000),
    base=st.floats(min_value=0, max_value=3600),
    cap=st.floats(min_value=0, max_value=7 * 86400),
    unit_random=st.floats(min_value=0, max_value=1),
)
def test_backoff_stays_between_half_and_all_of_the_capped_exponential(
    failures: int, base: float, cap: float, unit_random: float
) -> None:
    wait = backoff_seconds(failures, base=base, cap=cap, unit_random=unit_random)
    ceiling = min(cap, base * 2.0 ** min(failures - 1, 62))
    assert ceiling / 2 <= wait <= ceiling * (1 + 1e-12)


def test_backoff_doubles_until_the_cap() -> None:
    waits = [backoff_seconds(n, base=10, cap=300, unit_random=1.0) for n in range(1, 8)]
    assert waits == [10, 20, 40, 80, 160, 300, 300]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "delivered"), (204, "delivered"), (299, "delivered"), (410, "gone"),
     (301, "retry"), (404, "retry"), (429, "retry"), (500, "retry"), (None, "retry")],
)  # fmt: skip
def test_verdict(status: int | None, expected: str) -> None:
    assert verdict(status) == expected


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),  # noqa: S104  (an address under test, not a bind)
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", False),
    ],
)
def test_only_global_unicast_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_alert_event_summarises_without_message_evidence_or_note() -> None:
    at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    row = {
        "id": uuid.uuid4(), "org_id": uuid.uuid4(), "episode_id": uuid.uuid4(),
        "type": "alliance.low", "severity": "warning", "status": "acknowledged",
        "resolution": None, "instrument": "srs", "subscale": "", "session_number": 3,
        "submission_id": uuid.uuid4(), "message": "Marker-message: SRS total 31.987",
        "evidence": {"total": 31.987}, "note": "Marker-note", "updated_at": at,
    }  # fmt: skip
    event = events.alert_changed("updated", row, uuid.uuid4(), uuid.uuid4())
    assert event["type"] == "alert.updated"
    assert event["payload"]["timestamp"] == "2026-11-25T12:00:00Z"
    data = event["payload"]["data"]
    assert data["subscale"] is None
    assert not {"message", "evidence", "note"} & set(data)
    text = str(event["payload"])
    for marker in ("Marker-message", "Marker-note", "31.987"):
        assert marker not in text


@pytest.mark.parametrize(
    ("change", "status", "expected"),
    [("created", "open", "alert.created"), ("updated", "open", "alert.updated"),
     ("updated", "acknowledged", "alert.updated"), ("resolved", "resolved", "alert.resolved"),
     ("updated", "resolved", "alert.resolved")],
)  # fmt: skip
def test_alert_event_type_follows_the_change(change: str, status: str, expected: str) -> None:
    assert events.alert_type_for(change, status) == expected
