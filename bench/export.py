"""Export benchmark: every export (`GET /v1/exports/{dataset}` for each dataset, format and
mode) of N rows on PostgreSQL, against `psql -c "COPY (its own statement) TO STDOUT"` of the same
rows, timed in the same run.

    .venv/bin/python bench/export.py                      # 1,000,000 rows, also cut at 100,000
    .venv/bin/python bench/export.py --rows 200000 --cuts 20000 --rounds 1
    .venv/bin/python bench/export.py --datasets scores --formats csv,parquet --modes identified

One run: creates the scratch database `attune_bench_export_<pid>` (dropped at the end), migrates it,
starts the service (`attune serve`, one uvicorn process) with a bootstrap key, makes an
organization and an `exports:read` + `exports:identified` key through the API, then seeds
clinicians, clients, episodes, sessions, `--rows` SRS submissions and one alert per submission
with `INSERT ... SELECT generate_series` (not through the API). Then, for each size (the first
`size` rows in change order, selected with `until`) and each export (dataset x format x mode),
alternating for `--rounds` rounds: COPY of the export's own generic statement
(`services.exports.runner.statement`, compiled with its literal parameters) piped to `wc -l`,
then the service's export (piped to `wc -l`, or to a file for Parquet), while the service's RSS is
sampled every 20 ms from /proc. Reports rows/s of each (medians), the ratio, and the service's
peak RSS growth over its RSS just before the export, as a table.

Rows are the statement's rows (submissions or alerts) for both sides: the `scores` export writes
two rows (total, mean) per submission of the seed, from the same statement rows.

Goal (issue 18): every export at least 30 % of COPY's rows/s, and peak RSS growth at most 64 MiB,
at 1,000,000 rows.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# One scratch database per run, so that two runs on a shared machine never drop each other's.
DB = f"attune_bench_export_{os.getpid()}"
BOOTSTRAP = "att_bench-export-bootstrap-key-0123456789"
GOAL_RATIO = 0.30
GOAL_RSS_MIB = 64
BASE = datetime(2026, 1, 1, tzinfo=UTC)
SEED_SQL = """
SET synchronous_commit = off;
INSERT INTO clinicians (id, org_id, display_name, external_id, created_at)
SELECT gen_random_uuid(), :'org', 'Dr ' || i, 'staff-' || i, now() FROM generate_series(1, 50) i;
INSERT INTO clients (id, org_id, external_id, population, birth_year, created_at, updated_at)
SELECT gen_random_uuid(), :'org', 'mrn-' || i, 'adult', 1980, now(), now()
FROM generate_series(1, :episodes) i;
CREATE TEMP TABLE cl AS
SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM clinicians WHERE org_id = :'org';
CREATE TEMP TABLE cn AS
SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM clients WHERE org_id = :'org';
INSERT INTO episodes (id, org_id, client_id, clinician_id, status, started_on, created_at,
    updated_at, alert_seq)
SELECT gen_random_uuid(), :'org', cn.id, cl.id, 'active', date '2025-12-01', now(), now(), 0
FROM cn JOIN cl ON cl.n = cn.n % 50;
CREATE TEMP TABLE ep AS
SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM episodes WHERE org_id = :'org';
INSERT INTO sessions (id, org_id, episode_id, session_number, occurred_at, created_at)
SELECT gen_random_uuid(), :'org', ep.id, (i / :episodes) + 1, NULL, now()
FROM generate_series(0, :rows - 1) i JOIN ep ON ep.n = i % :episodes;
INSERT INTO submissions (id, org_id, episode_id, session_id, session_number, instrument,
    instrument_version, respondent, rater, answers, scores, total, status, occurred_at,
    created_at, changed_at)
SELECT gen_random_uuid(), :'org', s.episode_id, s.id, s.session_number, 'srs', '3.0', 'client', '',
    jsonb_build_object('relationship', 9.1, 'goals_topics', 8.4, 'approach_method', 9.0,
        'overall', (s.session_number % 10)::numeric),
    jsonb_build_object('total', 26.5 + s.session_number % 10, 'mean', 6.6, 'subscales', '{}'::jsonb,
        'band', NULL, 'below_cutoff', true, 'clinical', true, 'risk_flags', '[]'::jsonb),
    26.5 + s.session_number % 10, 'valid', NULL,
    timestamptz '2026-01-01 00:00:00+00' + (s.session_number * interval '1 day'),
    timestamptz '2026-01-01 00:00:00+00' + (row_number() OVER (ORDER BY s.session_number, s.id))
        * interval '1 millisecond'
