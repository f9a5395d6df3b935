"""Database outage drill: the service against a private PostgreSQL cluster that is stopped
(`pg_ctl stop -m immediate`, then `-m fast`) and paused (SIGSTOP: a database that hangs) under
load, then brought back. See `scripts/outage --help`.

Pass criteria, for every scenario:
- while the database is down, every request gets 503 problem+json with Retry-After (never a
  500), within the configured timeouts, and /readyz answers 503;
- once the database is back, submissions succeed again, without restarting the service (same
  process id throughout).
"""

import argparse
import asyncio
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scripts.harness import Cluster, Service, log, private_cluster, seed, srs_answers

DB_TIMEOUT = 2.0  # ATTUNE_DB_TIMEOUT_SECONDS: connect and pool waits
COMMAND_TIMEOUT = 3.0  # ATTUNE_DB_COMMAND_TIMEOUT_SECONDS
REQUEST_TIMEOUT = 4.0  # ATTUNE_REQUEST_TIMEOUT_SECONDS
SLACK = 1.0  # scheduling on a busy machine


@dataclass
class Call:
    started: float  # monotonic
    seconds: float
    status: int  # 0: no HTTP answer
    route: str
    problem: bool = False
    retry_after: bool = False


@dataclass
class Load:
    """Writers posting submissions, readers reading an episode, a prober polling /readyz."""

    client: httpx.AsyncClient
    key: str
    episodes: list[str]
    calls: list[Call] = field(default_factory=list)
    running: bool = True
    # Session numbers go on across scenarios: each submission names a new session.
    sessions: dict[str, int] = field(default_factory=dict)

    async def _call(self, route: str, method: str, path: str, **kwargs: Any) -> None:
        started = time.monotonic()
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError:
            self.calls.append(Call(started, time.monotonic() - started, 0, route))
            return
        self.calls.append(
            Call(
                started,
                time.monotonic() - started,
                response.status_code,
                route,
                problem=response.headers.get("content-type") == "application/problem+json",
                retry_after=int(response.headers.get("retry-after", "0")) > 0,
            )
        )

    async def writer(self, episode: str, rng: random.Random) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        while self.running:
            session = self.sessions[episode] = self.sessions.get(episode, 0) + 1
            body = {
                "episode_id": episode,
                "instrument": "srs",
                "session_number": session,
                "answers": srs_answers(rng),
            }
            await self._call(
                "POST /v1/submissions", "POST", "/v1/submissions", json=body,
                headers={**headers, "Idempotency-Key": f"outage-{episode}-{session}"},
            )  # fmt: skip
            await asyncio.sleep(0.02)

    async def reader(self, episode: str) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        while self.running:
            await self._call("GET /v1/episodes/{id}", "GET", f"/v1/episodes/{episode}",
                             headers=headers)  # fmt: skip
            await asyncio.sleep(0.05)

    async def prober(self) -> None:
        while self.running:
            await self._call("GET /readyz", "GET", "/readyz")
            await asyncio.sleep(0.1)


@dataclass
class Outcome:
    name: str
    failures: list[str]
    lines: list[str]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _judge(
    name: str, calls: list[Call], down_at: float, up_at: float, back_at: float, limit: float
) -> Outcome:
    """`down_at`: the database went away; `up_at`: it accepts connections again; `back_at`: when
    the drill restarted it (for the time to recover)."""
    failures: list[str] = []
    # Requests that started while the database was down (a grace of 0.5 s after the stop for
    # those already past their last statement).
    during = [c for c in calls if down_at + 0.5 <= c.started < up_at - limit - SLACK]
    after = [c for c in calls if c.started >= up_at]
    statuses = Counter(f"{c.status}" for c in during)
    failed = [c for c in during if c.status not in (200, 201)]
    if not during:
        failures.append("no request ran while the database was down")
    # Every request in flight at some point of the outage, including those caught by it.
    overlapping = [c for c in calls if c.started < up_at and c.started + c.seconds > down_at]
    for call in overlapping:
        if call.status not in (200, 201, 503):
            failures.append(f"{call.route} answered {call.status} during the outage")
        if call.seconds > limit + SLACK:
            failures.append(f"{call.route} took {call.seconds:.2f} s (limit {limit:.1f} s)")
    slowest = max((c.seconds for c in overlapping), default=0.0)
    for call in during:
        if call.status != 503:
            failures.append(f"{call.route} answered {call.status} while the database was down")
        elif not (call.problem and call.retry_after):
            failures.append(f"{call.route}: 503 without problem+json and Retry-After")
    readyz = Counter(c.status for c in during if c.route == "GET /readyz")
    if set(readyz) - {503} or not readyz:
        failures.append(f"/readyz while down: {dict(readyz)}")
    first_ok = min(
        (c.started + c.seconds for c in after if c.route == "POST /v1/submissions"
         and c.status == 201),
        default=None,
    )  # fmt: skip
    if first_ok is None:
        failures.append("no submission succeeded after the database came back")
    recovered = [c for c in after if first_ok is not None and c.started > first_ok]
    errors_after = Counter(c.status for c in recovered if c.status not in (200, 201))
    if errors_after:
        failures.append(f"errors after recovery: {dict(errors_after)}")
    latencies = [c.seconds * 1000 for c in failed]
    five_hundreds = sum(1 for c in calls if c.status >= 500 and c.status != 503)
    lines = [
        f"requests while down: {len(during)}; status codes: {dict(sorted(statuses.items()))}",
        "  latency of failed requests (ms): "
        + (
            f"p50 {statistics.median(latencies):.0f}, p95 {_percentile(latencies, 0.95):.0f}, "
            f"max {max(latencies):.0f}"
            if latencies
            else "-"
        ),
        f"  slowest request in flight during the outage: {slowest * 1000:.0f} ms "
        f"({len(overlapping)} requests)",
        f"  /readyz while down: {dict(readyz)}; 5xx other than 503 in the whole run: "
        f"{five_hundreds}",
        "  time to recover: "
        + (
            f"{first_ok - back_at:.2f} s from the restart command to the first 201 "
            f"({first_ok - up_at:.2f} s after the database accepted connections)"
            if first_ok is not None
            else "never"
        ),
        f"  requests after the first success: {len(recovered)}, errors among them: "
        f"{sum(errors_after.values())}",
    ]
    return Outcome(name, failures, lines)


