"""What issue 16 adds to a trajectory (DESIGN.md §10.5, §7): the reliable-change index of each
point, SE and S_diff, the Jacobson & Truax cut-offs a, b, c, the expected response per point and
whether the latest score is on track, and the PHQ-9 + GAD-7 pair. Known answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from services.instruments import InstrumentDefinition
from services.instruments import get_builtin as builtin
from services.trajectory import build_trajectory
from services.trajectory.etr import ExpectedResponse
from services.trajectory.pairs import paired_outcome

NONE: Mapping[str, float] = {}


def totals(*values: float, start: int = 1) -> list[tuple[int, float | None, Mapping[str, float]]]:
    return [(n, v, NONE) for n, v in enumerate(values, start=start)]


def variant(defn: InstrumentDefinition, **changes: Any) -> InstrumentDefinition:
    return InstrumentDefinition.model_validate({**defn.model_dump(), **changes})


def test_rci_from_reliable_change_points_uses_the_s_diff_they_imply() -> None:
    # ORS: 5 points reliable → S_diff = 5 / 1.96 = 2.551020; 19 → 26 is RC = 7 / 2.551020 = 2.744.
    trajectory = build_trajectory(builtin("ors"), totals(19.0, 21.5, 26.0))
    assert [p.rci for p in trajectory.points] == [0.0, 0.98, 2.744]
    assert trajectory.summary.s_diff == pytest.approx(2.551020, abs=1e-6)
    assert trajectory.summary.se == pytest.approx(2.551020 / 2**0.5, abs=1e-6)


def test_rci_se_and_s_diff_from_sd_and_reliability() -> None:
    # psychometrics.md: SD 10.5, r = .961 → S_E 2.073584, S_diff 2.932490 (suddengains tests).
    bdi = variant(builtin("phq-9"), reliable_change={"sd": 10.5, "reliability": 0.961})
    trajectory = build_trajectory(bdi, totals(20, 14))
    assert trajectory.summary.se == pytest.approx(2.073584, abs=1e-6)
    assert trajectory.summary.s_diff == pytest.approx(2.932490, abs=1e-6)
    assert trajectory.points[1].rci == pytest.approx(-6 / 2.932490, abs=1e-4)  # -2.0461


def test_no_reliable_change_norm_no_rci() -> None:
    trajectory = build_trajectory(builtin("wai-sr"), totals(48, 50))
    assert [p.rci for p in trajectory.points] == [None, None]
    assert (trajectory.summary.se, trajectory.summary.s_diff) == (None, None)


def test_jacobson_truax_cutoffs_higher_is_better() -> None:
    # a = 20 + 2·5 = 30; b = 35 - 2·4 = 27; c = (4·20 + 5·35) / (4 + 5) = 255 / 9 = 28.3333.
    ors = variant(
        builtin("ors"),
        norms={"clinical": {"mean": 20, "sd": 5}, "functional": {"mean": 35, "sd": 4}},
    )
    cutoffs = build_trajectory(ors, totals(19.0)).summary.cutoffs
    assert cutoffs is not None
    assert (cutoffs.a, cutoffs.b) == (30.0, 27.0)
    assert cutoffs.c == pytest.approx(255 / 9)


def test_jacobson_truax_cutoffs_flip_for_lower_is_better_and_need_their_norms() -> None:
    # a = 20 - 2·5 = 10; b = 5 + 2·3 = 11; c = (3·20 + 5·5) / 8 = 10.625.
    both = {"clinical": {"mean": 20, "sd": 5}, "functional": {"mean": 5, "sd": 3}}
    cutoffs = build_trajectory(variant(builtin("phq-9"), norms=both), totals(12)).summary.cutoffs
    assert cutoffs is not None
    assert (cutoffs.a, cutoffs.b, cutoffs.c) == (10.0, 11.0, 10.625)
    clinical_only = variant(builtin("phq-9"), norms={"clinical": {"mean": 20, "sd": 5}})
    only = build_trajectory(clinical_only, totals(12)).summary.cutoffs
    assert only is not None
    assert (only.a, only.b, only.c) == (10.0, None, None)
    assert build_trajectory(builtin("phq-9"), totals(12)).summary.cutoffs is None


def test_norms_are_the_clients_own_not_a_collaterals() -> None:
    norms = {"clinical": {"mean": 20, "sd": 5}, "functional": {"mean": 35, "sd": 4}}
    ors = variant(builtin("ors"), respondents=["client", "collateral"], norms=norms)
    view = ors.for_respondent("collateral")
    assert build_trajectory(view, totals(19.0)).summary.cutoffs is None


def test_a_norm_sd_must_be_positive() -> None:
    with pytest.raises(ValueError, match="sd must be positive"):
        variant(builtin("ors"), norms={"clinical": {"mean": 20, "sd": 0}})


MODEL = ExpectedResponse.model_validate(
    {
        "bands": [
            {"intake_min": 0, "intake_max": 9,
             "sessions": [{"session": 1, "p10": 2, "p50": 5, "p90": 8}]},
            {"intake_min": 10, "intake_max": 27,
             "sessions": [{"session": 1, "p10": 12, "p50": 15.5, "p90": 19},
                          {"session": 2, "p10": 11, "p50": 14, "p90": 17}]},
        ]
    }
)  # fmt: skip


def test_points_carry_the_expected_response_of_the_intake_band() -> None:
    trajectory = build_trajectory(builtin("phq-9"), totals(16, 15, 14), expected=MODEL)
    assert [p.expected.model_dump() if p.expected else None for p in trajectory.points] == [
        {"p10": 12.0, "p50": 15.5, "p90": 19.0},
        {"p10": 11.0, "p50": 14.0, "p90": 17.0},
        {"p10": 11.0, "p50": 14.0, "p90": 17.0},  # past the last listed session: the last
    ]
    assert trajectory.summary.on_track is True


def test_on_track_is_false_beyond_the_failure_boundary_and_null_without_a_model() -> None:
    phq = builtin("phq-9")
    assert build_trajectory(phq, totals(16, 18), expected=MODEL).summary.on_track is False
    assert build_trajectory(phq, totals(16, 17), expected=MODEL).summary.on_track is True
    assert build_trajectory(phq, totals(16, 18)).summary.on_track is None
    assert build_trajectory(phq, totals(16), expected=MODEL).summary.on_track is None
    # Curve sessions count from the first score: PHQ-9 first at session 5, then 6 (curve 2).
    late = build_trajectory(phq, totals(16, 18, start=5), expected=MODEL)
    assert late.points[1].expected is not None
    assert late.points[1].expected.p90 == 17.0


def test_paired_caseness_is_carried_in_the_summary() -> None:
    pair = paired_outcome({1: 16, 6: 8}, {1: 12, 6: 6})
    trajectory = build_trajectory(builtin("phq-9"), totals(16, 8), paired=pair)
    assert trajectory.summary.paired_caseness == pair
    assert build_trajectory(builtin("phq-9"), totals(16, 8)).summary.paired_caseness is None


def test_rci_is_given_to_four_places() -> None:
    """PHQ-9: 6 points reliable → S_diff = 6 / 1.96; 16 → 11 is RC = -5 / 3.061224 = -1.633333
    (mutant: five places)."""
    assert build_trajectory(builtin("phq-9"), totals(16, 11)).points[1].rci == -1.6333


def test_on_track_judges_the_latest_score() -> None:
    """17 at session 2 is within the p90 of 17; 18 at session 3 is beyond it (mutant: the
    second score judged instead of the latest)."""
    phq = builtin("phq-9")
    assert build_trajectory(phq, totals(16, 17, 18), expected=MODEL).summary.on_track is False


def test_on_track_on_a_higher_is_better_scale_is_judged_below_p10() -> None:
    """ORS 18 then 16.9: below the p10 of 17, so not on track (mutants: the direction left out,
    judging it against the p90 as if lower were better; the p10 left out)."""
    model = ExpectedResponse.model_validate(
        {"bands": [{"intake_min": 0, "intake_max": 40,
                    "sessions": [{"session": 1, "p10": 15, "p50": 18, "p90": 21},
                                 {"session": 2, "p10": 17, "p50": 20, "p90": 23}]}]}
    )  # fmt: skip
    ors = builtin("ors")
    assert build_trajectory(ors, totals(18, 16.9), expected=model).summary.on_track is False
    assert build_trajectory(ors, totals(18, 17), expected=model).summary.on_track is True


def test_se_and_s_diff_are_given_to_six_places() -> None:
    """ORS: S_diff = 5 / 1.96 = 2.5510204…, S_E = S_diff / √2 = 1.8038438… (mutants: seven
    places)."""
    summary = build_trajectory(builtin("ors"), totals(19.0)).summary
    assert (summary.se, summary.s_diff) == (1.803844, 2.55102)


def test_an_instrument_without_a_direction_has_no_cutoffs_even_with_norms() -> None:
    """An organisation's item-by-item instrument may carry norms, but without a total and a
    direction no Jacobson & Truax cut-off means anything (mutant: computed them as if lower were
    better)."""
    check = variant(
        builtin("rupture-check"), code="org-check", norms={"clinical": {"mean": 3, "sd": 1}}
    )
    assert build_trajectory(check, [(1, None, NONE)]).summary.cutoffs is None
