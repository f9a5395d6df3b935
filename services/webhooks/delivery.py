"""The webhook worker: sends outbox deliveries, at least once, in order per endpoint and episode.

Each round claims due deliveries with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite runs one
worker), sends them, and records the outcome in the same transaction, so a worker that dies
mid-delivery leaves its rows pending for the next one: delivered at least once, never lost.
Several workers never hold the same delivery at once. A delivery waits while an earlier one of
the same endpoint and episode is pending — being sent by another worker, or waiting for its
retry — so a receiver sees an episode's events in the order they happened.

Failures are retried with exponential back-off and jitter; a delivery that fails
``webhook_max_attempts`` times is given up (``failed``); an endpoint is disabled when it answers
410 Gone or fails ``webhook_disable_after_failures`` times in a row.
"""

import asyncio
import contextlib
import functools
import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import urlsplit

import aiohttp
import certifi
import orjson
from pydantic import JsonValue
from sqlalchemy import bindparam, exists, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from standardwebhooks.webhooks import Webhook

from models.base import new_id, utcnow
from models.webhooks import WebhookAttempt
from services.kernel import metrics
from services.kernel.config import Settings
from services.kernel.crypto import SecretBox, UndecryptableSecret
from services.kernel.database import UntypedSelect
from services.webhooks import targets as webhook_targets
from services.webhooks.delivery_store import delivery_store
from services.webhooks.outbox import (
    DELIVERIES,
    ENDPOINTS,
    KEY_COLUMNS,
    KEYS,
    OUTBOX,
    RegisteringKey,
    is_about_a_concern,
    reads_concerns,
)

log = logging.getLogger("attune.webhooks")
ATTEMPTS = WebhookAttempt.__table__  # type: ignore[attr-defined]
USER_AGENT = "Attune-Webhooks/1"
# How much of a receiver's answer is read: its status is all a delivery needs, and a short body
# read to its end lets the connection be kept alive; past this, the connection is closed instead.
RESPONSE_BODY_LIMIT = 64 * 1024
Verdict = Literal["delivered", "retry", "gone"]
NO_RESPONSE = "no response"
UNDECRYPTABLE = "the endpoint's secret cannot be decrypted (see ATTUNE_SECRET_KEYS_OLD)"
# Says no more than that: the log is read by every webhooks:write key of the organisation, and
# naming concerns would tell them an episode has one.
WITHHELD = "withheld: the key that registered this endpoint may no longer read this event"


@dataclass(frozen=True, slots=True)
class Policy:
    timeout_seconds: float
    max_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float
    disable_after_failures: int
    allow_private: bool
    # Opens the endpoints' URLs and signing secrets, stored encrypted (services/kernel/crypto.py).
    secrets: SecretBox
    allowed_ports: tuple[int, ...] = webhook_targets.DEFAULT_ALLOWED_PORTS

    @classmethod
    def from_settings(cls, settings: Settings) -> "Policy":
        return cls(
            timeout_seconds=settings.webhook_timeout_seconds,
            max_attempts=settings.webhook_max_attempts,
            retry_base_seconds=settings.webhook_retry_base_seconds,
            retry_max_seconds=settings.webhook_retry_max_seconds,
            disable_after_failures=settings.webhook_disable_after_failures,
            allow_private=settings.webhook_allow_private,
            secrets=settings.secret_box(),
            allowed_ports=tuple(settings.webhook_allowed_ports),
        )


def backoff_seconds(failures: int, *, base: float, cap: float, unit_random: float) -> float:
    """The wait after the ``failures``-th failed attempt: exponential, capped, with "equal
    jitter" (half fixed, half random) so that receivers recovering from an outage are not hit by
    every retry at the same moment, yet no retry comes sooner than half the planned wait."""
    ceiling = min(cap, base * 2.0 ** min(failures - 1, 62))
    return ceiling / 2 + ceiling / 2 * unit_random


