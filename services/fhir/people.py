"""Clients as Patients, clinicians as Practitioners, episodes as EpisodeOfCare. Pure: rows in,
FHIR JSON out.

- Patient: the client's ``external_id`` (the EHR's, an MRN) as an ``MR`` identifier; Attune holds no
  names (clients are pseudonymous, DESIGN.md §3); ``birthDate`` is the birth year when known;
  the population (which picks cut-offs) is an extension.
- Practitioner: the display name as ``name.text``, the external id as identifier.
- EpisodeOfCare: ``status`` active or finished (closed), ``patient``, ``careManager`` (the
  treating clinician), ``period`` from ``started_on`` to ``ended_on``.
"""

from models.episodes import Episode
from models.people import Client, Clinician
from services.fhir.codes import EXT_POPULATION, IDENTIFIER_TYPE, SID_CLIENT, SID_CLINICIAN
from services.fhir.resources import instant
from services.fhir.shapes import CodeableConcept, EpisodeOfCare, Patient, Period, Practitioner

_MR: CodeableConcept = {
    "coding": [{"system": IDENTIFIER_TYPE, "code": "MR", "display": "Medical record number"}]
}


def patient(row: Client) -> Patient:
    out: Patient = {
        "resourceType": "Patient",
        "id": str(row.id),
        "meta": {"lastUpdated": instant(row.updated_at)},
        "extension": [{"url": EXT_POPULATION, "valueCode": row.population}],
        "active": True,
    }
    if row.external_id is not None:
        out["identifier"] = [
            {"use": "usual", "type": _MR, "system": SID_CLIENT, "value": row.external_id}
        ]
    if row.birth_year is not None:
        out["birthDate"] = f"{row.birth_year:04d}"
    return out


def practitioner(row: Clinician) -> Practitioner:
    out: Practitioner = {
        "resourceType": "Practitioner",
        "id": str(row.id),
        "meta": {"lastUpdated": instant(row.created_at)},
        "active": True,
        "name": [{"text": row.display_name}],
    }
    if row.external_id is not None:
        out["identifier"] = [{"system": SID_CLINICIAN, "value": row.external_id}]
    return out


def episode_of_care(row: Episode) -> EpisodeOfCare:
    period: Period = {"start": row.started_on.isoformat()}
    if row.ended_on is not None:
        period["end"] = row.ended_on.isoformat()
    return {
        "resourceType": "EpisodeOfCare",
        "id": str(row.id),
        "meta": {"lastUpdated": instant(row.updated_at)},
        "status": "active" if row.status == "active" else "finished",
        "patient": {"reference": f"Patient/{row.client_id}"},
        "careManager": {"reference": f"Practitioner/{row.clinician_id}"},
        "period": period,
    }
