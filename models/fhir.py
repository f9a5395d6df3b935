"""Tables of the FHIR R4 facade: QuestionnaireResponse identifiers and bulk export jobs."""

import uuid
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import AutoString, Field, SQLModel

from models.base import JSONType, UTCDateTime, new_id, one_of, utcnow


class FhirIdentifier(SQLModel, table=True):
    """A ``QuestionnaireResponse.identifier`` (system, value) and the submission it created.

    The row is claimed (inserted with ``submission_id`` empty) in the request's transaction before
    the submission is scored, and completed in that same transaction: the primary key makes a
    concurrent POST with the same identifier wait for the first and then find its submission,
    so one identifier never creates two submissions.
    """

    __tablename__ = "fhir_identifiers"
    __table_args__ = (
        sa.Index("ix_fhir_identifiers_org_id_submission_id", "org_id", "submission_id"),
    )

    org_id: uuid.UUID = Field(foreign_key="organizations.id", primary_key=True)
    system: str = Field(max_length=255, primary_key=True)  # '' when the identifier has none
    value: str = Field(max_length=255, primary_key=True)
    submission_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


ExportJobStatus = Literal["accepted", "cancelled"]


class FhirExportJob(SQLModel, table=True):
    """A FHIR Bulk Data export (``GET /fhir/$export``): what was asked, by which key, as of when.

    No files are written: the NDJSON files are generated from the database when downloaded, as of
    ``transaction_time``."""

    __tablename__ = "fhir_export_jobs"
    __table_args__ = (
        sa.Index("ix_fhir_export_jobs_org_id_id", "org_id", "id"),
        one_of("status", ExportJobStatus),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organizations.id")
    key_id: uuid.UUID | None = None
    types: list[Any] = Field(sa_type=JSONType)
    since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    transaction_time: datetime = Field(sa_type=UTCDateTime)
    request_url: str = Field(max_length=2000)
    status: ExportJobStatus = Field(default="accepted", sa_type=AutoString(length=16))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