def verdict(status_code: int | None) -> Verdict:
    """2xx is delivered; 410 Gone means the receiver wants no more; everything else (other
    statuses, timeouts, refused connections) is retried."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered"
    if status_code == 410:
        return "gone"
    return "retry"


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    org_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    attempts: int
    url: str  # sealed, as stored
    secret: str  # sealed, as stored
    payload: dict[str, JsonValue]
    # False when the event is about a concern and the endpoint's key may no longer read them.
    allowed: bool = True


@dataclass(frozen=True, slots=True)
class Result:
    delivery: Claimed
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    withheld: bool = False


class ClaimRow(RegisteringKey, Protocol):
    """A row of `_claim_statement`: the delivery, its endpoint (sealed), its event's payload and
    what is known of the endpoint's registering key."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def org_id(self) -> uuid.UUID: ...
    @property
    def endpoint_id(self) -> uuid.UUID: ...
    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def attempts(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def secret(self) -> str: ...
    @property
    def payload(self) -> dict[str, JsonValue]: ...


def _claim_statement(
    now: datetime, batch: int, org_ids: Collection[uuid.UUID] | None
) -> UntypedSelect:
    earlier = DELIVERIES.alias("earlier")
    blocked = exists().where(
        earlier.c.endpoint_id == DELIVERIES.c.endpoint_id,
        earlier.c.episode_id == DELIVERIES.c.episode_id,
        earlier.c.status == "pending",
        earlier.c.event_seq < DELIVERIES.c.event_seq,
    )
    stmt = (
        select(
            DELIVERIES.c.id,
            DELIVERIES.c.org_id,
            DELIVERIES.c.endpoint_id,
            DELIVERIES.c.event_id,
            DELIVERIES.c.attempts,
            ENDPOINTS.c.url,
            ENDPOINTS.c.secret,
            OUTBOX.c.payload,
            *KEY_COLUMNS,
        )
        .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
        .join(OUTBOX, OUTBOX.c.seq == DELIVERIES.c.event_seq)
        .outerjoin(KEYS, KEYS.c.id == ENDPOINTS.c.created_by_key_id)
        .where(
            DELIVERIES.c.status == "pending",
            DELIVERIES.c.next_attempt_at <= now,
            ENDPOINTS.c.enabled.is_(True),
            ENDPOINTS.c.deleted_at.is_(None),
            ~blocked,
        )
        # Oldest due first, along ix_webhook_deliveries_due: the scan stops at `batch` rows. By
        # event_seq, PostgreSQL walked the outbox from its first event (delivered ones included)
        # or sorted every due delivery: 15-19 ms a claim with 15,000 events delivered and 5,000
        # pending, against 0.35-0.4 ms (EXPLAIN ANALYZE). Each episode's events still go in
        # order: `blocked` holds back any delivery with an earlier one pending.
        .order_by(DELIVERIES.c.next_attempt_at)
        .limit(batch)
        # SQLite renders no lock clause: it runs one worker, and its writers are serialised.
        .with_for_update(skip_locked=True, of=DELIVERIES)
    )
    if org_ids is not None:
        stmt = stmt.where(DELIVERIES.c.org_id.in_(list(org_ids)))
    return stmt


@dataclass(frozen=True, slots=True)
class _Target:
    """An endpoint's stored URL and secret, opened: where to send, with what to sign, or why
    not (the URL refused, or the secret undecryptable)."""

    url: str
    signer: Webhook | None
    refusal: str | None


@functools.lru_cache(maxsize=1024)
def _target(policy: Policy, sealed_url: str, sealed_secret: str) -> _Target:
    """Opened once per stored (sealed) value, not per delivery: two Fernet decryptions (each an
    HMAC check and an AES decryption), the URL check and the signing key's base64 decoding were
    a measurable share of the worker's CPU per delivery. Keyed by the sealed text and the
    policy (whose keys open it, fixed for the life of the process), so a changed URL or secret,
    or one sealed anew by `attune rotate-secrets`, is opened afresh."""
    try:
        # URL and secret are stored encrypted (services/kernel/crypto.py).
        url, secret = policy.secrets.open(sealed_url), policy.secrets.open(sealed_secret)
    except UndecryptableSecret:
        return _Target("", None, UNDECRYPTABLE)
    # A name's addresses are vetted where the connection is opened (`targets.PinnedResolver`).
    refused = webhook_targets.url_refusal(
        url, allow_private=policy.allow_private, allowed_ports=policy.allowed_ports
    ) or webhook_targets.literal_refusal(
        urlsplit(url).hostname or "", allow_private=policy.allow_private
    )
    return _Target(url, None if refused is not None else Webhook(secret), refused)


async def _read_up_to(response: aiohttp.ClientResponse, limit: int) -> None:
    while limit > 0 and (chunk := await response.content.read(limit)):
        limit -= len(chunk)


async def send(client: aiohttp.ClientSession, delivery: Claimed, policy: Policy) -> Result:
    """One attempt: the Standard Webhooks headers, signed over ``id.timestamp.body``."""
    at = utcnow()
    if not delivery.allowed:
        return Result(delivery, at, None, WITHHELD, 0, withheld=True)
    started = time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    target = _target(policy, delivery.url, delivery.secret)
    url = target.url
    if target.signer is None:
        error = target.refusal
    else:
        body = orjson.dumps(delivery.payload)
        msg_id = str(delivery.event_id)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": target.signer.sign(msg_id, at, body.decode()),
        }
        try:
            # No redirects: a redirect could lead past the address check.
            async with client.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status_code = response.status
                await _read_up_to(response, RESPONSE_BODY_LIMIT)
        except webhook_targets.TargetRefused as exc:
            error = exc.reason
        except (aiohttp.ClientError, TimeoutError):
            # One coarse outcome for refused, reset, timed-out and TLS-failed connections alike:
            # told apart, they would tell which ports of a host are open, closed or filtered
            # (the deliveries log as a port scanner). Never the exception's text: it may repeat
            # the URL.
            error = NO_RESPONSE
    # Without an answer the time taken tells a refused port (at once) from a filtered one (the
    # timeout) as well as an error message would: kept only when the receiver answered.
    duration_ms = int((time.perf_counter() - started) * 1000) if status_code is not None else 0
    return Result(delivery, at, status_code, error, duration_ms)


