"""Rate limits (DESIGN.md §2, §10.8), counted with the `limits` library in our own database, so
every API replica counts against the same numbers.

- Failed authentication (a 401 for an API key or an invitation token) per client address, on
  by default: brute force never gets thousands of tries.
- Authenticated traffic per API key, off by default (one EHR integration legitimately sends
  bursts).

Counting happens after the response has gone out, on a connection of its own: a refused request
rolls its transaction back, and its failure must still count; a SQLite write there cannot wait
on the request's own write lock; and a client never waits for the counter. What a replica learns
from the shared counter — this address or key is over its limit until the window ends — it keeps
in memory and answers from before any database work, with 429 and `Retry-After`. A replica
learns it on its first counted request past the limit, so at most one request per replica goes
over, and the hot path pays for one dictionary lookup.

Per-key counts are coalesced: one busy key's hits would otherwise each update the same counter
row, and every request of that key would queue on that row's lock (measured on the submission
benchmark: throughput more than halved). A replica keeps at most one update per key in flight
(run by the request that found none under way, after its response went out); hits arriving
meanwhile are added up and go in the next update, with their total as the cost (run by a task
of its own, so that no request lingers counting others' hits, at most every 50 ms). Sequential
traffic is counted one hit at a time as before; under a burst a replica learns of the limit at
most one round trip and 50 ms late (each update costs about half a millisecond of the
replica's CPU: at 10 ms the per-key limit cost 5 % of the submission benchmark).
"""

import asyncio
import hashlib
import logging
import math
import time
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import send_problem
from models.limits import RateLimitCounter
from services.kernel.config import Settings

log = logging.getLogger("attune.errors")

COUNTERS = RateLimitCounter.__table__  # type: ignore[attr-defined]
# Expired counters are reset in place when their key comes back; the others are swept now and
# then, so addresses seen once do not pile up.
_PURGE_EVERY = 500
# Under a burst, one key's leftover hits are added to its counter at most this often (so a
# replica may let this long's worth of requests through past the limit before it hears).
_COALESCE_SECONDS = 0.05


class DatabaseStorage(Storage):
    """A `limits` storage on the service's database: one row per fixed-window counter."""

    STORAGE_SCHEME = ["attune+database"]

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__()
        self.engine = engine
        # On PostgreSQL the counter's upsert, one atomic statement, runs alone, without BEGIN
        # and COMMIT around it: one round trip instead of three for every count. (SQLite's
        # transactions cost no round trip, and its engine opens them itself: BEGIN IMMEDIATE.)
        self._postgres = engine.dialect.name == "postgresql"
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._calls = 0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        insert = pg_insert if self._postgres else sqlite_insert
        expired = COUNTERS.c.expires_at <= now
        # One statement, atomic on both databases: a new or expired counter starts a window.
        stmt = (
            insert(COUNTERS)
            .values(key=key, count=amount, expires_at=now + expiry)
            .on_conflict_do_update(
                index_elements=[COUNTERS.c.key],
                set_={
                    "count": case((expired, amount), else_=COUNTERS.c.count + amount),
                    "expires_at": case((expired, now + expiry), else_=COUNTERS.c.expires_at),
                },
            )
            .returning(COUNTERS.c.count)
        )
        opened = self._autocommit.connect() if self._postgres else self.engine.begin()
        async with opened as conn:
            count = int((await conn.execute(stmt)).scalar_one())
            self._calls += 1
            if self._calls % _PURGE_EVERY == 0:
                await conn.execute(delete(COUNTERS).where(COUNTERS.c.expires_at <= now))
        return count

    async def _row(self, key: str) -> tuple[int, float] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(COUNTERS.c.count, COUNTERS.c.expires_at).where(COUNTERS.c.key == key)
                )
            ).one_or_none()
        if row is None or row[1] <= time.time():
            return None
        return int(row[0]), float(row[1])

    async def get(self, key: str) -> int:
        row = await self._row(key)
        return 0 if row is None else row[0]

    async def get_expiry(self, key: str) -> float:
        row = await self._row(key)
        return time.time() if row is None else row[1]

    async def check(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))
        return True

    async def reset(self) -> int | None:
        async with self.engine.begin() as conn:
            return (await conn.execute(delete(COUNTERS))).rowcount

    async def clear(self, key: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(COUNTERS).where(COUNTERS.c.key == key))


