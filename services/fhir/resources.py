"""Submissions as QuestionnaireResponses and Observations, alerts as DetectedIssues, and a posted
QuestionnaireResponse back into a submission's terms. Pure: rows in, FHIR JSON out.

Mappings (documented for integrators in the CapabilityStatement and the README):
- ``subject`` is ``Patient/{client_id}``; the episode and session are the extensions
  ``…/StructureDefinition/episode`` (valueReference ``EpisodeOfCare/{episode_id}``) and
  ``…/StructureDefinition/session-number`` (valuePositiveInt); ``authored`` is when the session
  took place (``occurred_at``).
- ``source`` says who answered: ``Patient`` (or none) → client, ``Practitioner`` /
  ``PractitionerRole`` → clinician, ``RelatedPerson`` → collateral, whose ``display`` is the
  rater's label ("mother").
- A voided submission is ``entered-in-error``, and so are its Observations.
- Observations: one per score (the total and each subscale) of a submission, with ids
  ``{submission_id}-total`` and ``{submission_id}-{subscale}`` (``_`` written as ``-``).
"""

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TypeGuard
from urllib.parse import parse_qs

from models.alerts import AlertPublic
from services.fhir.codes import (
    CS_ALERT_ACTION,
    CS_ALERT_TYPE,
    CS_BAND,
    CS_SCORE,
    EXT_ALERT_SEVERITY,
    EXT_EPISODE,
    EXT_SESSION_NUMBER,
    LOINC,
    OBSERVATION_CATEGORY,
    UCUM,
)
from services.fhir.questionnaire import typed_value, versioned_canonical
from services.fhir.shapes import (
    Answer,
    Coding,
    DetectedIssue,
    Extension,
    Identifier,
    Mitigation,
    Observation,
    QuestionnaireResponse,
    Reference,
    RelatedPersonSource,
    ResponseItem,
)
from services.instruments import InstrumentDefinition

QR = "QuestionnaireResponse"
TOTAL = "total"
# Longer subscale names would push an Observation id past FHIR's 64 characters: they are
# numbered instead (their position among the submission's subscales, sorted by name).
_MAX_SUBSCALE_ID = 64 - 37


@dataclass(frozen=True)
class ScoreValues:
    """What the FHIR resources show of a submission's scores (its ``scores`` JSON column)."""

    total: float | None
    subscales: Mapping[str, float]
    band: str | None

    @classmethod
    def of(cls, scores: Mapping[str, object]) -> "ScoreValues":
        """The scores as the submission service stores them (`models.submissions.ScoresPublic`):
        numbers and a band label; anything else there is left out."""
        total, subscales, band = scores.get("total"), scores.get("subscales"), scores.get("band")
        return cls(
            total=float(total) if _is_number(total) else None,
            subscales={
                str(name): float(value)
                for name, value in (subscales.items() if isinstance(subscales, dict) else ())
                if _is_number(value)
            },
            band=band if isinstance(band, str) else None,
        )


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class SubmissionRow:
    """A submission with its episode's client and clinician and its FHIR identifier, if any."""

    id: uuid.UUID
    episode_id: uuid.UUID
    client_id: uuid.UUID
    clinician_id: uuid.UUID
    instrument: str
    instrument_version: str
    session_number: int
    respondent: str
    rater: str
    status: str
    answers: Mapping[str, float]
    scores: ScoreValues
    occurred_at: datetime | None
    created_at: datetime
    voided_at: datetime | None = None
    identifier: tuple[str, str] | None = None

    @property
    def effective(self) -> datetime:
        return self.occurred_at or self.created_at


