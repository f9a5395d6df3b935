"""Idempotency-Key handling for POSTs that create something (DESIGN.md §4).

A record belongs to the API key (or invitation) that made it (DESIGN.md §10.8): its primary key is
(owner, key), so another caller's same Idempotency-Key is a request of its own — never a
replay of someone else's response, nor a 422 that tells it whether it guessed their body. (API
key and invitation ids are unique across organisations, so the owner alone scopes a key; the
system key, which belongs to none, can use one too.) A replay
is authorised as a fresh request would be (the route's scope check has run; the key is checked
again for revocation here, since the PostgreSQL hot path may have skipped the lookup) and audited.

The key is claimed by inserting its row *in the request's own transaction*, guarded by the primary
key, and the stored response is written in that same transaction. So:
- a concurrent request with the same key waits on the row lock; on PostgreSQL it gives up after a
  short lock timeout and answers 409 (still in flight); on SQLite writers are serialised anyway,
  so it simply sees the finished record;
- a crash or rollback releases the claim with everything else: no stale "in flight" rows;
- a stored response exists exactly when the change it describes was committed.
"""

import contextlib
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import JsonValue
from sqlalchemy import ColumnElement, and_, delete, exists, or_, select, update

from models.audit import AuditEvent
from models.base import utcnow
from models.episodes import Episode
from models.people import Client
from models.submissions import IdempotencyRecord, Submission
from models.tenancy import ApiKey
from services.kernel import audit
from services.kernel.auth import Actor
from services.kernel.database import UnitOfWork
from services.kernel.errors import Conflict, InvalidInput, Unauthorized
from services.kernel.store import LockTimeout, kernel_store
from services.kernel.visibility import visible_clients, visible_episodes, visible_submissions

# DESIGN.md §4: keys are kept at least 24 h; records past it are purged (`purge_expired`), so
# stored response bodies — health data — are not kept longer than a retry needs them.
RETENTION = timedelta(hours=24)
_RECORDS = IdempotencyRecord.__table__  # type: ignore[attr-defined]
_KEYS = ApiKey.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
_SUBMISSIONS = Submission.__table__  # type: ignore[attr-defined]
_EPISODES = Episode.__table__  # type: ignore[attr-defined]
_CLIENTS = Client.__table__  # type: ignore[attr-defined]
# How long a request waits for a concurrent twin before answering 409 (PostgreSQL).
IN_FLIGHT_WAIT_MS = 200


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, JsonValue]


def request_fingerprint(method: str, path: str, body: object) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def owner_of(actor: Actor) -> uuid.UUID:
    """The API key acting; invitations pass their own id instead."""
    if actor.principal.key_id is None:
        raise ValueError("an Idempotency-Key needs an owner: an API key or an invitation")
    return actor.principal.key_id


async def claim(
    uow: UnitOfWork, *, actor: Actor, owner: uuid.UUID, key: str, fingerprint: str
) -> StoredResponse | None:
    """Claim `key` for this request of `owner`, or return the response stored for it.

    Raises 422 when the key was used with a different request, 409 when its first use is still
    being processed, 401 when the API key that would be answered was revoked meanwhile.
    """
    now = utcnow()
    values = {
        "org_id": actor.principal.org_id,
        "owner_id": owner,
        "key": key,
        "request_hash": fingerprint,
        "created_at": now,
        "expires_at": now + RETENTION,
    }
    try:
        claimed = await kernel_store(uow).insert_if_absent(
            _RECORDS, values, wait_ms=IN_FLIGHT_WAIT_MS
        )
    except LockTimeout as exc:
        raise _in_flight() from exc
    conn = await uow.connection()
    if claimed:
        return None
    record = (await conn.execute(select(_RECORDS).where(_mine(owner, key)))).one_or_none()
    if record is None or record.response_status is None:
        raise _in_flight()
    if record.expires_at < now:
        # An expired key starts afresh, as if never used.
        await conn.execute(
            update(_RECORDS)
            .where(_mine(owner, key))
            .values(
                request_hash=fingerprint,
                response_status=None,
                response_body=None,
                created_at=now,
                expires_at=now + RETENTION,
            )
        )
        return None
    if record.request_hash != fingerprint:
        raise InvalidInput.at(
            "header.Idempotency-Key",
            "reused with another body",
            type="idempotency_mismatch",
            detail="this Idempotency-Key was used with a different request body",
        )
    assert record.response_body is not None
    if actor.principal.key_id is not None:
        # The route may have taken the key from the process's cache (the PostgreSQL hot path
        # re-checks it in its own statements, which a replay never reaches): look again.
        active = await conn.scalar(
            select(_KEYS.c.id)
            .where(_KEYS.c.id == actor.principal.key_id)
            .where(_KEYS.c.revoked_at.is_(None))
        )
        if active is None:
            raise Unauthorized("invalid or revoked API key")
    return StoredResponse(status=record.response_status, body=record.response_body)


