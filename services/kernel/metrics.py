"""Prometheus metrics of what the service does (DESIGN.md §10.7), named by Prometheus' convention
(`attune_…_total` for counters, base units such as `_seconds`).

Cheap on the hot path: plain counters, labelled only by bounded sets (alert rule and severity,
attempt outcome, retention kind), never by organisation, episode or any id. Gauges that need a
query (webhook queue depth and lag) are refreshed by the worker when it is scraped; the
connection-pool gauges are read from the pools at scrape time.

Each process (an API replica, a worker) serves its own registry: the API at `/metrics`, the
worker on its own port (api/worker_server.py).
"""

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

SUBMISSIONS = Counter("attune_submissions_total", "Submissions stored (scored, valid)")
ALERTS_RAISED = Counter(
    "attune_alerts_raised_total", "Alerts opened, by rule and severity", ["rule", "severity"]
)
# delivered, retry (any other answer, or none), gone (410), withheld (the endpoint's key may no
# longer read the event).
WEBHOOK_ATTEMPTS = Counter(
    "attune_webhook_attempts_total", "Webhook delivery attempts, by outcome", ["outcome"]
)
for _outcome in ("delivered", "retry", "gone", "withheld"):
    WEBHOOK_ATTEMPTS.labels(_outcome)  # exported from the start, at 0
WEBHOOK_QUEUE_DEPTH = Gauge(
    "attune_webhook_queue_depth", "Webhook deliveries pending (due now or waiting for a retry)"
)
WEBHOOK_DELIVERY_LAG = Gauge(
    "attune_webhook_delivery_lag_seconds",
    "How long the most overdue pending delivery has been due (0 when none is due)",
)
RETENTION_PURGED = Counter(
    "attune_retention_purged_rows_total", "Rows removed by the retention jobs, by kind", ["kind"]
)
DB_POOL_WAITING = Gauge(
    "attune_db_pool_waiting",
    "Requests waiting for a database connection from a pool of this process",
)


def count_alerts(writes: Iterable[tuple[str, Mapping[str, object]]]) -> None:
    """Count the alerts among `writes` that were opened (change `created`)."""
    for change, row in writes:
        if change == "created":
            ALERTS_RAISED.labels(row["type"], row["severity"]).inc()


def record_queue(depth: int, oldest_due_at: float | None) -> None:
    """The webhook queue as the worker just read it; `oldest_due_at` as a POSIX time."""
    WEBHOOK_QUEUE_DEPTH.set(depth)
    lag = 0.0 if oldest_due_at is None else max(0.0, time.time() - oldest_due_at)
    WEBHOOK_DELIVERY_LAG.set(lag)


class _SqlAlchemyPool(Protocol):
    def checkedout(self) -> int: ...


class _DriverPool(Protocol):
    def get_size(self) -> int: ...

    def get_idle_size(self) -> int: ...


class _PoolCollector(Collector):
    """Connections in use, read from the pools registered by this process at scrape time."""

    def __init__(self) -> None:
        self.pools: dict[int, tuple[str, object]] = {}

    def collect(self) -> Iterator[Metric]:
        in_use = GaugeMetricFamily(
            "attune_db_pool_connections_in_use",
            "Database connections checked out of this process's pools",
            labels=["pool"],
        )
        totals: dict[str, int] = {}
        for kind, pool in list(self.pools.values()):
            totals[kind] = totals.get(kind, 0) + _in_use(pool)
        for kind in sorted(totals):
            in_use.add_metric([kind], totals[kind])
        yield in_use


def _in_use(pool: object) -> int:
    engine = getattr(pool, "sync_engine", None)
    if engine is not None:  # an engine: its pool now (disposing of an engine replaces its pool)
        pool = engine.pool
    if hasattr(pool, "get_idle_size"):  # asyncpg
        driver_pool: _DriverPool = pool  # type: ignore[assignment]
        return driver_pool.get_size() - driver_pool.get_idle_size()
    if hasattr(pool, "checkedout"):  # SQLAlchemy's queue pools
        queue_pool: _SqlAlchemyPool = pool
        return queue_pool.checkedout()
    return 0  # pools that keep no count (NullPool)


_POOLS = _PoolCollector()
REGISTRY.register(_POOLS)


def watch_pool(kind: str, pool: object) -> None:
    """Report the connections in use of `pool` (an asyncpg pool, or a SQLAlchemy engine's) until
    `unwatch_pool`."""
    _POOLS.pools[id(pool)] = (kind, pool)


def unwatch_pool(pool: object) -> None:
    _POOLS.pools.pop(id(pool), None)