def instant(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _place(row: SubmissionRow) -> list[Extension]:
    return [
        {"url": EXT_EPISODE, "valueReference": {"reference": f"EpisodeOfCare/{row.episode_id}"}},
        {"url": EXT_SESSION_NUMBER, "valuePositiveInt": row.session_number},
    ]


def _source(row: SubmissionRow) -> Reference | RelatedPersonSource:
    if row.respondent == "client":
        return {"reference": f"Patient/{row.client_id}"}
    if row.respondent == "clinician":
        return {"reference": f"Practitioner/{row.clinician_id}"}
    return {"type": "RelatedPerson", "display": row.rater or "collateral"}


def questionnaire_response(
    row: SubmissionRow, definition: InstrumentDefinition | None
) -> QuestionnaireResponse:
    items_by_id = {i.id: i for i in definition.items} if definition else {}
    order = [i.id for i in definition.items] if definition else sorted(row.answers)
    answered = [linked for linked in order if linked in row.answers]
    answered += sorted(set(row.answers) - set(answered))
    items: list[ResponseItem] = []
    for link_id in answered:
        value = row.answers[link_id]
        item = items_by_id.get(link_id)
        answer: Answer
        if item is not None:
            answer = typed_value(item, value)
        elif isinstance(value, int) and not isinstance(value, bool):
            answer = {"valueInteger": value}
        else:
            answer = {"valueDecimal": value}
        items.append({"linkId": link_id, "answer": [answer]})
    out: QuestionnaireResponse = {
        "resourceType": "QuestionnaireResponse",
        "id": str(row.id),
        "meta": {"lastUpdated": instant(row.voided_at or row.created_at)},
        "extension": _place(row),
        "questionnaire": versioned_canonical(row.instrument, row.instrument_version),
        "status": "entered-in-error" if row.status == "voided" else "completed",
        "subject": {"reference": f"Patient/{row.client_id}"},
        "authored": instant(row.effective),
        "source": _source(row),
        "item": items,
    }
    if row.identifier is not None:
        system, text = row.identifier
        identifier: Identifier = {"system": system, "value": text} if system else {"value": text}
        out["identifier"] = identifier
    return out


def score_suffixes(row: SubmissionRow) -> list[tuple[str, str | None, float]]:
    """(id suffix, subscale or None for the total, value) of every score of a submission."""
    out: list[tuple[str, str | None, float]] = []
    if row.scores.total is not None:
        out.append((TOTAL, None, row.scores.total))
    subscales = row.scores.subscales
    for position, name in enumerate(sorted(subscales), start=1):
        suffix = name.replace("_", "-")
        if len(suffix) > _MAX_SUBSCALE_ID or suffix == TOTAL:
            suffix = f"s{position}"
        out.append((suffix, name, subscales[name]))
    return out


def observation_id(submission_id: uuid.UUID, suffix: str) -> str:
    return f"{submission_id}-{suffix}"


def split_observation_id(observation: str) -> tuple[uuid.UUID, str] | None:
    """(submission id, suffix) of an Observation id, or None when it is not one of ours."""
    head, sep, suffix = observation[:36], observation[36:37], observation[37:]
    if sep != "-" or not suffix:
        return None
    try:
        return uuid.UUID(head), suffix
    except ValueError:
        return None


def score_code(instrument: str, subscale: str | None) -> str:
    return f"{instrument}.{subscale or TOTAL}"


def observations(row: SubmissionRow, definition: InstrumentDefinition | None) -> list[Observation]:
    return [
        _observation(row, definition, suffix, subscale, value)
        for suffix, subscale, value in score_suffixes(row)
    ]


def _observation(
    row: SubmissionRow,
    definition: InstrumentDefinition | None,
    suffix: str,
    subscale: str | None,
    value: float,
) -> Observation:
    name = definition.name if definition else row.instrument
    what = f"{name} {subscale.replace('_', ' ') if subscale else 'total'} score"
    codings: list[Coding] = [
        {"system": CS_SCORE, "code": score_code(row.instrument, subscale), "display": what}
    ]
    if subscale is None and definition is not None and definition.total_loinc:
        codings.insert(0, {"system": LOINC, "code": definition.total_loinc})
    out: Observation = {
        "resourceType": "Observation",
        "id": observation_id(row.id, suffix),
        "meta": {"lastUpdated": instant(row.voided_at or row.created_at)},
        "extension": _place(row),
        "status": "entered-in-error" if row.status == "voided" else "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
        ],
        "code": {"coding": codings, "text": what},
        "subject": {"reference": f"Patient/{row.client_id}"},
        "effectiveDateTime": instant(row.effective),
        "issued": instant(row.created_at),
        "valueQuantity": {"value": value, "unit": "score", "system": UCUM, "code": "{score}"},
        "derivedFrom": [{"reference": f"{QR}/{row.id}"}],
    }
    band = row.scores.band
    if subscale is None and band:
        out["interpretation"] = [{"coding": [{"system": CS_BAND, "code": band}], "text": band}]
    return out


