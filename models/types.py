"""Constrained input types shared by every request schema.

PostgreSQL rejects NUL bytes in text and would turn them into a 500; control characters and
unbounded strings have no business in identifiers either. Rejecting them at the schema makes the
error a 422 that names the field, on both databases.
"""

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

# Who filled in a submission (DESIGN.md §3); alerts and submissions both name it.
Respondent = Literal["client", "clinician", "collateral"]


def _no_control_chars(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters (such as NUL)")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control_chars),
]
ExternalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    AfterValidator(_no_control_chars),
]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
Note = Annotated[str, StringConstraints(max_length=4000), AfterValidator(_no_nul)]
BirthYear = Annotated[int, Field(ge=1900, le=2100)]


_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 12, 31, tzinfo=UTC)


def _plausible_instant(value: datetime) -> datetime:
    # Converting an extreme offset to UTC can leave the calendar (year 0 or 10000): refuse
    # anything outside a window that holds every real session.
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be between 1900 and 2200") from None
    if not _EARLIEST <= utc <= _LATEST:
        raise ValueError("must be between 1900 and 2200")
    return utc


# ISO 8601 with an offset (DESIGN.md §4): a naive time would be ambiguous, so it is refused.
Timestamp = Annotated[AwareDatetime, AfterValidator(_plausible_instant)]
