"""Sudden gains and losses: Tang & DeRubeis (1999) with the Lutz et al. (2013) critical t."""

from __future__ import annotations

import pytest

from services.trajectory import SuddenChange, find_sudden_changes
from services.trajectory.sudden_gains import critical_t, pooled_sd


def test_reference_bdi_example_gain_at_3_to_4_only() -> None:
    gains, losses = find_sudden_changes(
        [30, 28, 27, 18, 17, 16, 15], direction="lower_is_better", cutoff=7
    )
    assert gains == [SuddenChange(from_session=3, to_session=4, change=-9.0)]
    assert losses == []


def test_reference_bdi_example_pooled_sd() -> None:
    assert pooled_sd([30, 28, 27], [18, 17, 16]) == pytest.approx(1.2910, abs=1e-4)


@pytest.mark.parametrize(
    ("n_pre", "n_post", "t"),
    [(3, 3, 2.776), (2, 3, 3.182), (3, 2, 3.182), (2, 2, 4.303), (1, 3, None), (3, 1, None)],
)
def test_critical_t_by_window_sizes(n_pre: int, n_post: int, t: float | None) -> None:
    assert critical_t(n_pre, n_post) == t


def test_gain_passes_with_full_windows_at_t_2776() -> None:
    # windows [20, 20, 20] vs [10, 5, 15]: diff / s_pooled = 2.83 > 2.776
    gains, _ = find_sudden_changes([20, 20, 20, 10, 5, 15], direction="lower_is_better", cutoff=7)
    assert [(g.from_session, g.to_session) for g in gains] == [(3, 4)]


def test_gain_fails_with_full_windows_below_t_2776() -> None:
    # windows [20, 26, 20] vs [10, 15, 15]: ratio 2.72 < 2.776
    gains, _ = find_sudden_changes([20, 26, 20, 10, 15, 15], direction="lower_is_better", cutoff=7)
    assert gains == []


def test_missing_pre_session_raises_t_to_3182() -> None:
    # windows [20, 20] vs [10, 5, 14]: ratio 2.81 would pass at 2.776, fails at 3.182
    gains, _ = find_sudden_changes([20, None, 20, 10, 5, 14], direction="lower_is_better", cutoff=7)
    assert gains == []


def test_missing_pre_session_passes_above_3182() -> None:
    # windows [20, 20] vs [10, 5, 12]: ratio 3.74 > 3.182
    gains, _ = find_sudden_changes([20, None, 20, 10, 5, 12], direction="lower_is_better", cutoff=7)
    assert [(g.from_session, g.to_session) for g in gains] == [(3, 4)]


def test_missing_session_on_each_side_raises_t_to_4303() -> None:
    # windows [20, 20] vs [10, 14]: ratio 4.0 passes at 3.182, fails at 4.303
    fails, _ = find_sudden_changes(
        [20, None, 20, 10, None, 14], direction="lower_is_better", cutoff=7
    )
    assert fails == []
    # windows [20, 20] vs [10, 5]: ratio 5.0 > 4.303
    passes, _ = find_sudden_changes(
        [20, None, 20, 10, None, 5], direction="lower_is_better", cutoff=7
    )
    assert [(g.from_session, g.to_session) for g in passes] == [(3, 4)]


def test_fewer_than_two_values_on_a_side_is_undetermined() -> None:
    gains, _ = find_sudden_changes([30, 10, 9, 8], direction="lower_is_better", cutoff=7)
    assert gains == []  # 1 -> 2: only one pre-gain value
    gains, _ = find_sudden_changes([31, 30, 30, 10], direction="lower_is_better", cutoff=7)
    assert gains == []  # 3 -> 4: only one post-gain value


def test_missing_neighbour_at_the_interval_is_not_a_gain() -> None:
    gains, _ = find_sudden_changes(
        [30, 29, 28, None, 12, 11, 10], direction="lower_is_better", cutoff=7
    )
    assert gains == []


def test_criterion_1_cutoff_must_be_reached() -> None:
    series = [30, 28, 27, 18, 17, 16, 15]
    gains, _ = find_sudden_changes(series, direction="lower_is_better", cutoff=9)
    assert len(gains) == 1  # 9 >= 9
    gains, _ = find_sudden_changes(series, direction="lower_is_better", cutoff=9.5)
    assert gains == []


def test_criterion_2_quarter_of_the_pre_gain_score() -> None:
    # 40 -> 32 is 8 points: >= 7 but < 25 % of 40; criterion 3 would pass
    gains, _ = find_sudden_changes([41, 40, 40, 32, 31, 31], direction="lower_is_better", cutoff=7)
    assert gains == []


def test_sudden_loss_on_lower_is_better_scale() -> None:
    gains, losses = find_sudden_changes(
        [15, 16, 17, 18, 27, 28, 30], direction="lower_is_better", cutoff=7
    )
    assert gains == []
    assert losses == [SuddenChange(4, 5, 9.0)]


def test_sudden_gain_on_higher_is_better_scale() -> None:
    gains, losses = find_sudden_changes(
        [10, 12, 13, 22, 23, 24, 25], direction="higher_is_better", cutoff=5
    )
    assert gains == [SuddenChange(3, 4, 9.0)]
    assert losses == []


def test_sudden_loss_on_higher_is_better_scale() -> None:
    gains, losses = find_sudden_changes(
        [25, 24, 24, 14, 13, 13], direction="higher_is_better", cutoff=5
    )
    assert gains == []
    assert losses == [SuddenChange(3, 4, -10.0)]


def test_constant_windows_with_a_big_step_are_a_gain() -> None:
    gains, _ = find_sudden_changes([20, 20, 20, 10, 10, 10], direction="lower_is_better", cutoff=7)
    assert [(g.from_session, g.to_session) for g in gains] == [(3, 4)]