FROM sessions s WHERE s.org_id = :'org';
-- One alert per submission, in the same change order (updated_at one millisecond apart, as the
-- submissions' changed_at), so `until` cuts both datasets at the same row. Two in three resolved,
-- one in three acknowledged (never open: at most one open alert per series is allowed).
INSERT INTO alerts (id, org_id, episode_id, type, severity, status, resolution, instrument,
    respondent, rater, subscale, session_number, submission_id, message, evidence, rule_version,
    rule_params, created_at, updated_at, acknowledged_at, resolved_at, note)
SELECT gen_random_uuid(), :'org', s.episode_id,
    CASE WHEN s.session_number % 2 = 0 THEN 'alliance.rupture' ELSE 'outcome.not_on_track' END,
    CASE WHEN s.session_number % 3 = 0 THEN 'high' ELSE 'warning' END,
    CASE WHEN s.session_number % 3 = 1 THEN 'acknowledged' ELSE 'resolved' END,
    CASE WHEN s.session_number % 3 = 1 THEN NULL ELSE 'discussed' END,
    'srs', 'client', '', '', s.session_number, s.id,
    'SRS total ' || s.total || ' is below the cut-off',
    jsonb_build_object('total', s.total, 'previous', s.total + 3, 'drop', 3),
    '1', jsonb_build_object('min_drop', 3, 'window', 2),
    s.created_at, s.changed_at,
    s.created_at + interval '5 hours 3 minutes',
    CASE WHEN s.session_number % 3 = 1 THEN NULL ELSE s.created_at + interval '2 days' END,
    'talked it through'
FROM submissions s WHERE s.org_id = :'org';
ANALYZE;
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def psql(args: list[str], db: str = "postgres", **kwargs: Any) -> subprocess.CompletedProcess[str]:
    base = ["psql", "-h", PGHOST, "-p", PGPORT, "-U", PGUSER, "-d", db, "-v", "ON_ERROR_STOP=1"]
    done = subprocess.run(base + args, text=True, capture_output=True, **kwargs)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        done.check_returncode()
    return done


PGHOST = os.environ.get("PGHOST", "127.0.0.1")
PGPORT = os.environ.get("PGPORT", "5432")
PGUSER = os.environ.get("PGUSER", "postgres")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib(self.pid))


def timed_lines(command: str) -> tuple[int, float]:
    start = time.perf_counter()
    out = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], check=True, text=True, capture_output=True
    )
    return int(out.stdout.strip()), time.perf_counter() - start


def copy_statement(org_id: str, dataset: str, identified: bool, until: datetime) -> str:
    """The service's own generic export statement, with its parameters as literals."""
    from sqlalchemy.dialects import postgresql

    from services.exports import columns
    from services.exports.runner import ExportQuery, PreparedExport, statement

    prepared = PreparedExport(
        run_id=uuid.uuid4(),
        query=ExportQuery(dataset, "ndjson", None, until, None, identified),
        since=None,
        until=until,
        org_id=uuid.UUID(org_id),
        clinician_id=None,
        sees_concerns=False,
        secret="",
        columns=columns(dataset, identified=identified),
    )
    stmt = statement(prepared)
    compiled = stmt.compile(dialect=postgresql.dialect())
    params = {
        k: (f"'{v.isoformat()}'::timestamptz" if isinstance(v, datetime) else f"'{v}'")
        for k, v in compiled.params.items()
    }
    sql = str(compiled)
    for name, literal in sorted(params.items(), key=lambda kv: -len(kv[0])):
        sql = sql.replace(f"%({name})s", literal)
    return sql


DATASETS = ("submissions", "scores", "alerts")
FORMATS = ("ndjson", "csv", "parquet")
MODES = ("deidentified", "identified")
# Export rows per statement row, as seeded: a `scores` row for the total and one for the mean of
# each submission (the seed's SRS submissions have no subscales).
ROWS_PER_STATEMENT_ROW = {"submissions": 1, "scores": 2, "alerts": 1}


