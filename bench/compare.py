"""Is this checkout's submission path slower than another's? Both served at once, measured in turns.

    git worktree add ../attune-base ee23692 && make -C ../attune-base .venv/bin/attune
    .venv/bin/python bench/compare.py ../attune-base            # 20 pairs of 5 s slices
    .venv/bin/python bench/compare.py ../attune-base --pairs 30 --slice 5

Why not two `make bench` runs one after the other: on the shared 2-core box the machine's own
speed changes from one half-minute to the next. A fixed piece of Python work (bench/README.md,
"Why runs differ") took 18-20 ms of CPU in some seconds and 27-31 ms in others, on an idle box
as under load, and the service's req/s followed it (642 to 924 req/s between two 10 s rounds of
the same process). Two runs minutes apart compare two machines. Here both services run side by
side, each with its own fresh database set up alike (bench/setup.py), each warmed up and
analysed; then wrk loads them in short slices, alternating A B B A A B ..., so that both see the
same machine, and each pair of adjacent slices gives one ratio. The report: each slice (req/s,
p99, CPU ms per request of the app and of its PostgreSQL backends: bench/cpu.py), both sides'
totals, and the ratio of this checkout to the other — over all slices, and as the mean of the
pairs with its standard error.

Both sides run this checkout's harness (setup.py, submit.lua, cpu.py) against their own
`attune`, with the body and settings of `WEBHOOKS=0 bench/run`: deliveries pile up, no worker
(a worker's backlog would spill from one side's slice into the other's).
"""

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "bench"))

# The same port picking as the instruction counts.
from instructions import free_port  # noqa: E402

PGHOST = os.environ.get("PGHOST", "127.0.0.1")
PGPORT = os.environ.get("PGPORT", "5432")
PGUSER = os.environ.get("PGUSER", "postgres")
PG = ["-h", PGHOST, "-p", PGPORT, "-U", PGUSER]
PY = str(HERE / ".venv/bin/python")