# One statement for a round's deliveries and one for its attempts (executemany: asyncpg sends
# every row's parameters in one pipeline), instead of two statements per delivery. A value left
# None keeps the column as it is: a retry keeps its status (pending) and has no delivered_at; a
# finished delivery keeps its next_attempt_at.
_RECORD_DELIVERY = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("delivery_id"))
    .values(
        attempts=bindparam("attempts"),
        last_attempt_at=bindparam("at"),
        last_status_code=bindparam("status_code"),
        last_error=bindparam("error"),
        status=func.coalesce(bindparam("status", type_=DELIVERIES.c.status.type),
                             DELIVERIES.c.status),
        delivered_at=func.coalesce(bindparam("delivered_at", type_=DELIVERIES.c.delivered_at.type),
                                   DELIVERIES.c.delivered_at),
        next_attempt_at=func.coalesce(
            bindparam("next_attempt_at", type_=DELIVERIES.c.next_attempt_at.type),
            DELIVERIES.c.next_attempt_at,
        ),
    )
)  # fmt: skip
_RECORD_ATTEMPT = insert(ATTEMPTS)


async def _record(conn: AsyncConnection, results: list[Result], policy: Policy) -> None:
    if not results:
        return
    failures: dict[uuid.UUID, list[bool]] = {}
    gone: set[uuid.UUID] = set()
    deliveries: list[dict[str, object]] = []
    attempts_made: list[dict[str, object]] = []
    for result in results:
        d = result.delivery
        attempts = d.attempts + 1
        outcome = verdict(result.status_code)
        status: str | None = None
        delivered_at: datetime | None = None
        next_attempt_at: datetime | None = None
        if result.withheld:
            # Not the receiver's failure: given up at once, and no count towards disabling.
            status = "failed"
        elif outcome == "delivered":
            status, delivered_at = "delivered", result.at
        elif outcome == "gone" or attempts >= policy.max_attempts:
            status = "failed"
        else:
            wait = backoff_seconds(
                attempts,
                base=policy.retry_base_seconds,
                cap=policy.retry_max_seconds,
                unit_random=random.random(),  # noqa: S311  (jitter, not a secret)
            )
            next_attempt_at = result.at + timedelta(seconds=wait)
        deliveries.append(
            {
                "delivery_id": d.id,
                "attempts": attempts,
                "at": result.at,
                "status_code": result.status_code,
                "error": result.error,
                "status": status,
                "delivered_at": delivered_at,
                "next_attempt_at": next_attempt_at,
            }
        )
        attempts_made.append(
            {
                "id": new_id(),
                "org_id": d.org_id,
                "delivery_id": d.id,
                "attempted_at": result.at,
                "status_code": result.status_code,
                "error": result.error,
                "duration_ms": result.duration_ms,
            }
        )
        if result.withheld:
            continue
        failures.setdefault(d.endpoint_id, []).append(outcome != "delivered")
        if outcome == "gone":
            gone.add(d.endpoint_id)
    await conn.execute(_RECORD_DELIVERY, deliveries)
    await conn.execute(_RECORD_ATTEMPT, attempts_made)
    # Endpoints in id order: two workers updating the same endpoints cannot deadlock.
    for endpoint_id in sorted(failures):
        outcomes = failures[endpoint_id]
        last_success = max((i + 1 for i, failed in enumerate(outcomes) if not failed), default=0)
        counter = ENDPOINTS.c.consecutive_failures
        this_endpoint = ENDPOINTS.c.id == endpoint_id
        await conn.execute(
            update(ENDPOINTS)
            .where(this_endpoint)
            .values(
                consecutive_failures=len(outcomes) - last_success
                if last_success
                else counter + len(outcomes)
            )
        )
        if endpoint_id in gone:
            reason, still_enabled = "the receiver answered 410 Gone", true()
        elif last_success == len(outcomes):
            # The round ended on a success: the counter is 0 now, below any threshold (at
            # least 1), so the endpoint cannot be disabled; no statement to find that out.
            continue
        else:
            reason = f"disabled after {policy.disable_after_failures} failed attempts in a row"
            still_enabled = counter >= policy.disable_after_failures
        await conn.execute(
            update(ENDPOINTS)
            .where(this_endpoint, ENDPOINTS.c.enabled.is_(True), still_enabled)
            .values(enabled=False, disabled_reason=reason)
        )


