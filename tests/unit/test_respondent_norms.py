"""Norms belong to a respondent (DESIGN.md §10.3.5, issue 13 finding 8): a collateral rating is
never judged on the client's self-report norms; without a norm for the respondent the clinical
flags and the classification are null."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from services.instruments import InstrumentDefinition
from services.instruments import get_builtin as builtin
from services.scoring import cutoff_for, score
from services.trajectory import build_trajectory

ORS_30 = {"individually": 7.5, "interpersonally": 7.5, "socially": 7.5, "overall": 7.5}


def test_a_collateral_ors_is_not_judged_on_the_child_self_report_cutoff() -> None:
    """ORS-3: a child's own CORS of 30 is clinical (cut-off 32); psychometrics.md gives no
    collateral norm for the ORS, so a mother's rating of 30 has no clinical flag."""
    ors = builtin("ors")
    own = score(ors, ORS_30, "child", respondent="client")
    assert (own.total, own.clinical, own.below_cutoff) == (30.0, True, True)
    mother = score(ors, ORS_30, "child", respondent="collateral")
    assert (mother.total, mother.clinical, mother.below_cutoff) == (30.0, None, None)


def test_the_ors_norms_are_the_client_self_report_ones() -> None:
    ors = builtin("ors")
    assert [cutoff_for(ors.for_respondent("client"), p) for p in ("adult", "child")] == [25, 32]
    assert cutoff_for(ors.for_respondent("collateral"), "adult") is None
    assert ors.for_respondent("client").reliable_change_points == 5.0
    assert ors.for_respondent("collateral").reliable_change_points is None


def test_a_collateral_trajectory_has_no_clinical_flags_and_no_classification() -> None:
    ors = builtin("ors").for_respondent("collateral")
    trajectory = build_trajectory(ors, [(1, 19.0, {}), (2, 26.0, {})], "adult")
    assert [p.clinical for p in trajectory.points] == [None, None]
    assert [p.reliable_change for p in trajectory.points] == [None, None]
    assert trajectory.summary.classification is None
    client = build_trajectory(builtin("ors"), [(1, 19.0, {}), (2, 26.0, {})], "adult")
    assert client.summary.classification == "recovered"  # ORS-2


def local(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "family-local", "version": "1", "name": "Family functioning", "kind": "outcome",
        "respondents": ["client", "collateral"],
        "items": [{"id": "score", "label": "Score", "min": 0, "max": 40, "step": 1}],
        "direction": "higher_is_better", "citation": "test", "license": "test",
    }  # fmt: skip
    data.update(changes)
    return data


def test_definitions_may_give_norms_per_respondent() -> None:
    defn = InstrumentDefinition.model_validate(
        local(
            cutoff={"client": {"adult": 25, "child": 32}, "collateral": 28},
            reliable_change={"client": 5, "collateral": {"sd": 10.5, "reliability": 0.961}},
        )
    )
    client, collateral = defn.for_respondent("client"), defn.for_respondent("collateral")
    assert (cutoff_for(client, "child"), cutoff_for(collateral, "child")) == (32, 28)
    assert client.reliable_change_points == 5
    assert collateral.reliable_change_points == pytest.approx(5.747681, abs=1e-6)
    assert score(defn, {"score": 27}, "child", respondent="collateral").clinical is True
    assert score(defn, {"score": 30}, "child", respondent="collateral").clinical is False


def test_a_plain_norm_is_the_clients_when_the_client_rates_the_instrument() -> None:
    defn = InstrumentDefinition.model_validate(local(cutoff=25, reliable_change=5))
    assert cutoff_for(defn.for_respondent("client"), "adult") == 25
    assert cutoff_for(defn.for_respondent("collateral"), "adult") is None
    assert defn.for_respondent("collateral").reliable_change_points is None


def test_a_plain_norm_of_an_instrument_the_client_does_not_rate_is_its_raters() -> None:
    defn = InstrumentDefinition.model_validate(local(respondents=["clinician"], cutoff=25))
    assert cutoff_for(defn.for_respondent("clinician"), "adult") == 25


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cutoff": {"teacher": 20}}, "cutoff.teacher"),
        ({"cutoff": {"clinician": 20}}, "cutoff.clinician"),  # not a respondent of it
        ({"cutoff": {"client": 20, "adult": 20}}, "cutoff"),
        ({"cutoff": {"collateral": 41}}, "cutoff.collateral"),
        ({"cutoff": {"collateral": {"adult": 41}}}, "cutoff.collateral.adult"),
        ({"cutoff": {"collateral": {"elder": 20}}}, "cutoff.collateral.elder"),
        ({"reliable_change": {"collateral": 0}}, "reliable_change.collateral"),
        ({"reliable_change": {"clinician": 5}}, "reliable_change.clinician"),
    ],
)
def test_bad_respondent_norms_are_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        InstrumentDefinition.model_validate(local(**changes))
    assert f"{field}:" in str(info.value)


def test_views_are_cached_so_a_builtin_keeps_its_identity() -> None:
    ors = builtin("ors")
    assert ors.for_respondent("collateral") is ors.for_respondent("collateral")
    assert ors.for_respondent("collateral").model_dump() == ors.model_dump()


def test_respondent_norms_round_trip_through_json() -> None:
    data = local(cutoff={"client": {"adult": 25}, "collateral": 28}, reliable_change={"client": 5})
    defn = InstrumentDefinition.model_validate(data)
    again = InstrumentDefinition.model_validate(copy.deepcopy(defn.model_dump(mode="json")))
    assert again == defn
