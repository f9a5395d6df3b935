"""Constrained input types shared by every request schema.

PostgreSQL rejects NUL bytes in text and would turn them into a 500; control characters and
unbounded strings have no business in identifiers either. Rejecting them at the schema makes the
error a 422 that names the field, on both databases.
"""

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints


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