async def store(
    uow: UnitOfWork,
    *,
    actor: Actor,
    owner: uuid.UUID,
    key: str,
    status: int,
    body: dict[str, JsonValue],
) -> None:
    await (await uow.connection()).execute(
        update(_RECORDS).where(_mine(owner, key)).values(response_status=status, response_body=body)
    )


async def audit_replay(
    uow: UnitOfWork,
    *,
    actor: Actor,
    action: str,
    resource_type: str,
    body: dict[str, JsonValue],
    outcome: str = "success",
) -> None:
    """A replay hands out a stored response again: audited as a read of what it names (and a
    replay refused because the caller may no longer read it, with outcome ``not_found``)."""
    resource_id: uuid.UUID | None = None
    with contextlib.suppress(ValueError):
        resource_id = uuid.UUID(str(body.get("id")))
    await (await uow.connection()).execute(
        _AUDIT.insert(),
        audit.event_values(
            actor,
            action=f"{action}.replay",
            resource_type=resource_type,
            resource_id=resource_id,
            outcome=outcome,
        ),
    )


async def purge_expired(uow: UnitOfWork, *, now: datetime | None = None) -> int:
    """Delete records past their retention, with the response bodies they keep; returns how
    many. For the worker or `attune purge-idempotency`; the caller commits."""
    result = await (await uow.connection()).execute(
        delete(_RECORDS).where(_RECORDS.c.expires_at < (now or utcnow()))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _mine(owner: uuid.UUID, key: str) -> ColumnElement[bool]:
    return and_(_RECORDS.c.owner_id == owner, _RECORDS.c.key == key)


def _in_flight() -> Conflict:
    return Conflict("a request with this Idempotency-Key is still being processed; retry shortly")


# What each stored response names, for a clinician-bound caller (DESIGN.md §10.8: a replay is
# authorised as a fresh request would be). Keys bound to no clinician read their whole
# organisation, and the other resource types (clinicians, keys, instruments, webhooks,
# organisations) are organisation-wide: neither can drift out of reach.
_ID_OF = {"submission": "id", "episode": "id", "client": "id", "invitation": "episode_id"}


async def still_visible(
    uow: UnitOfWork, *, actor: Actor, resource_type: str, body: dict[str, JsonValue]
) -> bool:
    """Whether the caller may still read what a stored response names. Between the first
    request and its replay an episode may have moved to another clinician: the replay must not
    hand a key bound to the first one what it can no longer read."""
    field = _ID_OF.get(resource_type)
    if actor.clinician_id is None or field is None:
        return True
    try:
        named = uuid.UUID(str(body.get(field)))
    except ValueError:
        return False
    conn = await uow.connection()
    if resource_type == "submission":
        found = select(_SUBMISSIONS.c.id).where(
            visible_submissions(actor), _SUBMISSIONS.c.id == named
        )
    elif resource_type == "client":
        # A client nobody treats yet is within reach of the key that registered it (as for
        # opening its first episode, services/care/episodes.py).
        treated = select(_EPISODES.c.id).where(
            _EPISODES.c.org_id == actor.org_id, _EPISODES.c.client_id == named
        )
        found = select(_CLIENTS.c.id).where(
            _CLIENTS.c.org_id == actor.org_id,
            _CLIENTS.c.id == named,
            or_(visible_clients(actor), ~exists(treated)),
        )
    else:  # an episode, or an invitation to one of its sessions
        found = select(_EPISODES.c.id).where(visible_episodes(actor), _EPISODES.c.id == named)
    return (await conn.execute(found)).first() is not None
