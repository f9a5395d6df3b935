"""Instructions per submission: the service's own CPU cost, counted, not timed.

Runs `attune serve` under valgrind's callgrind on a fresh PostgreSQL database, sets it up with
bench/setup.py, warms it up, then counts the instructions the service's process executes for
``--requests`` sequential SRS submissions (the body of bench/submit.lua) and prints the count per
request. Instruction counts do not move with what else the machine is doing, so two versions of
the code can be compared on a busy machine, where req/s and CPU time cannot be (bench/README.md).
PostgreSQL's side is not counted.

    .venv/bin/python bench/instructions.py                 # 200 requests after 40 of warm-up
    .venv/bin/python bench/instructions.py --requests 100 --json out.json

Needs valgrind (`apt-get install valgrind`), psql and PostgreSQL on 127.0.0.1:5432 (trust auth).
"""

import argparse
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BODY = {"relationship": 9.1, "goals_topics": 8.4, "approach_method": 9.0, "overall": 8.8}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qtA", "-c", sql],
        check=True,
        capture_output=True,
    )


def report(result: dict[str, object], path: Path | None) -> None:
    """Print a count's result as JSON, with the commit counted, and write it to ``path``."""
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                      capture_output=True, text=True).stdout.strip()  # fmt: skip
    print(json.dumps(result))
    if path:
        path.write_text(json.dumps(result, indent=2))


def submit(client: httpx.Client, key: str, episode: str, session: int) -> None:
    response = client.post(
        "/v1/submissions",
        json={
            "episode_id": episode,
            "instrument": "srs",
            "session_number": session,
            "respondent": "client",
            "answers": BODY,
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    if response.status_code != 201:
        raise SystemExit(f"submission -> {response.status_code}: {response.text[:300]}")


def callgrind_totals(paths: Iterable[Path]) -> int:
    """The instructions counted in these callgrind output files (one per process and part)."""
    total = 0
    for path in paths:
        match = re.search(r"^totals: (\d+)", path.read_text(errors="replace"), re.M)
        if match:
            total += int(match.group(1))
    return total


def total_instructions(out: Path) -> int:
    return callgrind_totals(out.parent.glob(out.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    db = f"attune_instr_{os.getpid()}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"
    psql(f"CREATE DATABASE {db}")
    work = Path(tempfile.mkdtemp())
    service = None
    try:
        env = {**os.environ, "ATTUNE_DATABASE_URL": url, "ATTUNE_LOG_LEVEL": "WARNING"}
        subprocess.run([str(ROOT / ".venv/bin/attune"), "migrate"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        port = free_port()
        bootstrap = "att_instr_" + secrets.token_hex(16)
        out = work / "callgrind.out"
        service = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-instr=no",
             f"--callgrind-out-file={out}", str(ROOT / ".venv/bin/python"),
             str(ROOT / ".venv/bin/attune"), "serve"],
            env={**env, "ATTUNE_ENVIRONMENT": "development", "ATTUNE_BOOTSTRAP_KEY": bootstrap,
                 "ATTUNE_HOST": "127.0.0.1", "ATTUNE_PORT": str(port),
                 "ATTUNE_WEBHOOK_ALLOW_PRIVATE": "true",
                 "ATTUNE_DB_POOL_SIZE": "4", "ATTUNE_REQUEST_TIMEOUT_SECONDS": "600",
                 "ATTUNE_DB_TIMEOUT_SECONDS": "120", "ATTUNE_DB_COMMAND_TIMEOUT_SECONDS": "600"},
            stdout=(work / "service.log").open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 900
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if service.poll() is not None or time.monotonic() > deadline:
                sys.stderr.write((work / "service.log").read_text()[-3000:])
                raise SystemExit("the service did not start under valgrind")
            time.sleep(1)
        subprocess.run(
            [str(ROOT / ".venv/bin/python"), str(ROOT / "bench/setup.py"), "--url", base,
             "--bootstrap-key", bootstrap, "--episodes", str(args.episodes),
             "--key-file", str(work / "key"), "--episodes-file", str(work / "episodes")],
            check=True,
        )  # fmt: skip
        key = (work / "key").read_text().strip()
        episodes = (work / "episodes").read_text().split()
        with httpx.Client(base_url=base, timeout=600) as client:
            n = 0
            for _ in range(args.warmup):
                submit(client, key, episodes[n % len(episodes)], n // len(episodes) + 1)
                n += 1
            subprocess.run(["callgrind_control", "-i", "on", str(service.pid)], check=True,
                           capture_output=True)  # fmt: skip
            for _ in range(args.requests):
                submit(client, key, episodes[n % len(episodes)], n // len(episodes) + 1)
                n += 1
            subprocess.run(["callgrind_control", "-i", "off", str(service.pid)], check=True,
                           capture_output=True)  # fmt: skip
        service.terminate()
        service.wait(timeout=300)
        total = total_instructions(out)
        per_request = total / args.requests
        report({"requests": args.requests, "instructions": total, "per_request": per_request},
               args.json)  # fmt: skip
    finally:
        if service is not None and service.poll() is None:
            service.kill()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


if __name__ == "__main__":
    main()
