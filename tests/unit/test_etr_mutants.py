"""Expected treatment response results that surviving mutants changed unnoticed (issue 13
acceptance: `make mutate`); each test names the behaviour a mutant broke. The method and its
sources are in services/trajectory/etr.py (Finch, Lambert & Schaalje 2001)."""

from __future__ import annotations

import math
import random

import pytest

from services.instruments import InstrumentDefinition
from services.instruments import get_builtin as builtin
from services.trajectory import etr
from services.trajectory.etr import ExpectedResponse, model_problems

PHQ = builtin("phq-9")
L2 = math.log(2)


def one_band(*rows: dict[str, float]) -> ExpectedResponse:
    return ExpectedResponse.model_validate(
        {"bands": [{"intake_min": 0, "intake_max": 27, "sessions": list(rows)}]}
    )


# ----- an uploaded model's problems ---------------------------------------------------------------


def test_each_problem_of_an_uploaded_model_is_named_with_its_message() -> None:
    """The API returns these messages as they are (mutants changed their text)."""
    first = {"session": 2, "p10": 12, "p50": 15, "p90": 19}
    rows = [
        first,
        {"session": 2, "p10": 16, "p50": 15, "p90": 19},
        {"session": 3, "p10": 12, "p50": 20, "p90": 19},
        {"session": 4, "p10": 12, "p50": 15, "p90": 28},
    ]
    m = ExpectedResponse.model_validate(
        {
            "bands": [
                {"intake_min": 0, "intake_max": 9, "sessions": rows},
                {"intake_min": 10, "intake_max": 9, "sessions": [first]},
                {"intake_min": 9, "intake_max": 27, "sessions": [first]},
            ]
        }
    )
    assert model_problems(PHQ, m) == [
        ("bands[1].intake_max", "must not be below intake_min"),
        ("bands[2].intake_min", "overlaps the band before (ends at 9.0)"),
        ("bands[0].sessions[1].session", "sessions must be ascending, each listed once"),
        ("bands[0].sessions[1].p10", "must not be above p50 (p10 ≤ p50 ≤ p90)"),
        ("bands[0].sessions[2].p90", "must not be below p50 (p10 ≤ p50 ≤ p90)"),
        ("bands[0].sessions[3].p90", "must lie within the total range 0.0-27.0"),
    ]


def test_percentiles_at_either_end_of_the_scale_are_valid() -> None:
    """0 and 27 are PHQ-9 totals (a mutant refused the top of the scale)."""
    assert model_problems(PHQ, one_band({"session": 1, "p10": 0, "p50": 27, "p90": 27})) == []


def test_bands_of_a_mean_scored_instrument_may_meet_at_the_next_ten_thousandth() -> None:
    """A mean is reported to 4 places, so 1-2.5 and 2.5001-5 leave no mean out, and 1-2.5 and
    2.6-5 leave 2.5001…2.5999 out (mutants used the items' step of 1 instead)."""
    items = [{"id": f"q{i}", "label": f"q{i}", "min": 1, "max": 5, "step": 1} for i in (1, 2)]
    mean = InstrumentDefinition.model_validate(
        {
            "code": "mean-local", "version": "1", "name": "Local mean", "kind": "symptom",
            "respondents": ["client"], "items": items, "scoring": {"method": "mean"},
            "direction": "lower_is_better", "citation": "test", "license": "test",
        }
    )  # fmt: skip
    assert etr.band_problems(mean, [(1, 2.5), (2.5001, 5)]) == []
    assert etr.band_problems(mean, [(1, 2.5), (2.6, 5)]) == [
        ("bands[1].intake_min", "leaves a gap after the band before (ends at 2.5)")
    ]


