"""`attune` command line: migrate, seed a demo organization, mint keys, serve.

Usage:
    attune migrate              apply Alembic migrations to ATTUNE_DATABASE_URL; safe to run
                                from every replica at once (a PostgreSQL advisory lock, a lock
                                file beside a SQLite database); prints how many it applied
    attune seed-demo            on an empty database: create the demo org, print an admin key
    attune admin-key SLUG       print a new admin key for an existing organization
    attune recompute-alerts SLUG
                                re-derive every alert of an organization from its history
    attune rotate-secrets       encrypt every stored secret under the current ATTUNE_SECRET_KEY
                                (after a rotation; ATTUNE_SECRET_KEYS_OLD lists the previous)
    attune serve                serve the API (honours ATTUNE_HOST, ATTUNE_PORT)
    attune worker [--org-id ID] deliver webhooks, sweep every ATTUNE_SWEEP_SECONDS, run queued
                                expected-response fits, purge old rows every
                                ATTUNE_RETENTION_INTERVAL_SECONDS and serve /healthz and /metrics
                                on ATTUNE_WORKER_PORT, until stopped (SIGTERM or Ctrl-C)
    attune sweep [--now ISO-8601] [--org-id ID]
                                run the time-based alert checks once, as of now or the time given
    attune run                  migrate, seed-demo, start a worker (unless ATTUNE_WORKER=false),
                                serve: what `make run` does
"""

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import col

from models.tenancy import ApiKeyCreate, Organization, OrganizationCreate
from services.care.organizations import create_api_key, create_organization
from services.kernel.auth import Actor, Principal
from services.kernel.config import Settings, get_settings
from services.kernel.database import create_engine, create_sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_SLUG = "demo"
log = logging.getLogger("attune.cli")


# The key of the PostgreSQL advisory lock `attune migrate` holds (any constant, the same in every
# version): replicas starting together queue on it instead of racing to create the same tables.
MIGRATION_LOCK_KEY = 0x617474756E65  # "attune"
LOCK = {"key": MIGRATION_LOCK_KEY}


def _alembic_config(settings: Settings) -> "Config":
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = settings.database_url
    # The migration that encrypts stored secrets needs the server secret.
    config.attributes["settings"] = settings
    return config


def _pending(config: "Config", current: str | None) -> int:
    """How many migrations lead from `current` (None: an empty database) to head."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)
    return sum(1 for _ in script.iterate_revisions("heads", current or "base"))


async def _current_revision(conn: AsyncConnection) -> str | None:
    from alembic.migration import MigrationContext

    def read(sync_conn: Connection) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    revision = await conn.run_sync(read)
    await conn.commit()  # no transaction stays open (and no lock on alembic_version) meanwhile
    return revision


async def _upgrade_under_lock(settings: Settings, config: "Config") -> int:
    """Upgrade while holding the advisory lock on a connection of its own (PostgreSQL): a second
    `attune migrate` waits, then finds the database at head. The upgrade runs in a thread, since
    Alembic's environment starts an event loop of its own."""
    from alembic import command

    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            if not await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), LOCK):
                log.info("waiting for another `attune migrate` to finish")
                await conn.execute(text("SELECT pg_advisory_lock(:key)"), LOCK)
            await conn.commit()
            try:
                pending = _pending(config, await _current_revision(conn))
                await asyncio.to_thread(command.upgrade, config, "head")
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), LOCK)
                await conn.commit()
            return pending
    finally:
        await engine.dispose()


