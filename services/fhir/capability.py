"""The CapabilityStatement (what the facade supports) and searchset Bundles."""

from collections.abc import Sequence
from typing import Any

from services.fhir.codes import (
    CANONICAL,
    CS_ALERT_TYPE,
    CS_SCORE,
    EXPORTABLE,
    EXT_EPISODE,
    EXT_SESSION_NUMBER,
    FHIR_VERSION,
    MEDIA_TYPE,
)

_DOC = (
    "Attune's FHIR R4 facade. Authenticate with 'Authorization: Bearer <Attune API key>'. "
    "A QuestionnaireResponse is scored like POST /v1/submissions: subject Patient/{client id}; "
    f"the episode and session are the extensions {EXT_EPISODE} (valueReference "
    f"EpisodeOfCare/{{episode id}}) and {EXT_SESSION_NUMBER} (valuePositiveInt); source "
    "Patient (or none) = client, Practitioner = clinician, RelatedPerson (display = rater) = "
    "collateral; one identifier makes the create idempotent (the same identifier again answers "
    "200 with the response it created to a key that may read it, else 409). Searches are "
    "strict: an unknown parameter or modifier, or a value that cannot be applied, is a 400 "
    "OperationOutcome naming it, unless 'Prefer: handling=lenient' asks to leave it out; the "
    "Bundle's self link lists exactly the parameters applied. Reference parameters take the "
    ":Patient modifier. Scores are Observations (category survey, LOINC where "
    f"one exists, else {CS_SCORE}); alerts are DetectedIssues (code system {CS_ALERT_TYPE}; "
    "open = preliminary, acknowledged or resolved = final with a mitigation, retracted = "
    "entered-in-error). Voided submissions and their Observations are entered-in-error."
)


def _param(name: str, kind: str, doc: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "documentation": doc}


_COUNT = _param("_count", "number", "page size, 1 to 500 (default 50); pages follow 'next' links")


def capability_statement(base: str, date: str) -> dict[str, Any]:
    read = [{"code": "read"}]
    return {
        "resourceType": "CapabilityStatement",
        "url": f"{CANONICAL}/CapabilityStatement/attune",
        "name": "AttuneFhirFacade",
        "title": "Attune FHIR R4 facade",
        "status": "active",
        "date": date,
        "publisher": "Attune",
        "kind": "instance",
        "software": {"name": "Attune", "version": "0.1.0"},
        "implementation": {"description": "Attune measurement-based care", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": [MEDIA_TYPE, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": _DOC,
                "security": {
                    "cors": False,
                    "description": "Bearer API keys with Attune's scopes (submissions:read, "
                    "submissions:write, alerts:read, exports:identified or admin for $export); "
                    "a key bound to a clinician sees its caseload only.",
                },
                "resource": [
                    {
                        "type": "Questionnaire",
                        "interaction": [*read, {"code": "search-type"}],
                        "searchParam": [_param("url", "uri", "canonical URL")],
                    },
                    {
                        "type": "QuestionnaireResponse",
                        "interaction": [*read, {"code": "create"}],
                        "conditionalCreate": True,
                        "versioning": "no-version",
                    },
                    {
                        "type": "Observation",
                        "interaction": [*read, {"code": "search-type"}],
                        "searchParam": [
                            _param("subject", "reference", "Patient/{client id} or the id"),
                            _param("patient", "reference", "same as subject"),
                            _param(
                                "code",
                                "token",
                                f"http://loinc.org|44261-6, {CS_SCORE}|phq-9.total, "
                                "or phq-9 (every score of an instrument)",
                            ),
                            _param("date", "date", "effective time, with prefixes ge gt le lt eq"),
                            _COUNT,
                        ],
                    },
                    {
                        "type": "DetectedIssue",
                        "interaction": [*read, {"code": "search-type"}],
                        "searchParam": [
                            _param("patient", "reference", "Patient/{client id} or the id"),
                            _param("subject", "reference", "same as patient"),
                            _param("code", "token", f"{CS_ALERT_TYPE}|alliance.rupture"),
                            _param(
                                "status",
                                "token",
                                "preliminary (open), final (acknowledged or resolved), "
                                "entered-in-error (retracted); comma-separated for any of them",
                            ),
                            _COUNT,
                        ],
                    },
                ],
                "operation": [
                    {
                        "name": "export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                        "documentation": "FHIR Bulk Data system export of "
                        + ", ".join(EXPORTABLE)
                        + "; _type and _since supported",
                    }
                ],
            }
        ],
    }


def searchset(
    base: str,
    found: Sequence[dict[str, Any]],
    *,
    self_url: str,
    next_url: str | None,
) -> dict[str, Any]:
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in found
        ],
    }
