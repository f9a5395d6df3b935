"""The database itself refuses a status-like value outside its Literal type (CHECK constraints from
the migrations), on SQLite and PostgreSQL alike: a bug or a hand-written UPDATE cannot store an
alert status that no rule, list or webhook knows."""

import re
import uuid
from collections.abc import AsyncIterator
from typing import get_args

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table)
from services.kernel.config import Settings
from tests.support import Attune, bearer, expect, srs, submit

# (table, column): every column that models/ declares with models.base.one_of.
CHECKED = sorted(
    (table.name, column)
    for table in SQLModel.metadata.tables.values()
    for constraint in table.constraints
    if isinstance(constraint, sa.CheckConstraint)
    for column in [str(constraint.name).removeprefix(f"ck_{table.name}_")]
)


def test_every_status_column_is_checked() -> None:
    assert set(CHECKED) >= {
        ("expected_response_fits", "status"),
        ("expected_response_models", "source"),
        ("alerts", "severity"),
        ("alerts", "status"),
        ("alerts", "resolution"),
        ("alerts", "respondent"),
        ("clients", "population"),
        ("concerns", "category"),
        ("episodes", "status"),
        ("fhir_export_jobs", "status"),
        ("outbox_events", "type"),
        ("submissions", "respondent"),
        ("submissions", "status"),
        ("webhook_deliveries", "event_type"),
        ("webhook_deliveries", "status"),
    }


def test_the_check_lists_the_values_of_the_column_annotation() -> None:
    from models.alerts import Alert, AlertStatus

    check = next(
        c
        for c in Alert.__table__.constraints  # type: ignore[attr-defined]
        if isinstance(c, sa.CheckConstraint) and c.name == "ck_alerts_status"
    )
    assert all(f"'{value}'" in str(check.sqltext) for value in get_args(AlertStatus))


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Every expected-response fit goes to the worker's queue, so that a fit row exists.
    return settings.model_copy(update={"etr_fit_inline_max_episodes": 0})


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settings.database_url)
    yield engine
    await engine.dispose()


async def one_row_in_each_checked_table(attune: Attune) -> uuid.UUID:
    """Through the API: an organisation with a row in every table that has a checked column."""
    tenant = await attune.tenant()
    expect(
        await tenant.http.post(
            "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=tenant.admin
        ),
        201,
    )
    episode = await tenant.episode()
    await submit(tenant, episode["id"], "srs", 1, srs(1, 1, 1, 1))  # raises an alliance alert
    invitation = expect(
        await tenant.http.post(
            f"/v1/episodes/{episode['id']}/invitations",
            json={"instruments": ["srs"], "session_number": 2},
            headers=tenant.admin,
        ),
        201,
    )
    expect(
        await attune.http.post(
            "/v1/invitation/concerns",
            json={"message": "a concern", "category": "other"},
            headers=bearer(invitation["token"]),
        ),
        201,
    )
    kicked = await tenant.http.get(
        "/fhir/$export", headers={**tenant.admin, "Prefer": "respond-async"}
    )
    assert kicked.status_code == 202, kicked.text
    row = {"session": 1, "p10": 30, "p50": 34, "p90": 38}
    model = {"bands": [{"intake_min": 0, "intake_max": 40, "sessions": [row]}]}
    expect(await tenant.http.put("/v1/instruments/srs/etr", json=model, headers=tenant.admin), 200)
    expect(
        await tenant.http.patch(
            f"/v1/episodes/{episode['id']}", json={"status": "closed"}, headers=tenant.admin
        ),
        200,
    )
    fit = await tenant.http.post("/v1/instruments/srs/etr/fit", headers=tenant.admin)
    assert fit.status_code == 202, fit.text  # queued: one closed episode is over the limit of 0
    return uuid.UUID(tenant.org_id)


async def test_the_database_refuses_a_value_outside_the_literal(
    attune: Attune, engine: AsyncEngine
) -> None:
    org_id = await one_row_in_each_checked_table(attune)
    for name, column in CHECKED:
        table = SQLModel.metadata.tables[name]
        async with engine.connect() as conn:
            mine = table.c.org_id == org_id
            rows = await conn.scalar(sa.select(sa.func.count()).select_from(table).where(mine))
            assert rows, f"no {name} row to update"
            with pytest.raises(IntegrityError, match=f"(?i)ck_{name}_{column}|check"):
                await conn.execute(sa.update(table).where(mine).values({column: "not-a-value"}))
            await conn.rollback()


async def test_on_postgresql_each_checked_column_is_a_domain_listing_the_literal_values(
    settings: Settings, engine: AsyncEngine
) -> None:
    """A domain's CHECK is prepared once per connection; a table's is parsed again by each
    statement that writes the table, which cost a submission's write statement about 520,000
    instructions (migrations pgs1c4e0a7b2, pgs2d5f1b8c3). The domain's constraint keeps the
    table constraint's name, and lists exactly the values of the column's Literal type, as one
    text[] constant."""
    if settings.is_sqlite:
        pytest.skip("SQLite keeps table CHECKs")
    async with engine.connect() as conn:
        stored = {
            (table, column): (name, definition)
            for table, column, name, definition in await conn.execute(
                sa.text(
                    "SELECT c.relname, a.attname, k.conname, pg_get_constraintdef(k.oid)"
                    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                    " JOIN pg_constraint k ON k.contypid = a.atttypid"
                    " WHERE c.relnamespace = current_schema()::regnamespace AND a.attnum > 0"
                )
            )
        }
        table_checks = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
                " WHERE k.contype = 'c' AND c.relnamespace = current_schema()::regnamespace"
            )
        )
    assert table_checks == 0, "on PostgreSQL a one_of column is a domain (pgs2d5f1b8c3)"
    for table, column in CHECKED:
        model = next(
            c
            for c in SQLModel.metadata.tables[table].constraints
            if isinstance(c, sa.CheckConstraint) and c.name == f"ck_{table}_{column}"
        )
        assert (table, column) in stored, f"{table}.{column}: make it a domain (pgs2d5f1b8c3)"
        name, definition = stored[(table, column)]
        assert name == f"ck_{table}_{column}"
        found = re.fullmatch(
            r"CHECK \(\(\(VALUE\)::text = ANY \('\{(.*)\}'::text\[\]\)\)\)", definition
        )
        assert found, definition
        values = {v.strip('"') for v in found.group(1).split(",")}
        assert values == set(re.findall(r"'([^']*)'", str(model.sqltext))), definition
