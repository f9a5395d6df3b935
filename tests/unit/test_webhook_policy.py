"""The worker's pure decisions: back-off, verdicts, which addresses are public, what events say."""

import ipaddress
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.model import AlertRow
from services.webhooks import events
from services.webhooks.delivery import backoff_seconds, verdict
from services.webhooks.targets import PRIVATE_REASON, is_public, literal_refusal


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
        # IPv6 forms that embed an IPv4 address (issue 14 finding 7)
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 to cloud metadata
        ("64:ff9b::7f00:1", False),  # NAT64 to loopback
        ("64:ff9b::5db8:d822", True),  # NAT64 to a public address (DNS64 networks)
        ("64:ff9b:1::5db8:d822", False),  # NAT64 local-use prefix (RFC 8215)
        ("::127.0.0.1", False),  # IPv4-compatible (deprecated)
        ("::93.184.216.34", False),  # IPv4-compatible, even of a public address
        ("::ffff:0:7f00:1", False),  # IPv4-translated
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
        ("2002:5db8:d822::1", True),  # 6to4 of a public address
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("fec0::1", False),  # site-local (deprecated)
        ("ff0e::1", False),  # global multicast
        ("5f00::1", False),  # outside global unicast 2000::/3
        ("3fff::1", False),  # documentation (RFC 9637)
        ("2001:db8::1", False),  # documentation
        ("240.0.0.1", False),  # reserved
    ],
)
def test_only_global_unicast_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@given(
    v4=st.ip_addresses(v=4),
    wrap=st.sampled_from(
        [
            lambda v: f"::ffff:{v}",
            lambda v: f"64:ff9b::{v}",
            lambda v: f"2002:{int(v) >> 16:04x}:{int(v) & 0xFFFF:04x}::1",
            lambda v: f"::{v}",
            lambda v: f"64:ff9b:1::{v}",
        ]
    ),
)
def test_an_ipv6_form_of_an_ipv4_address_is_never_more_public_than_the_address(
    v4: ipaddress.IPv4Address, wrap: Any
) -> None:
    wrapped = ipaddress.ip_address(wrap(v4))
    if is_public(wrapped):
        assert is_public(v4)


@pytest.mark.parametrize(
    ("host", "allow_private", "expected"),
    [
        ("hooks.example.org", False, None),  # a name: vetted when resolved
        ("93.184.216.34", False, None),
        ("127.0.0.1", False, PRIVATE_REASON),
        ("127.0.0.1", True, None),
        ("::1", False, PRIVATE_REASON),
        ("::ffff:10.0.0.1", False, PRIVATE_REASON),
        ("2606:2800:220:1:248:1893:25c8:1946", False, None),
        ("127.1", False, "the host '127.1' is not a valid address"),  # aiohttp's "address"
        ("2130706433", True, "the host '2130706433' is not a valid address"),
    ],
)
def test_a_host_written_as_an_address_is_judged_as_its_address(
    host: str, allow_private: bool, expected: str | None
) -> None:
    assert literal_refusal(host, allow_private=allow_private) == expected


@given(st.ip_addresses())
def test_an_address_is_refused_exactly_when_it_is_not_public(address: Any) -> None:
    refused = literal_refusal(str(address), allow_private=False) is not None
    assert refused == (not is_public(address))


def test_alert_event_summarises_without_message_evidence_or_note() -> None:
    at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    row: AlertRow = {
        "id": uuid.uuid4(), "org_id": uuid.uuid4(), "episode_id": uuid.uuid4(),
        "type": "alliance.low", "severity": "warning", "status": "acknowledged",
        "resolution": None, "instrument": "srs", "respondent": "client", "rater": "",
        "subscale": "", "session_number": 3, "submission_id": uuid.uuid4(),
        "first_session_number": 3, "message": "Marker-message: SRS total 31.987",
        "evidence": {"total": 31.987}, "rule_version": "1", "rule_params": {},
        "created_at": at, "updated_at": at, "acknowledged_at": at,
        "acknowledged_by_key_id": None, "resolved_at": None, "resolved_by_key_id": None,
        "note": "Marker-note", "escalated_at": None,
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