def psql(database: str, sql: str) -> str:
    return subprocess.run(["psql", *PG, "-d", database, "-qtAc", sql], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(150):
        if process.poll() is not None:
            raise SystemExit(f"the service exited during start-up ({url})")
        if subprocess.run(["curl", "-sf", "-o", "/dev/null", url]).returncode == 0:
            return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within 30 s")


@dataclass
class Side:
    name: str
    root: Path
    work: Path
    database: str = ""
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    key: str = ""
    next_session: int = 1
    slices: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> None:
        self.database = f"attune_compare_{self.name.lower()}_{os.getpid()}"
        psql("postgres", f"CREATE DATABASE {self.database}")
        env = {**os.environ, "ATTUNE_ENVIRONMENT": "development", "ATTUNE_LOG_LEVEL": "WARNING",
               "ATTUNE_DATABASE_URL": f"postgresql+asyncpg://{PGUSER}@{PGHOST}:{PGPORT}/{self.database}",
               "ATTUNE_WEBHOOK_ALLOW_PRIVATE": "true", "ATTUNE_DB_POOL_SIZE": "16",
               "ATTUNE_HOST": "127.0.0.1"}  # fmt: skip
        attune = str(self.root / ".venv/bin/attune")
        subprocess.run([attune, "migrate"], env=env, cwd=self.root, check=True,
                       capture_output=True)  # fmt: skip
        self.port = free_port()
        bootstrap = "att_compare_" + secrets.token_hex(16)
        self.process = subprocess.Popen(
            [attune, "serve"],
            env={**env, "ATTUNE_PORT": str(self.port), "ATTUNE_BOOTSTRAP_KEY": bootstrap},
            cwd=self.root,
            stdout=(self.work / f"{self.name}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_ready(f"http://127.0.0.1:{self.port}/healthz", self.process)
        subprocess.run(
            [PY, "bench/setup.py", "--url", f"http://127.0.0.1:{self.port}", "--bootstrap-key",
             bootstrap, "--episodes", "1000", "--key-file", str(self.work / f"{self.name}.key"),
             "--episodes-file", str(self.work / f"{self.name}.episodes"),
             "--webhook-url", "https://ehr.example.org/bench"],
            cwd=HERE, check=True, capture_output=True,
        )  # fmt: skip
        self.key = (self.work / f"{self.name}.key").read_text().strip()

    def load(self, seconds: int, *, record: bool = True) -> None:
        assert self.process is not None
        out = self.work / f"{self.name}-{len(self.slices)}-{time.monotonic_ns()}.json"
        snap = [PY, "bench/cpu.py", "snap", str(self.process.pid), self.database]
        subprocess.run([*snap, f"{out}.before"], cwd=HERE, check=True)
        subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{seconds}s", "--timeout", "10s", "-s", "bench/submit.lua",
             f"http://127.0.0.1:{self.port}", "--", str(self.work / f"{self.name}.episodes"),
             self.key, "2", str(self.next_session), str(out), "srs"],
            cwd=HERE, check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run([*snap, f"{out}.after"], cwd=HERE, check=True)
        subprocess.run([PY, "bench/cpu.py", "add", str(out), f"{out}.before", f"{out}.after"],
                       cwd=HERE, check=True)  # fmt: skip
        result = json.loads(out.read_text())
        self.next_session = max(self.next_session, result["max_session"])
        refused = {k: v for k, v in result["statuses"].items() if not k.startswith("2")}
        if refused:
            raise SystemExit(f"{self.name} answered {refused}: not a valid comparison")
        if record:
            self.slices.append(result)
            cpu, p99 = result["cpu_ms_per_request"], result["latency_ms"]["p99"]
            print(f"  {self.name}  {result['rps_ok']:7.1f} req/s  p99 {p99:6.1f} ms"
                  f"  CPU/request: app {cpu['app']:.3f} ms, PostgreSQL {cpu['postgres']:.3f} ms",
                  flush=True)  # fmt: skip

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
        if self.database:
            psql("postgres", f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")


def summary(side: Side) -> str:
    rps = [s["rps_ok"] for s in side.slices]
    app = statistics.median(s["cpu_ms_per_request"]["app"] for s in side.slices)
    pg = statistics.median(s["cpu_ms_per_request"]["postgres"] for s in side.slices)
    return (f"{side.name} ({side.root}): mean {statistics.mean(rps):.1f} req/s, median "
            f"{statistics.median(rps):.1f}; CPU/request (medians) app {app:.3f} ms, "
            f"PostgreSQL {pg:.3f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("other", type=Path, help="the other checkout (with its .venv)")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--slice", type=int, default=5, help="seconds per slice")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="attune_compare_"))
    other, this = Side("A", args.other.resolve(), work), Side("B", HERE, work)
    try:
        for side in (other, this):
            side.start()
        for side in (other, this):
            side.load(5, record=False)  # warm-up, then statistics as a database in use has
            psql(side.database, "ANALYZE")
        print(f"A = {other.root}, B = {this.root} (this checkout): {args.pairs} pairs of "
              f"{args.slice} s slices, A B B A ...", flush=True)  # fmt: skip
        for pair in range(args.pairs):
            for side in (other, this) if pair % 2 == 0 else (this, other):
                side.load(args.slice)
    finally:
        this.stop()
        other.stop()
    ratios = [b["rps_ok"] / a["rps_ok"] for a, b in zip(other.slices, this.slices, strict=True)]
    overall = sum(s["rps_ok"] for s in this.slices) / sum(s["rps_ok"] for s in other.slices)
    mean, error = statistics.mean(ratios), statistics.stdev(ratios) / len(ratios) ** 0.5
    print("\n" + summary(other) + "\n" + summary(this))
    print(f"B/A: {overall:.3f} over all slices; pairs: mean {mean:.3f} ± {error:.3f} "
          f"(standard error), median {statistics.median(ratios):.3f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({
            "a": str(other.root), "b": str(this.root), "slice_s": args.slice,
            "a_slices": other.slices, "b_slices": this.slices, "ratio_overall": overall,
            "pair_ratios": ratios, "pair_ratio_mean": mean, "pair_ratio_standard_error": error,
        }, indent=2))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
