"""Which instrument definitions an organization can use: the built-ins plus its own.

An organisation's definitions are parsed once per process, not per request (issue 14 finding 8:
twenty versions of a 0.95 MB definition, re-parsed on every call, slowed every tenant). Stored
versions never change — a change is a new row — so the cache is keyed by the row's id: a
request reads only the id of the current version (a small query), and a version published by
any replica is a new id, so no replica can serve a stale definition.
"""

import json
import threading
import uuid
from collections import OrderedDict

from pydantic import JsonValue, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.submissions import StoredInstrument
from services.instruments import InstrumentDefinition, builtin_instruments, get_builtin
from services.instruments.schema import DefinitionProblems
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.database import UnitOfWork, insert_unique
from services.kernel.errors import Conflict, ContentTooLarge, InvalidInput, NotFound
from services.kernel.store import session_store

# Parsed definitions by stored row id; bounded, least recently used out first.
_CACHE_ENTRIES = 512
_parsed: OrderedDict[uuid.UUID, InstrumentDefinition] = OrderedDict()
_lock = threading.Lock()


def parse_stored(raw: dict[str, JsonValue]) -> InstrumentDefinition:
    """A stored definition (validated when it was posted) as the model."""
    return InstrumentDefinition.model_validate(raw)


def _cached(row_id: uuid.UUID) -> InstrumentDefinition | None:
    with _lock:
        found = _parsed.get(row_id)
        if found is not None:
            _parsed.move_to_end(row_id)
        return found


def _remember(row_id: uuid.UUID, definition: InstrumentDefinition) -> None:
    with _lock:
        _parsed[row_id] = definition
        while len(_parsed) > _CACHE_ENTRIES:
            _parsed.popitem(last=False)


async def _definitions(
    db: AsyncSession | UnitOfWork, row_ids: list[uuid.UUID]
) -> dict[uuid.UUID, InstrumentDefinition]:
    """The parsed definitions of these rows: from the cache, the rest read and parsed once."""
    found = {row_id: d for row_id in row_ids if (d := _cached(row_id)) is not None}
    missing = [row_id for row_id in row_ids if row_id not in found]
    if missing:
        conn = await db.connection()
        rows = (
            await conn.execute(
                select(col(StoredInstrument.id), col(StoredInstrument.definition)).where(
                    col(StoredInstrument.id).in_(missing)
                )
            )
        ).all()
        for row_id, raw in rows:
            definition = parse_stored(raw)
            _remember(row_id, definition)
            found[row_id] = definition
    return found


async def _own_latest(session: AsyncSession, actor: Actor) -> dict[str, InstrumentDefinition]:
    rows = (
        await session.execute(
            select(col(StoredInstrument.code), col(StoredInstrument.id))
            .where(col(StoredInstrument.org_id) == actor.org_id)
            .order_by(col(StoredInstrument.id))
        )
    ).all()
    # Later versions were stored later, so the last row per code is the current one.
    latest = dict(rows)
    parsed = await _definitions(session, list(latest.values()))
    return {code: parsed[row_id] for code, row_id in latest.items()}


async def list_instruments(session: AsyncSession, *, actor: Actor) -> list[InstrumentDefinition]:
    catalog = builtin_instruments()
    catalog.update(await _own_latest(session, actor))
    return [catalog[code] for code in sorted(catalog)]


async def resolve(
    db: AsyncSession | UnitOfWork, *, actor: Actor, code: str
) -> InstrumentDefinition:
    try:
        return get_builtin(code)
    except KeyError:
        pass
    conn = await db.connection()
    row_id = await conn.scalar(
        select(col(StoredInstrument.id))
        .where(col(StoredInstrument.org_id) == actor.org_id)
        .where(col(StoredInstrument.code) == code)
        .order_by(col(StoredInstrument.id).desc())
        .limit(1)
    )
    if row_id is None:
        raise NotFound(f"no instrument '{code}'")
    return (await _definitions(db, [row_id]))[row_id]


