"""What the sweep decides (services/alerts/due.py): parameters per organisation, grouped."""

import uuid
from datetime import UTC, datetime, timedelta

from services.alerts import due


def test_defaults_are_those_of_the_design() -> None:
    params = due.sweep_params({})
    assert params.escalate_after_hours == (("risk.item", 24), ("concern.reported", 72))
    assert (params.overdue_days, params.repair_days) == (21, 21)


def test_a_switched_off_rule_takes_its_check_out_but_escalation_stays() -> None:
    params = due.sweep_params(
        {"measurement.overdue": {"enabled": False}, "alliance.rupture": {"enabled": False}}
    )
    assert (params.overdue_days, params.repair_days) == (None, None)
    assert params.escalate_after_hours == due.DEFAULT_PARAMS.escalate_after_hours


def test_an_invalid_stored_override_falls_back_to_the_defaults() -> None:
    # Later than 24 h would be less safe: refused by validation, so the default applies.
    params = due.sweep_params({"risk.item": {"params": {"escalate_after_hours": 500}}})
    assert dict(params.escalate_after_hours)["risk.item"] == 24


def test_organisations_are_grouped_by_their_parameters() -> None:
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    overrides = {
        a: {"measurement.overdue": {"params": {"overdue_days": 7}}},
        b: {"measurement.overdue": {"params": {"overdue_days": 7}}},
        c: {"measurement.overdue": {"params": {"overdue_days": 21}}},  # the default, spelled out
    }
    groups = due.org_groups(overrides)
    by_days = {g.params.overdue_days: g for g in groups}
    assert set(by_days) == {7, 21}
    assert by_days[7].org_ids == frozenset({a, b})
    # Everyone else, c included, on the defaults: listed by exclusion, not one by one.
    assert by_days[21].org_ids is None
    assert by_days[21].exclude == frozenset({a, b})

    only = due.org_groups(overrides, only=[a, d])
    assert {g.params.overdue_days: g.org_ids for g in only} == {
        21: frozenset({d}),
        7: frozenset({a}),
    }


def test_an_overdue_alert_says_how_long_and_belongs_to_no_series() -> None:
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    row = due.overdue_row(
        org_id=uuid.uuid4(),
        episode_id=uuid.uuid4(),
        last_measured_at=now - timedelta(days=30, hours=5),
        measured=True,
        overdue_days=21,
        now=now,
        stamp=now,
        alert_id=uuid.uuid4(),
    )
    assert (row["type"], row["severity"], row["status"]) == (
        "measurement.overdue",
        "warning",
        "open",
    )
    assert (row["instrument"], row["respondent"], row["rater"], row["subscale"]) == ("",) * 4
    assert row["first_session_number"] is None
    assert row["evidence"]["days_since"] == 30
    assert "30 days" in row["message"]
