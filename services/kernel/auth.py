"""API keys: generation, keyed hashing, authentication and scope checks.

Keys are 256-bit random tokens, so a fast keyed hash (HMAC-SHA256 with the server secret) is the
right tool: slow password hashes defend low-entropy secrets and would only add latency here. The
database holds the hash alone; a stolen table is useless without the secret.
"""

import contextlib
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.base import utcnow
from models.smart import SmartAccessToken
from models.tenancy import ORG_SCOPES, ApiKey
from services.kernel.config import ACCESS_TOKEN_PREFIX, KEY_PREFIX
from services.kernel.database import UnitOfWork
from services.kernel.errors import Forbidden, Unauthorized
from services.kernel.store import kernel_store, session_store


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID | None
    org_id: uuid.UUID | None
    scopes: frozenset[str]
    clinician_id: uuid.UUID | None

    @property
    def is_system(self) -> bool:
        return "system" in self.scopes

    def has(self, scope: str) -> bool:
        if scope in self.scopes:
            return True
        # An admin may do everything inside its own organization, never across organizations.
        return scope in ORG_SCOPES and "admin" in self.scopes and self.org_id is not None

    def require(self, scope: str) -> None:
        if not self.has(scope):
            raise Forbidden(f"this API key lacks the '{scope}' scope")

    def require_org(self) -> uuid.UUID:
        if self.org_id is None:
            raise Forbidden("this route acts inside an organization; use an organization's key")
        return self.org_id


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting and from where: what every service needs for scoping and auditing."""

    principal: Principal
    client_address: str | None

    @property
    def org_id(self) -> uuid.UUID:
        return self.principal.require_org()

    @property
    def clinician_id(self) -> uuid.UUID | None:
        return self.principal.clinician_id


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str, secret: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 6]


class PrincipalCache:
    """Keys already looked up by this process, for the one route whose statements check the key
    themselves (`POST /v1/submissions` on PostgreSQL: services/submissions/store_pg.py re-checks
    ``revoked_at`` in the statements that read and write, so a revoked key still fails on its
    very next request). Keys never change but for revocation; entries expire only to bound the
    memory held for keys no longer used."""

    def __init__(self, max_entries: int = 10_000, ttl_seconds: float = 600.0) -> None:
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._max = max_entries
        self._ttl = ttl_seconds

    def get(self, digest: str) -> Principal | None:
        found = self._entries.get(digest)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def put(self, digest: str, principal: Principal) -> None:
        if len(self._entries) >= self._max:
            self._entries.pop(next(iter(self._entries)))  # the oldest
        self._entries[digest] = (principal, time.monotonic() + self._ttl)


async def authenticate(
    uow: UnitOfWork,
    *,
    token: str,
    secret: str,
    cache: PrincipalCache | None = None,
    old_secrets: Sequence[str] = (),
) -> Principal:
    """Look a bearer token up by its keyed hash. Revoked keys fail on the very next request.
    With ``cache``, a key this process has seen is not looked up again: only for routes whose
    own statements check that the key is not revoked. A key minted before the server secret
    was rotated is hashed under a previous one (``ATTUNE_SECRET_KEYS_OLD``), tried in turn."""
    if not token.startswith(KEY_PREFIX) or len(token) > 200:
        raise Unauthorized("invalid API key")
    digest = hash_key(token, secret)
    if cache is not None and (cached := cache.get(digest)) is not None:
        return cached
    try:
        principal = await _look_up(uow, digest)
    except Unauthorized:
        for old in old_secrets:
            with contextlib.suppress(Unauthorized):
                principal = await _look_up(uow, hash_key(token, old))
                break
        else:
            raise
    if cache is not None:
        cache.put(digest, principal)
    return principal


async def _look_up(uow: UnitOfWork, digest: str) -> Principal:
    row = await kernel_store(uow).key_by_hash(digest)
    # The lookup is by hash, so timing reveals nothing about the key; compare_digest guards the
    # final equality anyway, in case a collation or index ever matched loosely.
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise Unauthorized("invalid or revoked API key")
    return Principal(
        key_id=row.id, org_id=row.org_id, scopes=row.scopes, clinician_id=row.clinician_id
    )


_KEYS = ApiKey.__table__  # type: ignore[attr-defined]
_TOKENS = SmartAccessToken.__table__  # type: ignore[attr-defined]
_TOKEN_BY_HASH = (
    select(_TOKENS.c.api_key_id, _TOKENS.c.org_id, _TOKENS.c.scopes, _KEYS.c.clinician_id)
    .join(_KEYS, _KEYS.c.id == _TOKENS.c.api_key_id)
    .where(_TOKENS.c.token_hash == bindparam("token_hash"))
    .where(_TOKENS.c.expires_at > bindparam("now"))
    .where(_KEYS.c.revoked_at.is_(None))
)


def is_access_token(token: str) -> bool:
    return token.startswith(ACCESS_TOKEN_PREFIX)


async def authenticate_access_token(uow: UnitOfWork, *, token: str, secret: str) -> Principal:
    """A SMART Backend Services access token (services/smart/tokens.py), looked up by its keyed
    hash: unexpired, and its client's key not revoked (deleting the client revokes it). It acts
    as that key, with the scopes granted to the token."""
    if not is_access_token(token) or len(token) > 200:
        raise Unauthorized("invalid access token")
    conn = await uow.connection()
    row = (
        await conn.execute(_TOKEN_BY_HASH, {"token_hash": hash_key(token, secret), "now": utcnow()})
    ).one_or_none()
    if row is None:
        raise Unauthorized("invalid or expired access token")
    key_id, org_id, scopes, clinician_id = row
    return Principal(
        key_id=key_id, org_id=org_id, scopes=frozenset(scopes), clinician_id=clinician_id
    )


async def ensure_bootstrap_key(session: AsyncSession, *, key: str, secret: str) -> bool:
    """Create the system key from `ATTUNE_BOOTSTRAP_KEY` unless a system key already exists.

    Like a database image taking its first password from the environment: later changes to the
    variable do not replace an existing system key.
    """
    existing = (
        await session.execute(
            select(col(ApiKey.id), col(ApiKey.scopes)).where(col(ApiKey.org_id).is_(None))
        )
    ).all()
    if any("system" in scopes for _, scopes in existing):
        return False
    row = ApiKey(
        org_id=None,
        name="bootstrap system key",
        prefix=display_prefix(key),
        key_hash=hash_key(key, secret),
        scopes=["system"],
    )
    # Insert-if-absent: replicas starting together all find no system key, and all but one
    # then find the same key inserted (key_hash is unique) instead of failing to start.
    return await session_store(session).insert_if_absent(
        ApiKey.__table__,  # type: ignore[attr-defined]
        row.model_dump(),
    )