def _choice(text: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    chosen = [c for c in text.split(",") if c]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        raise SystemExit(f"{flag}: unknown {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return [c for c in allowed if c in chosen]


def exported_rows(fmt: str, output: Path) -> int:
    """Rows of the export written to ``output``."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.read_metadata(output).num_rows)
    with output.open("rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return lines - 1 if fmt == "csv" else lines  # CSV: the header line


def main() -> int:
    # Stopped (kill, Ctrl-C): still stop the service and drop the scratch database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cuts", default="100000", help="smaller row counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=20_000)
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument("--keep", action="store_true", help="keep the database (to profile)")
    parser.add_argument(
        "--database", help="reuse this database, seeded by an earlier run with --keep (no seeding)"
    )
    args = parser.parse_args()
    cells = [
        (dataset, fmt, mode)
        for dataset in _choice(args.datasets, DATASETS, "--datasets")
        for fmt in _choice(args.formats, FORMATS, "--formats")
        for mode in _choice(args.modes, MODES, "--modes")
    ]
    db = args.database or DB
    python = str(ROOT / ".venv/bin/python")
    url = f"postgresql+asyncpg://{PGUSER}@{PGHOST}:{PGPORT}/{db}"
    port = free_port()
    env = {
        **os.environ,
        "ATTUNE_DATABASE_URL": url,
        "ATTUNE_BOOTSTRAP_KEY": BOOTSTRAP,
        "ATTUNE_PORT": str(port),
        "ATTUNE_EXPORT_SETTLE_SECONDS": "0",
        "ATTUNE_LOG_LEVEL": "WARNING",
    }
    if args.database is None:
        psql(["-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])
        psql(["-c", f"CREATE DATABASE {db}"])
    service = None
    log = (ROOT / "bench/results").resolve()
    log.mkdir(exist_ok=True)
    output = log / f"export-output-{os.getpid()}"
    try:
        subprocess.run([python, "-m", "api.cli", "migrate"], cwd=ROOT, env=env, check=True)
        service = subprocess.Popen(
            [python, "-m", "api.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=open(log / "export-service.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as http:
            # Up to two minutes: on a loaded machine the service takes a while to start.
            for _ in range(600):
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            else:
                raise SystemExit("the service did not start (bench/results/export-service.log)")
            system = {"Authorization": f"Bearer {BOOTSTRAP}"}
            if args.database is None:
                org = http.post(
                    "/v1/organizations", json={"name": "Bench", "slug": "bench"}, headers=system
                ).json()
                org_id = org["id"]
            else:
                org_id = psql(
                    ["-qAt", "-c", "SELECT id FROM organizations WHERE slug = 'bench'"], db=db
                ).stdout.strip()
            key = http.post(
                f"/v1/organizations/{org_id}/api-keys",
                json={"name": "bench", "scopes": ["exports:read", "exports:identified"]},
                headers=system,
            ).json()["key"]
        if args.database is None:
            print(f"== seeding {args.rows:,} submissions and alerts over {args.episodes:,} "
                  "episodes", flush=True)  # fmt: skip
            started = time.perf_counter()
            seed = SEED_SQL.replace(":episodes", str(args.episodes)).replace(
                ":rows", str(args.rows)
            )
            psql(["-v", f"org={org_id}"], db=db, input=seed)
            print(f"   {time.perf_counter() - started:.0f} s", flush=True)
        else:
            args.rows = int(psql(["-qAt", "-c", "SELECT count(*) FROM submissions"], db=db).stdout)
        sizes = sorted({int(c) for c in args.cuts.split(",") if c and int(c) < args.rows})
        sizes.append(args.rows)
        print(f"== load average {os.getloadavg()[0]:.1f} at the start", flush=True)

        results = []
        for size in sizes:
            until = BASE + timedelta(milliseconds=size + 1)
            for dataset, fmt, mode in cells:
                identified = mode == "identified"
                copy_sql = copy_statement(org_id, dataset, identified, until).replace("\n", " ")
                copy_cmd = (
                    f"psql -h {PGHOST} -p {PGPORT} -U {PGUSER} -d {db} -qAt "
                    f'-c "COPY ({copy_sql}) TO STDOUT" | wc -l'
                )
                query = f"format={fmt}&identified={str(identified).lower()}"
                export_url = f"{base}/v1/exports/{dataset}?{query}&until={until.isoformat()}"
                export_cmd = (
                    f"curl -sSf -H 'Authorization: Bearer {key}' "
                    f"'{export_url.replace('+', '%2B')}' > {output}"
                )
                # Warm up: an export of the first 10,000 rows loads everything the route needs,
                # and runs it once: the first Parquet export of a process maps pyarrow's code and
                # its allocator's arenas into its RSS (60-80 MiB), once, whatever the export's size
                # (bench/README.md).
                first = (BASE + timedelta(milliseconds=10_001)).isoformat().replace("+", "%2B")
                timed_lines(export_cmd.replace(until.isoformat().replace("+", "%2B"), first)
                            + " && echo 0")  # fmt: skip
                expected = size * ROWS_PER_STATEMENT_ROW[dataset]
                copy_rates, service_rates, growths = [], [], []
                name = f"{dataset}/{fmt}/{mode}"
                for _ in range(args.rounds):
                    lines, seconds = timed_lines(copy_cmd)
                    assert lines == size, (name, lines, size)
                    copy_rates.append(size / seconds)
                    before = rss_kib(service.pid)
                    with RssSampler(service.pid) as sampler:
                        _, seconds = timed_lines(export_cmd + " && echo 0")
                    written = exported_rows(fmt, output)
                    assert written == expected, (name, written, expected)
                    service_rates.append(size / seconds)
                    growths.append((sampler.peak - before) / 1024)
                    print(
                        f"   {name:<30} {size:>9,} rows, round {len(growths)}: COPY "
                        f"{copy_rates[-1]:>9,.0f} rows/s | service {service_rates[-1]:>9,.0f} "
                        f"rows/s | ratio {service_rates[-1] / copy_rates[-1]:.2f} | RSS "
                        f"{before / 1024:.1f} MiB before, peak growth {growths[-1]:.1f} MiB",
                        flush=True,
                    )
                row = {
                    "dataset": dataset,
                    "format": fmt,
                    "mode": mode,
                    "rows": size,
                    "export_rows": expected,
                    "copy_rows_per_s": statistics.median(copy_rates),
                    "service_rows_per_s": statistics.median(service_rates),
                    "peak_rss_growth_mib": max(growths),
                    "rounds": [
                        {"copy_rows_per_s": c, "service_rows_per_s": s, "peak_rss_growth_mib": g}
                        for c, s, g in zip(copy_rates, service_rates, growths, strict=True)
                    ],
                    "service_rss_mib": rss_kib(service.pid) / 1024,
                }
                row["ratio"] = row["service_rows_per_s"] / row["copy_rows_per_s"]
                results.append(row)
        load = os.getloadavg()
        print(f"\n== load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end\n")
        print(table(results))
        ok = all(
            r["ratio"] >= GOAL_RATIO and r["peak_rss_growth_mib"] <= GOAL_RSS_MIB for r in results
        )
        verdict = "PASS" if ok else "FAIL"
        print(
            f"\n== {verdict}: goal ratio >= {GOAL_RATIO:.2f} of COPY's rows/s and peak RSS growth "
            f"<= {GOAL_RSS_MIB} MiB for every export at every size"
        )
        (log / "export-latest.json").write_text(
            json.dumps({"results": results, "verdict": verdict, "load": load}, indent=2)
        )
        return 0 if ok else 1
    finally:
        output.unlink(missing_ok=True)
        if service is not None:
            service.terminate()
            service.wait(timeout=30)
        if not args.keep and args.database is None:
            psql(["-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])


def table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table (medians of the rounds; RSS: the largest growth)."""
    lines = [
        "| dataset | format | mode | rows | COPY rows/s | service rows/s | ratio | RSS growth |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['dataset']} | {r['format']} | {r['mode']} | {r['rows']:,} | "
            f"{r['copy_rows_per_s']:,.0f} | {r['service_rows_per_s']:,.0f} | {r['ratio']:.2f} | "
            f"{r['peak_rss_growth_mib']:.1f} MiB |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
