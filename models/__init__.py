"""Tables and API schemas. Importing this package registers every table on `SQLModel.metadata`."""

from models import (
    alerts,
    audit,
    episodes,
    expected,
    fhir,
    invitations,
    limits,
    people,
    smart,
    submissions,
    tenancy,
    webhooks,
)

__all__ = [
    "alerts",
    "audit",
    "episodes",
    "expected",
    "fhir",
    "invitations",
    "limits",
    "people",
    "smart",
    "submissions",
    "tenancy",
    "webhooks",
]
