"""A chart's Vega-Lite spec rendered on the server, with ``vl-convert-python`` (Vega-Lite and Vega
in an embedded JavaScript runtime, resvg for PNG: no browser, no network).

The SVG gains a ``<title>`` and a ``<desc>`` as the root's first children, named by the root's
``aria-labelledby``/``aria-describedby`` and with ``role="img"``: the accessible-SVG pattern
(WAI-ARIA Graphics; WCAG 2.1 1.1.1 non-text content), so a screen reader says what the chart
shows in words. The renderer is CPU-bound and synchronous: the route runs it in a worker thread.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

import vl_convert

from services.charts.spec import Chart

# Data comes inline in the spec: the renderer may fetch nothing (an empty list allows no URL).
_NO_URLS: list[str] = []
_ROOT = re.compile(r"<svg\b[^>]*>")
# Attributes of the root that this module sets: any the renderer wrote are replaced, not doubled.
_OWN_ATTRIBUTES = re.compile(r'\s(?:role|aria-label|aria-labelledby|aria-describedby)="[^"]*"')
# PNG pixels per spec pixel: sharp on high-density screens, still small (about 1,300 px wide).
PNG_SCALE = 2.0


def to_svg(chart: Chart) -> str:
    svg = vl_convert.vegalite_to_svg(chart.vega_lite, allowed_base_urls=_NO_URLS)
    root = _ROOT.search(svg)
    if root is None:  # pragma: no cover - vl-convert always answers an <svg> document
        raise ValueError("the renderer returned no SVG")
    tag = _OWN_ATTRIBUTES.sub("", root.group(0))
    opened = (
        tag[:-1]
        + ' role="img" aria-labelledby="chart-title" aria-describedby="chart-desc">'
        + f'<title id="chart-title">{escape(chart.title)}</title>'
        + f'<desc id="chart-desc">{escape(chart.description)}</desc>'
    )
    return svg[: root.start()] + opened + svg[root.end() :]


def to_png(chart: Chart) -> bytes:
    return vl_convert.vegalite_to_png(chart.vega_lite, scale=PNG_SCALE, allowed_base_urls=_NO_URLS)


__all__ = ["PNG_SCALE", "to_png", "to_svg"]
