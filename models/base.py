"""Shared column types, id generation and the metadata naming convention for every table."""

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any, get_args

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects.postgresql import DOMAIN, JSONB
from sqlmodel import SQLModel

# Set before the first table is declared so every constraint gets a stable, predictable name in
# migrations on SQLite and PostgreSQL alike (Alembic cannot alter unnamed constraints on SQLite).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Schema(BaseModel):
    """An API schema that no table stores: a plain pydantic model, read from attributes too, as
    SQLModel's are. Used where a schema is validated on every submission (its body, scores and
    alerts): SQLModel validates a model that is not a table through Python code of its own for
    each instance, 3.7 times the cost of pydantic's (an alert: 10.6 µs against 2.8 µs, measured
    with timeit), for the same result."""

    model_config = ConfigDict(from_attributes=True)


def one_of(column: str, choices: object) -> sa.CheckConstraint:
    """A CHECK that ``column`` holds one of the values of the ``Literal`` type ``choices``, named
    ``ck_<table>_<column>``: the column's annotation and the database then list the same values
    (the migration that adds it spells them out, as migrations are frozen). NULL passes a CHECK in
    SQL, so a nullable column stays nullable. On PostgreSQL the column is instead a domain of its
    own, <table>_<column>, whose constraint has that name and those values (migration
    pgs2d5f1b8c3 says why): `same_type` tells Alembic it is the declared string type."""
    values = get_args(choices)
    assert values, "choices is a Literal type"
    assert all(isinstance(v, str) and "'" not in v for v in values)
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=column)


def same_type(
    context: object,
    inspected_column: object,
    metadata_column: sa.Column[Any],
    inspected_type: sa.types.TypeEngine[Any],
    metadata_type: sa.types.TypeEngine[Any],
) -> bool | None:
    """Alembic's compare_type: a column that `one_of` checks is, on PostgreSQL, the domain named
    after it over the declared varchar, not a different type (False); else Alembic decides."""
    if isinstance(inspected_type, DOMAIN):
        return inspected_type.name != f"{metadata_column.table.name}_{metadata_column.name}"
    return None


# JSONB on PostgreSQL (indexable, compact); plain JSON text on SQLite.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


_last_id = (0, 0)  # (millisecond, counter) of the previous id made by this process


def new_id() -> uuid.UUID:
    """A UUIDv7: time-ordered, so keyset pagination by id follows creation order — also within
    one millisecond: rand_a is a counter there (RFC 9562 §6.2, method 1), seeded at random each
    new millisecond, and a counter that runs out borrows the next millisecond."""
    global _last_id
    millis = time.time_ns() // 1_000_000
    last_millis, last_counter = _last_id
    if millis <= last_millis:
        millis, counter = last_millis, last_counter + 1
        if counter > 0xFFF:
            millis, counter = millis + 1, 0
    else:
        counter = int.from_bytes(os.urandom(2), "big") & 0x7FF  # leaves room to count up
    _last_id = (millis, counter)
    rand = int.from_bytes(os.urandom(8), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= counter << 64  # rand_a, 12 bits: the counter
    value |= 0b10 << 62  # RFC 9562 variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return uuid.UUID(int=value)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timestamps stored in UTC and always returned timezone-aware.

    SQLite has no timezone type and would hand back naive values; PostgreSQL's timestamptz would
    hand back the session's zone. Normalising here keeps API output identical on both.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - defensive, SQLAlchemy parses SQLite strings
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
