"""The FHIR facade's pure mapping: Questionnaires, posted responses, Observation ids, search
parameters, DetectedIssue status and OperationOutcome. No database."""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from models.alerts import AlertPublic
from services.fhir import capability, outcome, resources, search
from services.fhir.codes import CS_SCORE, EXT_EPISODE, EXT_SESSION_NUMBER, LOINC
from services.fhir.questionnaire import to_questionnaire
from services.fhir.resources import Coded, FhirInputError, ScoreValues, SubmissionRow
from services.instruments import builtin_instruments, get_builtin

EPISODE = uuid.uuid4()
WHEN = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize("code", sorted(builtin_instruments()))
def test_every_builtin_instrument_is_a_valid_r4b_questionnaire(code: str) -> None:
    definition = get_builtin(code)
    questionnaire = to_questionnaire(definition)
    Questionnaire.model_validate(questionnaire)
    assert [i["linkId"] for i in questionnaire["item"]] == [i.id for i in definition.items]
    assert questionnaire["version"] == definition.version


def test_capability_statement_is_valid_r4b() -> None:
    CapabilityStatement.model_validate(
        capability.capability_statement("http://x.test/fhir", "2026-11-25T00:00:00Z")
    )


def _row(**changes: Any) -> SubmissionRow:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "episode_id": EPISODE,
        "client_id": uuid.uuid4(),
        "clinician_id": uuid.uuid4(),
        "instrument": "wai-sr",
        "instrument_version": "1",
        "session_number": 2,
        "respondent": "client",
        "rater": "",
        "status": "valid",
        "answers": {f"q{i}": 4 for i in range(1, 13)},
        "scores": {"total": 48.0, "subscales": {"goal": 16.0, "task": 16.0, "bond": 16.0}},
        "occurred_at": None,
        "created_at": WHEN,
    }
    merged = {**values, **changes}
    return SubmissionRow(**{**merged, "scores": ScoreValues.of(merged["scores"])})


def test_each_score_is_an_observation_derived_from_the_response() -> None:
    row = _row()
    found = resources.observations(row, get_builtin("wai-sr"))
    for resource in found:
        Observation.model_validate(resource)
        assert resource["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{row.id}"}]
        assert resource["effectiveDateTime"] == "2026-11-20T15:00:00Z"
    assert [o["id"] for o in found] == [f"{row.id}-{s}" for s in ("total", "bond", "goal", "task")]
    response = resources.questionnaire_response(row, get_builtin("wai-sr"))
    QuestionnaireResponse.model_validate(response)
    assert response["item"][0] == {"linkId": "q1", "answer": [{"valueInteger": 4}]}


def test_loinc_total_code_comes_first_where_the_instrument_has_one() -> None:
    row = _row(instrument="phq-9", scores={"total": 9.0, "subscales": {}, "band": "mild"})
    [total] = resources.observations(row, get_builtin("phq-9"))
    assert total["code"]["coding"][0] == {"system": LOINC, "code": "44261-6"}
    assert total["code"]["coding"][1]["code"] == "phq-9.total"
    assert total["interpretation"][0]["text"] == "mild"


def test_long_or_clashing_subscale_names_get_numbered_observation_ids() -> None:
    long_name = "a_very_long_subscale_name_beyond_the_id_limit"
    row = _row(scores={"total": 1.0, "subscales": {long_name: 1.0, "total": 2.0, "x_y": 3.0}})
    ids = [o["id"] for o in resources.observations(row, None)]
    assert ids == [f"{row.id}-{s}" for s in ("total", "s1", "s2", "x-y")]
    assert all(len(i) <= 64 for i in ids)
    assert resources.split_observation_id(ids[3]) == (row.id, "x-y")
    assert resources.split_observation_id("not-an-observation") is None


def _response(**fields: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "https://w3id.org/attune/fhir/Questionnaire/phq-9|1",
        "extension": [
            {"url": EXT_EPISODE, "valueReference": {"reference": f"EpisodeOfCare/{EPISODE}"}},
            {"url": EXT_SESSION_NUMBER, "valuePositiveInt": 3},
        ],
        "item": [{"linkId": "q1", "answer": [{"valueInteger": 2}]}],
    }
    return {**resource, **fields}


