"""Attune's rupture rule on session-by-session alliance scores."""

from __future__ import annotations

import pytest

from services.instruments import get_builtin as builtin
from services.trajectory import default_min_drop, find_ruptures

WAI_EXAMPLE = [(1, 48.0), (2, 50.0), (3, 51.0), (4, 49.0), (5, 41.0), (6, 50.0), (7, 52.0)]


def test_reference_example_rupture_at_5_repaired_at_6() -> None:
    (rupture,) = find_ruptures(WAI_EXAMPLE, min_drop=4)
    assert rupture.session_number == 5
    assert (rupture.previous, rupture.current, rupture.drop) == (49.0, 41.0, 8.0)
    assert rupture.earlier_sd == pytest.approx(1.291, abs=1e-3)
    assert rupture.threshold == 4  # max(1.291, 4)
    assert rupture.repaired_at_session == 6
    assert not rupture.unrepaired


def test_reference_example_ending_at_41_is_open() -> None:
    (rupture,) = find_ruptures(WAI_EXAMPLE[:5], min_drop=4)
    assert rupture.repaired_at_session is None
    assert rupture.window_passed is False
    assert rupture.unrepaired is False  # open, window not over yet


def test_open_rupture_becomes_unrepaired_once_the_window_has_passed() -> None:
    (rupture,) = find_ruptures(WAI_EXAMPLE[:5], min_drop=4, as_of_session=8)
    assert rupture.window_passed is True
    assert rupture.unrepaired is True


def test_repair_after_the_window_does_not_count() -> None:
    series = [*WAI_EXAMPLE[:5], (6, 45.0), (7, 46.0), (8, 47.0), (9, 50.0)]
    (rupture,) = find_ruptures(series, min_drop=4)
    assert rupture.repaired_at_session is None
    assert rupture.unrepaired is True


def test_repair_on_the_last_session_of_the_window() -> None:
    series = [*WAI_EXAMPLE[:5], (6, 45.0), (7, 46.0), (8, 49.0)]
    (rupture,) = find_ruptures(series, min_drop=4)
    assert rupture.repaired_at_session == 8


def test_window_counts_session_numbers_not_observations() -> None:
    inside = find_ruptures([*WAI_EXAMPLE[:5], (8, 49.0)], min_drop=4)
    assert inside[0].repaired_at_session == 8
    outside = find_ruptures([*WAI_EXAMPLE[:5], (9, 49.0)], min_drop=4)
    assert outside[0].repaired_at_session is None
    assert outside[0].window_passed is True


def test_previous_is_the_preceding_observed_score() -> None:
    series = [(1, 48.0), (2, 50.0), (4, 51.0), (7, 45.0)]
    (rupture,) = find_ruptures(series, min_drop=4)
    assert (rupture.session_number, rupture.previous, rupture.drop) == (7, 51.0, 6.0)


def test_needs_three_earlier_scores() -> None:
    assert find_ruptures([(1, 50.0), (2, 50.0), (3, 30.0)], min_drop=2) == []
    assert len(find_ruptures([(1, 50.0), (2, 50.0), (3, 50.0), (4, 30.0)], min_drop=2)) == 1


def test_drop_must_reach_k_times_the_earlier_sd() -> None:
    # earlier 40, 50, 40, 50: sample SD 5.77
    assert (
        len(find_ruptures([(1, 40.0), (2, 50.0), (3, 40.0), (4, 50.0), (5, 44.0)], min_drop=4)) == 1
    )
    assert find_ruptures([(1, 40.0), (2, 50.0), (3, 40.0), (4, 50.0), (5, 45.0)], min_drop=4) == []
    assert (
        find_ruptures([(1, 40.0), (2, 50.0), (3, 40.0), (4, 50.0), (5, 44.0)], min_drop=4, k=2.0)
        == []
    )


def test_drop_must_reach_min_drop_in_a_flat_course() -> None:
    flat = [(1, 38.0), (2, 38.0), (3, 38.0)]
    assert find_ruptures([*flat, (4, 36.1)], min_drop=2) == []  # 1.9 < 2 although SD is 0
    (rupture,) = find_ruptures([*flat, (4, 36.0)], min_drop=2)
    assert rupture.threshold == 2


def test_sd_uses_only_the_last_five_earlier_scores() -> None:
    series = [(1, 10.0)] + [(s, 50.0) for s in range(2, 7)] + [(7, 46.0)]
    (rupture,) = find_ruptures(series, min_drop=4)
    assert rupture.earlier_sd == 0.0


def test_tenth_point_drops_are_exact() -> None:
    series = [(1, 36.0), (2, 36.0), (3, 36.0), (4, 35.3), (5, 33.3)]
    (rupture,) = find_ruptures(series, min_drop=2)
    assert rupture.drop == 2.0


def test_duplicate_sessions_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        find_ruptures([(1, 1.0), (1, 2.0)], min_drop=2)


def test_default_min_drops_follow_the_design() -> None:
    assert default_min_drop(builtin("srs")) == 2
    assert default_min_drop(builtin("wai-sr")) == 4
    assert default_min_drop(builtin("wai-sr"), "bond") == 2
    assert default_min_drop(builtin("ors")) is None
    with pytest.raises(KeyError):
        default_min_drop(builtin("wai-sr"), "mood")