# Alert severity → DetectedIssue.severity (high | moderate | low); the alert's own is kept in an
# extension. Alert status → DetectedIssue.status: open → preliminary (no person has looked at it
# yet), acknowledged and resolved → final (the mitigation says what was done), resolved as
# retracted (its submission was voided) → entered-in-error.
_SEVERITY = {"critical": "high", "high": "high", "warning": "moderate"}


def issue_status(status: str, resolution: str | None) -> str:
    if status == "open":
        return "preliminary"
    if status == "resolved" and resolution == "retracted":
        return "entered-in-error"
    return "final"


def detected_issue(alert: AlertPublic, *, evidence_observation: str | None) -> DetectedIssue:
    """``alert`` as `services.alerts.lifecycle.public` shows it; ``evidence_observation``: the id
    of the Observation the alert is about, when its submission has that score."""
    out: DetectedIssue = {
        "resourceType": "DetectedIssue",
        "id": str(alert.id),
        "meta": {"lastUpdated": instant(alert.updated_at)},
        "extension": [{"url": EXT_ALERT_SEVERITY, "valueCode": alert.severity}],
        "status": issue_status(alert.status, alert.resolution),
        "code": {
            "coding": [{"system": CS_ALERT_TYPE, "code": alert.type}],
            "text": alert.type,
        },
        "severity": _SEVERITY.get(alert.severity, "moderate"),
        "patient": {"reference": f"Patient/{alert.client_id}"},
        "identifiedDateTime": instant(alert.created_at),
        "detail": alert.message,
    }
    details: list[Reference] = []
    if evidence_observation is not None:
        details.append({"reference": f"Observation/{evidence_observation}"})
    if alert.submission_id is not None:
        details.append({"reference": f"{QR}/{alert.submission_id}"})
    if details:
        out["evidence"] = [{"detail": details}]
    mitigation: list[Mitigation] = []
    if alert.acknowledged_at is not None:
        mitigation.append(_action("acknowledged", alert.acknowledged_at))
    if alert.status == "resolved" and alert.resolved_at is not None:
        mitigation.append(_action(alert.resolution or "resolved", alert.resolved_at))
    if mitigation:
        out["mitigation"] = mitigation
    return out


def _action(code: str, when: datetime) -> Mitigation:
    return {
        "action": {"coding": [{"system": CS_ALERT_ACTION, "code": code}], "text": code},
        "date": instant(when),
    }


def evidence_suffix(alert: AlertPublic, definition: InstrumentDefinition | None) -> str | None:
    """The Observation id suffix an alert's evidence points to: its subscale's, or the total's
    when the instrument has a total."""
    if definition is None or alert.submission_id is None:
        return None
    subscale = alert.subscale
    if subscale:
        names = sorted(definition.subscales)
        if subscale not in names:
            return None
        suffix = str(subscale).replace("_", "-")
        if len(suffix) > _MAX_SUBSCALE_ID or suffix == TOTAL:
            suffix = f"s{names.index(subscale) + 1}"
        return suffix
    return TOTAL if definition.scoring.method != "none" else None


