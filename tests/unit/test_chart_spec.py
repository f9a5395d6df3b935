"""The chart's Vega-Lite spec (services/charts/spec.py): pure, from a trajectory, its definition
and the series' alerts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.charts import AlertMarker, trajectory_chart
from services.instruments import get_builtin as builtin
from services.trajectory import build_trajectory
from services.trajectory.analysis import ExpectedOut
from tests.support.examples import examples

NO_SUBSCALES: Mapping[str, float] = {}


def layers(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {layer["name"]: layer["data"]["values"] for layer in spec["layer"]}


def test_a_symptom_scales_clinical_zone_lies_at_and_above_its_cutoff() -> None:
    # PHQ-9: lower is better; caseness ≥ 10 (NHS Talking Therapies; reference/psychometrics.md).
    phq = builtin("phq-9")
    trajectory = build_trajectory(phq, [(1, 18.0, NO_SUBSCALES), (2, 9.0, NO_SUBSCALES)])
    chart = trajectory_chart(phq, trajectory)
    data = layers(chart.vega_lite)
    assert data["clinical_zone"][0]["score"] == 10.0
    assert data["clinical_zone"][0]["score2"] == 27.0
    assert "at or above it" in chart.description
    assert "lower is better" in chart.description
    assert "where 1 of 2 scores lie" in chart.description


def test_the_expected_band_is_drawn_only_when_points_carry_one() -> None:
    ors = builtin("ors")
    plain = build_trajectory(ors, [(1, 19.0, NO_SUBSCALES), (2, 22.0, NO_SUBSCALES)])
    assert "expected_band" not in layers(trajectory_chart(ors, plain).vega_lite)
    with_band = plain.model_copy(
        update={
            "points": [
                p.model_copy(
                    update={"expected": ExpectedOut(p10=17.0 + i, p50=20.0 + i, p90=23.0 + i)}
                )
                for i, p in enumerate(plain.points)
            ]
        }
    )
    chart = trajectory_chart(ors, with_band)
    data = layers(chart.vega_lite)
    assert [(b["session"], b["p10"], b["score"], b["p90"]) for b in data["expected_band"]] == [
        (1, 17.0, 20.0, 23.0),
        (2, 18.0, 21.0, 24.0),
    ]
    assert data["expected_median"] == data["expected_band"]
    assert "expected response (10th to 90th percentile)" in chart.description


def test_alerts_of_one_session_share_one_marker_in_the_colour_of_the_most_severe() -> None:
    srs = builtin("srs")
    trajectory = build_trajectory(srs, [(1, 38.0, NO_SUBSCALES), (2, 30.0, NO_SUBSCALES)])
    chart = trajectory_chart(
        srs,
        trajectory,
        [
            AlertMarker(2, "alliance.low", "warning", "open"),
            AlertMarker(2, "risk.item", "critical", "acknowledged"),
            AlertMarker(9, "alliance.drop", "warning", "open"),  # no point at 9: words only
        ],
    )
    marks = layers(chart.vega_lite)["alerts"]
    assert [(m["session"], m["colour"]) for m in marks] == [(2, "#6e0000")]
    assert "low alliance (warning, open), risk item (critical, acknowledged)" in marks[0]["label"]
    assert "session 9: alliance drop (warning, open)" in chart.description


def test_long_series_are_listed_in_words_up_to_a_limit() -> None:
    ors = builtin("ors")
    trajectory = build_trajectory(ors, [(n, 20.0, NO_SUBSCALES) for n in range(1, 41)])
    chart = trajectory_chart(ors, trajectory)
    assert "40 scores" in chart.description
    assert "and 28 more" in chart.description
    assert len(layers(chart.vega_lite)["scores"]) == 40


def test_an_instrument_without_a_total_has_no_chart() -> None:
    check = builtin("rupture-check")
    with pytest.raises(ValueError, match="no total"):
        trajectory_chart(check, build_trajectory(check, [(1, None, NO_SUBSCALES)]))


@settings(max_examples=examples(60), deadline=None)
@given(
    code=st.sampled_from(["srs", "ors", "wai-sr", "phq-9", "gad-7", "chs"]),
    data=st.data(),
)
def test_every_scored_session_is_a_point_on_the_instruments_scale(
    code: str, data: st.DataObject
) -> None:
    definition = builtin(code)
    assert definition.total_range is not None
    low, high = definition.total_range
    sessions = data.draw(st.lists(st.integers(1, 60), unique=True, max_size=40))
    totals = data.draw(
        st.lists(
            st.floats(low, high, allow_nan=False).map(lambda v: round(v, 1)),
            min_size=len(sessions),
            max_size=len(sessions),
        )
    )
    trajectory = build_trajectory(
        definition, [(n, v, NO_SUBSCALES) for n, v in zip(sessions, totals, strict=True)]
    )
    chart = trajectory_chart(definition, trajectory)
    spec: dict[str, Any] = chart.vega_lite  # JSON, dug into by name
    data_layers = layers(spec)
    assert sorted((p["session"], p["score"]) for p in data_layers["scores"]) == sorted(
        zip(sessions, totals, strict=True)
    )
    # Inline data only: nothing for a renderer to fetch.
    assert all(set(layer["data"]) == {"values"} for layer in spec["layer"])
    scores = next(layer for layer in spec["layer"] if layer["name"] == "scores")
    assert scores["encoding"]["y"]["scale"]["domain"] == [low, high]
    for name in ("ruptures", "repairs"):
        assert {r["session"] for r in data_layers.get(name, [])} <= set(sessions)


def test_a_score_beyond_the_current_scale_widens_it_rather_than_leaving_the_plot() -> None:
    # A series scored under an earlier version of an organisation's instrument may exceed the
    # range of the version charted.
    srs = builtin("srs")
    trajectory = build_trajectory(srs, [(1, 38.0, NO_SUBSCALES), (2, 44.0, NO_SUBSCALES)])
    spec: dict[str, Any] = trajectory_chart(srs, trajectory).vega_lite
    scores = next(layer for layer in spec["layer"] if layer["name"] == "scores")
    assert scores["encoding"]["y"]["scale"]["domain"] == [0.0, 44.0]