async def _drill(
    name: str,
    cluster: Cluster,
    service: Service,
    key: str,
    episodes: list[str],
    sessions: dict[str, int],
    args: Any,
) -> Outcome:
    log(f"scenario {name}")
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=service.url, timeout=30, limits=limits) as client:
        load = Load(client, key, episodes, sessions=sessions)
        rng = random.Random(name)
        tasks = [asyncio.create_task(load.writer(e, rng)) for e in episodes[: args.writers]]
        tasks += [asyncio.create_task(load.reader(e)) for e in episodes[: args.readers]]
        tasks.append(asyncio.create_task(load.prober()))
        await asyncio.sleep(args.warmup)
        down_at = time.monotonic()
        if name == "pause":
            log("  SIGSTOP to every process of the cluster")
            cluster.signal_all(signal.SIGSTOP)
            limit = max(DB_TIMEOUT, REQUEST_TIMEOUT)
        else:
            log(f"  pg_ctl stop -m {name}")
            await asyncio.to_thread(cluster.stop, name)
            limit = DB_TIMEOUT
        # Long enough for requests to start, and time out, while the database does not answer.
        await asyncio.sleep(max(args.down, 2.5 * (limit + SLACK)))
        back_at = time.monotonic()
        if name == "pause":
            log("  SIGCONT")
            cluster.signal_all(signal.SIGCONT)
        else:
            log("  pg_ctl start")
            await asyncio.to_thread(cluster.start)
        up_at = time.monotonic()
        await asyncio.sleep(args.after)
        load.running = False
        await asyncio.gather(*tasks)
    outcome = _judge(name, load.calls, down_at, up_at, back_at, limit)
    if name == "pause":  # "up" is the SIGCONT itself
        outcome.lines.insert(0, f"database paused for {back_at - down_at:.1f} s")
    else:
        outcome.lines.insert(0, f"database down for {up_at - down_at:.1f} s")
    return outcome


async def main(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="attune-outage-"))
    with private_cluster() as cluster:
        service = Service(
            cluster.url,
            workdir / "service.log",
            settings={
                "ATTUNE_DB_TIMEOUT_SECONDS": str(DB_TIMEOUT),
                "ATTUNE_DB_COMMAND_TIMEOUT_SECONDS": str(COMMAND_TIMEOUT),
                "ATTUNE_REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT),
                "ATTUNE_DB_POOL_SIZE": "8",
            },
        )
        service.migrate()
        service.start()
        try:
            await service.wait_ready()
            assert service.process is not None
            pid = service.process.pid
            key, episodes = await seed(service, max(args.writers, args.readers))
            log(f"service pid {pid} on {service.url}; {len(episodes)} episodes")
            sessions: dict[str, int] = {}
            outcomes = [
                await _drill(name, cluster, service, key, episodes, sessions, args)
                for name in args.scenarios
            ]
            alive = service.process.poll() is None and service.process.pid == pid
        finally:
            service.stop()
    print("\n== outage report")
    print(
        f"settings: db timeout {DB_TIMEOUT} s, command timeout {COMMAND_TIMEOUT} s, "
        f"request timeout {REQUEST_TIMEOUT} s; {args.writers} writers, {args.readers} readers, "
        "/readyz every 0.1 s"
    )
    failed = False
    for outcome in outcomes:
        verdict = "PASS" if not outcome.failures else "FAIL"
        print(f"\n{outcome.name}: {verdict}")
        for line in outcome.lines:
            print(f"  {line}")
        for failure in sorted(set(outcome.failures))[:20]:
            print(f"  ! {failure}")
        failed = failed or bool(outcome.failures)
    print(f"\nservice process {pid} served throughout: {'yes' if alive else 'NO'}")
    print(f"service log: {service.log_path}")
    return 1 if failed or not alive else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios", nargs="+", default=["immediate", "fast", "pause"],
        choices=["immediate", "fast", "pause"],
        help="pg_ctl stop modes to drill, and 'pause' (SIGSTOP)",
    )  # fmt: skip
    parser.add_argument("--writers", type=int, default=4, help="concurrent submission writers")
    parser.add_argument("--readers", type=int, default=2, help="concurrent episode readers")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of load before the stop")
    parser.add_argument("--down", type=float, default=8, help="seconds the database stays down")
    parser.add_argument("--after", type=float, default=4, help="seconds of load after restart")
    sys.exit(asyncio.run(main(parser.parse_args())))
