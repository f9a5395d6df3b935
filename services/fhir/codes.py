"""Canonical URLs, extensions and code systems of the FHIR facade.

The canonical base identifies Attune's own definitions wherever a deployment runs (a canonical URL
names, it need not resolve); resource references (``Patient/{id}``) are relative to the server's
own base, ``{origin}/fhir``.
"""

CANONICAL = "https://w3id.org/attune/fhir"
FHIR_VERSION = "4.0.1"
MEDIA_TYPE = "application/fhir+json"
NDJSON_MEDIA_TYPE = "application/fhir+ndjson"

QUESTIONNAIRE = f"{CANONICAL}/Questionnaire"
# Where a QuestionnaireResponse belongs: the episode of care and the session within it.
EXT_EPISODE = f"{CANONICAL}/StructureDefinition/episode"  # valueReference EpisodeOfCare/{id}
EXT_SESSION_NUMBER = f"{CANONICAL}/StructureDefinition/session-number"  # valuePositiveInt
# An item's answer grid: HL7's standard extensions, which form renderers draw as a slider
# (http://hl7.org/fhir/R4/extension-questionnaire-itemcontrol.html, …-sliderstepvalue.html).
EXT_MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
EXT_MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
EXT_ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
EXT_SLIDER_STEP = "http://hl7.org/fhir/StructureDefinition/questionnaire-sliderStepValue"
EXT_MAX_DECIMAL_PLACES = "http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces"
# Attune's own step (valueDecimal), written before the standard extensions were: now only for a
# grid they cannot say (a fractional step that is not a power of ten, e.g. 0.5).
EXT_STEP = f"{CANONICAL}/StructureDefinition/step"
# An alert's own severity (warning | high | critical), which DetectedIssue.severity coarsens.
EXT_ALERT_SEVERITY = f"{CANONICAL}/StructureDefinition/alert-severity"  # valueCode

CS_SCORE = f"{CANONICAL}/CodeSystem/score"  # {instrument}.total, {instrument}.{subscale}
CS_ALERT_TYPE = f"{CANONICAL}/CodeSystem/alert-type"  # the rule id, e.g. alliance.rupture
CS_ALERT_ACTION = f"{CANONICAL}/CodeSystem/alert-action"  # acknowledged, or the resolution
CS_BAND = f"{CANONICAL}/CodeSystem/band"  # an instrument's band label
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

SEARCHABLE = ("QuestionnaireResponse", "Observation", "DetectedIssue")
EXPORTABLE = ("QuestionnaireResponse", "Observation", "DetectedIssue")

# Patients and practitioners: their external id (the EHR's, e.g. an MRN) as an identifier. Attune
# keeps the value only, so a search by identifier matches the value whatever system it names.
SID_CLIENT = f"{CANONICAL}/sid/client-external-id"
SID_CLINICIAN = f"{CANONICAL}/sid/clinician-external-id"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"  # MR: medical record number
EXT_POPULATION = f"{CANONICAL}/StructureDefinition/population"  # valueCode adult|adolescent|child