@contextmanager
def _file_lock(settings: Settings) -> Iterator[None]:
    """SQLite: an exclusive lock on a file beside the database (the database's own locks are
    held only while a statement waits within the busy timeout)."""
    path = settings.sqlite_path()
    if path is None:  # in memory: one process only
        yield
        return
    import fcntl

    settings.prepare_sqlite_file()
    with open(path.with_name(path.name + ".migrate-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def _sqlite_revision(settings: Settings) -> str | None:
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await _current_revision(conn)
    finally:
        await engine.dispose()


def migrate(settings: Settings) -> int:
    """Apply the migrations up to head; how many were applied. Safe to run from every replica at
    start: concurrent runs queue, one applies, the rest find nothing to do."""
    from alembic import command

    config = _alembic_config(settings)
    if not settings.is_sqlite:
        return asyncio.run(_upgrade_under_lock(settings, config))
    with _file_lock(settings):
        pending = _pending(config, asyncio.run(_sqlite_revision(settings)))
        command.upgrade(config, "head")
        return pending


# Changes made from the command line are audited as made by no key, from the local console.
_CONSOLE = Actor(
    principal=Principal(key_id=None, org_id=None, scopes=frozenset({"system"}), clinician_id=None),
    client_address="console",
)


async def _mint_admin_key(settings: Settings, slug: str, *, create_demo: bool) -> str | None:
    """A new admin key for the organization `slug`; with `create_demo`, first create that
    organization, but only on a database that has none yet (the `make run` demo)."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            if create_demo:
                if await session.scalar(select(func.count()).select_from(Organization)):
                    return None
                org: Organization | None = await create_organization(
                    session,
                    actor=_CONSOLE,
                    data=OrganizationCreate(name="Demo clinic", slug=slug),
                    secrets=settings.secret_box(),
                )
            else:
                org = await session.scalar(
                    select(Organization).where(col(Organization.slug) == slug)
                )
            if org is None:
                return None
            created = await create_api_key(
                session,
                actor=_CONSOLE,
                org_id=org.id,
                data=ApiKeyCreate(name="admin (from the command line)", scopes=["admin"]),
                secret=settings.secret_key.get_secret_value(),
            )
            await session.commit()
            return created.key
    finally:
        await engine.dispose()


async def _recompute_alerts(settings: Settings, slug: str) -> dict[str, int] | None:
    """Every episode of the organization, one transaction each: a long recompute never holds more
    than one episode's lock, and what is done stays done if it is interrupted."""
    from models.audit import AuditEvent
    from services.alerts import engine as alert_engine
    from services.kernel import audit

    engine = create_engine(settings)
    counts = {"episodes": 0, "created": 0, "updated": 0, "resolved": 0}
    try:
        async with engine.connect() as conn:
            org_id = await conn.scalar(
                select(col(Organization.id)).where(col(Organization.slug) == slug)
            )
            episodes = await alert_engine.episodes_with_submissions(conn, org_id)
        if org_id is None:
            return None
        for episode_id in episodes:
            async with engine.begin() as conn:
                writes = await alert_engine.recompute_episode(conn, org_id, episode_id)
                counts["episodes"] += 1
                for change, _ in writes:
                    counts[change] += 1
        async with engine.begin() as conn:
            actor = Actor(
                principal=Principal(None, org_id, frozenset({"admin"}), None),
                client_address="console",
            )
            await conn.execute(
                AuditEvent.__table__.insert(),  # type: ignore[attr-defined]
                audit.event_values(actor, action="alert.recompute", resource_type="organization",
                                   resource_id=org_id),
            )  # fmt: skip
        return counts
    finally:
        await engine.dispose()


async def _purge_idempotency(settings: Settings) -> int:
    """Idempotency records past their 24 h retention, with the responses they keep (DESIGN.md
    §10.7 retention); the worker may call `services.kernel.idempotency.purge_expired` too."""
    from services.kernel import idempotency
    from services.kernel.database import UnitOfWork

    engine = create_engine(settings)
    uow = UnitOfWork(engine)
    try:
        purged = await idempotency.purge_expired(uow)
        await uow.commit()
        return purged
    finally:
        await uow.close()
        await engine.dispose()


async def _rotate_secrets(settings: Settings) -> dict[str, int]:
    """Seal every stored secret under the current key (services/kernel/crypto.py), in one
    transaction; how many of each kind changed. A second run changes nothing."""
    from services.kernel.crypto import reseal_stored_secrets

    box = settings.secret_box()
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(reseal_stored_secrets, box)
    finally:
        await engine.dispose()


def seed_demo(settings: Settings) -> None:
    key = asyncio.run(_mint_admin_key(settings, DEMO_SLUG, create_demo=True))
    if key is None:
        print(
            "Database already has organizations; no demo key printed (keys are shown once).\n"
            f"Mint a new one with: .venv/bin/attune admin-key {DEMO_SLUG}",
            file=sys.stderr,
        )
        return
    print(
        f"\nDemo organization '{DEMO_SLUG}' created. Its admin API key (shown once):\n\n    {key}\n"
    )
    print(f"Try:  export ATTUNE_KEY={key}\n", flush=True)


def serve(settings: Settings) -> None:
    import uvicorn

    from api import logs

    logs.configure(settings.log_level)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        access_log=False,  # our own access log omits paths that can carry identifiers
        log_config=None,
        # X-Forwarded-* are honoured by the app itself, from ATTUNE_TRUSTED_PROXIES only.
        proxy_headers=False,
        # Slow and abusive clients: idle keep-alive connections are closed after 5 s; request
        # heads (line and headers) over 16 KiB are refused; past `limit_concurrency` open
        # connections and requests, new ones get a 503. A slow body is cut by the request
        # timeout (api.limits.RequestTimeout). uvicorn puts no time limit on a request head
        # that trickles in: production runs behind a proxy that buffers requests (nginx, a
        # cloud load balancer).
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,
        limit_concurrency=settings.limit_concurrency,
    )


async def sweep_once(
    settings: Settings, now: datetime | None, org_ids: list[uuid.UUID] | None
) -> dict[str, int]:
    from services.alerts import sweep as alert_sweep

    engine = create_engine(settings)
    try:
        result = await alert_sweep.sweep(engine, now=now, org_ids=org_ids)
        return result.as_dict()
    finally:
        await engine.dispose()


def _instant(text: str) -> datetime:
    """An ISO-8601 time; one without an offset is taken as UTC."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def _work(settings: Settings, org_ids: list[uuid.UUID] | None) -> None:
    """Deliver webhooks, sweep, purge what retention allows, and serve `/healthz` and `/metrics`
    on the worker's port (unless it is 0), until SIGTERM or SIGINT."""
    from api import worker_server
    from services.alerts import sweep as alert_sweep
    from services.kernel import metrics
    from services.retention import jobs as retention
    from services.trajectory import fit_worker
    from services.webhooks import delivery as webhook_delivery

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    engine = create_engine(settings)
    metrics.watch_pool("sqlalchemy", engine)
    loops = [
        webhook_delivery.run(engine, settings, stop, org_ids=org_ids),
        alert_sweep.run(engine, settings, stop, org_ids=org_ids),
        retention.run(engine, settings, stop),
        fit_worker.run(engine, settings, stop, org_ids=org_ids),
    ]
    if settings.worker_port:
        app = worker_server.create_app(engine, org_ids)
        loops.append(worker_server.serve(app, settings.host, settings.worker_port, stop))
    try:
        await asyncio.gather(*loops)
    finally:
        metrics.unwatch_pool(engine)
        await engine.dispose()


def work(settings: Settings, org_ids: list[uuid.UUID] | None = None) -> None:
    from api import logs

    logs.configure(settings.log_level)
    asyncio.run(_work(settings, org_ids))


def serve_with_worker(settings: Settings) -> None:
    """The API, and a webhook worker beside it in its own process (as in production, where
    workers scale apart from API replicas), stopped with it."""
    if not settings.worker:
        serve(settings)
        return
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "worker"])
    try:
        serve(settings)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


