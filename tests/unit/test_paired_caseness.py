"""PHQ-9 with GAD-7 as NHS Talking Therapies classifies a course (reference/psychometrics.md,
"Paired caseness"): known answers worked out from the rules."""

from __future__ import annotations

import pytest

from services.trajectory.pairs import is_case, paired_outcome


@pytest.mark.parametrize(
    ("phq9", "gad7", "case"),
    [(10, 0, True), (9, 7, False), (0, 8, True), (9, 8, True), (27, 21, True)],
)
def test_caseness_is_phq9_at_least_10_or_gad7_at_least_8(phq9: int, gad7: int, case: bool) -> None:
    assert is_case(phq9, gad7) is case


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        # PHQ-9 16 -> 8 (-8, reliable), GAD-7 12 -> 6 (-6, reliable): both below caseness.
        ((16, 12), (8, 6), (True, False, True, True)),
        # PHQ-9 16 -> 9 (-7 reliable), GAD-7 9 -> 8 (still a case on the GAD-7): not recovered.
        ((16, 9), (9, 8), (True, False, False, False)),
        # PHQ-9 11 -> 9 (-2), GAD-7 9 -> 7 (-2): recovered, but not reliably.
        ((11, 9), (9, 7), (False, False, True, False)),
        # PHQ-9 20 -> 12 (-8 reliable) but GAD-7 6 -> 10 (+4 reliable): neither improvement nor
        # deterioration, still a case.
        ((20, 6), (12, 10), (False, False, False, False)),
        # PHQ-9 12 -> 18 (+6), GAD-7 10 -> 11: reliable deterioration.
        ((12, 10), (18, 11), (False, True, False, False)),
    ],
)
def test_pair_classification(
    first: tuple[int, int], last: tuple[int, int], expected: tuple[bool, bool, bool, bool]
) -> None:
    outcome = paired_outcome({1: first[0], 6: last[0]}, {1: first[1], 6: last[1]})
    assert outcome is not None
    assert (
        outcome.reliable_improvement,
        outcome.reliable_deterioration,
        outcome.recovery,
        outcome.reliable_recovery,
    ) == expected


def test_changes_of_exactly_the_reliable_points_count() -> None:
    outcome = paired_outcome({1: 15, 2: 9}, {1: 5, 2: 5})  # PHQ-9 -6 exactly
    assert outcome is not None
    assert outcome.reliable_improvement is True
    edge = paired_outcome({1: 5, 2: 5}, {1: 12, 2: 9})  # GAD-7 -3: not reliable
    assert edge is not None
    assert edge.reliable_improvement is False


def test_recovery_is_only_judged_for_a_case_at_the_first_paired_assessment() -> None:
    outcome = paired_outcome({1: 8, 2: 2}, {1: 6, 2: 1})
    assert outcome is not None
    assert outcome.case_at_first is False
    assert outcome.reliable_improvement is True  # 8 -> 2 is -6
    assert (outcome.recovery, outcome.reliable_recovery) == (None, None)


def test_only_sessions_with_both_scores_are_paired() -> None:
    outcome = paired_outcome({1: 18, 2: 16, 4: 7}, {2: 12, 3: 11, 4: 5})
    assert outcome is not None
    assert (outcome.first_session, outcome.last_session, outcome.n_paired) == (2, 4, 2)
    assert outcome.reliable_recovery is True  # 16 -> 7 (-9), 12 -> 5 (-7)


def test_one_paired_assessment_gives_caseness_but_no_change() -> None:
    outcome = paired_outcome({1: 12}, {1: 3})
    assert outcome is not None
    assert outcome.case_at_first is True
    assert outcome.reliable_improvement is None
    assert outcome.recovery is None
    assert paired_outcome({1: 12}, {2: 3}) is None
