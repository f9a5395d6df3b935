"""Reliable change and clinical significance (Jacobson & Truax 1991, JCCP 59(1), 12-19)."""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from services.instruments.schema import (
    RC_Z,
    Direction,
    Norms,
    ReliableChange,
    ReliableChangeFromNorms,
    dec,
)
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


class StandardErrors(NamedTuple):
    se: float
    s_diff: float


def standard_errors(rc: ReliableChange | None) -> StandardErrors | None:
    """``S_E`` and ``S_diff`` of an instrument's reliable-change norm: from SD and reliability
    (Jacobson & Truax 1991), or, when only reliable-change points are given, the ``S_diff`` they
    imply, ``points / 1.96`` (so that a change of exactly those points has ``|RC| = 1.96``), and
    ``S_E = S_diff / √2`` [D]. ``None`` without a norm."""
    if rc is None:
        return None
    if isinstance(rc, ReliableChangeFromNorms):
        sd, r = float(rc.sd), float(rc.reliability)
        return StandardErrors(s_e(sd, r), s_diff(sd, r))
    diff = float(rc) / RC_Z
    return StandardErrors(diff / math.sqrt(2), diff)


class Cutoffs(NamedTuple):
    a: float | None
    b: float | None
    c: float | None


def clinical_cutoffs(norms: Norms | None, direction: Direction) -> Cutoffs | None:
    """Jacobson & Truax (1991) cut-offs, for higher-is-better (flipped for lower-is-better):
    ``a = M_dys + 2·SD_dys`` (beyond the clinical group's range), ``b = M_func - 2·SD_func``
    (within the functional group's range), ``c = (SD_func·M_dys + SD_dys·M_func) / (SD_func +
    SD_dys)`` (nearer the functional mean than the clinical one); ``a`` needs the clinical norm,
    ``b`` the functional one, ``c`` both (reference/psychometrics.md)."""
    if norms is None or (norms.clinical is None and norms.functional is None):
        return None
    sign = 1.0 if direction == "higher_is_better" else -1.0
    dys, func = norms.clinical, norms.functional
    a = None if dys is None else float(dys.mean) + sign * 2 * float(dys.sd)
    b = None if func is None else float(func.mean) - sign * 2 * float(func.sd)
    c = None
    if dys is not None and func is not None:
        sd_dys, sd_func = float(dys.sd), float(func.sd)
        c = (sd_func * float(dys.mean) + sd_dys * float(func.mean)) / (sd_func + sd_dys)
    return Cutoffs(a, b, c)
