"""Tables and API schemas. Importing this package registers every table on `SQLModel.metadata`."""

from models import alerts, audit, episodes, invitations, people, submissions, tenancy, webhooks

__all__ = [
    "alerts",
    "audit",
    "episodes",
    "invitations",
    "people",
    "submissions",
    "tenancy",
    "webhooks",
]