def _outcome(result: Result) -> str:
    return "withheld" if result.withheld else verdict(result.status_code)


def _claimed(rows: Sequence[ClaimRow]) -> list[Claimed]:
    return [
        Claimed(
            r.id,
            r.org_id,
            r.endpoint_id,
            r.event_id,
            r.attempts,
            r.url,
            r.secret,
            r.payload,
            allowed=reads_concerns(r) or not is_about_a_concern(r.payload),
        )
        for r in rows
    ]


async def _send_all(
    client: aiohttp.ClientSession, claimed: list[Claimed], policy: Policy
) -> list[Result]:
    return list(await asyncio.gather(*(send(client, d, policy) for d in claimed)))


async def deliver_due(
    engine: AsyncEngine,
    client: aiohttp.ClientSession,
    policy: Policy,
    *,
    batch: int = 20,
    org_ids: Collection[uuid.UUID] | None = None,
    now: Callable[[], datetime] = utcnow,
) -> int:
    """One round: claim due deliveries, send them concurrently, record the outcomes; the number
    attempted. ``org_ids`` limits the worker to some organisations."""
    claim = _claim_statement(now(), batch, org_ids)

    async def send_claimed(rows: Sequence[ClaimRow]) -> list[Result] | None:
        claimed = _claimed(rows)
        return await _send_all(client, claimed, policy) if claimed else None

    async def record(conn: AsyncConnection, results: list[Result]) -> None:
        await _record(conn, results, policy)

    results = await delivery_store(engine).claim_send_record(claim, send_claimed, record)
    if results is None:
        return 0
    logged = log.isEnabledFor(logging.INFO)  # at the usual WARNING, no record to build
    for result in results:
        metrics.WEBHOOK_ATTEMPTS.labels(_outcome(result)).inc()
        if not logged:
            continue
        log.info(
            "webhook attempt",
            extra={
                "fields": {
                    "delivery_id": str(result.delivery.id),
                    "endpoint_id": str(result.delivery.endpoint_id),
                    "status_code": result.status_code,
                    "error": result.error,
                    "duration_ms": result.duration_ms,
                }
            },
        )
    return len(results)


def http_client(
    policy: Policy, *, resolve: webhook_targets.Resolver = webhook_targets.system_resolver
) -> aiohttp.ClientSession:
    """The worker's HTTP client: aiohttp, whose sockets go only to vetted addresses
    (`targets.PinnedResolver`). Under load httpx (over httpcore and anyio) spent about ten times
    its CPU per delivery (bench/README.md). Every new connection resolves its host again (no
    DNS cache) and is vetted again; idle connections are kept 5 s, as httpx's defaults did."""
    resolver = webhook_targets.PinnedResolver(allow_private=policy.allow_private, resolve=resolve)
    connector = aiohttp.TCPConnector(
        resolver=resolver,
        use_dns_cache=False,
        limit=100,
        keepalive_timeout=5.0,
        ssl=ssl.create_default_context(cafile=certifi.where()),
    )
    # No proxy from the environment (a proxy would resolve the name again, elsewhere); the whole
    # attempt, connection included, within the timeout; no cookies kept between receivers.
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=policy.timeout_seconds),
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )


async def run(
    engine: AsyncEngine,
    settings: Settings,
    stop: asyncio.Event,
    *,
    org_ids: Collection[uuid.UUID] | None = None,
) -> None:
    """Deliver until ``stop`` is set: at once while there is work, else every poll interval.
    A database outage is logged and waited out, never fatal."""
    policy = Policy.from_settings(settings)
    async with http_client(policy) as client:
        while not stop.is_set():
            try:
                done = await deliver_due(
                    engine, client, policy, batch=settings.worker_batch_size, org_ids=org_ids
                )
            except (TimeoutError, OSError) as exc:
                log.warning("webhook worker waiting for the database: %s", type(exc).__name__)
                done = 0
            except Exception as exc:
                # SQLAlchemy wraps driver errors; a worker that stopped on one would stop
                # delivering for good.
                log.error("webhook round failed: %s", type(exc).__name__)
                done = 0
            if done == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), settings.worker_poll_seconds)