# ----- bands made from the data -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("intakes", "bands"),
    [
        # 75 episodes: two bands, the cut at the first score reaching half of them (39 ≥ 37.5).
        ([v for v in range(25) for _ in range(3)], [(0, 12), (13, 27)]),
        # The cut as soon as 30 are in, though the last score is on its own.
        ([3] * 29 + [4] + [20] * 30, [(0, 4), (5, 27)]),
        # Exactly 30 in and 30 left: cut.
        ([5] * 30 + [20] * 30, [(0, 5), (6, 27)]),
        # 90 episodes: three bands wanted, but a second cut would leave fewer than 30.
        ([2] * 40 + [10] * 25 + [20] * 25, [(0, 2), (3, 27)]),
        # The second band counts from 0 again: it is full at 11.
        ([2] * 30 + [10] * 29 + [11] + [20] * 30, [(0, 2), (3, 11), (12, 27)]),
        # A cut one point below the top leaves a band of the top score alone.
        ([26] * 30 + [27] * 30, [(0, 26), (27, 27)]),
        # No cut that leaves no room for another band (26.5: a prorated total is rounded to the
        # items' decimal places, not to their step, so it may lie between two totals).
        ([26.5] * 30 + [27] * 30, [(0, 27)]),
    ],
)
def test_default_bands_hold_about_equal_counts_of_at_least_30(
    intakes: list[float], bands: list[tuple[float, float]]
) -> None:
    assert etr.default_bands(PHQ, [float(v) for v in intakes]) == bands


# ----- the fit of one band ------------------------------------------------------------------------
# Three episodes, sessions 2 and 4 (x = L and 2L, L = ln 2). With two sessions the least-squares
# line runs through the mean score of each: 15 at session 2, 12 at session 4, so the curve is
# 18 - 3·log2(session) (a = 18, b = -3/L). The residuals are (-2, -1, 3) at session 2 and
# (-4, -2, 6) at session 4; their 10th/50th/90th percentiles (inclusive method, three values:
# positions 0.2, 1, 1.8) are (-1.8, -1, 2.2) and (-3.6, -2, 4.4), so each percentile line is
# c·log2(session): the band widens over treatment. Intakes 20, 21, 25: (20.2, 21, 24.2).
# Session 3: log2 3 = 1.5849625; curve 13.2451125, percentiles -2.8529325, -1.5849625, 3.4869175.

SPREADING = [
    [(1, 20.0), (2, 13.0), (4, 8.0)],
    [(1, 21.0), (2, 14.0), (4, 10.0)],
    [(1, 25.0), (2, 18.0), (4, 18.0)],
]


def rows(sessions: list[etr.ExpectedScore]) -> list[tuple[int, float, float, float]]:
    return [(p.session, p.p10, p.p50, p.p90) for p in sessions]


def test_a_band_that_widens_over_treatment_widens_in_the_fitted_model() -> None:
    """Mutants flattened or mis-centred the percentile lines, or subtracted the median residual."""
    a, b, sessions = etr.fit_band(SPREADING, 0, 27, min_scores=3)
    assert a == pytest.approx(18)
    assert b == pytest.approx(-3 / L2)
    assert rows(sessions) == [
        (1, 20.2, 21.0, 24.2),
        (2, 13.2, 14.0, 17.2),
        (3, 10.3922, 11.6601, 16.732),  # rounded to 4 places
        (4, 8.4, 10.0, 16.4),
    ]


def test_without_a_session_of_enough_scores_the_spread_is_the_pooled_residuals() -> None:
    """min_scores 4: no session has 4 scores, so every residual is pooled (-4, -2, -2, -1, 3, 6:
    percentiles -3, -1.5, 4.5) and the band is as wide at every session (a mutant let it grow);
    the sessions still run to the last one with data."""
    _, _, sessions = etr.fit_band(SPREADING, 0, 27, min_scores=4)
    curve3 = 18 - 3 * math.log2(3)
    assert rows(sessions) == [
        (1, 20.2, 21.0, 24.2),
        (2, 12.0, 13.5, 19.5),
        (3, round(curve3 - 3, 4), round(curve3 - 1.5, 4), round(curve3 + 4.5, 4)),
        (4, 9.0, 10.5, 16.5),
    ]


