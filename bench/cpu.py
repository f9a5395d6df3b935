"""CPU time of one app process and of the PostgreSQL backends serving one database (bench/run).

`cpu.py snap PID DB OUT [WORKER_PID]` writes the CPU ticks (user + system, from /proc) of
process PID, of every backend connected to database DB and of the webhook worker (and how many
delivery attempts the worker has recorded); `cpu.py add RESULT BEFORE AFTER` adds to RESULT (a
round's wrk JSON) the CPU milliseconds per successful request of each between the two
snapshots, and the worker's per delivery attempt.

Why: req/s and latency move with whatever else the machine runs; CPU per request of each side is
what the code costs, and it says where a gap to the floor comes from (Python or the database).
Backends are found by database name, so other databases on the same server are not counted.
"""

import json
import os
import subprocess
import sys

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def psql(database: str, query: str) -> str:
    result = subprocess.run(
        [
            "psql",
            "-h",
            os.environ.get("PGHOST", "127.0.0.1"),
            "-p",
            os.environ.get("PGPORT", "5432"),
            "-U",
            os.environ.get("PGUSER", "postgres"),
            "-d",
            database,
            "-qtA",
            "-c",
            query,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def backend_pids(database: str) -> list[int]:
    query = f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'"
    return [int(line) for line in psql("postgres", query).split()]


def attempts(database: str) -> int:
    """Delivery attempts the worker has recorded so far."""
    return int(psql(database, "SELECT count(*) FROM webhook_attempts"))


def snap(pid: int, database: str, out: str, worker: int | None) -> None:
    backends = {str(p): ticks(p) for p in backend_pids(database)}
    record = {"app": ticks(pid), "pg": {p: t for p, t in backends.items() if t is not None}}
    if worker is not None:
        record["worker"] = ticks(worker)
        record["attempts"] = attempts(database)
    with open(out, "w") as file:
        json.dump(record, file)


def add(result_path: str, before_path: str, after_path: str) -> None:
    with open(before_path) as file:
        before = json.load(file)
    with open(after_path) as file:
        after = json.load(file)
    with open(result_path) as file:
        result = json.load(file)
    app_ticks = after["app"] - before["app"]
    # A backend that appeared during the round counts in full; one that left is lost (the pools
    # are fixed-size, so neither happens in a steady round).
    pg_ticks = sum(t - before["pg"].get(p, 0) for p, t in after["pg"].items())
    ok = max(result["ok"], 1)
    result["cpu_ms_per_request"] = {
        "app": 1000 * app_ticks / TICKS_PER_SECOND / ok,
        "postgres": 1000 * pg_ticks / TICKS_PER_SECOND / ok,
    }
    if after.get("worker") is not None and before.get("worker") is not None:
        # The webhook worker's CPU in the round (its deliveries may lag the requests).
        worker_ms = 1000 * (after["worker"] - before["worker"]) / TICKS_PER_SECOND / ok
        result["cpu_ms_per_request"]["worker"] = worker_ms
        # Per delivery attempt made in the round: what a delivery costs the worker, whether or
        # not it kept up with the requests (a backlog moves the figure per request).
        made = after.get("attempts", 0) - before.get("attempts", 0)
        result["deliveries_attempted"] = made
        if made > 0:
            result["worker_cpu_ms_per_attempt"] = worker_ms * ok / made
    with open(result_path, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    if sys.argv[1] == "snap":
        snap(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]) if sys.argv[5:] else None)
    elif sys.argv[1] == "add":
        add(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
