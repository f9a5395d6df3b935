"""The CapabilityStatement (what the facade supports) and searchset Bundles."""

from collections.abc import Sequence
from typing import Literal

from services.fhir import parameters
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
from services.fhir.shapes import (
    Bundle,
    BundleEntry,
    BundleLink,
    CapabilityStatement,
    CodeableConcept,
    Resource,
    ResourceCapability,
)

_DOC = (
    "Attune's FHIR R4 facade. Authenticate with a SMART Backend Services access token or an "
    "Attune API key ('Authorization: Bearer …'). Clients are Patients (identifier: the EHR's "
    "external id, an MRN; no names), clinicians Practitioners, episodes EpisodeOfCare. A "
    "QuestionnaireResponse is scored like POST /v1/submissions: subject Patient/{client id}, or "
    "the client's MRN as subject.identifier or Patient?identifier=system|value; the episode "
    f"and session are the extensions {EXT_EPISODE} (valueReference EpisodeOfCare/{{episode "
    "id}; optional when the subject has one active episode) and "
    f"{EXT_SESSION_NUMBER} (valuePositiveInt); source "
    "Patient (or none) = client, Practitioner = clinician, RelatedPerson (display = rater) = "
    "collateral; one identifier makes the create idempotent (the same identifier again answers "
    "200 with the response it created to a key that may read it, else 409). Searches are "
    "strict: an unknown parameter or modifier, or a value that cannot be applied, is a 400 "
    "OperationOutcome naming it, unless 'Prefer: handling=lenient' asks to leave it out; the "
    "Bundle's self link lists exactly the parameters applied. Reference parameters take the "
    ":Patient and :identifier modifiers. Scores are Observations (category survey, LOINC where "
    f"one exists, else {CS_SCORE}); alerts are DetectedIssues (code system {CS_ALERT_TYPE}; "
    "open = preliminary, acknowledged or resolved = final with a mitigation, retracted = "
    "entered-in-error). Voided submissions and their Observations are entered-in-error."
)


_SMART_SERVICE: CodeableConcept = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR",
        }
    ],
    "text": "SMART Backend Services (client_credentials with a signed assertion), or API keys",
}
_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
# What each resource type does beyond search (read everywhere; QuestionnaireResponse: create).
_INTERACTIONS: dict[str, tuple[str, ...]] = {
    "Patient": ("read", "search-type"),
    "Practitioner": ("read", "search-type"),
    "EpisodeOfCare": ("read", "search-type"),
    "Questionnaire": ("read", "search-type"),
    "QuestionnaireResponse": ("read", "search-type", "create"),
    "Observation": ("read", "search-type"),
    "DetectedIssue": ("read", "search-type"),
}


def _resource(resource_type: str) -> ResourceCapability:
    out: ResourceCapability = {
        "type": resource_type,
        "interaction": [{"code": code} for code in _INTERACTIONS[resource_type]],
        "searchParam": [
            {"name": spec.name, "type": spec.type, "documentation": spec.documentation}
            for spec in parameters.SEARCH[resource_type]
        ],
    }
    if resource_type == "QuestionnaireResponse":
        out["conditionalCreate"] = True
        out["versioning"] = "no-version"
    if resource_type == "Observation":
        out["searchInclude"] = [parameters.INCLUDE_DERIVED_FROM]
    return out


def capability_statement(base: str, date: str) -> CapabilityStatement:
    root = base.removesuffix("/fhir")
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
                    "service": [_SMART_SERVICE],
                    "extension": [
                        {
                            "url": _OAUTH_URIS,
                            "extension": [
                                {"url": "token", "valueUri": f"{root}/auth/token"},
                            ],
                        }
                    ],
                    "description": "SMART Backend Services: POST a client_credentials grant with "
                    "a signed assertion (RS384 or ES384) to the token URL "
                    "(/.well-known/smart-configuration) and send the access token as a Bearer "
                    "token; system/*.rs-style scopes map onto Attune's. Or Bearer API keys with "
                    "Attune's scopes (clients:read for Patient, Practitioner, EpisodeOfCare; "
                    "submissions:read, submissions:write, alerts:read, exports:identified or "
                    "admin for $export). A key or client bound to a clinician sees its caseload "
                    "only.",
                },
                "resource": [_resource(t) for t in _INTERACTIONS],
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
    found: Sequence[Resource],
    *,
    self_url: str,
    next_url: str | None,
    included: Sequence[Resource] = (),
    total: int | None = None,
) -> Bundle:
    """``included``: resources ``_include`` adds (search mode ``include``); ``total``: the number
    of matches, when ``_total`` asks for it."""
    links: list[BundleLink] = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    groups: tuple[tuple[Literal["match", "include"], Sequence[Resource]], ...] = (
        ("match", found),
        ("include", included),
    )
    entries: list[BundleEntry] = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": mode},
        }
        for mode, group in groups
        for r in group
    ]
    if total is None:
        return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    }
