"""The FHIR R4 facade under ``/fhir`` (DESIGN.md §8): routes, FHIR JSON responses, and errors as
OperationOutcome."""
