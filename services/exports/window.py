"""Which changes an export covers: the half-open window ``since <= changed < until`` (pure).

Rows are selected by their change timestamp (``submissions.changed_at``, set on insert and on
void; ``alerts.updated_at``, set by every change to an alert), in (timestamp, id) order. A row
that changes again after a pull comes again in a later pull, with its new state; within one
window each row comes once.

The catch is a write transaction still in flight: it stamps its rows when it writes them but they
become visible only when it commits, so a pull that ran in between could not see them, and the
next pull (``since`` = this pull's ``until``) would skip them for being too old. Hence ``until``
never reaches past ``now - settle`` (`ATTUNE_EXPORT_SETTLE_SECONDS`, default 30 s; a later
``until`` is lowered to that), and the response states the ``until`` it used in the
``Attune-Export-Until`` header: pass it as the next pull's ``since``, and every row comes exactly
once as long as no write transaction commits more than ``settle`` after stamping its rows
(requests commit in milliseconds; keep application servers' clocks synchronised, as the stamps
come from them and from the database). The settle time trades freshness for that margin; a
transaction-id (xmin) watermark would be exact on PostgreSQL but has no SQLite counterpart.
"""

from datetime import datetime, timedelta


class InvertedWindow(ValueError):
    """``since`` is later than the window's ``until``; the caller names the field it came from."""

    def __init__(self, since: datetime, until: datetime, settle_seconds: float) -> None:
        super().__init__(
            f"since ({since.isoformat()}) is later than the export's until "
            f"({until.isoformat()}); until is at most now minus {settle_seconds:g} s"
        )


def export_window(
    *, now: datetime, since: datetime | None, until: datetime | None, settle_seconds: float
) -> tuple[datetime | None, datetime]:
    """The (since, until) an export uses; ``since`` None means from the beginning."""
    watermark = now - timedelta(seconds=settle_seconds)
    effective = watermark if until is None else min(until, watermark)
    if since is not None and since > effective:
        raise InvertedWindow(since, effective, settle_seconds)
    return since, effective
