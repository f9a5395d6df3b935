"""Reliable change and clinical significance (Jacobson & Truax 1991, JCCP 59(1), 12-19)."""

from __future__ import annotations

import math
from typing import Literal

from services.instruments.schema import RC_Z, Direction, dec
from services.scoring.engine import in_clinical_range

Classification = Literal["recovered", "improved", "unchanged", "deteriorated"]


def s_e(sd: float, r: float) -> float:
    """Standard error of measurement: ``S_E = SD_pre · √(1 - r)``."""
    return sd * math.sqrt(1 - r)


def s_diff(sd: float, r: float) -> float:
    """Standard error of a difference: ``S_diff = √2 · S_E`` (√2 from Christensen & Mendoza
    1986)."""
    return math.sqrt(2) * s_e(sd, r)


def rci(pre: float, post: float, sd: float, r: float) -> float:
    """Reliable change index ``RC = (x_post - x_pre) / S_diff``; reliable when ``|RC| > 1.96``."""
    return (post - pre) / s_diff(sd, r)


def min_reliable_change(sd: float, r: float) -> float:
    """Smallest raw change that is reliable: ``1.96 · S_diff`` (SD 10.5, r .961 → 5.747681;
    suddengains R package unit test)."""
    return RC_Z * s_diff(sd, r)


def healthy_change(first: float, latest: float, direction: Direction) -> float:
    """Change in the healthy direction (positive = better), computed exactly in decimal."""
    diff = dec(latest) - dec(first)
    return float(diff if direction == "higher_is_better" else -diff)


def reliable_direction(
    first: float, latest: float, rc_points: float, direction: Direction
) -> Literal["improved", "deteriorated", "none"]:
    """Points form: a change of at least ``rc_points`` is reliable (ORS 5, PHQ-9 6, GAD-7 4)."""
    change = dec(healthy_change(first, latest, direction))
    if change >= dec(rc_points):
        return "improved"
    if -change >= dec(rc_points):
        return "deteriorated"
    return "none"


def jacobson_truax(
    first: float,
    latest: float,
    rc_points: float,
    cutoff: float | None,
    direction: Direction,
) -> Classification:
    """Recovered = reliable improvement and crossed from the clinical to the healthy side of the
    cut-off; improved = reliable improvement without crossing (also when the client started on the
    healthy side); unchanged = no reliable change; deteriorated = reliable change in the unhealthy
    direction. Without a cut-off nobody can be classed recovered."""
    reliable = reliable_direction(first, latest, rc_points, direction)
    if reliable == "deteriorated":
        return "deteriorated"
    if reliable == "none":
        return "unchanged"
    if (
        cutoff is not None
        and in_clinical_range(first, cutoff, direction)
        and not in_clinical_range(latest, cutoff, direction)
    ):
        return "recovered"
    return "improved"
