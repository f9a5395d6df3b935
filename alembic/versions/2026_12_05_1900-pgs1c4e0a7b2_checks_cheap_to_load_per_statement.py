"""CHECK constraints spelled so that PostgreSQL loads them cheaply on every write (issues 12, 13)

PostgreSQL rebuilds a table's CHECK expressions for each statement that writes it: the first row
the statement inserts or updates parses every constraint's stored node tree and simplifies it
(src/backend/executor/execMain.c, ExecRelCheck: "If first time through for this result
relation, build expression nodetrees for rel's constraint expressions", kept in the per-query
memory context; PostgreSQL 15). `status IN ('a', 'b')` on a varchar column, as e4c1a7b95d20
created them, is stored as an ARRAY[] of varchar constants cast to text[], which each statement
parses constant by constant and then folds by running a small expression. Measured with callgrind
on the backend serving `POST /v1/submissions` (whose write statement touches five tables that
carry ten of these constraints), that load was about 520,000 instructions per submission, 16 % of
the backend's; it was most of what the PostgreSQL CPU of a submission grew by since ee23692.

`status::text = ANY ('{a,b}'::text[])` means the same (varchar to text is a relabelling; NULL
still passes) and is stored as one text[] constant with nothing to fold: about half the load.
Names and values are those of e4c1a7b95d20 and 16a1e7c0d5f2 (models/ `one_of`). SQLite keeps a
CHECK as written and has no such cost, so it is left alone. Each table is scanned once, under its
ALTER TABLE lock, to validate the new constraints.

Revision ID: pgs1c4e0a7b2
Revises: 17a1c2d3e4f5
Create Date: 2026-12-05 19:00:00.000000

"""

from collections.abc import Callable, Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "pgs1c4e0a7b2"
down_revision: str | Sequence[str] | None = "17a1c2d3e4f5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TYPES = ("submission.created", "alert.created", "alert.updated", "alert.resolved")
RESPONDENTS = ("client", "clinician", "collateral")

# table -> column -> allowed values, as the earlier migrations spelled them.
CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "alerts": {
        "severity": ("warning", "high", "critical"),
        "status": ("open", "acknowledged", "resolved"),
        "resolution": (
            "repaired",
            "discussed",
            "referred",
            "dismissed",
            "other",
            "condition_cleared",
            "retracted",
        ),
        "respondent": ("", *RESPONDENTS),
    },
    "clients": {"population": ("adult", "adolescent", "child")},
    "concerns": {
        "category": ("relationship", "safety", "boundaries", "treatment", "access", "other")
    },
    "episodes": {"status": ("active", "closed")},
    "expected_response_fits": {"status": ("queued", "running", "done", "failed")},
    "expected_response_models": {"source": ("uploaded", "fitted")},
    "fhir_export_jobs": {"status": ("accepted", "cancelled")},
    "outbox_events": {"type": EVENT_TYPES},
    "submissions": {"respondent": RESPONDENTS, "status": ("valid", "voided")},
    "webhook_deliveries": {
        "event_type": EVENT_TYPES,
        "status": ("pending", "delivered", "failed"),
    },
}


def cheap(column: str, values: tuple[str, ...]) -> str:
    """One text[] constant: every element double-quoted, so '' is an element too."""
    assert all(not set(v) & set("'\"\\{},") for v in values)
    listed = ",".join(f'"{v}"' for v in values)
    return f"{column}::text = ANY ('{{{listed}}}'::text[])"


def listed_in(column: str, values: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({listed})"


def _respell(spelling: Callable[[str, tuple[str, ...]], str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in CHECKS.items():
        changes = []
        for column, values in columns.items():
            name = f"ck_{table}_{column}"
            check = spelling(column, values)
            changes += [f"DROP CONSTRAINT {name}", f"ADD CONSTRAINT {name} CHECK ({check})"]
        op.execute(f"ALTER TABLE {table} " + ", ".join(changes))


def upgrade() -> None:
    _respell(cheap)


def downgrade() -> None:
    _respell(listed_in)
