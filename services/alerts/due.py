"""What the sweep decides, without I/O (DESIGN.md §10.3.6): each organisation's sweep parameters
from its alert-rule settings, and the rows and values the time-based checks write.

Three checks, each run by :mod:`services.alerts.sweep` as of a given time:

- **escalation**: an open alert of a rule with ``escalate_after_hours`` (``risk.item`` 24 h,
  critical; ``concern.reported`` 72 h, high) that no person acknowledged within that time gets
  ``escalated_at`` — once;
- **measurement.overdue** (warning): an active episode whose latest measurement (the session's
  ``occurred_at``, else the submission's creation time; the episode's creation time when it has
  none) is older than ``overdue_days`` (21) gets one open alert, cleared by the next submission
  or by closing the episode. Feedback helps only when scores keep coming in, above all for
  not-on-track clients (Shimokawa, Lambert & Smart 2010; reference/psychometrics.md "Expected
  treatment response");
- **ruptures without a later session**: an unresolved ``alliance.rupture`` alert with no later
  session within ``repair_days`` (21) becomes high: unrepaired ruptures predicted worse outcome
  (McLaughlin et al. 2014), repaired ones better (Eubanks, Muran & Safran 2018;
  reference/psychometrics.md "Ruptures"), and no session at all may be a dropout.

The hours and days are Attune's design defaults (DESIGN.md §10.3.6), not published cut-offs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from services.alerts.model import AlertRow
from services.alerts.settings import (
    RULES,
    AllianceRuptureParams,
    ConcernReportedParams,
    MeasurementOverdueParams,
    RiskItemParams,
    RuleId,
    settings_with_fallback,
)

OVERDUE: Final[RuleId] = "measurement.overdue"
RUPTURE: Final[RuleId] = "alliance.rupture"
# The rules whose alerts the sweep escalates, with the parameter that times it.
ESCALATING = ("risk.item", "concern.reported")
# The settings rows the sweep reads (the rest do not change what it does).
SWEEP_RULES = (*ESCALATING, OVERDUE, RUPTURE)


@dataclass(frozen=True, slots=True)
class SweepParams:
    """One organisation's effective sweep parameters (``None``: the check is switched off)."""

    escalate_after_hours: tuple[tuple[str, int], ...]
    overdue_days: int | None
    repair_days: int | None


def sweep_params(overrides: Mapping[str, Mapping[str, object]]) -> SweepParams:
    """From the organisation's stored overrides, through the same validation as every rule (a
    stored override that no longer validates gives way to the defaults)."""
    settings, _ = settings_with_fallback(overrides)
    risk = settings["risk.item"].params_as(RiskItemParams)
    concern = settings["concern.reported"].params_as(ConcernReportedParams)
    overdue = settings[OVERDUE]
    rupture = settings[RUPTURE]
    return SweepParams(
        escalate_after_hours=(
            ("risk.item", risk.escalate_after_hours),
            ("concern.reported", concern.escalate_after_hours),
        ),
        overdue_days=(
            overdue.params_as(MeasurementOverdueParams).overdue_days if overdue.enabled else None
        ),
        repair_days=(
            rupture.params_as(AllianceRuptureParams).repair_days if rupture.enabled else None
        ),
    )


DEFAULT_PARAMS = sweep_params({})


@dataclass(frozen=True, slots=True)
class OrgGroup:
    """Organisations that share sweep parameters. ``org_ids`` ``None`` with ``exclude``: every
    organisation but those (the ones on the defaults, without listing them all)."""

    params: SweepParams
    org_ids: frozenset[uuid.UUID] | None
    exclude: frozenset[uuid.UUID] = frozenset()


def org_groups(
    overrides_by_org: Mapping[uuid.UUID, Mapping[str, Mapping[str, object]]],
    only: Iterable[uuid.UUID] | None = None,
) -> list[OrgGroup]:
    """Organisations grouped by their effective parameters, so each check runs one statement per
    group, not per organisation. ``only``: restrict to these organisations (a worker per tenant)."""
    wanted = None if only is None else frozenset(only)
    by_params: dict[SweepParams, set[uuid.UUID]] = {}
    for org_id, overrides in overrides_by_org.items():
        if wanted is not None and org_id not in wanted:
            continue
        by_params.setdefault(sweep_params(overrides), set()).add(org_id)
    overridden = frozenset(overrides_by_org)
    groups: list[OrgGroup] = []
    default_orgs = by_params.pop(DEFAULT_PARAMS, set())
    if wanted is None:
        groups.append(OrgGroup(DEFAULT_PARAMS, None, overridden - default_orgs))
    else:
        rest = (wanted - overridden) | default_orgs
        if rest:
            groups.append(OrgGroup(DEFAULT_PARAMS, frozenset(rest)))
    groups += [OrgGroup(params, frozenset(orgs)) for params, orgs in by_params.items()]
    return groups


def overdue_row(
    *,
    org_id: uuid.UUID,
    episode_id: uuid.UUID,
    last_measured_at: datetime,
    measured: bool,
    overdue_days: int,
    now: datetime,
    stamp: datetime,
    alert_id: uuid.UUID,
) -> AlertRow:
    """A new ``measurement.overdue`` alert, overdue as of ``now``, written at ``stamp`` (the
    clock). It belongs to no series (instrument, respondent, rater and subscale ''), so the
    one-unresolved-alert-per-key index allows one per episode."""
    days = (now - last_measured_at) // timedelta(days=1)
    what = "No measurement has come in" if measured else "No measurement has come in yet"
    return {
        "id": alert_id,
        "org_id": org_id,
        "episode_id": episode_id,
        "type": OVERDUE,
        "severity": RULES[OVERDUE].severity,
        "status": "open",
        "resolution": None,
        "instrument": "",
        "respondent": "",
        "rater": "",
        "subscale": "",
        "session_number": None,
        "submission_id": None,
        "first_session_number": None,
        "message": f"{what} for {days} days (more than {overdue_days}): check whether the "
        "client is still attending and ask for a rating at the next session.",
        "evidence": {
            "last_measured_at": last_measured_at.isoformat(),
            "measured": measured,
            "days_since": days,
            "overdue_days": overdue_days,
        },
        "rule_version": RULES[OVERDUE].version,
        "rule_params": {"overdue_days": overdue_days},
        "created_at": stamp,
        "updated_at": stamp,
        "acknowledged_at": None,
        "acknowledged_by_key_id": None,
        "resolved_at": None,
        "resolved_by_key_id": None,
        "note": None,
        "escalated_at": None,
    }


def rupture_without_session(
    row: AlertRow, *, since: datetime, repair_days: int, now: datetime, stamp: datetime
) -> AlertRow:
    """An unresolved rupture alert raised to high: no session since the rupture as of ``now``;
    written at ``stamp`` (the clock)."""
    days = (now - since) // timedelta(days=1)
    raised = row.copy()
    raised["severity"] = "high"
    raised["message"] = (
        f"No session since the rupture ({days} days, more than {repair_days}): the "
        f"client may have dropped out. {row['message']}"
    )
    raised["evidence"] = {
        **row["evidence"],
        "no_session_since": True,
        "days_without_session": days,
        "repair_days": repair_days,
    }
    raised["updated_at"] = stamp
    return raised
