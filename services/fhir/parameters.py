"""The search parameters of each resource type, in one place: the routes judge searches by them
(`search.Search`) and the CapabilityStatement lists them, so the statement says exactly what
works (tests/api/test_fhir_capability.py checks it against the routes)."""

from dataclasses import dataclass, field

from services.fhir.codes import CS_ALERT_TYPE, CS_SCORE
from services.fhir.search import MAX_COUNT, Param


@dataclass(frozen=True)
class Spec:
    name: str
    type: str  # FHIR SearchParamType
    documentation: str
    param: Param = field(default_factory=Param)


_ONCE = Param(repeats=False)
_PATIENT = Param(modifiers=frozenset({"Patient", "identifier"}))
_COUNT = Spec(
    "_count", "number", f"page size, 1 to {MAX_COUNT} (default 50); pages follow 'next'", _ONCE
)
_CURSOR = Spec("_cursor", "string", "page token of a 'next' link (opaque)", _ONCE)
_TOTAL = Spec(
    "_total", "token", "none, estimate or accurate: Bundle.total counts the matches", _ONCE
)
_ID = Spec("_id", "token", "ids, comma-separated", _ONCE)
_PATIENT_DOC = (
    "Patient/{client id}, the id, or with :identifier the client's external id ([system|]MRN)"
)

INCLUDE_DERIVED_FROM = "Observation:derived-from"

SEARCH: dict[str, tuple[Spec, ...]] = {
    "Questionnaire": (Spec("url", "uri", "canonical URL", _ONCE),),
    "Patient": (
        _ID,
        Spec("identifier", "token", "the external id (MRN), [system|]value; any system", _ONCE),
        _COUNT, _CURSOR, _TOTAL,
    ),
    "Practitioner": (
        _ID,
        Spec("identifier", "token", "the external id, [system|]value; any system", _ONCE),
        _COUNT, _CURSOR, _TOTAL,
    ),
    "EpisodeOfCare": (
        _ID,
        Spec("patient", "reference", _PATIENT_DOC, _PATIENT),
        Spec("status", "token", "active or finished", _ONCE),
        _COUNT, _CURSOR, _TOTAL,
    ),
    "QuestionnaireResponse": (
        _ID,
        Spec("patient", "reference", _PATIENT_DOC, _PATIENT),
        Spec("subject", "reference", "same as patient", _PATIENT),
        Spec("questionnaire", "reference", "canonical URL of the Questionnaire [|version]", _ONCE),
        Spec("authored", "date", "when the session took place, prefixes ge gt le lt eq"),
        Spec("identifier", "token", "the identifier it was posted with, [system|]value", _ONCE),
        Spec("_sort", "string", "authored or -authored (newest first); default: by id", _ONCE),
        _COUNT, _CURSOR, _TOTAL,
    ),
    "Observation": (
        Spec("subject", "reference", _PATIENT_DOC, _PATIENT),
        Spec("patient", "reference", "same as subject", _PATIENT),
        Spec(
            "code", "token",
            f"http://loinc.org|44261-6, {CS_SCORE}|phq-9.total, or phq-9 (every score of an "
            "instrument)",
            _ONCE,
        ),
        Spec("date", "date", "effective time, with prefixes ge gt le lt eq"),
        Spec("_sort", "string", "date or -date (newest first); default: by response id", _ONCE),
        Spec("_include", "special", f"{INCLUDE_DERIVED_FROM}: the QuestionnaireResponses", _ONCE),
        _COUNT, _CURSOR, _TOTAL,
    ),
    "DetectedIssue": (
        Spec("patient", "reference", _PATIENT_DOC, _PATIENT),
        Spec("subject", "reference", "same as patient", _PATIENT),
        Spec("code", "token", f"{CS_ALERT_TYPE}|alliance.rupture", _ONCE),
        Spec(
            "status", "token",
            "preliminary (open), final (acknowledged or resolved), entered-in-error "
            "(retracted); comma-separated for any of them",
            _ONCE,
        ),
        _COUNT, _CURSOR,
    ),
}  # fmt: skip


def supported(resource_type: str) -> dict[str, Param]:
    return {spec.name: spec.param for spec in SEARCH[resource_type]}
