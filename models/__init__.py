"""Tables and API schemas. Importing this package registers every table on `SQLModel.metadata`."""

from models import alerts, audit, episodes, people, submissions, tenancy

__all__ = ["alerts", "audit", "episodes", "people", "submissions", "tenancy"]
