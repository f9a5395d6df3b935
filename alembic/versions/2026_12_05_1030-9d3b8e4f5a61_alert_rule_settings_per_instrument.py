"""alert rule settings per instrument (DESIGN.md §10.2, §10.3.1): carry stored overrides over

Data only, no schema change. Before, ``alliance.low``'s ``cutoff``, ``alliance.drop``'s and
``alliance.rupture``'s ``min_drop`` and ``risk.item``'s ``thresholds`` were rule-wide ``params``;
now they are set per instrument under ``instruments.<code>``. Each stored override is carried to
the instruments it meaningfully applies to, or the upgrade stops with a message naming the
organisation and the rule where it has no valid meaning:

- ``alliance.low`` ``cutoff`` → every alliance instrument that defines a cut-off (SRS; the
  organisation's own) and whose total's range holds it; none → refused.
- ``alliance.drop`` ``min_drop`` → the SRS (the only instrument the rule runs on by default), if it
  lies in (0, 40]; else refused.
- ``alliance.rupture`` ``min_drop`` → the total of every alliance instrument whose range holds it
  (subscales keep their own defaults: a floor on the total's scale means nothing on a subscale's);
  none → refused. ``k`` and ``repair_window`` stay in ``params``.
- ``risk.item`` ``thresholds`` → carried where the item is a risk item of the instrument and the
  value lies above its minimum and at most the definition's threshold; a raised threshold could
  silence a risk answer, so it is refused (reset it with ``PUT /v1/alert-rules/risk.item {}`` on the
  previous release, then upgrade).

Stored organisation instruments whose risk item could be skipped (optional, conditional,
prorated) or whose risk threshold lies at the item's minimum are refused as well: the new
definition rules (§10.3.1) would no longer load them.

The facts of the built-ins are written out here, as they were when this revision was made.

Revision ID: 9d3b8e4f5a61
Revises: 3d7e4f5a6b10
Create Date: 2026-12-05 10:30:00.000000

"""

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "9d3b8e4f5a61"
down_revision: str | Sequence[str] | None = "3d7e4f5a6b10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


class Instrument:
    """What this migration needs of a definition: kind, the total's range, whether it defines a
    cut-off, and its risk items as (item minimum, threshold)."""

    def __init__(
        self,
        kind: str,
        span: tuple[Decimal, Decimal] | None,
        has_cutoff: bool,
        risk: Mapping[str, tuple[Decimal, Decimal]],
    ) -> None:
        self.kind, self.span, self.has_cutoff, self.risk = kind, span, has_cutoff, risk


BUILTINS: dict[str, Instrument] = {
    "srs": Instrument("alliance", (Decimal(0), Decimal(40)), True, {}),
    "wai-sr": Instrument("alliance", (Decimal(12), Decimal(60)), False, {}),
    "ors": Instrument("outcome", (Decimal(0), Decimal(40)), True, {}),
    "phq-9": Instrument("symptom", (Decimal(0), Decimal(27)), True, {"q9": (Decimal(0), Decimal(1))}),
    "gad-7": Instrument("symptom", (Decimal(0), Decimal(21)), True, {}),
    "chs": Instrument("humility", (Decimal(12), Decimal(60)), False, {}),
    "rupture-check": Instrument("rupture", None, False, {}),
}


class Refused(RuntimeError):
    pass


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


def _parse(raw: Mapping[str, Any]) -> tuple[Instrument, list[str]]:
    """An organisation's stored definition; and why its risk items could be skipped, if so."""
    items = {it["id"]: it for it in raw.get("items", [])}
    scoring = raw.get("scoring") or {}
    method = scoring.get("method", "sum")
    in_total = [it for it in items.values() if it.get("in_total", True)]
    span: tuple[Decimal, Decimal] | None = None
    if method != "none" and in_total:
        lo = sum((_d(it["min"]) for it in in_total), Decimal(0))
        hi = sum((_d(it["max"]) for it in in_total), Decimal(0))
        if method == "mean":
            lo, hi = lo / len(in_total), hi / len(in_total)
        span = (lo, hi)
    risk: dict[str, tuple[Decimal, Decimal]] = {}
    problems: list[str] = []
    for r in raw.get("risk_items", []):
        item = items.get(r["item"])
        if item is None:
            continue
        risk[r["item"]] = (_d(item["min"]), _d(r["threshold"]))
        if not item.get("required", True) or item.get("when") is not None:
            problems.append(f"risk item '{r['item']}' is optional or conditional")
        if item.get("in_total", True) and scoring.get("max_missing_prorated", 0):
            problems.append(f"risk item '{r['item']}' could be prorated")
        if _d(r["threshold"]) <= _d(item["min"]):
            problems.append(f"risk item '{r['item']}' has a threshold at its minimum")
    instrument = Instrument(raw.get("kind", "other"), span, raw.get("cutoff") is not None, risk)
    return instrument, problems


def _in_range(value: Any, span: tuple[Decimal, Decimal] | None) -> bool:
    return span is not None and span[0] <= _d(value) <= span[1]


