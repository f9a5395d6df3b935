"""Sweep benchmark: one sweep (services/alerts/sweep.py) over 100,000 active episodes on PostgreSQL.

    .venv/bin/python bench/sweep.py                       # 100,000 episodes
    .venv/bin/python bench/sweep.py --episodes 20000      # quicker

One run: creates the scratch database `attune_bench_sweep_<pid>` (dropped at the end), migrates
it, and seeds with `INSERT ... SELECT generate_series` (not through the API) one organization,
`--episodes` active episodes, each with one SRS submission whose time is spread over the last 23
days (so about 1 in 12 is past the 21-day overdue limit), 1,000 open risk alerts two days old
(due for escalation) and 1,000 open rupture alerts with no later session for 30 days (due to
become high), and a webhook endpoint subscribed to every event (so each change also writes its
outbox event and delivery). Then it times, in this process, the first sweep (which makes every
change) and a second one (nothing left to do: what every later sweep of a quiet system costs).

Goal: each sweep within 10 s (DESIGN.md §10.3.6; issue 13).
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB = f"attune_bench_sweep_{os.getpid()}"
PGHOST = os.environ.get("PGHOST", "127.0.0.1")
PGPORT = os.environ.get("PGPORT", "5432")
PGUSER = os.environ.get("PGUSER", "postgres")
GOAL_SECONDS = 10.0

SEED = """
INSERT INTO organizations (id, name, slug, created_at, export_secret)
VALUES (:'org', 'Bench', 'bench', now(), md5('bench') || md5('sweep'));
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
SELECT gen_random_uuid(), :'org', cn.id, cl.id, 'active', date '2026-09-01',
    now() - interval '60 days', now(), 0
FROM cn JOIN cl ON cl.n = cn.n % 50;
CREATE TEMP TABLE ep AS
SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM episodes WHERE org_id = :'org';
INSERT INTO sessions (id, org_id, episode_id, session_number, occurred_at, created_at)
SELECT gen_random_uuid(), :'org', ep.id, 1, NULL, now() FROM ep;
INSERT INTO submissions (id, org_id, episode_id, session_id, session_number, instrument,
    instrument_version, respondent, rater, answers, scores, total, status, occurred_at,
    created_at, changed_at)
SELECT gen_random_uuid(), :'org', s.episode_id, s.id, 1, 'srs', '3.0', 'client', '',
    '{"relationship": 9, "goals_topics": 9, "approach_method": 9, "overall": 9}',
    '{"total": 36}', 36, 'valid', NULL,
    now() - (ep.n % 2300) * interval '864 seconds', now()
FROM sessions s JOIN ep ON ep.id = s.episode_id;
INSERT INTO alerts (id, org_id, episode_id, type, severity, status, instrument, respondent, rater,
    subscale, session_number, first_session_number, message, evidence, rule_version, rule_params,
    created_at, updated_at)
SELECT gen_random_uuid(), :'org', ep.id, t.type, t.severity, 'open', 'srs', 'client', '', '', 1,
    1, 'bench', '{}', '1', '{}', now() - t.age, now() - t.age
FROM ep JOIN (VALUES ('risk.item', 'critical', interval '2 days', 0),
                     ('alliance.rupture', 'warning', interval '30 days', 1)) AS t(type, severity,
                                                                                age, k)
    ON ep.n % 50 = t.k AND ep.n < 50000;
INSERT INTO webhook_endpoints (id, org_id, url, secret, event_types, enabled, description,
    consecutive_failures, created_at)
VALUES (gen_random_uuid(), :'org', 'https://example.org/hook', 'whsec_' || md5('bench'),
    '["submission.created", "alert.created", "alert.updated", "alert.resolved"]', true, 'bench',
    0, now());
ANALYZE;
"""


def psql(args: list[str], db: str = "postgres", **kwargs: Any) -> subprocess.CompletedProcess[str]:
    base = ["psql", "-h", PGHOST, "-p", PGPORT, "-U", PGUSER, "-d", db, "-v", "ON_ERROR_STOP=1"]
    return subprocess.run(base + args, check=True, text=True, capture_output=True, **kwargs)


async def timed_sweeps(url: str) -> list[tuple[float, dict[str, int]]]:
    from pydantic import SecretStr

    from services.alerts import sweep
    from services.kernel.config import Settings
    from services.kernel.database import create_engine

    settings = Settings(
        environment="test", database_url=url, secret_key=SecretStr("bench-" + "x" * 32)
    )
    engine = create_engine(settings)
    out = []
    try:
        for _ in range(2):
            started = time.perf_counter()
            result = await sweep.sweep(engine)
            out.append((time.perf_counter() - started, result.as_dict()))
    finally:
        await engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the database (to profile)")
    args = parser.parse_args()
    url = f"postgresql+asyncpg://{PGUSER}@{PGHOST}:{PGPORT}/{DB}"
    env = {**os.environ, "ATTUNE_DATABASE_URL": url, "ATTUNE_LOG_LEVEL": "WARNING"}
    psql(["-c", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"])
    psql(["-c", f"CREATE DATABASE {DB}"])
    try:
        python = str(ROOT / ".venv/bin/python")
        subprocess.run([python, "-m", "api.cli", "migrate"], cwd=ROOT, env=env, check=True)
        started = time.perf_counter()
        org = "00000000-0000-7000-8000-00000000be0c"
        variables = ["-v", f"org={org}", "-v", f"episodes={args.episodes}"]
        psql([*variables, "-f", "-"], db=DB, input=SEED)
        print(f"seeded {args.episodes:,} episodes in {time.perf_counter() - started:.1f} s")
        results = asyncio.run(timed_sweeps(url))
    finally:
        if not args.keep:
            psql(["-c", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"])
    ok = True
    for name, (seconds, counts) in zip(("first sweep", "second sweep"), results, strict=True):
        within = seconds <= GOAL_SECONDS
        ok &= within
        changes = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        print(f"{name:>12}: {seconds:6.2f} s  ({changes})  {'ok' if within else 'SLOW'}")
    print(f"goal: each sweep of {args.episodes:,} episodes within {GOAL_SECONDS:.0f} s: "
          f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