# Reading a posted QuestionnaireResponse.
#
# The body is untrusted JSON: every element is narrowed (isinstance) where it is read, and
# whatever does not have the shape FHIR gives it is named in a FhirInputError, never indexed
# blindly. The route validates the body against the R4B model first, so in practice these checks
# meet only what that model lets through (e.g. ``"valueInteger": "3"``, which the submission
# schema then refuses naming the item).


class FhirInputError(ValueError):
    """What is wrong with a posted resource, as (FHIRPath expression, message) pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{where}: {message}" for where, message in problems))


@dataclass(frozen=True)
class Coded:
    """An answer given as a Coding, resolved against the instrument once it is known."""

    system: str | None
    code: str


# An answer as posted: a `Coded`, or the valueInteger/valueDecimal as sent, any JSON value: the
# submission schema judges it, so that a bad one is refused naming its item, as on POST /v1.
PostedAnswer = object


@dataclass(frozen=True)
class ParsedResponse:
    code: str
    version: str | None
    episode_id: uuid.UUID | None  # None: the subject's one active episode (the store finds it)
    session_number: int
    occurred_at: datetime | None
    respondent: str
    rater: str | None
    answers: dict[str, PostedAnswer]
    subject: uuid.UUID | None
    identifier: tuple[str, str] | None
    # The client named by its external id (an MRN): ``subject.identifier`` (a logical reference)
    # or ``Patient?identifier=system|value`` (a conditional one), DESIGN.md §10.6.
    subject_identifier: tuple[str, str] | None = None


def _object(value: object) -> Mapping[str, object] | None:
    """A JSON object, or None for any other value."""
    return value if isinstance(value, dict) else None


def _reference_id(reference: object, resource_type: str) -> uuid.UUID | None:
    """The id of ``{"reference": "[base/]Type/{uuid}"}``, or None if it is not such a one."""
    text = (_object(reference) or {}).get("reference")
    if not isinstance(text, str):
        return None
    parts = text.rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != resource_type:
        return None
    try:
        return uuid.UUID(parts[-1])
    except ValueError:
        return None


def parse_questionnaire_ref(value: object) -> tuple[str, str | None] | None:
    """(code, version or None) of ``…/Questionnaire/{code}[|version]``."""
    if not isinstance(value, str):
        return None
    url, _, version = value.partition("|")
    head, sep, code = url.rstrip("/").rpartition("/")
    if not sep or not head.endswith("Questionnaire") or not code:
        return None
    return code, version or None


def _respondent(source: object) -> tuple[str, str | None]:
    if source is None:
        return "client", None
    found = _object(source)
    if found is None:
        raise FhirInputError([(f"{QR}.source", "a Patient, Practitioner or RelatedPerson")])
    reference = found.get("reference")
    kind = found.get("type")
    if isinstance(reference, str) and "/" in reference:
        kind = reference.rstrip("/").split("/")[-2]
    if kind in (None, "Patient"):
        return "client", None
    if kind in ("Practitioner", "PractitionerRole"):
        return "clinician", None
    if kind == "RelatedPerson":
        display = found.get("display")
        return "collateral", display if isinstance(display, str) and display.strip() else None
    raise FhirInputError([(f"{QR}.source", "a Patient, Practitioner or RelatedPerson")])


def _answer(item: Mapping[str, object], where: str) -> PostedAnswer:
    answers = item.get("answer") or []
    if not isinstance(answers, list) or len(answers) != 1:
        raise FhirInputError([(f"{where}.answer", "exactly one answer per item")])
    answer = _object(answers[0])
    if answer is None:
        raise FhirInputError(
            [(f"{where}.answer[0]", "valueInteger, valueDecimal or valueCoding expected")]
        )
    if "valueInteger" in answer:
        return answer["valueInteger"]
    if "valueDecimal" in answer:
        value = answer["valueDecimal"]
        return float(value) if isinstance(value, Decimal) else value
    if "valueCoding" in answer:
        coding = _object(answer["valueCoding"]) or {}
        code, system = coding.get("code"), coding.get("system")
        if not isinstance(code, str) or not code:
            raise FhirInputError([(f"{where}.answer[0].valueCoding.code", "required")])
        if system is not None and not isinstance(system, str):
            raise FhirInputError([(f"{where}.answer[0].valueCoding.system", "a URI")])
        return Coded(system, code)
    raise FhirInputError(
        [(f"{where}.answer[0]", "valueInteger, valueDecimal or valueCoding expected")]
    )


def _list(resource: Mapping[str, object], key: str) -> list[object]:
    """The list under ``key`` (none when absent or not a list: the caller names what it
    needed)."""
    found = resource.get(key)
    return found if isinstance(found, list) else []


def _extension(resource: Mapping[str, object], url: str) -> Mapping[str, object] | None:
    for ext in _list(resource, "extension"):
        found = _object(ext)
        if found is not None and found.get("url") == url:
            return found
    return None


def _answers(
    resource: Mapping[str, object],
) -> tuple[dict[str, PostedAnswer], list[tuple[str, str]]]:
    """The answers by linkId, and what is wrong with the items."""
    answers: dict[str, PostedAnswer] = {}
    problems: list[tuple[str, str]] = []
    raw_items = resource.get("item")
    if raw_items is not None and not isinstance(raw_items, list):
        return answers, [(f"{QR}.item", "a list of items")]
    for index, raw in enumerate(raw_items or []):
        where = f"{QR}.item[{index}]"
        item = _object(raw)
        if item is None:
            problems.append((where, "an item with a linkId and one answer"))
            continue
        if item.get("item"):
            problems.append((f"{where}.item", "nested items are not supported"))
            continue
        link_id = item.get("linkId")
        if not isinstance(link_id, str):
            problems.append((f"{where}.linkId", "required, a string"))
            continue
        if link_id in answers:
            problems.append((f"{where}.linkId", "answered twice"))
            continue
        try:
            answers[link_id] = _answer(item, where)
        except FhirInputError as exc:
            problems += exc.problems
    return answers, problems


def parse_response(resource: Mapping[str, object]) -> ParsedResponse:
    """A QuestionnaireResponse (already valid FHIR: see `api/fhir`) in a submission's terms;
    raises :class:`FhirInputError` naming everything that cannot be mapped."""
    problems: list[tuple[str, str]] = []
    if resource.get("status") != "completed":
        problems.append((f"{QR}.status", "only a completed response can be scored"))
    questionnaire = parse_questionnaire_ref(resource.get("questionnaire"))
    if questionnaire is not None and not _CODE.fullmatch(questionnaire[0]):
        questionnaire = None
    if questionnaire is None:
        problems.append((f"{QR}.questionnaire", "the canonical URL of an Attune Questionnaire"))
    episode_ext = _extension(resource, EXT_EPISODE)
    episode = _reference_id((episode_ext or {}).get("valueReference"), "EpisodeOfCare")
    session_ext = _extension(resource, EXT_SESSION_NUMBER)
    session = (session_ext or {}).get("valuePositiveInt")
    if not isinstance(session, int) or isinstance(session, bool) or not 1 <= session <= 100_000:
        problems.append((f"{QR}.extension('{EXT_SESSION_NUMBER}')", "valuePositiveInt"))
    subject, subject_identifier = None, None
    raw_subject = resource.get("subject")
    if raw_subject is not None:
        subject_identifier = subject_by_identifier(raw_subject)
        if subject_identifier is None:
            subject = _reference_id(raw_subject, "Patient")
        if subject is None and subject_identifier is None:
            problems.append(
                (
                    f"{QR}.subject",
                    "Patient/{client id}, Patient?identifier=system|value, or an identifier",
                )
            )
    if episode is None and (episode_ext is not None or (subject or subject_identifier) is None):
        problems.append(
            (
                f"{QR}.extension('{EXT_EPISODE}')",
                "valueReference EpisodeOfCare/{episode id}, or a subject with one active episode",
            )
        )
    occurred_at = None
    authored = resource.get("authored")
    if authored is not None:
        occurred_at = _datetime(authored)
        if occurred_at is None:
            problems.append((f"{QR}.authored", "a date and time with a time zone"))
    identifier = None
    raw_identifier = resource.get("identifier")
    if raw_identifier is not None:
        given = _object(raw_identifier) or {}
        value, system = given.get("value"), given.get("system")
        if not _identifier_text(value) or not (system is None or _identifier_text(system)):
            problems.append(
                (f"{QR}.identifier", "a value (and system) of 1 to 255 printable characters")
            )
        else:
            identifier = (str(system or ""), str(value))
    answers, item_problems = _answers(resource)
    problems += item_problems
    try:
        respondent, rater = _respondent(resource.get("source"))
    except FhirInputError as exc:
        problems += exc.problems
        respondent, rater = "client", None
    if problems:
        raise FhirInputError(problems)
    assert questionnaire is not None
    assert isinstance(session, int)
    return ParsedResponse(
        code=questionnaire[0],
        version=questionnaire[1],
        episode_id=episode,
        session_number=session,
        occurred_at=occurred_at,
        respondent=respondent,
        rater=rater,
        answers=answers,
        subject=subject,
        identifier=identifier,
        subject_identifier=subject_identifier,
    )


def subject_by_identifier(subject: object) -> tuple[str, str] | None:
    """(system, value) of a subject that names the client by identifier: a logical reference
    ``{"identifier": {"system", "value"}}`` or a conditional one
    ``{"reference": "Patient?identifier=system|value"}``; None for any other subject."""
    found = _object(subject)
    if found is None:
        return None
    reference = found.get("reference")
    logical = _object(found.get("identifier"))
    value: object
    if isinstance(reference, str) and reference.startswith("Patient?"):
        query = parse_qs(reference.removeprefix("Patient?"), keep_blank_values=True)
        values = query.get("identifier", [])
        if len(query) != 1 or len(values) != 1:
            return None
        system, bar, value = values[0].partition("|")
        system, value = (system, value) if bar else ("", values[0])
    elif reference is None and logical is not None:
        given_system = logical.get("system") or ""
        if not isinstance(given_system, str):
            return None
        system, value = given_system, logical.get("value")
    else:
        return None
    if not _identifier_text(value) or not (system == "" or _identifier_text(system)):
        return None
    return system, str(value)


_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]{1,255}")


def _identifier_text(value: object) -> bool:
    return isinstance(value, str) and _PRINTABLE.fullmatch(value) is not None


def _datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def resolve_answers(
    definition: InstrumentDefinition, answers: Mapping[str, PostedAnswer]
) -> dict[str, object]:
    """Answers with every Coding replaced by its number: a LOINC answer code the item lists
    (PHQ-9: LA6569-3 → 1), or a code that is the number itself. Unknown codes stay as text, for
    the scoring engine to refuse naming the item. Other answers are left as posted."""
    items = {i.id: i for i in definition.items}
    out: dict[str, object] = {}
    for link_id, value in answers.items():
        if isinstance(value, Coded):
            item = items.get(link_id)
            found: int | float | None = None
            if item is not None and value.system == LOINC:
                found = next((a.value for a in item.answer_loinc if a.loinc == value.code), None)
            if found is None and value.system != LOINC:
                try:
                    number = Decimal(value.code)
                    if number.is_finite():
                        whole = number == number.to_integral_value()
                        found = int(number) if whole else float(number)
                except (InvalidOperation, ValueError, OverflowError):
                    found = None
            value = found if found is not None else value.code
        out[link_id] = value
    return out