def test_a_posted_response_maps_onto_a_submission() -> None:
    parsed = resources.parse_response(
        _response(
            authored="2026-11-20T16:00:00+01:00",
            source={"type": "RelatedPerson", "display": "mother"},
            identifier={"system": "urn:x", "value": "42"},
        )
    )
    assert (parsed.code, parsed.version) == ("phq-9", "1")
    assert (parsed.episode_id, parsed.session_number) == (EPISODE, 3)
    assert (parsed.respondent, parsed.rater) == ("collateral", "mother")
    assert parsed.occurred_at == WHEN
    assert parsed.answers == {"q1": 2}
    assert parsed.identifier == ("urn:x", "42")
    clinician = resources.parse_response(_response(source={"reference": "Practitioner/abc"}))
    assert clinician.respondent == "clinician"


def test_every_unmappable_part_of_a_response_is_named() -> None:
    bad = _response(
        status="in-progress",
        questionnaire="https://elsewhere.test/form",
        extension=[],
        authored="2026-11-20",
        subject={"reference": "Group/1"},
        item=[
            {"linkId": "q1", "answer": []},
            {"linkId": "q2", "answer": [{"valueString": "two"}]},
        ],
    )
    with pytest.raises(FhirInputError) as caught:
        resources.parse_response(bad)
    where = {w for w, _ in caught.value.problems}
    assert where == {
        "QuestionnaireResponse.status",
        "QuestionnaireResponse.questionnaire",
        f"QuestionnaireResponse.extension('{EXT_EPISODE}')",
        f"QuestionnaireResponse.extension('{EXT_SESSION_NUMBER}')",
        "QuestionnaireResponse.authored",
        "QuestionnaireResponse.subject",
        "QuestionnaireResponse.item[0].answer",
        "QuestionnaireResponse.item[1].answer[0]",
    }


@pytest.mark.parametrize(
    ("fields", "expression"),
    [
        ({"item": {"linkId": "q1"}}, "QuestionnaireResponse.item"),
        ({"item": ["q1"]}, "QuestionnaireResponse.item[0]"),
        ({"item": [{"answer": [{"valueInteger": 1}]}]}, "QuestionnaireResponse.item[0].linkId"),
        ({"item": [{"linkId": 1, "answer": []}]}, "QuestionnaireResponse.item[0].linkId"),
        (
            {"item": [{"linkId": "q1", "answer": {"valueInteger": 1}}]},
            "QuestionnaireResponse.item[0].answer",
        ),
        ({"item": [{"linkId": "q1", "answer": [2]}]}, "QuestionnaireResponse.item[0].answer[0]"),
        (
            {"item": [{"linkId": "q1", "answer": [{"valueCoding": "LA6570-1"}]}]},
            "QuestionnaireResponse.item[0].answer[0].valueCoding.code",
        ),
        (
            {"item": [{"linkId": "q1", "answer": [{"valueCoding": {"code": 1}}]}]},
            "QuestionnaireResponse.item[0].answer[0].valueCoding.code",
        ),
        (
            {"item": [{"linkId": "q1", "answer": [{"valueCoding": {"system": 1, "code": "1"}}]}]},
            "QuestionnaireResponse.item[0].answer[0].valueCoding.system",
        ),
        ({"source": "Patient/1"}, "QuestionnaireResponse.source"),
        ({"identifier": "42"}, "QuestionnaireResponse.identifier"),
        ({"extension": "x", "subject": None}, f"QuestionnaireResponse.extension('{EXT_EPISODE}')"),
        ({"subject": {"identifier": {"system": 1, "value": "x"}}}, "QuestionnaireResponse.subject"),
    ],
)
def test_a_malformed_response_is_refused_naming_the_element_not_raised_on(
    fields: dict[str, Any], expression: str
) -> None:
    """The parser narrows every element it reads: called on a body the R4B model was not asked
    about, it still names what is wrong instead of failing inside (TypeError, AttributeError)."""
    with pytest.raises(FhirInputError) as caught:
        resources.parse_response(_response(**fields))
    assert expression in {w for w, _ in caught.value.problems}