def _parser() -> tuple[argparse.ArgumentParser, "argparse._SubParsersAction[Any]"]:
    parser = argparse.ArgumentParser(
        prog="attune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate")
    sub.add_parser("seed-demo")
    key_parser = sub.add_parser("admin-key")
    key_parser.add_argument("slug")
    recompute_parser = sub.add_parser("recompute-alerts")
    recompute_parser.add_argument("slug")
    sub.add_parser("purge-idempotency")
    sub.add_parser("rotate-secrets")
    sub.add_parser("serve")
    worker_parser = sub.add_parser("worker")
    # A worker for some organisations only (repeatable): tenants with their own workers.
    worker_parser.add_argument("--org-id", action="append", type=uuid.UUID, dest="org_ids")
    sweep_parser = sub.add_parser("sweep")
    sweep_parser.add_argument("--now", type=_instant, default=None)
    sweep_parser.add_argument("--org-id", action="append", type=uuid.UUID, dest="org_ids")
    sub.add_parser("run")
    return parser, sub


def subcommands() -> frozenset[str]:
    """The commands `attune` takes (the Dockerfile's and compose.yaml's roles are among them)."""
    return frozenset(_parser()[1].choices)


def main(argv: list[str] | None = None) -> None:
    args = _parser()[0].parse_args(argv)
    settings = get_settings()
    if args.command == "migrate":
        print(f"migrations applied: {migrate(settings)}", flush=True)
    elif args.command == "seed-demo":
        seed_demo(settings)
    elif args.command == "admin-key":
        key = asyncio.run(_mint_admin_key(settings, args.slug, create_demo=False))
        if key is None:
            sys.exit(f"no organization with slug '{args.slug}'")
        print(key)
    elif args.command == "recompute-alerts":
        counts = asyncio.run(_recompute_alerts(settings, args.slug))
        if counts is None:
            sys.exit(f"no organization with slug '{args.slug}'")
        print(", ".join(f"{name}: {n}" for name, n in counts.items()))
    elif args.command == "sweep":
        counts = asyncio.run(sweep_once(settings, args.now, args.org_ids))
        print(", ".join(f"{name}: {n}" for name, n in counts.items()))
    elif args.command == "purge-idempotency":
        print(f"idempotency records purged: {asyncio.run(_purge_idempotency(settings))}")
    elif args.command == "rotate-secrets":
        counts = asyncio.run(_rotate_secrets(settings))
        print(", ".join(f"{name} re-encrypted: {n}" for name, n in counts.items()))
    elif args.command == "serve":
        serve(settings)
    elif args.command == "worker":
        work(settings, args.org_ids)
    elif args.command == "run":
        migrate(settings)
        seed_demo(settings)
        serve_with_worker(settings)


if __name__ == "__main__":
    main()