def _min_drop_ok(value: Any, span: tuple[Decimal, Decimal] | None) -> bool:
    return span is not None and 0 < _d(value) <= span[1] - span[0]


def carry(rule_id: str, body: Mapping[str, Any], catalog: Mapping[str, Instrument]) -> dict[str, Any]:
    """The new body of one stored override; :class:`Refused` (a reason) where it has no valid
    meaning. Pure, so the tests can read it as well as run it."""
    params = dict(body.get("params") or {})
    instruments: dict[str, Any] = {k: dict(v) for k, v in (body.get("instruments") or {}).items()}
    alliance = {c: i for c, i in sorted(catalog.items()) if i.kind == "alliance"}
    if rule_id == "alliance.low" and params.get("cutoff") is not None:
        cutoff = params.pop("cutoff")
        targets = [c for c, i in alliance.items() if i.has_cutoff and _in_range(cutoff, i.span)]
        if not targets:
            raise Refused(f"cutoff {cutoff} lies on no alliance instrument's scale that has a cut-off")
        for code in targets:
            instruments.setdefault(code, {})["cutoff"] = cutoff
    elif rule_id == "alliance.low":
        params.pop("cutoff", None)
    if rule_id == "alliance.drop" and "min_drop" in params:
        min_drop = params.pop("min_drop")
        if not _min_drop_ok(min_drop, catalog["srs"].span):
            raise Refused(f"min_drop {min_drop} means nothing on the SRS (0-40)")
        instruments.setdefault("srs", {})["min_drop"] = min_drop
    if rule_id == "alliance.rupture" and params.get("min_drop") is not None:
        min_drop = params.pop("min_drop")
        targets = [c for c, i in alliance.items() if _min_drop_ok(min_drop, i.span)]
        if not targets:
            raise Refused(f"min_drop {min_drop} lies on no alliance instrument's scale")
        for code in targets:
            instruments.setdefault(code, {})["min_drop"] = min_drop
    elif rule_id == "alliance.rupture":
        params.pop("min_drop", None)
    if rule_id == "risk.item" and "thresholds" in params:
        for code, thresholds in (params.pop("thresholds") or {}).items():
            instrument = catalog.get(code)
            for item, value in thresholds.items():
                bounds = None if instrument is None else instrument.risk.get(item)
                if bounds is None:
                    raise Refused(f"'{item}' of '{code}' is not a risk item of a known instrument")
                minimum, defined = bounds
                if not minimum < _d(value) <= defined:
                    raise Refused(
                        f"threshold {value} for '{code}' item '{item}' is outside "
                        f"({minimum}, {defined}]: a risk threshold may only be lowered "
                        "(DESIGN.md §10.3.1); reset it with PUT /v1/alert-rules/risk.item {} "
                        "on the previous release"
                    )
                instruments.setdefault(code, {}).setdefault("thresholds", {})[item] = value
    out: dict[str, Any] = {k: v for k, v in body.items() if k not in ("params", "instruments")}
    if params:
        out["params"] = params
    if instruments:
        out["instruments"] = instruments
    return out


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    conn = op.get_bind()
    orgs = {
        str(org_id): slug
        for org_id, slug in conn.execute(sa.text("SELECT id, slug FROM organizations"))
    }
    own: dict[str, dict[str, Instrument]] = {}
    refused: list[str] = []
    rows = conn.execute(
        sa.text("SELECT org_id, code, definition FROM instrument_definitions ORDER BY id")
    ).all()
    for org_id, code, definition in rows:  # later versions were stored later: the last one wins
        instrument, problems = _parse(_json(definition))
        own.setdefault(str(org_id), {})[code] = instrument
        refused += [f"organization '{orgs.get(str(org_id))}', instrument '{code}': {p}" for p in problems]
    settings = conn.execute(sa.text("SELECT org_id, rule_id, body FROM alert_rule_settings")).all()
    updates: list[dict[str, Any]] = []
    for org_id, rule_id, raw in settings:
        body = _json(raw)
        try:
            new = carry(rule_id, body, {**BUILTINS, **own.get(str(org_id), {})})
        except Refused as reason:
            refused.append(f"organization '{orgs.get(str(org_id))}', rule '{rule_id}': {reason}")
            continue
        if new != body:
            updates.append({"org_id": org_id, "rule_id": rule_id, "body": new})
    if refused:
        raise RuntimeError(
            "alert-rule settings or instruments have no valid meaning under the per-instrument "
            "settings of DESIGN.md §10.2-§10.3; change them on the previous release, then "
            "upgrade:\n  " + "\n  ".join(refused)
        )
    # The org id goes back as it was read (a UUID on PostgreSQL, its stored text on SQLite).
    update = sa.text(
        "UPDATE alert_rule_settings SET body = :body WHERE org_id = :org_id AND rule_id = :rule_id"
    ).bindparams(
        sa.bindparam("body", type_=sa.JSON().with_variant(postgresql.JSONB(), "postgresql"))
    )
    for values in updates:
        conn.execute(update, values)


def downgrade() -> None:
    # The old shape cannot hold per-instrument values; the settings stay as they are.
    pass
