"""The JSON shapes of the FHIR R4 resources Attune writes, as TypedDicts: each names only the
elements Attune fills (https://hl7.org/fhir/R4/ for the full definitions). They are plain dicts at
run time (orjson writes them as they are); the types let mypy check every element name and value
where a resource is built or read back.

Input from outside (a posted QuestionnaireResponse, a problem document) is never one of these:
it is ``Mapping[str, object]``, narrowed element by element where it is read
(`services.fhir.resources.parse_response`)."""

from typing import Literal, NotRequired, TypedDict


class Coding(TypedDict):
    system: str
    code: str
    display: NotRequired[str]


class CodeableConcept(TypedDict):
    coding: list[Coding]
    text: NotRequired[str]


class Reference(TypedDict):
    reference: str


class RelatedPersonSource(TypedDict):
    """A collateral rater: no resource of its own, only its type and label (``display``)."""

    type: Literal["RelatedPerson"]
    display: str


class Extension(TypedDict):
    """An extension with the value[x] element its definition takes, or nested extensions."""

    url: str
    valueInteger: NotRequired[int]
    valueDecimal: NotRequired[float]
    valuePositiveInt: NotRequired[int]
    valueCode: NotRequired[str]
    valueUri: NotRequired[str]
    valueReference: NotRequired[Reference]
    valueCodeableConcept: NotRequired[CodeableConcept]
    extension: NotRequired[list["Extension"]]


class Meta(TypedDict):
    lastUpdated: str


class Identifier(TypedDict):
    value: str
    system: NotRequired[str]
    use: NotRequired[str]
    type: NotRequired[CodeableConcept]


class Period(TypedDict):
    start: str
    end: NotRequired[str]


class HumanName(TypedDict):
    text: str


# Questionnaire.


class EnableWhen(TypedDict):
    question: str
    operator: Literal["="]
    answerInteger: NotRequired[int]
    answerDecimal: NotRequired[float]


class QuestionnaireItem(TypedDict):
    linkId: str
    text: str
    type: Literal["integer", "decimal"]
    required: bool
    extension: list[Extension]
    code: NotRequired[list[Coding]]
    enableWhen: NotRequired[list[EnableWhen]]


class Questionnaire(TypedDict):
    resourceType: Literal["Questionnaire"]
    id: str
    url: str
    version: str
    name: str
    title: str
    status: Literal["active"]
    subjectType: list[str]
    description: str
    copyright: str
    item: list[QuestionnaireItem]
    code: NotRequired[list[Coding]]


# QuestionnaireResponse.


class Answer(TypedDict, total=False):
    """One answer: a number, typed as its item is (valueInteger or valueDecimal)."""

    valueInteger: int
    valueDecimal: float


class ResponseItem(TypedDict):
    linkId: str
    answer: list[Answer]


class QuestionnaireResponse(TypedDict):
    resourceType: Literal["QuestionnaireResponse"]
    id: str
    meta: Meta
    extension: list[Extension]
    questionnaire: str
    status: Literal["completed", "entered-in-error"]
    subject: Reference
    authored: str
    source: Reference | RelatedPersonSource
    item: list[ResponseItem]
    identifier: NotRequired[Identifier]


# Observation.


class Quantity(TypedDict):
    value: float
    unit: str
    system: str
    code: str


class Observation(TypedDict):
    resourceType: Literal["Observation"]
    id: str
    meta: Meta
    extension: list[Extension]
    status: Literal["final", "entered-in-error"]
    category: list[CodeableConcept]
    code: CodeableConcept
    subject: Reference
    effectiveDateTime: str
    issued: str
    valueQuantity: Quantity
    derivedFrom: list[Reference]
    interpretation: NotRequired[list[CodeableConcept]]


# DetectedIssue.


class Evidence(TypedDict):
    detail: list[Reference]


class Mitigation(TypedDict):
    action: CodeableConcept
    date: str


class DetectedIssue(TypedDict):
    resourceType: Literal["DetectedIssue"]
    id: str
    meta: Meta
    extension: list[Extension]
    status: str  # preliminary | final | entered-in-error (`resources.issue_status`)
    code: CodeableConcept
    severity: str  # high | moderate | low
    patient: Reference
    identifiedDateTime: str
    detail: str
    evidence: NotRequired[list[Evidence]]
    mitigation: NotRequired[list[Mitigation]]


# Patient, Practitioner, EpisodeOfCare.


class Patient(TypedDict):
    resourceType: Literal["Patient"]
    id: str
    meta: Meta
    extension: list[Extension]
    active: bool
    identifier: NotRequired[list[Identifier]]
    birthDate: NotRequired[str]


class Practitioner(TypedDict):
    resourceType: Literal["Practitioner"]
    id: str
    meta: Meta
    active: bool
    name: list[HumanName]
    identifier: NotRequired[list[Identifier]]


class EpisodeOfCare(TypedDict):
    resourceType: Literal["EpisodeOfCare"]
    id: str
    meta: Meta
    status: Literal["active", "finished"]
    patient: Reference
    careManager: Reference
    period: Period


# Every resource a read or search answers with (a Bundle entry holds one).
Resource = (
    Questionnaire
    | QuestionnaireResponse
    | Observation
    | DetectedIssue
    | Patient
    | Practitioner
    | EpisodeOfCare
)


# OperationOutcome.


class Issue(TypedDict):
    severity: Literal["fatal", "error"]
    code: str
    diagnostics: NotRequired[str]
    expression: NotRequired[list[str]]


class OperationOutcome(TypedDict):
    resourceType: Literal["OperationOutcome"]
    issue: list[Issue]


# Bundle (searchset).


class BundleLink(TypedDict):
    relation: Literal["self", "next"]
    url: str


class BundleSearch(TypedDict):
    mode: Literal["match", "include"]


class BundleEntry(TypedDict):
    fullUrl: str
    resource: Resource
    search: BundleSearch


class Bundle(TypedDict):
    resourceType: Literal["Bundle"]
    type: Literal["searchset"]
    link: list[BundleLink]
    entry: list[BundleEntry]
    total: NotRequired[int]


# CapabilityStatement.


class Interaction(TypedDict):
    code: str


class SearchParam(TypedDict):
    name: str
    type: str
    documentation: str


class ResourceCapability(TypedDict):
    type: str
    interaction: list[Interaction]
    searchParam: list[SearchParam]
    conditionalCreate: NotRequired[bool]
    versioning: NotRequired[Literal["no-version"]]
    searchInclude: NotRequired[list[str]]


class Security(TypedDict):
    cors: bool
    service: list[CodeableConcept]
    extension: list[Extension]
    description: str


class OperationCapability(TypedDict):
    name: str
    definition: str
    documentation: str


class Rest(TypedDict):
    mode: Literal["server"]
    documentation: str
    security: Security
    resource: list[ResourceCapability]
    operation: list[OperationCapability]


class Software(TypedDict):
    name: str
    version: str


class Implementation(TypedDict):
    description: str
    url: str


class CapabilityStatement(TypedDict):
    resourceType: Literal["CapabilityStatement"]
    url: str
    name: str
    title: str
    status: Literal["active"]
    date: str
    publisher: str
    kind: Literal["instance"]
    software: Software
    implementation: Implementation
    fhirVersion: str
    format: list[str]
    rest: list[Rest]
