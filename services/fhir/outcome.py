"""OperationOutcome: every FHIR error, from the HTTP status and what went wrong."""

from collections.abc import Iterable, Mapping
from typing import Literal

from services.fhir.shapes import Issue, OperationOutcome

# HTTP status → OperationOutcome.issue.code (http://hl7.org/fhir/issue-type).
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    503: "transient",
}


def issue_code(status: int) -> str:
    return _ISSUE_CODES.get(status, "exception" if status >= 500 else "invalid")


def operation_outcome(
    status: int,
    diagnostics: str | None,
    *,
    expressions: Iterable[tuple[str, str]] = (),
) -> OperationOutcome:
    """One issue per ``(expression, message)``, or one for the whole request when there are
    none."""
    severity: Literal["fatal", "error"] = "fatal" if status >= 500 else "error"
    code = issue_code(status)
    issues: list[Issue] = [
        {"severity": severity, "code": code, "diagnostics": message, "expression": [where]}
        for where, message in expressions
    ]
    if not issues:
        issue: Issue = {"severity": severity, "code": code}
        if diagnostics:
            issue["diagnostics"] = diagnostics
        issues.append(issue)
    return {"resourceType": "OperationOutcome", "issue": issues}


def from_problem(problem: Mapping[str, object]) -> OperationOutcome:
    """The OperationOutcome of an RFC 9457 problem document as `api/problems.py` renders it:
    ``errors[].field`` become issue expressions (each with its message)."""
    status = problem.get("status")
    errors = problem.get("errors")
    return operation_outcome(
        status if isinstance(status, int) and not isinstance(status, bool) and status else 500,
        _text(problem.get("detail")) or _text(problem.get("title")),
        expressions=[
            (str(e.get("field", "")), str(e.get("message", "")))
            for e in (errors if isinstance(errors, list) else [])
            if isinstance(e, dict)
        ],
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