class _Blocks:
    """Who is over a limit, and until when (epoch seconds), as this replica learnt it."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._until: dict[str, float] = {}
        self._max = max_entries

    def retry_after(self, who: str, now: float) -> int | None:
        until = self._until.get(who)
        if until is None:
            return None
        if until <= now:
            del self._until[who]
            return None
        return math.ceil(until - now)

    def block(self, who: str, until: float) -> None:
        if len(self._until) >= self._max:
            self._until.pop(next(iter(self._until)))
        self._until[who] = until


class RateLimit:
    """The ASGI middleware enforcing both limits. Sits inside the proxy-header middleware, so
    the client address is the one `ATTUNE_TRUSTED_PROXIES` vouch for."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.auth_failures: RateLimitItem | None = (
            parse(settings.rate_limit_auth_failures) if settings.rate_limit_auth_failures else None
        )
        self.per_key: RateLimitItem | None = (
            parse(settings.rate_limit_per_key) if settings.rate_limit_per_key else None
        )
        self._limiter: FixedWindowRateLimiter | None = None
        self._addresses = _Blocks()
        self._keys = _Blocks()
        # Per-key hits not yet added to the shared counter, and the keys whose update is under
        # way (see the module's docstring).
        self._pending: dict[str, int] = {}
        self._flushing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # held, so that none is collected early

    def _strategy(self, scope: Scope) -> FixedWindowRateLimiter:
        if self._limiter is None:
            self._limiter = FixedWindowRateLimiter(DatabaseStorage(scope["app"].state.engine))
        return self._limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.auth_failures is None and self.per_key is None):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        token = _bearer_digest(scope) if self.per_key is not None else None
        now = time.time()
        wait = self._addresses.retry_after(address, now)
        if wait is None and token is not None:
            wait = self._keys.retry_after(token, now)
        if wait is not None:
            await _too_many(scope, send, wait)
            return

        status = 0

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watched_send)
        try:
            await self._count(scope, status, address, token)
        except Exception as exc:
            # Failing open: a database that does not answer is reported by the request itself.
            log.warning("rate limit not counted: %s", type(exc).__name__)

    async def _count(self, scope: Scope, status: int, address: str, token: str | None) -> None:
        if status == 401 and self.auth_failures is not None:
            await self._hit(scope, self.auth_failures, self._addresses, address, "auth", address)
        if self.per_key is not None and token is not None and 200 <= status < 500:
            actor: Any = scope.get("state", {}).get("actor")
            key_id = getattr(getattr(actor, "principal", None), "key_id", None)
            if key_id is not None:
                self._pending[token] = self._pending.get(token, 0) + 1
                if token in self._flushing:
                    return  # the update under way takes this hit along
                self._flushing.add(token)
                handed_over = False
                try:
                    await self._flush_key(scope, token, str(key_id))
                    if self._pending.get(token):
                        # Hits came in meanwhile: a task of its own counts them, so that this
                        # request ends (its logged duration, its place in the server) now.
                        task = asyncio.create_task(self._flush_rest(scope, token, str(key_id)))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                        handed_over = True
                finally:
                    if not handed_over:
                        self._flushing.discard(token)

    async def _flush_key(self, scope: Scope, token: str, key_id: str) -> None:
        """One update of the shared counter with every hit of this key pending now."""
        assert self.per_key is not None
        if cost := self._pending.pop(token, 0):
            await self._hit(scope, self.per_key, self._keys, token, "key", key_id, cost=cost)

    async def _flush_rest(self, scope: Scope, token: str, key_id: str) -> None:
        try:
            while self._pending.get(token):
                # A key this busy is counted in batches: one update per interval at most.
                await asyncio.sleep(_COALESCE_SECONDS)
                await self._flush_key(scope, token, key_id)
        except Exception as exc:
            log.warning("rate limit not counted: %s", type(exc).__name__)
        finally:
            self._flushing.discard(token)

    async def _hit(
        self,
        scope: Scope,
        item: RateLimitItem,
        blocks: _Blocks,
        who: str,
        *ids: str,
        cost: int = 1,
    ) -> None:
        strategy = self._strategy(scope)
        if not await strategy.hit(item, *ids, cost=cost):
            reset, _ = await strategy.get_window_stats(item, *ids)
            blocks.block(who, reset)


def _bearer_digest(scope: Scope) -> str | None:
    """The bearer token as a digest: blocks are kept by token (its key id is known only once
    the database was asked), and a token itself is never kept."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token:
                return hashlib.sha256(token.strip()).hexdigest()
    return None


async def _too_many(scope: Scope, send: Send, wait: int) -> None:
    await send_problem(
        scope,
        send,
        status=429,
        title="Too many requests",
        slug="too-many-requests",
        detail=f"too many requests from this client; retry in {wait} seconds",
        headers=[(b"retry-after", str(wait).encode())],
    )