async def resolve_named(
    db: AsyncSession | UnitOfWork, *, actor: Actor, code: str, field: str
) -> InstrumentDefinition:
    """`resolve`, with an unknown code reported as invalid input naming `field` (422)."""
    try:
        return await resolve(db, actor=actor, code=code)
    except NotFound as exc:
        raise InvalidInput.at(
            field, "unknown instrument", type="unknown", detail=exc.detail
        ) from exc


def _nul_paths(value: object, path: str) -> list[str]:
    """Where a NUL character hides in a JSON value (keys included): PostgreSQL refuses them."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        found = [f"{path}.{k!r}" for k in value if isinstance(k, str) and "\x00" in k]
        for key, item in value.items():
            found += _nul_paths(item, f"{path}.{key}")
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nul_paths(item, f"{path}.{i}")]
    return []


def parse_definition(raw: dict[str, JsonValue]) -> InstrumentDefinition:
    """Validate a definition; every problem becomes a named field error (422)."""
    nul = _nul_paths(raw, "body")
    if nul:
        raise InvalidInput(
            "text in the definition must not contain NUL characters",
            errors=[
                {"field": p, "message": "contains a NUL character", "type": "nul"} for p in nul
            ],
        )
    try:
        return InstrumentDefinition.model_validate(raw)
    except ValidationError as exc:
        errors: list[dict[str, JsonValue]] = []
        for err in exc.errors():
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, DefinitionProblems):
                errors += [
                    {"field": f"body.{field}", "message": message, "type": "definition"}
                    for field, message in cause.problems
                ]
            else:
                loc = ".".join(str(p) for p in err["loc"])
                errors.append(
                    {
                        "field": f"body.{loc}" if loc else "body",
                        "message": err["msg"],
                        "type": err["type"],
                    }
                )
        raise InvalidInput("the instrument definition is inconsistent", errors=errors) from exc


async def create_instrument(
    session: AsyncSession,
    *,
    actor: Actor,
    raw: dict[str, JsonValue],
    max_bytes: int,
    max_versions: int,
) -> InstrumentDefinition:
    """Publish a definition (or a new version of one). Bounded in size and in versions per code,
    so that no organisation can make definitions a cost for every tenant (issue 14 finding 8)."""
    # As compact JSON; the standard library, since orjson refuses integers over 64 bits
    # (which the definition's validation then reports, naming the field).
    size = len(
        json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    )
    if size > max_bytes:
        raise ContentTooLarge(
            f"the definition is {size} bytes; at most {max_bytes} bytes are accepted",
            errors=[{"field": "body", "message": f"at most {max_bytes} bytes", "type": "size"}],
        )
    definition = parse_definition(raw)
    if definition.code in builtin_instruments():
        raise Conflict(f"'{definition.code}' is a built-in instrument; choose another code")
    if actor.org_id is not None:
        # Serialise publishers of this code (PostgreSQL; SQLite has one writer at a time), so
        # two replicas cannot both add the last allowed version.
        await session_store(session).serialise(
            f"attune.instrument:{actor.org_id}:{definition.code}"
        )
        versions = await session.scalar(
            select(func.count())
            .select_from(StoredInstrument)
            .where(col(StoredInstrument.org_id) == actor.org_id)
            .where(col(StoredInstrument.code) == definition.code)
        )
        if (versions or 0) >= max_versions:
            raise InvalidInput.at(
                "body.version",
                f"'{definition.code}' has {max_versions} versions, the most allowed",
                type="versions",
                detail=f"no more versions of '{definition.code}' can be published",
            )
    await insert_unique(
        session,
        StoredInstrument(
            org_id=actor.org_id,
            code=definition.code,
            version=definition.version,
            definition=definition.model_dump(mode="json", exclude_none=True),
        ),
        conflict=f"instrument '{definition.code}' version '{definition.version}' exists; "
        "publish a new version instead",
    )
    audit.record(session, actor, action="instrument.create", resource_type="instrument")
    return definition
