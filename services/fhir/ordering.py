"""The order of submission-backed searches (QuestionnaireResponse, Observation): by id, or by
when the response was given (``_sort=date`` / ``-date``, ``authored`` / ``-authored``), with
keyset pagination that later writes never shift."""

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, select, tuple_

from models.submissions import Submission
from services.fhir.search import Sort

SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
# A select of submission rows and whatever columns a search joins to them: the rows are read as
# mappings by column name (`store.submission_row`), so their types are not tracked here.
SubmissionSelect = Select[*tuple[object, ...]]


def effective() -> ColumnElement[datetime]:
    """When a response was given: the session's time, else when it was stored."""
    return func.coalesce(SUBMISSIONS.c.occurred_at, SUBMISSIONS.c.created_at)


def sorted_from(
    stmt: SubmissionSelect, sort: Sort | None, start: uuid.UUID | None, org_id: uuid.UUID
) -> SubmissionSelect:
    """``stmt`` in the order of ``sort`` (by effective time, ties by id; None: by id) from the
    row ``start`` on (inclusive), as keyset pagination: later writes never shift a page. A
    cursor naming a row of another organisation (``org_id`` is the caller's) starts nowhere."""
    if sort is None:
        if start is not None:
            stmt = stmt.where(SUBMISSIONS.c.id >= start)
        return stmt.order_by(SUBMISSIONS.c.id)
    key = tuple_(effective(), SUBMISSIONS.c.id)
    if start is not None:
        moment = (
            select(effective())
            .where(SUBMISSIONS.c.org_id == org_id, SUBMISSIONS.c.id == start)
            .scalar_subquery()
        )
        bound = tuple_(moment, start)
        stmt = stmt.where(key <= bound if sort.descending else key >= bound)
    if sort.descending:
        return stmt.order_by(effective().desc(), SUBMISSIONS.c.id.desc())
    return stmt.order_by(effective(), SUBMISSIONS.c.id)
