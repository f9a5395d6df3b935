"""Expected treatment response (DESIGN.md §10.5; Finch, Lambert & Schaalje 2001): the model's
validation, reading it, the log-linear fit on a table computed by hand, and a simulation study of
its coverage on held-out episodes."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.instruments import get_builtin as builtin
from services.trajectory import etr
from services.trajectory.etr import Expected, ExpectedResponse, expected_at, model_problems
from tests.support.examples import examples

L2 = math.log(2)


def model(
    *bands: tuple[float, float], sessions: list[dict[str, float]] | None = None
) -> ExpectedResponse:
    rows = sessions or [{"session": 1, "p10": 12, "p50": 15.5, "p90": 19}]
    return ExpectedResponse.model_validate(
        {"bands": [{"intake_min": lo, "intake_max": hi, "sessions": rows} for lo, hi in bands]}
    )


# ----- validation ---------------------------------------------------------------------------------


def test_bands_tiling_the_phq9_range_are_valid() -> None:
    assert model_problems(builtin("phq-9"), model((0, 9), (10, 19), (20, 27))) == []


def test_bands_on_a_tenth_point_scale_may_meet_at_the_next_tenth() -> None:
    # ORS totals move in 0.1 steps: 0-19.9 and 20-40 leave no total out (DESIGN.md §10.5 example).
    assert model_problems(builtin("ors"), model((0, 19.9), (20, 40))) == []


@pytest.mark.parametrize(
    ("bands", "field", "says"),
    [
        (((0, 9), (11, 27)), "bands[1].intake_min", "gap"),
        (((0, 10), (10, 27)), "bands[1].intake_min", "overlaps"),
        (((1, 9), (10, 27)), "bands[0].intake_min", "lowest"),
        (((0, 9), (10, 26)), "bands[1].intake_max", "highest"),
        (((0, 9), (10, 9), (10, 27)), "bands[1].intake_max", "below intake_min"),
    ],
)
def test_bands_with_gaps_overlaps_or_short_of_the_range_are_named(
    bands: tuple[tuple[float, float], ...], field: str, says: str
) -> None:
    problems = model_problems(builtin("phq-9"), model(*bands))
    assert [f for f, _ in problems] == [field]
    assert says in problems[0][1]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"session": 2, "p10": 16, "p50": 15, "p90": 19}, "bands[0].sessions[1].p10"),
        ({"session": 2, "p10": 12, "p50": 20, "p90": 19}, "bands[0].sessions[1].p90"),
        ({"session": 1, "p10": 12, "p50": 15, "p90": 19}, "bands[0].sessions[1].session"),
        ({"session": 2, "p10": 12, "p50": 15, "p90": 28}, "bands[0].sessions[1].p90"),
    ],
)
def test_percentiles_out_of_order_sessions_not_ascending_or_off_scale_are_named(
    row: dict[str, float], field: str
) -> None:
    first = {"session": 1, "p10": 12, "p50": 15.5, "p90": 19}
    problems = model_problems(builtin("phq-9"), model((0, 27), sessions=[first, row]))
    assert [f for f, _ in problems] == [field]


def test_an_instrument_without_a_total_cannot_have_a_model() -> None:
    problems = model_problems(builtin("rupture-check"), model((0, 1)))
    assert [f for f, _ in problems] == ["instrument"]


# ----- reading a model ----------------------------------------------------------------------------


def test_expected_score_by_intake_band_and_session_uses_the_last_listed_session() -> None:
    low = [
        {"session": 1, "p10": 2, "p50": 5, "p90": 8},
        {"session": 3, "p10": 1, "p50": 3, "p90": 6},
    ]
    m = ExpectedResponse.model_validate(
        {
            "bands": [
                {"intake_min": 0, "intake_max": 9, "sessions": low},
                {"intake_min": 10, "intake_max": 27,
                 "sessions": [{"session": 2, "p10": 10, "p50": 14, "p90": 18}]},
            ]
        }
    )  # fmt: skip
    assert expected_at(m, 4, 1) == Expected(2, 5, 8)
    assert expected_at(m, 4, 2) == Expected(2, 5, 8)  # session 2 not listed: session 1's
    assert expected_at(m, 9, 3) == Expected(1, 3, 6)
    assert expected_at(m, 9, 40) == Expected(1, 3, 6)  # past the last: the last, no extrapolation
    assert expected_at(m, 10, 1) is None  # before the band's first listed session
    assert expected_at(m, 27, 5) == Expected(10, 14, 18)
    assert expected_at(m, 9.5, 5) == Expected(1, 3, 6)  # a prorated total goes with the lower band


def test_failure_boundary_is_p10_for_higher_and_p90_for_lower_is_better() -> None:
    expected = Expected(10, 15, 20)
    assert etr.worse_than_expected(9.9, expected, "higher_is_better")
    assert not etr.worse_than_expected(10, expected, "higher_is_better")
    assert etr.worse_than_expected(20.1, expected, "lower_is_better")
    assert not etr.worse_than_expected(20, expected, "lower_is_better")


def test_curve_sessions_count_from_the_series_first_score() -> None:
    assert etr.curve_session(9, 9) == 1
    assert etr.curve_session(12, 9) == 4


# ----- the fit: a table computed by hand ----------------------------------------------------------
# Two episodes of one band, scores (curve session: score):
#   A: 1: 20, 2: 17, 4: 14, 8: 10        B: 1: 22, 2: 15, 4: 12, 8: 8
# Least squares of score on x = ln(session) over the scores after the intake (x = L, 2L, 3L with
# L = ln 2, two scores each): n = 6, Σx = 12L, Σx² = 28L², Σy = 76, Σxy = 32L + 52L + 54L = 138L;
# b = (6·138L - 12L·76) / (6·28L² - (12L)²) = -84L / 24L² = -3.5/L;
# a = (76 + 3.5/L · 12L) / 6 = 118/6.
# Curve: 2 → 97/6, 4 → 76/6, 8 → 55/6. Residuals: session 2 (5/6, -7/6), 4 (4/3, -2/3),
# 8 (5/6, -7/6). Percentiles of two values v < w (linear interpolation): v + q·(w - v), so per
# session p10/p50/p90 = (-29/30, -1/6, 19/30), (-7/15, 1/3, 17/15), (-29/30, -1/6, 19/30).
# Lines in ln(session) through them, equal weights: x symmetric around 2L and the values at L
# and 3L equal, so each line is flat at the mean: -0.8, 0, +0.8.
# Session 1 lists the intakes' percentiles: 20 + 0.1·2 = 20.2, 21, 21.8.

HAND_TABLE = [
    [(1, 20.0), (2, 17.0), (4, 14.0), (8, 10.0)],
    [(1, 22.0), (2, 15.0), (4, 12.0), (8, 8.0)],
]


def test_log_linear_fit_matches_the_table_computed_by_hand() -> None:
    a, b, sessions = etr.fit_band(HAND_TABLE, 0, 27, min_scores=2)
    assert a == pytest.approx(118 / 6)
    assert b == pytest.approx(-3.5 / L2)
    by_session = {p.session: (p.p10, p.p50, p.p90) for p in sessions}
    assert sorted(by_session) == list(range(1, 9))  # 1 to the last session with data
    assert by_session[1] == pytest.approx((20.2, 21.0, 21.8))
    for s, curve in ((2, 97 / 6), (4, 76 / 6), (8, 55 / 6)):
        assert by_session[s] == pytest.approx((curve - 0.8, curve, curve + 0.8), abs=1e-4)
    curve3 = 118 / 6 - 3.5 * math.log(3) / L2  # 14.119478…: a session between, on the curve
    assert by_session[3] == pytest.approx((curve3 - 0.8, curve3, curve3 + 0.8), abs=1e-4)


def test_fit_lists_sessions_only_as_far_as_the_data_cover() -> None:
    _, _, sessions = etr.fit_band(HAND_TABLE, 0, 27, min_scores=3)
    # No session has 3 scores: the percentiles pool every residual, and the curve runs to the last
    # session seen.
    assert sessions[-1].session == 8


def test_fit_clamps_to_the_total_range() -> None:
    _, _, sessions = etr.fit_band(HAND_TABLE, 10, 20, min_scores=2)
    assert all(10 <= v <= 20 for p in sessions for v in (p.p10, p.p50, p.p90))


def test_too_few_episodes_says_how_many_are_needed() -> None:
    few = [[(1, 15.0), (2, 12.0)]] * (etr.MIN_EPISODES_PER_BAND - 1)
    with pytest.raises(etr.TooFewEpisodes) as raised:
        etr.fit(builtin("phq-9"), few)
    assert raised.value.needed == etr.MIN_EPISODES_PER_BAND
    assert raised.value.have == [etr.MIN_EPISODES_PER_BAND - 1]
    assert f"at least {etr.MIN_EPISODES_PER_BAND}" in str(raised.value)


def test_too_few_episodes_in_one_given_band_names_the_band_counts() -> None:
    enough = [[(1, 15.0), (2, 12.0)]] * etr.MIN_EPISODES_PER_BAND
    with pytest.raises(etr.TooFewEpisodes) as raised:
        etr.fit(builtin("phq-9"), enough, [(0, 9), (10, 27)])
    assert raised.value.have == [0, etr.MIN_EPISODES_PER_BAND]


def test_episodes_with_one_score_take_no_part() -> None:
    one = [[(1, 15.0)]] * 100
    with pytest.raises(etr.TooFewEpisodes):
        etr.fit(builtin("phq-9"), one)


@given(st.lists(st.integers(0, 27), min_size=30, max_size=300))
def test_default_bands_tile_the_range_each_with_enough_episodes(intakes: list[int]) -> None:
    phq = builtin("phq-9")
    ranges = etr.default_bands(phq, [float(v) for v in intakes])
    assert etr.band_problems(phq, ranges) == []
    starts = [lo for lo, _ in ranges]
    counts = [0] * len(ranges)
    for v in intakes:
        counts[etr.band_index(starts, v)] += 1
    assert all(c >= etr.MIN_EPISODES_PER_BAND for c in counts)


# ----- simulation study ---------------------------------------------------------------------------
# Episodes drawn from a known recovery model on the ORS scale (0-40 in 0.1 steps, higher is
# better): intake ~ N(19, 6); expected score intake + g·ln(session)/ln(12), g = 35 % of the room
# to 40; a client effect N(0, 2.5) and session noise N(0, 3). Fitted on 2,000 episodes of 12
# sessions; the p10-p90 band should cover 80 % of held-out scores at every session (issue 16).

SESSIONS = 12


def recovering(rng: random.Random, n: int) -> list[list[tuple[int, float]]]:
    episodes = []
    for _ in range(n):
        intake = round(min(40.0, max(0.0, rng.gauss(19, 6))), 1)
        client = rng.gauss(0, 2.5)
        slope = 0.35 * (40 - intake) / math.log(SESSIONS)
        series = [(1, intake)]
        for s in range(2, SESSIONS + 1):
            y = intake + slope * math.log(s) + client + rng.gauss(0, 3)
            series.append((s, round(min(40.0, max(0.0, y)), 1)))
        episodes.append(series)
    return episodes


def test_simulated_band_covers_80_percent_of_held_out_scores_per_session() -> None:
    rng = random.Random(16)
    fitted = etr.fit(builtin("ors"), recovering(rng, 2000))
    assert fitted.source == "fitted"
    assert fitted.n_episodes == 2000
    assert sum(b.n_episodes or 0 for b in fitted.bands) == 2000
    assert len(fitted.bands) == etr.MAX_DEFAULT_BANDS
    assert model_problems(builtin("ors"), fitted) == []  # a fitted model is a valid upload
    assert fitted.coverage == pytest.approx(0.80, abs=0.03)  # its own held-out fifth
    check = etr.coverage(fitted, recovering(rng, 2000))
    assert set(check.by_session) == set(range(2, SESSIONS + 1))
    for session, share in check.by_session.items():
        assert share == pytest.approx(0.80, abs=0.03), session


# ----- properties ---------------------------------------------------------------------------------

_phq_scores = st.integers(0, 27).map(float)


@st.composite
def phq_episodes(draw: st.DrawFn) -> list[list[tuple[int, float]]]:
    n = draw(st.integers(etr.MIN_EPISODES_PER_BAND, 70))
    return [
        [(s, draw(_phq_scores)) for s in range(1, draw(st.integers(2, 6)) + 1)] for _ in range(n)
    ]


@settings(max_examples=examples(30))
@given(phq_episodes())
def test_any_fitted_model_is_a_valid_upload_with_ordered_percentiles(
    episodes: list[list[tuple[int, float]]],
) -> None:
    phq = builtin("phq-9")
    fitted = etr.fit(phq, episodes)
    assert model_problems(phq, fitted) == []
    assert fitted.n_episodes == len(episodes)
    assert fitted.coverage is None or 0 <= fitted.coverage <= 1
    for band in fitted.bands:
        assert band.sessions[0].session == 1
        assert all(0 <= p.p10 <= p.p50 <= p.p90 <= 27 for p in band.sessions)


@given(
    st.lists(st.integers(1, 26), unique=True, max_size=5).map(sorted),
    st.integers(0, 27),
    st.integers(1, 40),
)
def test_every_intake_finds_its_band_and_every_later_session_a_row(
    cuts: list[int], intake: int, session: int
) -> None:
    starts = [0, *cuts]
    ends = [*(c - 1 for c in cuts), 27]
    row = [{"session": 1, "p10": 1, "p50": 2, "p90": 3}]
    m = ExpectedResponse.model_validate(
        {"bands": [{"intake_min": lo, "intake_max": hi, "sessions": row}
                   for lo, hi in zip(starts, ends, strict=True)]}
    )  # fmt: skip
    assert model_problems(builtin("phq-9"), m) == []
    band = etr.band_for(m, intake)
    assert band is not None
    assert band.intake_min <= intake <= band.intake_max
    assert expected_at(m, intake, session) == Expected(1, 2, 3)
