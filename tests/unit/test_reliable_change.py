"""Jacobson & Truax (1991) reliable change and classification."""

from __future__ import annotations

import pytest

from services.instruments.schema import Direction, NormGroup, Norms
from services.trajectory import jacobson_truax, min_reliable_change, rci, s_diff, s_e
from services.trajectory.reliable_change import Cutoffs, clinical_cutoffs


def test_reference_example_sd_10_5_r_961() -> None:
    # suddengains R package unit test, as quoted in reference/psychometrics.md
    assert s_e(10.5, 0.961) == pytest.approx(2.073584, abs=1e-6)
    assert s_diff(10.5, 0.961) == pytest.approx(2.932490, abs=1e-6)
    assert min_reliable_change(10.5, 0.961) == pytest.approx(5.747681, abs=1e-6)


def test_rci_is_change_over_s_diff() -> None:
    assert rci(30, 20, 10.5, 0.961) == pytest.approx(-10 / 2.932490, abs=1e-6)
    assert abs(rci(30, 30 - 5.747681, 10.5, 0.961)) == pytest.approx(1.96, abs=1e-6)


@pytest.mark.parametrize(
    ("first", "latest", "cutoff", "direction", "expected"),
    [
        # ORS-2: adult 19 -> 26, +7 >= 5 and crossed 25
        (19.0, 26.0, 25, "higher_is_better", "recovered"),
        (20.0, 25.0, 25, "higher_is_better", "recovered"),  # exactly 5, and 25 is not clinical
        (10.0, 16.0, 25, "higher_is_better", "improved"),  # reliable, still clinical
        (26.0, 32.0, 25, "higher_is_better", "improved"),  # started on the healthy side
        (19.0, 30.0, None, "higher_is_better", "improved"),  # no cut-off: never recovered
        (19.0, 23.9, 25, "higher_is_better", "unchanged"),
        (26.0, 21.0, 25, "higher_is_better", "deteriorated"),
        (25.1, 30.1, 25, "higher_is_better", "improved"),  # 30.1 - 25.1 is exactly 5
        # PHQ-9: caseness >= 10, reliable change 6
        (15.0, 9.0, 10, "lower_is_better", "recovered"),
        (22.0, 15.0, 10, "lower_is_better", "improved"),
        (15.0, 10.0, 10, "lower_is_better", "unchanged"),
        (8.0, 14.0, 10, "lower_is_better", "deteriorated"),
        (8.0, 2.0, 10, "lower_is_better", "improved"),
    ],
)
def test_jacobson_truax_classes(
    first: float, latest: float, cutoff: float | None, direction: Direction, expected: str
) -> None:
    rc_points = 5.0 if direction == "higher_is_better" else 6.0
    assert jacobson_truax(first, latest, rc_points, cutoff, direction) == expected


def test_a_functional_norm_alone_gives_cutoff_b_only() -> None:
    """Jacobson & Truax (1991): ``a`` needs the clinical group, ``c`` both groups, ``b`` only the
    functional one (mutants: partial norms read as none, or ``a`` computed without a clinical
    group)."""
    functional = NormGroup(mean=30, sd=4)
    assert clinical_cutoffs(Norms(functional=functional), "higher_is_better") == Cutoffs(
        a=None, b=22.0, c=None
    )
    assert clinical_cutoffs(Norms(functional=functional), "lower_is_better") == Cutoffs(
        a=None, b=38.0, c=None
    )


def test_a_clinical_norm_alone_gives_cutoff_a_only_and_no_norm_gives_none() -> None:
    clinical = NormGroup(mean=20, sd=5)
    assert clinical_cutoffs(Norms(clinical=clinical), "higher_is_better") == Cutoffs(
        a=30.0, b=None, c=None
    )
    assert clinical_cutoffs(Norms(), "higher_is_better") is None
    assert clinical_cutoffs(None, "higher_is_better") is None
