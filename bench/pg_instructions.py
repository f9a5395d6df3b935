"""Instructions per submission on PostgreSQL's side: the backend's CPU cost, counted, not timed.

bench/instructions.py counts the service's own instructions; this counts those of the PostgreSQL
backend serving it, where the CHECK constraints of issue 12 had cost each submission about half
a million instructions more (migrations pgs1c4e0a7b2, pgs2d5f1b8c3). Like it, the count does not
move with what else the machine runs, so two versions of the code compare on a busy machine.

A private cluster (initdb in a temporary directory, port --port) is set up with bench/setup.py
and ``--sessions`` SRS submissions per episode, analysed, then restarted under valgrind's
callgrind. The service then runs twice on it: ``--warmup`` requests, then ``--warmup`` +
``--requests``; each run's backends are counted from their start to their exit, so the
difference over ``--requests`` is what one submission costs, connection start-up left out.

    .venv/bin/python bench/pg_instructions.py               # 200 requests, 500 episodes
    .venv/bin/python bench/pg_instructions.py --json out.json

Needs valgrind and PostgreSQL's server binaries (pg_config --bindir, or PG_BIN). PostgreSQL does
not run as root: as root the cluster runs as the `postgres` user (su).
"""

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

# The same body, port picking, submission, callgrind totals and report as the service's count.
from instructions import callgrind_totals, free_port, report, submit  # noqa: E402


def pg_bin() -> Path:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = shutil.which("pg_config")
    if found:
        return Path(
            subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout.strip()
        )
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not versions:
        raise SystemExit("no PostgreSQL server binaries: set PG_BIN")
    return versions[-1]


def as_owner(command: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """Run a cluster command as its owner: `postgres` when we are root."""
    if os.geteuid() == 0:
        command = ["su", "postgres", "-c", "exec " + " ".join(command)]
    return subprocess.Popen(command, **kwargs)  # type: ignore[call-overload]


class Cluster:
    def __init__(self, bindir: Path, work: Path, port: int) -> None:
        self.bin, self.data, self.port = bindir, work / "data", port
        self.log = work / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def psql(self, database: str, sql: str) -> str:
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-qtA", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return result.stdout

    def init(self) -> None:
        as_owner([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"],
                 stdout=subprocess.DEVNULL).wait()  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.data}'\nfsync = off\n"
                       "autovacuum = off\n")  # fmt: skip

    def start(self, callgrind_out: Path | None = None) -> None:
        command = [str(self.bin / "postgres"), "-D", str(self.data)]
        if callgrind_out is not None:
            command = ["valgrind", "--tool=callgrind", "--dump-instr=no",
                       f"--callgrind-out-file={callgrind_out}/%p.out", *command]  # fmt: skip
        self.process = as_owner(command, stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        for _ in range(1200):
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                                    str(self.port)], capture_output=True)  # fmt: skip
            if ready.returncode == 0:
                return
            time.sleep(0.25)
        raise SystemExit("PostgreSQL did not start: " + self.log.read_text()[-2000:])

    def stop(self) -> None:
        if self.process is not None:
            as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "600", "-m",
                      "fast", "stop"], stdout=subprocess.DEVNULL).wait()  # fmt: skip
            self.process.wait(600)
            self.process = None


class Service:
    def __init__(self, url: str, bootstrap: str, log: Path) -> None:
        port = free_port()
        env = {**os.environ, "ATTUNE_ENVIRONMENT": "development", "ATTUNE_DATABASE_URL": url,
               "ATTUNE_BOOTSTRAP_KEY": bootstrap, "ATTUNE_HOST": "127.0.0.1",
               "ATTUNE_PORT": str(port), "ATTUNE_LOG_LEVEL": "WARNING",
               "ATTUNE_DB_POOL_SIZE": "4", "ATTUNE_WEBHOOK_ALLOW_PRIVATE": "true",
               "ATTUNE_REQUEST_TIMEOUT_SECONDS": "600", "ATTUNE_DB_TIMEOUT_SECONDS": "120",
               "ATTUNE_DB_COMMAND_TIMEOUT_SECONDS": "600"}  # fmt: skip
        self.process = subprocess.Popen([str(ROOT / ".venv/bin/attune"), "serve"], env=env,
                                        stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(2400):
            try:
                if httpx.get(self.base + "/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.25)
        raise SystemExit("the service did not start: " + log.read_text()[-2000:])

    def submit(self, key: str, pairs: list[tuple[str, int]]) -> None:
        with httpx.Client(base_url=self.base, timeout=600) as client:
            for episode, session in pairs:
                submit(client, key, episode, session)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(120)


def counted(out: Path, pids: list[str]) -> int:
    return callgrind_totals(path for pid in pids for path in out.glob(f"{pid}.out*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--port", type=int, default=free_port())
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="attune_pgi_"))
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
    cluster = Cluster(pg_bin(), work, args.port)
    db = "attune_pgi"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{args.port}/{db}"
    service: Service | None = None
    try:
        cluster.init()
        cluster.start()
        cluster.psql("postgres", f"CREATE DATABASE {db}")
        env = {**os.environ, "ATTUNE_DATABASE_URL": url, "ATTUNE_LOG_LEVEL": "WARNING"}
        subprocess.run([str(ROOT / ".venv/bin/attune"), "migrate"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        bootstrap = "att_pgi_" + secrets.token_hex(16)
        service = Service(url, bootstrap, work / "service.log")
        setup = [str(ROOT / ".venv/bin/python"), str(ROOT / "bench/setup.py"), "--url",
                 service.base, "--bootstrap-key", bootstrap, "--episodes", str(args.episodes),
                 "--key-file", str(work / "key"),
                 "--episodes-file", str(work / "episodes")]  # fmt: skip
        if "--webhook-url" in (ROOT / "bench/setup.py").read_text():  # older set-ups had it fixed
            setup += ["--webhook-url", "https://ehr.example.org/bench"]
        subprocess.run(setup, check=True, capture_output=True)
        key = (work / "key").read_text().strip()
        episodes = (work / "episodes").read_text().split()
        service.submit(key, [(e, s) for s in range(1, args.sessions + 1) for e in episodes])
        service.stop()
        cluster.psql(db, "VACUUM ANALYZE")
        cluster.stop()

        # The next sessions of the episodes, in the load's order: run 1 submits the first
        # `warmup` of them, run 2 the next `warmup + requests`.
        pairs = [(e, s) for s in range(args.sessions + 1, args.sessions + 4) for e in episodes]
        counts = []
        for n, requests in enumerate([args.warmup, args.warmup + args.requests]):
            out = work / f"callgrind{n}"
            out.mkdir()
            if os.geteuid() == 0:
                shutil.chown(out, "postgres")
            cluster.start(callgrind_out=out)
            service = Service(url, bootstrap, work / f"service{n}.log")
            start = args.warmup if n else 0
            service.submit(key, pairs[start : start + requests])
            pids = cluster.psql(
                "postgres", f"SELECT pid FROM pg_stat_activity WHERE datname = '{db}'"
            )
            service.stop()
            cluster.stop()
            counts.append(counted(out, pids.split()))
        per_request = (counts[1] - counts[0]) / args.requests
        report({"requests": args.requests, "postgres_instructions_per_request": per_request},
               args.json)  # fmt: skip
    finally:
        if service is not None:
            service.stop()  # a failed set-up leaves it running
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
