"""The values of a new submission's row, as the use case builds them and each store writes them
(`services.submissions.store`). Its own module: the webhook events read it too, and import
nothing of the submission path."""

import uuid
from datetime import datetime
from typing import NotRequired, TypedDict

from pydantic import JsonValue


class SubmissionValues(TypedDict):
    """A ``submissions`` row (models/submissions.py ``Submission``) before it is stored; the
    scores, total and creation time are set once the answers are scored."""

    id: uuid.UUID
    org_id: uuid.UUID
    episode_id: uuid.UUID
    session_number: int
    instrument: str
    instrument_version: str
    respondent: str
    rater: str
    answers: dict[str, JsonValue]
    status: str
    occurred_at: datetime | None
    created_by_key_id: uuid.UUID | None
    scores: NotRequired[dict[str, JsonValue]]
    total: NotRequired[float | None]
    created_at: NotRequired[datetime]
