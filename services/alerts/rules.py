"""The alert rules of DESIGN.md §6 as pure functions over one series.

A series is an episode's valid submissions of one instrument by one respondent (and rater), one per
session, in session order. Each rule turns the series into :class:`~services.alerts.model.Event`\\ s
(raise / clear / escalate, per session and key) and :mod:`services.alerts.replay` folds them into
alerts. Every rule is *causal*: an event at session t depends only on the sessions up to t, so the
alerts of a history are the same whether it is replayed at once or one submission at a time.

Instruments take part through their definitions: kind, direction, cut-off for the population,
reliable-change points, risk items and subscales. Missing data means no alert from that rule (no
cut-off → no ``alliance.low`` or ``outcome.not_on_track``; no reliable change → no outcome rules;
fewer than 4 scores → no rupture).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from itertools import pairwise
from typing import TypeVar, Unpack

from pydantic import BaseModel, JsonValue

from services.alerts.model import Action, Event, EventDetails, SeriesPoint
from services.alerts.settings import (
    RULES,
    AllianceDropParams,
    AllianceLowParams,
    AllianceRuptureParams,
    NoParams,
    NotOnTrackParams,
    RiskItemParams,
    RuleId,
    RuleSetting,
    RuptureReportedParams,
    Severity,
    params_for,
    resolve_settings,
)
from services.alerts.settings import risk_thresholds as bounded_risk_thresholds
from services.instruments.registry import builtin_instruments
from services.instruments.schema import Direction, InstrumentDefinition, Population, dec
from services.scoring.engine import cutoff_for, in_clinical_range, population_value
from services.trajectory.etr import (
    ExpectedResponse,
    curve_session,
    expected_at,
    worse_than_expected,
)
from services.trajectory.reliable_change import healthy_change, reliable_direction
from services.trajectory.ruptures import find_ruptures

# ----- plain-language helpers ---------------------------------------------------------------------

_DISPLAY_NAMES = {
    "srs": "SRS",
    "ors": "ORS",
    "wai-sr": "WAI-SR",
    "phq-9": "PHQ-9",
    "gad-7": "GAD-7",
    "chs": "CHS",
    "rupture-check": "Rupture check",
}


def display_name(defn: InstrumentDefinition) -> str:
    """Short name of a built-in (SRS, WAI-SR, PHQ-9, …); an organisation's instrument by its
    definition's name (even if its code happens to match a built-in's)."""
    short = _DISPLAY_NAMES.get(defn.code)
    if short is None:
        return defn.name
    builtin = builtin_instruments().get(defn.code)
    if builtin is None:
        return defn.name
    # Identity first, the built-in or its view for a respondent: comparing definitions is costly.
    if builtin is defn or builtin.for_respondent(defn.rated_by) is defn or builtin == defn:
        return short
    return defn.name


def subscale_label(subscale: str) -> str:
    """``bond`` → ``Bond``; ``low_mood`` → ``Low mood``."""
    text = subscale.replace("_", " ")
    return text[:1].upper() + text[1:]


def series_label(defn: InstrumentDefinition, subscale: str | None) -> str:
    """``SRS total`` or ``Bond (WAI-SR)``."""
    name = display_name(defn)
    return f"{name} total" if subscale is None else f"{subscale_label(subscale)} ({name})"


def fmt(value: float | Decimal, places: int | None = None) -> str:
    """35.9 → ``35.9``; 36.0 → ``36``; with ``places``, rounded first (5.747681 → ``5.75``)."""
    d = dec(value)
    if places is not None:
        d = round(d, places)
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def points(value: float | Decimal, places: int | None = None) -> str:
    """``1 point``, ``8 points``, ``0.5 points``."""
    text = fmt(value, places)
    return f"{text} point" if text == "1" else f"{text} points"


def _num(value: float | Decimal) -> float:
    return float(dec(value))


def _worse_verb(direction: Direction) -> str:
    return "fell" if direction == "higher_is_better" else "rose"


def _observed(
    series: Sequence[SeriesPoint], subscale: str | None
) -> list[tuple[SeriesPoint, float]]:
    """The points that carry a value for the total (``subscale=None``) or the subscale."""
    out = []
    for p in series:
        value = p.total if subscale is None else p.subscales.get(subscale)
        if value is not None:
            out.append((p, value))
    return out


def _event(
    rule_id: RuleId,
    defn: InstrumentDefinition,
    p: SeriesPoint,
    action: Action,
    subscale: str | None = None,
    **fields: Unpack[EventDetails],
) -> Event:
    """An event of ``rule_id`` at the session of ``p``, for the total or ``subscale``."""
    return Event(
        session_number=p.session_number,
        submission_id=p.submission_id,
        rule_id=rule_id,
        instrument=defn.code,
        subscale=subscale,
        action=action,
        **fields,
    )


def _raise(
    rule_id: RuleId,
    defn: InstrumentDefinition,
    p: SeriesPoint,
    *,
    subscale: str | None = None,
    severity: Severity | None = None,
    message: str,
    evidence: dict[str, JsonValue],
    params: dict[str, JsonValue],
) -> Event:
    return _event(
        rule_id, defn, p, "raise", subscale,
        severity=severity or RULES[rule_id].severity, message=message, evidence=evidence,
        params=params,
    )  # fmt: skip


def _clear(
    rule_id: RuleId, defn: InstrumentDefinition, p: SeriesPoint, subscale: str | None = None
) -> Event:
    return _event(rule_id, defn, p, "clear", subscale, resolution="condition_cleared")


# ----- alliance -----------------------------------------------------------------------------------


def alliance_low(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population,
    params: AllianceLowParams,
    since: int = 0,
) -> list[Event]:
    """Total on the clinical side of the cut-off (SRS: below 36; 36.0 is not below). Cleared when a
    later total is back on the other side."""
    direction = defn.direction
    # The cut-off is the instrument's, or the organisation's for it (settings.params_for).
    cutoff = population_value(params.cutoff, population)
    if direction is None or cutoff is None:
        return []
    label = series_label(defn, None)
    side = "below" if direction == "higher_is_better" else "at or above"
    used: dict[str, JsonValue] = {"cutoff": _num(cutoff)}
    events = []
    for p, total in _observed(series, None):
        if p.session_number < since:
            continue
        if not in_clinical_range(total, cutoff, direction):
            events.append(_clear("alliance.low", defn, p))
            continue
        events.append(
            _raise(
                "alliance.low", defn, p,
                message=f"{label} {fmt(total)} is {side} the cut-off of {fmt(cutoff)}: "
                "a possible problem in the working relationship.",
                evidence={
                    "current": _num(total), "cutoff": _num(cutoff), "population": population,
                    "direction": direction, "sessions": [p.session_number],
                },
                params=used,
            )
        )  # fmt: skip
    return events


def alliance_drop(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population,
    params: AllianceDropParams,
    since: int = 0,
) -> list[Event]:
    """Total worse by at least ``min_drop`` than the previous observed total (OpenFIT: SRS 38 → 37
    fires although 37 is above the cut-off). Cleared by a person."""
    direction = defn.direction
    if direction is None:
        return []
    label = series_label(defn, None)
    events = []
    observed = _observed(series, None)
    for (before, previous), (p, current) in pairwise(observed):
        if p.session_number < since:
            continue
        drop = -healthy_change(previous, current, direction)
        if dec(drop) < dec(params.min_drop):
            continue
        events.append(
            _raise(
                "alliance.drop", defn, p,
                message=f"{label} {_worse_verb(direction)} from {fmt(previous)} to "
                f"{fmt(current)} — {points(drop)} since the previous session.",
                evidence={
                    "previous": _num(previous), "current": _num(current), "drop": drop,
                    "threshold": params.min_drop,
                    "sessions": [before.session_number, p.session_number],
                },
                params={"min_drop": params.min_drop},
            )
        )  # fmt: skip
    return events


def alliance_rupture(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population,
    params: AllianceRuptureParams,
    since: int = 0,
) -> list[Event]:
    """Within-client rupture on the total and each subscale (:func:`find_ruptures`, mirrored for a
    lower-is-better instrument). Per rupture: raise (warning) at its session; ``repaired`` at the
    repair session if it came within the window; else escalate to high at the first observed
    session at or after the window's end. Repair and escalation only touch the alert while it still
    tracks that rupture (a later rupture on the same key updates the alert and takes over)."""
    direction = defn.direction
    if direction is None:
        return []
    sign = 1.0 if direction == "higher_is_better" else -1.0
    window = params.repair_window
    events: list[Event] = []
    for subscale in [None, *defn.subscales]:
        # Per scale: the instrument's total or subscale (settings.params_for, DESIGN.md §10.2).
        min_drop = params.min_drop if subscale is None else params.subscale_min_drop.get(subscale)
        if min_drop is None:
            continue
        observed = _observed(series, subscale)
        by_session = {p.session_number: (i, p, v) for i, (p, v) in enumerate(observed)}
        label = series_label(defn, subscale)
        used: dict[str, JsonValue] = {"k": params.k, "min_drop": min_drop, "repair_window": window}
        found = find_ruptures(
            [(p.session_number, sign * v) for p, v in observed],
            min_drop=min_drop,
            k=params.k,
            repair_window=window,
        )
        for r in found:
            i, p, current = by_session[r.session_number]
            start = i - 1 if r.start_session is None else by_session[r.start_session][0]
            previous = observed[start][1]
            # A gradual decline (DESIGN.md §10.3.7; Gumz et al. 2012): the fall is counted from
            # the level before it began, which is also the level a repair must reach.
            over = "" if r.pattern == "sudden" else f" over {i - start} sessions"
            message = (
                f"{label} {_worse_verb(direction)} from {fmt(previous)} to {fmt(current)}{over} — "
                f"{points(r.drop)}, more than this client's usual variation."
            )
            evidence: dict[str, JsonValue] = {
                "previous": _num(previous), "current": _num(current), "drop": r.drop,
                "threshold": round(r.threshold, 4), "earlier_sd": round(r.earlier_sd, 4),
                "pattern": r.pattern,
                "sessions": [q.session_number for q, _ in observed[start : i + 1]],
                "repair_window": window,
            }  # fmt: skip
            events.append(
                _raise(
                    "alliance.rupture", defn, p, subscale=subscale,
                    message=message, evidence=evidence, params=used,
                )
            )  # fmt: skip
            window_end = r.session_number + window
            if r.repaired_at_session is not None:
                _, repair, score = by_session[r.repaired_at_session]
                events.append(
                    _event(
                        "alliance.rupture", defn, repair, "clear", subscale,
                        resolution="repaired", only_if_session=r.session_number,
                        evidence={"repaired_at_session": repair.session_number,
                                  "repair_score": _num(score)},
                    )
                )  # fmt: skip
                continue
            late = next((q for q, _ in observed[i + 1 :] if q.session_number >= window_end), None)
            if late is not None:
                events.append(
                    _event(
                        "alliance.rupture", defn, late, "escalate", subscale,
                        severity="high", only_if_session=r.session_number,
                        message=f"{message} Not back to the earlier level of {fmt(previous)} "
                        f"within {window} sessions.",
                        evidence={"unrepaired": True, "repair_window_end": window_end},
                    )
                )  # fmt: skip
    return [e for e in events if e.session_number >= since]


# ----- rupture-check ------------------------------------------------------------------------------


def rupture_reported(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population,
    params: RuptureReportedParams,
    since: int = 0,
) -> list[Event]:
    """tension = 1 and resolution ≤ ``resolution_max`` (not resolved), or intensity ≥
    ``intensity_min`` (strong): warning; high if both. Needs the items ``tension``, ``intensity``
    and ``resolution`` (an organisation's rupture-kind instrument without them takes no part)."""
    ids = {it.id for it in defn.items}
    if not {"tension", "intensity", "resolution"} <= ids:
        return []
    intensity_max = fmt(defn.item("intensity").max)
    resolution_max = fmt(defn.item("resolution").max)
    name = display_name(defn)
    events = []
    for p in series:
        if p.session_number < since or p.answers.get("tension") != 1:
            continue
        intensity = p.answers.get("intensity")
        resolution = p.answers.get("resolution")
        strong = intensity is not None and dec(intensity) >= params.intensity_min
        unresolved = resolution is not None and dec(resolution) <= params.resolution_max
        if not (strong or unresolved):
            continue
        parts = []
        if strong:
            assert intensity is not None
            parts.append(f"strong (intensity {fmt(intensity)} of {intensity_max})")
        if unresolved:
            assert resolution is not None
            parts.append(
                f"not resolved by the end of the session (resolution {fmt(resolution)} "
                f"of {resolution_max})"
            )
        events.append(
            _raise(
                "rupture.reported", defn, p,
                severity="high" if strong and unresolved else "warning",
                message=f"{name}: the client reported tension with the therapist in this "
                f"session that was {' and '.join(parts)}.",
                evidence={
                    "tension": 1,
                    "intensity": None if intensity is None else _num(intensity),
                    "resolution": None if resolution is None else _num(resolution),
                    "intensity_min": params.intensity_min,
                    "resolution_max": params.resolution_max,
                    "sessions": [p.session_number],
                },
                params=params.model_dump(),
            )
        )  # fmt: skip
    return events


# ----- risk ---------------------------------------------------------------------------------------


def risk_thresholds(defn: InstrumentDefinition, params: RiskItemParams) -> dict[str, float]:
    """Threshold of each risk item: the organisation's where more sensitive, else the
    definition's, so that no setting can silence a risk item (DESIGN.md §10.3.1)."""
    return bounded_risk_thresholds(defn, params.thresholds)


def risk_item(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population,
    params: RiskItemParams,
    since: int = 0,
) -> list[Event]:
    """A risk item answered at or above its threshold → critical, whatever the total (never
    suppressed by a low total; raised for every instrument whose definition has risk items)."""
    if not defn.risk_items:
        return []
    thresholds = risk_thresholds(defn, params)
    labels = {r.item: r.label for r in defn.risk_items}
    name = display_name(defn)
    used: dict[str, JsonValue] = {"thresholds": dict(thresholds)}
    events = []
    for p in series:
        if p.session_number < since:
            continue
        flagged: list[JsonValue] = []
        texts = []
        for item_id, threshold in thresholds.items():
            answer = p.answers.get(item_id)
            if answer is None or dec(answer) < dec(threshold):
                continue
            flagged.append(
                {"item": item_id, "label": labels[item_id], "answer": _num(answer),
                 "threshold": threshold}
            )  # fmt: skip
            texts.append(
                f"{labels[item_id]} answered {fmt(answer)}, at or above the risk threshold of "
                f"{fmt(threshold)}"
            )
        if not flagged:
            continue
        events.append(
            _raise(
                "risk.item", defn, p, severity="critical",
                message=f"{name}: {'; '.join(texts)}. Follow up whatever the total score.",
                evidence={
                    "items": flagged,
                    "total": None if p.total is None else _num(p.total),
                    "sessions": [p.session_number],
                },
                params=used,
            )
        )  # fmt: skip
    return events


# ----- outcome ------------------------------------------------------------------------------------


def _change_text(change: float) -> str:
    if change > 0:
        return f"{points(change)} better than"
    if change < 0:
        return f"{points(-change)} worse than"
    return "no change from"


def outcome_deterioration(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population,
    params: NoParams,
    since: int = 0,
) -> list[Event]:
    """Worse than the episode's first score by at least the reliable-change points (ORS 5 down,
    PHQ-9 6 up, GAD-7 4 up) → high; cleared when a later score is no longer that much worse."""
    direction = defn.direction
    rc = defn.reliable_change_points
    observed = _observed(series, None)
    if direction is None or rc is None or not observed:
        return []
    first_point, first = observed[0]
    label = series_label(defn, None)
    events = []
    for p, total in observed:
        if p.session_number < since:
            continue
        if reliable_direction(first, total, rc, direction) != "deteriorated":
            events.append(_clear("outcome.deterioration", defn, p))
            continue
        worse = -healthy_change(first, total, direction)
        events.append(
            _raise(
                "outcome.deterioration", defn, p,
                message=f"{label} {_worse_verb(direction)} from {fmt(first)} at the first "
                f"session to {fmt(total)} — {points(worse)} worse, at least the "
                f"{points(rc, 2)} of reliable change.",
                evidence={
                    "first": _num(first), "current": _num(total), "worse_by": worse,
                    "reliable_change": rc, "direction": direction,
                    "sessions": [first_point.session_number, p.session_number],
                },
                params={},
            )
        )  # fmt: skip
    return events


def outcome_not_on_track(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population,
    params: NotOnTrackParams,
    since: int = 0,
    *,
    expected: ExpectedResponse | None = None,
) -> list[Event]:
    """With the organisation's expected-response model for the instrument, see
    :func:`_not_on_track_by_model`. Otherwise: first score in the clinical range (cut-off for the
    population, direction-aware) and, from the ``min_session``-th observed score of the series on
    (the first score counts as 1), neither reliably improved from the first score nor out of the
    clinical range → warning (high from the ``high_from_session``-th score). DESIGN.md §10.3.4:
    time on track is counted in observed scores, not session numbers, so an instrument first
    entered at session 9 is not judged on its first score (psychometrics.md "Not on track": no
    reliable improvement by the 4th measurement; early change predicts outcome best). Cleared when
    the client has improved reliably **or** is no longer in the clinical range; a later score back
    in it without reliable improvement raises it again."""
    if expected is not None:
        return _not_on_track_by_model(defn, series, population, params, since, expected)
    direction = defn.direction
    rc = defn.reliable_change_points
    cutoff = cutoff_for(defn, population)
    observed = _observed(series, None)
    if direction is None or rc is None or cutoff is None or not observed:
        return []
    first_point, first = observed[0]
    if not in_clinical_range(first, cutoff, direction):
        return []
    label = series_label(defn, None)
    used: dict[str, JsonValue] = params.model_dump()
    events = []
    for count, (p, total) in enumerate(observed, start=1):
        if count < params.min_session or p.session_number < since:
            continue
        if reliable_direction(first, total, rc, direction) == "improved" or not in_clinical_range(
            total, cutoff, direction
        ):
            events.append(_clear("outcome.not_on_track", defn, p))
            continue
        change = healthy_change(first, total, direction)
        high = count >= params.high_from_session
        events.append(
            _raise(
                "outcome.not_on_track", defn, p, severity="high" if high else "warning",
                message=f"{label} is {fmt(total)} at session {p.session_number}, "
                f"{_change_text(change)} the first score of {fmt(first)} and still in the "
                f"clinical range; a reliable improvement needs {points(rc, 2)}. Not on track.",
                evidence={
                    "first": _num(first), "current": _num(total), "improvement": change,
                    "reliable_change": rc, "cutoff": _num(cutoff), "population": population,
                    "direction": direction,
                    "sessions": [first_point.session_number, p.session_number],
                },
                params=used,
            )
        )  # fmt: skip
    return events


# [D] With a model, a score can be judged from the second of the series on: the first is the
# intake that picks the band (Lambert's OQ system gives feedback from the second session).
MODEL_FROM_SCORE = 2


def _not_on_track_by_model(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population,
    params: NotOnTrackParams,
    since: int,
    model: ExpectedResponse,
) -> list[Event]:
    """Worse than the failure boundary of the expected response for the client's intake band
    (Finch, Lambert & Schaalje 2001: outside the tolerance band around the expected recovery
    curve; below p10 for higher-is-better, above p90 for lower-is-better, Attune's boundary [D];
    DESIGN.md §10.5) → warning, high from the ``high_from_session``-th observed score. Time is
    still counted in observed scores (DESIGN.md §10.3.4: from the 2nd score here, the 1st being
    the intake), and the alert still clears when the client has improved reliably **or** is no
    longer in the clinical range, whatever the model says, as in the rule without a model."""
    direction = defn.direction
    observed = _observed(series, None)
    if direction is None or not observed:
        return []
    rc = defn.reliable_change_points
    cutoff = cutoff_for(defn, population)
    first_point, first = observed[0]
    label = series_label(defn, None)
    used: dict[str, JsonValue] = params.model_dump()
    boundary_name = "p10" if direction == "higher_is_better" else "p90"
    side = "below" if direction == "higher_is_better" else "above"
    events = []
    for count, (p, total) in enumerate(observed, start=1):
        if count < MODEL_FROM_SCORE or p.session_number < since:
            continue
        at = curve_session(p.session_number, first_point.session_number)
        exp = expected_at(model, first, at)
        if (
            exp is None
            or not worse_than_expected(total, exp, direction)
            or (rc is not None and reliable_direction(first, total, rc, direction) == "improved")
            or (cutoff is not None and not in_clinical_range(total, cutoff, direction))
        ):
            events.append(_clear("outcome.not_on_track", defn, p))
            continue
        boundary = exp.p10 if direction == "higher_is_better" else exp.p90
        high = count >= params.high_from_session
        events.append(
            _raise(
                "outcome.not_on_track", defn, p, severity="high" if high else "warning",
                message=f"{label} is {fmt(total)} at session {p.session_number}, {side} the "
                f"{boundary_name} of {fmt(boundary, 2)} expected for clients who started at "
                f"{fmt(first)} (median {fmt(exp.p50, 2)}). Not on track.",
                evidence={
                    "first": _num(first), "current": _num(total), "basis": "expected_response",
                    "expected": {"p10": exp.p10, "p50": exp.p50, "p90": exp.p90},
                    "boundary": boundary, "curve_session": at,
                    "cutoff": None if cutoff is None else _num(cutoff), "population": population,
                    "direction": direction, "model_source": model.source,
                    "sessions": [first_point.session_number, p.session_number],
                },
                params=used,
            )
        )  # fmt: skip
    return events


# ----- all rules ----------------------------------------------------------------------------------

_Rule = Callable[
    [InstrumentDefinition, Sequence[SeriesPoint], Population, BaseModel, int], list[Event]
]


P = TypeVar("P", bound=BaseModel)


def _checked(
    fn: Callable[[InstrumentDefinition, Sequence[SeriesPoint], Population, P, int], list[Event]],
    model: type[P],
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population,
    params: BaseModel,
    since: int,
) -> list[Event]:
    """``fn`` over the series, once ``params`` is known to be its rule's model. Checked on each
    call (not once when the table below is built), so mutation testing can reach it too."""
    if not isinstance(params, model):
        raise TypeError(f"expected {model.__name__}, got {type(params).__name__}")
    return fn(defn, series, population, params, since)


SERIES_RULES: dict[RuleId, _Rule] = {
    "alliance.low": partial(_checked, alliance_low, AllianceLowParams),
    "alliance.drop": partial(_checked, alliance_drop, AllianceDropParams),
    "alliance.rupture": partial(_checked, alliance_rupture, AllianceRuptureParams),
    "rupture.reported": partial(_checked, rupture_reported, RuptureReportedParams),
    "risk.item": partial(_checked, risk_item, RiskItemParams),
    "outcome.deterioration": partial(_checked, outcome_deterioration, NoParams),
    "outcome.not_on_track": partial(_checked, outcome_not_on_track, NotOnTrackParams),
}


def rule_events(
    defn: InstrumentDefinition,
    series: Sequence[SeriesPoint],
    population: Population,
    settings: Mapping[str, RuleSetting] | None = None,
    since: int = 0,
    *,
    expected: ExpectedResponse | None = None,
) -> list[Event]:
    """Every event of every applicable, enabled rule over the series, ordered by session and, within
    a session, by rule (registry order) and by the rule's own order. ``risk.item`` runs even when a
    setting says disabled. ``since``: only the events of sessions from that number on (the rules
    still read the earlier history; they just do not describe it). ``expected``: the
    organisation's expected-response model for the series, if any (``outcome.not_on_track``)."""
    resolved = resolve_settings(settings)
    events: list[Event] = []
    for rule_id, spec in RULES.items():
        rule = SERIES_RULES.get(rule_id)
        if rule is None or defn.kind not in spec.kinds:
            continue
        setting = resolved[rule_id]
        if not setting.enabled and spec.can_disable:
            continue
        params = params_for(setting, defn)  # this instrument's values (DESIGN.md §10.2)
        if params is None:
            continue  # the instrument takes no part in this rule
        if rule_id == "outcome.not_on_track" and expected is not None:
            assert isinstance(params, NotOnTrackParams)
            events += outcome_not_on_track(
                defn, series, population, params, since, expected=expected
            )
            continue
        events += rule(defn, series, population, params, since)
    return sorted(events, key=lambda e: e.session_number)  # stable: rule order within a session