def test_coded_answers_become_numbers() -> None:
    phq = get_builtin("phq-9")
    answers = resources.resolve_answers(
        phq,
        {
            "q1": Coded(LOINC, "LA6570-1"),
            "q2": Coded(None, "3"),
            "q3": Coded(LOINC, "LA0000-0"),
            "q4": Coded(None, "Infinity"),
            "q5": 1,
        },
    )
    assert answers == {"q1": 2, "q2": 3, "q3": "LA0000-0", "q4": "Infinity", "q5": 1}


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("2026-11", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("ge2026", datetime(2026, 1, 1, tzinfo=UTC), None),
        ("gt2026-11-20", datetime(2026, 11, 21, tzinfo=UTC), None),
        ("lt2026-11-20", None, datetime(2026, 11, 20, tzinfo=UTC)),
        ("le2026-11-20", None, datetime(2026, 11, 21, tzinfo=UTC)),
        (
            "2026-11-20T16:00:00+01:00",
            WHEN,
            datetime(2026, 11, 20, 15, 0, 1, tzinfo=UTC),
        ),
    ],
)
def test_date_search_values_are_ranges_of_their_precision(
    value: str, start: datetime | None, end: datetime | None
) -> None:
    assert search.date_range("date", value) == search.DateRange(start, end)


@pytest.mark.parametrize("value", ["soon", "2026-13", "ne2026", "2026-11-20T15:00:00", ""])
def test_bad_date_search_values_are_refused(value: str) -> None:
    with pytest.raises(search.SearchError):
        search.date_range("date", value)


def test_code_tokens_select_instruments_and_scores() -> None:
    assert search.score_codes(f"{LOINC}|44261-6,phq-9,{CS_SCORE}|wai-sr.bond,gad-7.total") == [
        search.ScoreCode(None, None, True, loinc="44261-6"),
        search.ScoreCode("phq-9", None, False),
        search.ScoreCode("wai-sr", "bond", False),
        search.ScoreCode("gad-7", None, True),
    ]
    with pytest.raises(search.SearchError):
        search.score_codes("http://snomed.info/sct|123")


def test_page_tokens_round_trip_and_foreign_ones_are_refused() -> None:
    last = uuid.uuid4()
    assert search.decode_cursor(search.encode_cursor(last, 3)) == (last, 3)
    assert search.decode_cursor(search.encode_cursor(last)) == (last, 0)
    with pytest.raises(search.SearchError):
        search.decode_cursor("not-a-token")


@pytest.mark.parametrize(
    ("status", "resolution", "expected"),
    [
        ("open", None, "preliminary"),
        ("acknowledged", None, "final"),
        ("resolved", "discussed", "final"),
        ("resolved", "condition_cleared", "final"),
        ("resolved", "retracted", "entered-in-error"),
    ],
)
def test_alert_status_maps_onto_detected_issue_status(
    status: str, resolution: str | None, expected: str
) -> None:
    assert resources.issue_status(status, resolution) == expected


def test_a_critical_alert_is_a_high_severity_detected_issue() -> None:
    alert = AlertPublic.model_validate({
        "id": uuid.uuid4(), "type": "risk.item", "severity": "critical", "status": "resolved",
        "resolution": "referred", "episode_id": uuid.uuid4(), "client_id": uuid.uuid4(),
        "clinician_id": uuid.uuid4(), "instrument": "phq-9", "respondent": "client",
        "rater": None, "subscale": None, "session_number": 2, "submission_id": uuid.uuid4(),
        "message": "Item 9 was answered 2.", "evidence": {},
        "rule": {"id": "risk.item", "version": "1", "params": {}},
        "created_at": WHEN, "updated_at": WHEN, "acknowledged_at": None, "resolved_at": WHEN,
        "note": None,
    })  # fmt: skip
    issue = resources.detected_issue(alert, evidence_observation="x-total")
    DetectedIssue.model_validate(issue)
    assert issue["severity"] == "high"
    assert issue["extension"][0]["valueCode"] == "critical"
    assert issue["mitigation"][0]["action"]["text"] == "referred"
    assert issue["evidence"][0]["detail"][0] == {"reference": "Observation/x-total"}


def test_a_problem_becomes_an_operation_outcome_naming_each_field() -> None:
    found = outcome.from_problem(
        {
            "status": 422,
            "detail": "bad",
            "errors": [{"field": "QuestionnaireResponse.status", "message": "completed"}],
        }
    )
    OperationOutcome.model_validate(found)
    assert found["issue"] == [
        {
            "severity": "error",
            "code": "processing",
            "diagnostics": "completed",
            "expression": ["QuestionnaireResponse.status"],
        }
    ]
    assert outcome.from_problem({"status": 503})["issue"][0]["code"] == "transient"
