"""One series' trajectory as a Vega-Lite spec (DESIGN.md §10.4): pure, so a client that draws the
chart itself (``format=vega``) and the server's SVG and PNG show the same thing.

What the chart shows, layer by layer (each layer is named, so the SVG's mark groups carry the
name as a class: ``scores_marks``, ``cutoff_marks``, …):

- ``clinical_zone`` and ``cutoff``: the cut-off the trajectory used as a dashed line, and the
  clinical side of it shaded (higher-is-better: below it, SRS < 36 and ORS < 25 adult, OpenFIT;
  lower-is-better: at or above it, PHQ-9 ≥ 10, GAD-7 ≥ 8, NHS Talking Therapies;
  reference/psychometrics.md);
- ``expected_band`` and ``expected_median``: the expected-response band (p10 to p90) and its median,
  where the points carry ``expected`` (DESIGN.md §10.5; Finch, Lambert & Schaalje 2001);
- ``score_line`` and ``scores``: the totals by session, on the instrument's whole scale;
- ``sudden_gains`` / ``sudden_losses``: the session-to-session steps that met Tang & DeRubeis
  (1999), as thick segments over the line;
- ``ruptures`` / ``repairs``: rings around the session where the alliance fell (Stiles et al.
  2004; Attune's rule, DESIGN.md §6) and the session where it came back;
- ``alerts``: a triangle above the plot at each session that raised an alert of the series,
  coloured by severity.

The same facts are written out in words (:attr:`Chart.description`) for the SVG's ``<desc>``, so
a screen reader says what a sighted reader sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.alerts.rules import display_name, fmt, subscale_label
from services.instruments.schema import InstrumentDefinition
from services.trajectory.analysis import Trajectory, TrajectoryPoint

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
WIDTH = 640
HEIGHT = 320

# Colours chosen for contrast on white (WCAG 2.1 non-text contrast ≥ 3:1 for the marks).
SCORE_COLOUR = "#1f4e79"
CUTOFF_COLOUR = "#b22222"
ZONE_COLOUR = "#d62728"
EXPECTED_COLOUR = "#6b6b6b"
GAIN_COLOUR = "#1e7b34"
LOSS_COLOUR = "#b22222"
RUPTURE_COLOUR = "#8b1a1a"
REPAIR_COLOUR = "#1e7b34"
SEVERITY_COLOURS = {"warning": "#a35200", "high": "#c0392b", "critical": "#6e0000"}
SEVERITY_RANK = {"warning": 0, "high": 1, "critical": 2}

ALERT_LABELS = {
    "alliance.low": "low alliance",
    "alliance.drop": "alliance drop",
    "alliance.rupture": "rupture",
    "rupture.reported": "rupture reported",
    "risk.item": "risk item",
    "outcome.deterioration": "deterioration",
    "outcome.not_on_track": "not on track",
    "measurement.overdue": "measurement overdue",
}
# Each mark's accessible name (the SVG's aria-label) and tooltip: the words of its data row.
LABEL = {"field": "label", "type": "nominal"}
# Past this many, a list in the description says "and N more" (the chart still shows them all).
LISTED = 12


@dataclass(frozen=True, slots=True)
class AlertMarker:
    """An alert of the series, as the chart marks it."""

    session_number: int
    type: str
    severity: str
    status: str
    subscale: str | None = None


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart: its Vega-Lite spec, and its title and description in words."""

    title: str
    description: str
    vega_lite: dict[str, object]  # JSON, as Vega-Lite reads it


def _layer(
    name: str,
    values: Sequence[Mapping[str, object]],
    mark: Mapping[str, object],
    **encoding: object,
) -> dict[str, object]:
    return {"name": name, "data": {"values": values}, "mark": mark, "encoding": encoding}


def _expected(point: TrajectoryPoint) -> tuple[float, float, float] | None:
    """The point's expected response (p10, p50, p90), when the trajectory carries one: the field
    exists only where an expected-response model does (DESIGN.md §10.5), so it is read by name."""
    expected = point.model_dump().get("expected")
    if not isinstance(expected, Mapping):
        return None
    try:
        return float(expected["p10"]), float(expected["p50"]), float(expected["p90"])
    except (KeyError, TypeError, ValueError):
        return None


