"""Which instrument definitions an organization can use: the built-ins plus its own."""

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.submissions import StoredInstrument
from services.instruments import InstrumentDefinition, builtin_instruments, get_builtin
from services.instruments.schema import DefinitionProblems
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.database import UnitOfWork, insert_unique
from services.kernel.errors import Conflict, InvalidInput, NotFound


async def _own_latest(session: AsyncSession, actor: Actor) -> dict[str, InstrumentDefinition]:
    rows = (
        await session.execute(
            select(col(StoredInstrument.code), col(StoredInstrument.definition))
            .where(col(StoredInstrument.org_id) == actor.org_id)
            .order_by(col(StoredInstrument.id))
        )
    ).all()
    # Later versions were stored later, so the last row per code is the current one.
    return {code: InstrumentDefinition.model_validate(defn) for code, defn in rows}


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
    row = await conn.scalar(
        select(col(StoredInstrument.definition))
        .where(col(StoredInstrument.org_id) == actor.org_id)
        .where(col(StoredInstrument.code) == code)
        .order_by(col(StoredInstrument.id).desc())
        .limit(1)
    )
    if row is None:
        raise NotFound(f"no instrument '{code}'")
    return InstrumentDefinition.model_validate(row)


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


def _nul_paths(value: Any, path: str) -> list[str]:
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


def parse_definition(raw: dict[str, Any]) -> InstrumentDefinition:
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
        errors: list[dict[str, Any]] = []
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
    session: AsyncSession, *, actor: Actor, raw: dict[str, Any]
) -> InstrumentDefinition:
    definition = parse_definition(raw)
    if definition.code in builtin_instruments():
        raise Conflict(f"'{definition.code}' is a built-in instrument; choose another code")
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
