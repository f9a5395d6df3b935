"""The FHIR R4 facade's mapping (DESIGN.md §8): Attune's instruments, submissions, scores and
alerts as FHIR resources, and FHIR input back into Attune's terms.

``codes`` names the canonical URLs, extensions and code systems; ``shapes`` types the FHIR JSON
Attune writes (TypedDicts); ``questionnaire``, ``resources``, ``people`` and ``outcome`` are pure
functions from Attune's rows to that JSON and, for a posted QuestionnaireResponse, back;
``search`` parses FHIR search parameters; ``store`` and ``export`` are the use cases that read and
write the database.
"""
