"""Charts of trajectories (DESIGN.md §10.4): the Vega-Lite spec (pure, :mod:`.spec`), rendered to
SVG and PNG on the server (:mod:`.render`), for the route (:mod:`.service`)."""

from services.charts.spec import AlertMarker, Chart, trajectory_chart

__all__ = ["AlertMarker", "Chart", "trajectory_chart"]