def test_the_spread_of_one_full_session_applies_unchanged_at_the_sessions_before() -> None:
    """Only session 4 has 3 scores: its percentiles (-3.6, -2, 4.4) are the spread at every
    session, around the curve 14 - log2(session) through 13 at session 2 and 12 at 4 (a mutant
    gave a single session's spread a slope of 1)."""
    episodes = [[(1, 20.0), (2, 13.0), (4, 8.0)], [(1, 21.0), (4, 10.0)], [(1, 25.0), (4, 18.0)]]
    _, b, sessions = etr.fit_band(episodes, 0, 27, min_scores=3)
    assert b == pytest.approx(-1 / L2)
    assert rows(sessions) == [
        (1, 20.2, 21.0, 24.2),
        (2, 9.4, 11.0, 17.4),
        (3, 8.815, 10.415, 16.815),
        (4, 8.4, 10.0, 16.4),
    ]


def test_sessions_are_listed_up_to_the_last_one_with_enough_scores() -> None:
    """Sessions 2 and 4 have 3 scores, session 8 two: the model lists 1-4 (mutants counted every
    session once, twice or negatively, or wanted more than min_scores)."""
    episodes = [*SPREADING, [(1, 22.0), (8, 9.0)], [(1, 23.0), (8, 11.0)]]
    _, _, sessions = etr.fit_band(episodes, 0, 27, min_scores=3)
    assert [p.session for p in sessions] == [1, 2, 3, 4]


def test_one_episode_of_two_scores_fits_a_flat_band_through_them() -> None:
    """The least-squares slope of scores at one session is undefined: it is 0, and one intake is
    every percentile of the intakes (mutants divided by zero, read a second intake, or refused
    a single score)."""
    assert etr.fit_band([[(1, 20.0), (2, 17.0)]], 0, 27) == (
        17.0, 0.0, [etr.ExpectedScore(session=1, p10=20, p50=20, p90=20),
                    etr.ExpectedScore(session=2, p10=17, p50=17, p90=17)],
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"^a band needs scores after the intake$"):
        etr.fit_band([[(1, 20.0)]], 0, 27)


def test_scores_all_at_one_late_session_give_a_flat_curve_despite_rounding() -> None:
    """14 episodes scored only at session 28: n·Σx² - (Σx)² is 1.4e-12 from rounding, not 0; the
    slope is still 0 and every session up to 28 reads the same band (mutants shrank the tolerance
    and fitted a slope to the rounding error)."""
    episodes = [[(1, 20.0), (28, 12.0 + i % 3)] for i in range(14)]
    _, b, sessions = etr.fit_band(episodes, 0, 27)
    assert b == 0.0
    assert [p.session for p in sessions] == list(range(1, 29))
    assert {(p.p10, p.p50, p.p90) for p in sessions[1:]} == {(12.0, 13.0, 14.0)}


# ----- coverage -----------------------------------------------------------------------------------


def test_coverage_counts_scores_within_p10_p90_by_session_and_band() -> None:
    """By hand: band 0 (intake 0-9) lists sessions 1 and 3, band 1 (10-27) session 3 only.
    - a single score: no part;
    - intake 4, then 7 (= p90 of session 1's row, read at session 2): in;
    - intake 20 at session 5, then 9 (curve session 2: before band 1's first row, no part), 10
      (= p10: in), 19 (session 4 reads session 3's row: out);
    - intake 2, then 2 (out), 6 (= p90: in), 1 (out).
    Session 2: 1 of 2, session 3: 2 of 2, session 4: 0 of 2; band 0: 2 of 4, band 1: 1 of 2."""
    m = ExpectedResponse.model_validate(
        {
            "bands": [
                {"intake_min": 0, "intake_max": 9, "sessions": [
                    {"session": 1, "p10": 3, "p50": 5, "p90": 7},
                    {"session": 3, "p10": 2, "p50": 4, "p90": 6}]},
                {"intake_min": 10, "intake_max": 27, "sessions": [
                    {"session": 3, "p10": 10, "p50": 14, "p90": 18}]},
            ]
        }
    )  # fmt: skip
    episodes = [
        [(1, 4.0)],
        [(1, 4.0), (2, 7.0)],
        [(5, 20.0), (6, 9.0), (7, 10.0), (8, 19.0)],
        [(1, 2.0), (2, 2.0), (3, 6.0), (4, 1.0)],
    ]
    assert etr.coverage(m, episodes) == etr.Coverage(
        overall=0.5, by_session={2: 0.5, 3: 1.0, 4: 0.0}, by_band={0: 0.5, 1: 0.5}, n_scores=6
    )
    assert etr.coverage(m, episodes[1:2]) == etr.Coverage(1.0, {2: 1.0}, {0: 1.0}, 1)
    assert etr.coverage(m, episodes[:1]) == etr.Coverage(None, {}, {}, 0)


