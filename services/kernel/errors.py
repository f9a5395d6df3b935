"""Domain errors. Each carries its HTTP status; `api/problems.py` renders them as problem+json."""

from typing import TypedDict

from pydantic import JsonValue


class ProblemExtra(TypedDict, total=False):
    """What a problem+json body carries beyond type, title, status, detail and instance."""

    errors: list[dict[str, JsonValue]]  # the fields at fault: field, message, type, …
    existing_id: str | None  # what a conflicting request would have duplicated


class DomainError(Exception):
    status: int = 400
    title: str = "Bad request"
    type_slug: str = "bad-request"
    # The request's writes are committed before the error goes out (api/routing.py): for the
    # audit event of a refusal, which must not be rolled back with the rest.
    keep_writes: bool = False

    def __init__(self, detail: str, *, extra: ProblemExtra | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: ProblemExtra = extra or {}


class TooManyRequests(DomainError):
    """A limit was reached; `retry_after` (seconds) goes out as `Retry-After`, or ``None`` for a
    cap that no wait lifts (an invitation's concerns)."""

    status = 429
    title = "Too many requests"
    type_slug = "too-many-requests"

    def __init__(self, detail: str, *, retry_after: int | None) -> None:
        super().__init__(detail)
        self.retry_after = None if retry_after is None else max(1, retry_after)


class ContentTooLarge(DomainError):
    """A body within the request size limit that is still too large for what it is."""

    status = 413
    title = "Content too large"
    type_slug = "content-too-large"

    def __init__(self, detail: str, *, errors: list[dict[str, JsonValue]]) -> None:
        super().__init__(
            detail, extra={"errors": [*errors]}
        )  # as list[JsonValue]: lists are invariant


class NotFound(DomainError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class NotFoundAudited(NotFound):
    """A 404 whose audit event (a refused read) is committed with the request."""

    keep_writes = True


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class InvalidInput(DomainError):
    """Input that is well-formed but refers to something impossible; names the fields at fault."""

    status = 422
    title = "Invalid input"
    type_slug = "validation-error"

    def __init__(self, detail: str, *, errors: list[dict[str, JsonValue]]) -> None:
        super().__init__(
            detail, extra={"errors": [*errors]}
        )  # as list[JsonValue]: lists are invariant

    @classmethod
    def at(cls, field: str, message: str, *, type: str, detail: str) -> "InvalidInput":
        """One bad field, named as the API shows it (`body.x`, `query.x`, `header.X`)."""
        return cls(
            detail,
            errors=[{"field": field, "message": message, "type": type}],
        )

    @classmethod
    def unknown_reference(cls, field: str, what: str) -> "InvalidInput":
        """A body field naming an object this organization does not have (or may not see)."""
        return cls.at(
            f"body.{field}",
            f"unknown {what}",
            type="not_found",
            detail=f"{field} names no {what} of this organization",
        )
