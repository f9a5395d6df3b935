"""Tables and API schemas. Importing this package registers every table on `SQLModel.metadata`."""

from models import audit, episodes, people, submissions, tenancy

__all__ = ["audit", "episodes", "people", "submissions", "tenancy"]