def noisy(rng: random.Random, intake: float) -> list[tuple[int, float]]:
    return [(1, intake)] + [
        (s, float(min(27, max(0, round(intake - 2 * math.log(s) + rng.gauss(0, 3))))))
        for s in range(2, 7)
    ]


def test_the_reported_coverage_is_that_of_every_fifth_episode_of_each_band_held_out() -> None:
    """fit() holds out the 5th, 10th, 15th, … episode of each intake band (in the order given),
    fits the rest and reports the share of the held-out scores within p10-p90, per band and
    overall, to 4 places (mutants held out other episodes, left a band's coverage out, or rounded
    to 5 places)."""
    rng = random.Random(13)
    episodes = [noisy(rng, float(rng.randint(0, 9) if i % 5 == 0 else rng.randint(10, 27)))
                for i in range(190)]  # fmt: skip
    bands = [(0, 9), (10, 27)]
    fitted = etr.fit(PHQ, episodes, bands)
    low = [e for e in episodes if e[0][1] <= 9]
    high = [e for e in episodes if e[0][1] > 9]
    training = [e for band in (low, high) for i, e in enumerate(band) if i % 5 != 4]
    held_out = [e for band in (low, high) for i, e in enumerate(band) if i % 5 == 4]
    check = etr.coverage(etr.fit(PHQ, training, bands), held_out)  # fitted on all it is given
    assert set(check.by_band) == {0, 1}
    assert check.overall is not None
    assert check.overall != round(check.overall, 4)  # the rounding shows
    assert [b.coverage for b in fitted.bands] == [round(check.by_band[i], 4) for i in (0, 1)]
    assert fitted.coverage == round(check.overall, 4)
    assert [b.n_episodes for b in fitted.bands] == [38, 152]


def test_a_band_whose_episodes_all_come_fifth_in_the_order_given_is_still_fitted_and_checked() -> (
    None
):
    """Held out by every 5th episode overall, a band whose episodes all came 5th, 10th, … had no
    training episodes, and fit() failed with a bare ValueError (a 500 from the fit endpoint);
    counted per band, a fifth of it is held out like any other."""
    rng = random.Random(5)
    episodes = [noisy(rng, float(rng.randint(0, 9) if i % 5 == 4 else rng.randint(10, 27)))
                for i in range(150)]  # fmt: skip
    fitted = etr.fit(PHQ, episodes, [(0, 9), (10, 27)])
    assert [b.n_episodes for b in fitted.bands] == [30, 120]
    assert all(b.coverage is not None for b in fitted.bands)


def test_too_few_episodes_in_a_given_band_says_so_band_by_band() -> None:
    """The message the API returns (mutants dropped or garbled the list of bands)."""
    enough = [[(1, 15.0), (2, 12.0)]] * etr.MIN_EPISODES_PER_BAND
    with pytest.raises(etr.TooFewEpisodes) as raised:
        etr.fit(PHQ, enough, [(0, 9), (10, 27)])
    assert (raised.value.needed, raised.value.have, str(raised.value)) == (
        30, [0, 30],
        "fitting needs at least 30 closed episodes with two or more phq-9 scores in each intake "
        "band; by band (0-9: 0, 10-27: 30)",
    )  # fmt: skip