def _listed(parts: Sequence[str]) -> str:
    shown = list(parts[:LISTED])
    if len(parts) > LISTED:
        shown.append(f"and {len(parts) - LISTED} more")
    return "; ".join(shown)


_WHOSE = {"client": "the client's", "clinician": "the clinician's", "collateral": "a collateral's"}


def _who(definition: InstrumentDefinition, rater: str | None) -> str:
    text = f"{_WHOSE[definition.rated_by]} ratings"
    return text if rater is None else f"{text} ({rater})"


def trajectory_chart(
    definition: InstrumentDefinition,
    trajectory: Trajectory,
    alerts: Sequence[AlertMarker] = (),
    *,
    rater: str | None = None,
) -> Chart:
    """The chart of ``trajectory`` (the series of ``definition``, as its respondent is judged).
    Raises ``ValueError`` for an instrument without a total (nothing to draw on a scale)."""
    scale = definition.total_range
    if scale is None:
        raise ValueError(f"'{definition.code}' has no total to chart")
    name = display_name(definition)
    direction = definition.direction
    cutoff = trajectory.cutoff
    scored = [p for p in trajectory.points if p.total is not None]
    # The instrument's scale, widened to any score beyond it (one scored under an earlier version
    # of an organisation's instrument), so that no point is ever drawn off the plot.
    low = min([scale[0], *(p.total for p in scored if p.total is not None)])
    high = max([scale[1], *(p.total for p in scored if p.total is not None)])
    by_session = {p.session_number: p.total for p in scored}
    sessions = [p.session_number for p in scored] or [1]
    x_domain = [min(sessions) - 0.5, max(sessions) + 0.5]

    x = {
        "field": "session",
        "type": "quantitative",
        "title": "Session",
        "scale": {"domain": x_domain, "nice": False, "zero": False},
        "axis": {"tickMinStep": 1, "format": "d", "grid": False},
    }
    y = {
        "field": "score",
        "type": "quantitative",
        "title": f"{name} total ({fmt(low)} to {fmt(high)})",
        "scale": {"domain": [low, high], "nice": False, "zero": False},
    }

    def at(field: str, base: Mapping[str, object]) -> dict[str, object]:
        return {**base, "field": field}

    layers: list[dict[str, object]] = []
    words: list[str] = []
    title = f"{name} by session"
    words.append(
        f"{name} totals by session from {_who(definition, rater)}, on the instrument's scale of "
        f"{fmt(low)} to {fmt(high)} ({'higher' if direction != 'lower_is_better' else 'lower'} "
        "is better)."
    )
    if scored:
        first, last = scored[0], scored[-1]
        assert first.total is not None
        assert last.total is not None
        words.append(
            f"{len(scored)} {'score' if len(scored) == 1 else 'scores'}: "
            f"{fmt(first.total)} at session {first.session_number}"
            + (
                f", latest {fmt(last.total)} at session {last.session_number}."
                if len(scored) > 1
                else "."
            )
        )
        words.append(
            "Scores: "
            + _listed([f"session {p.session_number}: {fmt(p.total or 0)}" for p in scored])
            + "."
        )
    else:
        words.append("No scores yet.")

    # The cut-off and the clinical side of it.
    if cutoff is not None and direction is not None:
        side = "below" if direction == "higher_is_better" else "at or above"
        clinical_side: dict[str, object] = (
            {"score": low, "score2": cutoff}
            if direction == "higher_is_better"
            else {"score": cutoff, "score2": high}
        )
        clinical_side["label"] = f"Clinical range: {side} {fmt(cutoff)}"
        layers.append(
            _layer(
                "clinical_zone",
                [clinical_side],
                {"type": "rect", "color": ZONE_COLOUR, "opacity": 0.08},
                y=at("score", y),
                y2={"field": "score2"},
                description=LABEL,
            )
        )
        layers.append(
            _layer(
                "cutoff",
                [{"score": cutoff, "label": f"Cut-off {fmt(cutoff)}"}],
                {"type": "rule", "color": CUTOFF_COLOUR, "strokeDash": [6, 4], "strokeWidth": 1.5},
                y=at("score", y),
                description=LABEL,
                tooltip=LABEL,
            )
        )
        n_clinical = sum(1 for p in scored if p.clinical)
        words.append(
            f"Dashed line: the cut-off of {fmt(cutoff)}; the shaded zone {side} it is the "
            f"clinical range, where {n_clinical} of {len(scored)} scores lie."
        )
    else:
        words.append("No cut-off applies to this series.")

    # The expected-response band, where the points carry one (DESIGN.md §10.5).
    band = [
        {
            "session": p.session_number,
            "p10": e[0],
            "score": e[1],
            "p90": e[2],
            "label": f"Session {p.session_number}: expected {fmt(e[1])} "
            f"(10th-90th percentile {fmt(e[0])}-{fmt(e[2])})",
        }
        for p in trajectory.points
        if (e := _expected(p)) is not None
    ]
    if band:
        layers.append(
            _layer(
                "expected_band",
                band,
                {"type": "area", "color": EXPECTED_COLOUR, "opacity": 0.18},
                x=x,
                y=at("p10", y),
                y2={"field": "p90"},
                description=LABEL,
            )
        )
        layers.append(
            _layer(
                "expected_median",
                band,
                {"type": "line", "color": EXPECTED_COLOUR, "strokeDash": [2, 3]},
                x=x,
                y=y,
                description=LABEL,
                tooltip=LABEL,
            )
        )
        words.append(
            "Grey band: the expected response (10th to 90th percentile), with its median dotted."
        )

    # Sudden gains and losses as thick steps along the line (Tang & DeRubeis 1999).
    for kind, found, colour in (
        ("sudden_gains", trajectory.summary.sudden_gains, GAIN_COLOUR),
        ("sudden_losses", trajectory.summary.sudden_losses, LOSS_COLOUR),
    ):
        steps = [
            {
                "session": s.from_session,
                "score": by_session[s.from_session],
                "session2": s.to_session,
                "score2": by_session[s.to_session],
                "change": s.change,
                "label": f"{'Sudden gain' if kind == 'sudden_gains' else 'Sudden loss'}: "
                f"session {s.from_session} to {s.to_session} ({fmt(s.change)})",
            }
            for s in found
            if s.from_session in by_session and s.to_session in by_session
        ]
        if not steps:
            continue
        layers.append(
            _layer(
                kind,
                steps,
                {"type": "rule", "color": colour, "strokeWidth": 7, "opacity": 0.45},
                x=x,
                y=y,
                x2={"field": "session2"},
                y2={"field": "score2"},
                description=LABEL,
                tooltip=LABEL,
            )
        )
        label = "Sudden gains" if kind == "sudden_gains" else "Sudden losses"
        words.append(
            f"{label} (thick segments): "
            + _listed(
                [
                    f"session {s.from_session} to {s.to_session} ({fmt(s.change)})"
                    for s in found
                    if s.from_session in by_session and s.to_session in by_session
                ]
            )
            + "."
        )

    # The scores.
    values = [
        {
            "session": p.session_number,
            "score": p.total,
            "date": None if p.occurred_at is None else p.occurred_at.date().isoformat(),
            "clinical": p.clinical,
            "label": f"Session {p.session_number}"
            + ("" if p.occurred_at is None else f" ({p.occurred_at.date().isoformat()})")
            + f": {fmt(p.total or 0)}"
            + (" (clinical range)" if p.clinical else ""),
        }
        for p in scored
    ]
    layers.append(
        _layer(
            "score_line",
            values,
            {"type": "line", "color": SCORE_COLOUR, "strokeWidth": 2},
            x=x,
            y=y,
            description={"value": f"Line of {len(values)} {name} totals"},
        )
    )
    layers.append(
        _layer(
            "scores",
            values,
            {"type": "point", "filled": True, "color": SCORE_COLOUR, "size": 60, "opacity": 1},
            x=x,
            y=y,
            description=LABEL,
            tooltip=LABEL,
        )
    )

    # Ruptures and repairs: one ring per session, naming every scale that fell or came back.
    ruptures: dict[int, list[str]] = {}
    repairs: dict[int, list[str]] = {}
    rupture_words: list[str] = []
    for r in trajectory.summary.ruptures:
        scale_name = "total" if r.subscale is None else subscale_label(r.subscale)
        ruptures.setdefault(r.session_number, []).append(f"{scale_name} fell {fmt(r.drop)}")
        if r.repaired_at_session is not None:
            repairs.setdefault(r.repaired_at_session, []).append(
                f"{scale_name} repaired (rupture at session {r.session_number})"
            )
            outcome = f"repaired at session {r.repaired_at_session}"
        else:
            outcome = "not repaired"
        rupture_words.append(
            f"{scale_name} at session {r.session_number} (drop {fmt(r.drop)}), {outcome}"
        )
    for kind, marked, shape, colour in (
        ("ruptures", ruptures, "circle", RUPTURE_COLOUR),
        ("repairs", repairs, "diamond", REPAIR_COLOUR),
    ):
        ring = [
            {
                "session": n,
                "score": by_session[n],
                "label": f"Session {n}: {kind[:-1]}: " + "; ".join(what),
            }
            for n, what in sorted(marked.items())
            if n in by_session
        ]
        if ring:
            layers.append(
                _layer(
                    kind,
                    ring,
                    {
                        "type": "point",
                        "shape": shape,
                        "filled": False,
                        "color": colour,
                        "size": 420,
                        "strokeWidth": 2.5,
                        "opacity": 1,
                    },
                    x=x,
                    y=y,
                    description=LABEL,
                    tooltip=LABEL,
                )
            )
    if rupture_words:
        words.append(
            "Ruptures (red rings; repairs in green diamonds): " + _listed(rupture_words) + "."
        )

    # Alerts: one triangle per session above the plot, in the colour of its most severe alert.
    per_session: dict[int, list[AlertMarker]] = {}
    for alert in alerts:
        per_session.setdefault(alert.session_number, []).append(alert)
    marks = []
    alert_words = []
    for n, found_alerts in sorted(per_session.items()):
        worst = max(found_alerts, key=lambda a: SEVERITY_RANK.get(a.severity, 0))
        what = ", ".join(
            f"{ALERT_LABELS.get(a.type, a.type)}"
            + (f" of {subscale_label(a.subscale)}" if a.subscale else "")
            + f" ({a.severity}, {a.status})"
            for a in found_alerts
        )
        alert_words.append(f"session {n}: {what}")
        if n in by_session:
            marks.append(
                {
                    "session": n,
                    "score": high,
                    "colour": SEVERITY_COLOURS.get(worst.severity, SEVERITY_COLOURS["high"]),
                    "label": f"Session {n}: alert: {what}",
                }
            )
    if marks:
        layers.append(
            _layer(
                "alerts",
                marks,
                {
                    "type": "point",
                    "shape": "triangle-down",
                    "filled": True,
                    "size": 110,
                    "yOffset": -12,
                    "opacity": 1,
                },
                x=x,
                y=y,
                color={"field": "colour", "type": "nominal", "scale": None, "legend": None},
                description=LABEL,
                tooltip=LABEL,
            )
        )
    if alert_words:
        words.append("Alerts (triangles above the plot): " + _listed(alert_words) + ".")

    description = " ".join(words)
    # A key to what is drawn, and only that.
    drawn = {layer["name"] for layer in layers}
    key = ["Line: totals."]
    for names, words_for in (
        ({"cutoff"}, "Dashed: cut-off."),
        ({"expected_band"}, "Grey: expected."),
        ({"sudden_gains", "sudden_losses"}, "Thick: sudden gains (green), losses (red)."),
        ({"ruptures"}, "Red rings: ruptures."),
        ({"repairs"}, "Green diamonds: repairs."),
        ({"alerts"}, "Triangles: alerts."),
    ):
        if names & drawn:
            key.append(words_for)
    subtitle = " ".join(key)
    spec: dict[str, object] = {
        "$schema": VEGA_LITE_SCHEMA,
        "title": {"text": title, "subtitle": subtitle, "anchor": "start", "offset": 18},
        "description": description,
        "width": WIDTH,
        "height": HEIGHT,
        "background": "white",
        "config": {"view": {"stroke": None}, "font": "sans-serif"},
        "layer": layers,
    }
    return Chart(title=title, description=description, vega_lite=spec)
