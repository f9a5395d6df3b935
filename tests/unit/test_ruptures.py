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


# ----- gradual declines (DESIGN.md §10.3.7; Gumz et al. 2012) -------------------------------------


def _numbered(values: list[float]) -> list[tuple[int, float]]:
    return list(enumerate(values, start=1))


def test_issue_example_gradual_decline_is_a_rupture_from_the_level_before_it() -> None:
    """Issue 13 finding 10 (WAI-SR total, min_drop 4): 50, 50, 51, 50, 47, 44. No step reaches 4;
    51 → 47 over two steps does, at session 5, and the decline going on is the same rupture."""
    (rupture,) = find_ruptures(_numbered([50.0, 50.0, 51.0, 50.0, 47.0, 44.0]), min_drop=4)
    assert (rupture.session_number, rupture.pattern, rupture.start_session) == (5, "gradual", 3)
    assert (rupture.previous, rupture.current, rupture.drop) == (51.0, 47.0, 4.0)
    assert rupture.earlier_sd == pytest.approx(0.5774, abs=1e-4)  # 50, 50, 51
    assert rupture.threshold == 4


def test_a_gradual_rupture_is_repaired_only_back_at_the_level_before_the_decline() -> None:
    decline = [50.0, 50.0, 51.0, 50.0, 47.0]
    (not_yet,) = find_ruptures(_numbered([*decline, 50.0, 50.5, 50.9]), min_drop=4)
    assert not_yet.repaired_at_session is None
    (repaired,) = find_ruptures(_numbered([*decline, 50.0, 51.0]), min_drop=4)
    assert repaired.repaired_at_session == 7


def test_a_single_step_reaching_the_threshold_is_sudden_not_gradual() -> None:
    (rupture,) = find_ruptures(_numbered([40.0, 40.0, 40.0, 40.0, 39.0, 36.0, 35.0]), min_drop=2)
    assert (rupture.session_number, rupture.pattern, rupture.previous) == (6, "sudden", 39.0)


def test_a_gradual_decline_needs_two_to_six_falling_steps() -> None:
    # Seven steps of 1 reach 6.5 only all together; six of them make 6, and the seventh step does
    # not start a second rupture.
    long = [50.0, 50.0, 50.0, 50.0, 49.0, 48.0, 47.0, 46.0, 45.0, 44.0, 43.0]
    assert find_ruptures(_numbered(long), min_drop=6.5) == []
    (six,) = find_ruptures(_numbered(long), min_drop=6)
    assert (six.session_number, six.start_session, six.drop) == (10, 4, 6.0)
    assert find_ruptures(_numbered([50.0, 50.0, 50.0, 50.0, 49.0]), min_drop=0.5)[0].pattern == (
        "sudden"
    )


def test_a_flat_or_rising_step_ends_a_decline() -> None:
    assert find_ruptures(_numbered([38.0, 38.0, 38.0, 38.0, 37.0, 37.0, 36.0]), min_drop=2) == []
    assert find_ruptures(_numbered([38.0, 38.0, 38.0, 38.0, 37.0, 37.5, 36.5]), min_drop=2) == []


def test_a_gradual_decline_needs_three_scores_up_to_where_it_began() -> None:
    assert find_ruptures(_numbered([40.0, 40.0, 39.0, 38.0, 37.0]), min_drop=2) == []
    (rupture,) = find_ruptures(_numbered([40.0, 40.0, 40.0, 39.0, 38.0]), min_drop=2)
    assert (rupture.session_number, rupture.start_session) == (5, 3)


def test_a_gradual_decline_must_reach_k_times_the_sd_before_it() -> None:
    swinging = [30.0, 38.0, 30.0, 38.0, 36.0, 34.0]  # SD of 30, 38, 30, 38: 4.62
    assert find_ruptures(_numbered(swinging), min_drop=2) == []
    (rupture,) = find_ruptures(_numbered(swinging), min_drop=2, k=0.5)
    assert (rupture.session_number, rupture.pattern) == (6, "gradual")


def test_a_sudden_rupture_before_a_decline_does_not_hide_the_decline() -> None:
    """Survivors of `make mutate`: checking for sudden ruptures before the decline began (not only
    within it) dropped a gradual rupture that follows a repaired sudden one."""
    series = _numbered([38.0, 38.0, 38.0, 38.0, 34.0, 38.0, 37.0, 36.0])
    assert [(r.session_number, r.pattern) for r in find_ruptures(series, min_drop=2)] == [
        (5, "sudden"),
        (8, "gradual"),
    ]


def test_refusals_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"^session numbers must be unique$"):
        find_ruptures([(1, 38.0), (1, 37.0)], min_drop=2)
    with pytest.raises(KeyError, match="'wai-sr' has no subscale 'trust'"):
        default_min_drop(builtin("wai-sr"), "trust")
