"""Crash drill: writers post submissions with Idempotency-Keys while the API process is killed
with SIGKILL and restarted at random moments; every writer retries until its submission is
acknowledged. Afterwards every acknowledged submission must exist exactly once, with its scores,
its alerts, its audit event and (once the table exists) its outbox event. See
`scripts/crash --help`.
"""

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from scripts.harness import Service, log, private_cluster, seed, srs_answers


@dataclass
class Ack:
    episode: str
    session: int
    body: dict[str, Any]  # the 201 response
    attempts: int
    replayed: bool


@dataclass
class Drill:
    service: Service
    key: str
    rng: random.Random
    acks: list[Ack] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    in_flight: int = 0
    writing: bool = True
    retries: Counter[str] = field(default_factory=Counter)

    async def writer(self, episode: str, seed: int) -> None:
        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {self.key}"}
        session = 0
        async with httpx.AsyncClient(base_url=self.service.url, timeout=10) as client:
            while self.writing:
                session += 1
                body = {
                    "episode_id": episode,
                    "instrument": "srs",
                    "session_number": session,
                    "answers": srs_answers(rng),
                }
                key = f"crash-{episode}-{session}"
                attempts = 0
                while True:  # until acknowledged, whatever happens to the service
                    attempts += 1
                    self.in_flight += 1
                    try:
                        response = await client.post(
                            "/v1/submissions", json=body,
                            headers={**headers, "Idempotency-Key": key},
                        )  # fmt: skip
                    except httpx.HTTPError as exc:
                        self.retries[type(exc).__name__] += 1
                        await asyncio.sleep(0.05)
                        continue
                    finally:
                        self.in_flight -= 1
                    if response.status_code == 201:
                        replayed = response.headers.get("idempotent-replayed") == "true"
                        self.acks.append(Ack(episode, session, response.json(), attempts, replayed))
                        break
                    retryable = response.status_code in (502, 503, 504) or (
                        response.status_code == 409
                        and "Idempotency-Key" in response.json().get("detail", "")
                    )
                    if not retryable:
                        self.anomalies.append(
                            f"{episode} session {session}: {response.status_code} "
                            f"{response.text[:200]}"
                        )
                        break
                    self.retries[str(response.status_code)] += 1
                    await asyncio.sleep(0.05)


async def _check(dsn: str, org_id: str, acks: list[Ack]) -> tuple[dict[str, int], list[str]]:
    """Compare what was acknowledged with what the database holds."""
    problems: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, episode_id, session_number, answers, scores, status FROM submissions "
            "WHERE org_id = $1",
            org_id,
        )
        stored: dict[tuple[str, int], list[Any]] = {}
        for row in rows:
            stored.setdefault((str(row["episode_id"]), row["session_number"]), []).append(row)
        audits = Counter(
            str(r["resource_id"])
            for r in await conn.fetch(
                "SELECT resource_id FROM audit_events "
                "WHERE org_id = $1 AND action = 'submission.create' AND outcome = 'success'",
                org_id,
            )
        )
        alert_ids = {
            str(r["id"])
            for r in await conn.fetch("SELECT id FROM alerts WHERE org_id = $1", org_id)
        }
        has_outbox = await conn.fetchval("SELECT to_regclass('public.outbox_events') IS NOT NULL")
        outbox: Counter[str] = Counter()
        if has_outbox:
            outbox = Counter(
                str(r["subject_id"])
                for r in await conn.fetch(
                    "SELECT subject_id FROM outbox_events "
                    "WHERE org_id = $1 AND type = 'submission.created'",
                    org_id,
                )
            )
    finally:
        await conn.close()

    lost = duplicates = wrong = 0
    acked_keys = set()
    for ack in acks:
        acked_keys.add((ack.episode, ack.session))
        found = stored.get((ack.episode, ack.session), [])
        sid = ack.body["id"]
        if not found:
            lost += 1
            problems.append(f"lost: {ack.episode} session {ack.session} ({sid})")
            continue
        if len(found) > 1:
            duplicates += 1
            problems.append(f"duplicate: {ack.episode} session {ack.session}: {len(found)} rows")
        row = next((r for r in found if str(r["id"]) == sid), None)
        if row is None:
            wrong += 1
            problems.append(f"acknowledged id {sid} is not the stored row")
            continue
        scores, answers = json.loads(row["scores"]), json.loads(row["answers"])
        # The response shows the public score fields; the row holds those and more.
        same = all(scores.get(k) == v for k, v in ack.body["scores"].items())
        if row["status"] != "valid" or not same or answers != ack.body["answers"]:
            wrong += 1
            problems.append(f"{sid}: stored answers/scores differ from the acknowledgement")
        if audits[sid] != 1:
            wrong += 1
            problems.append(f"{sid}: {audits[sid]} audit events")
        missing_alerts = [a["id"] for a in ack.body["alerts"] if a["id"] not in alert_ids]
        if missing_alerts:
            wrong += 1
            problems.append(f"{sid}: alerts {missing_alerts} not stored")
        if has_outbox and outbox[sid] != 1:
            wrong += 1
            problems.append(f"{sid}: {outbox[sid]} submission.created outbox events")
    unacknowledged = sum(len(v) for k, v in stored.items() if k not in acked_keys)
    if unacknowledged:
        problems.append(f"{unacknowledged} stored submissions were never acknowledged")
    counts = {
        "stored": len(rows),
        "lost": lost,
        "duplicates": duplicates,
        "inconsistent": wrong,
        "unacknowledged": unacknowledged,
        "alerts": sum(len(a.body["alerts"]) for a in acks),
        "outbox": int(bool(has_outbox)),
    }
    return counts, problems


async def main(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="attune-crash-"))
    rng = random.Random(args.seed)
    with private_cluster() as cluster:
        service = Service(
            cluster.url,
            workdir / "service.log",
            settings={"ATTUNE_DB_POOL_SIZE": "8", "ATTUNE_REQUEST_TIMEOUT_SECONDS": "10"},
        )
        service.migrate()
        service.start()
        await service.wait_ready()
        key, episodes = await seed(service, args.writers)
        async with httpx.AsyncClient(base_url=service.url) as client:
            me = await client.get("/v1/api-keys", headers={"Authorization": f"Bearer {key}"})
        org_id = me.json()["items"][0]["org_id"]
        drill = Drill(service, key, rng)
        writers = [
            asyncio.create_task(drill.writer(episode, rng.randrange(2**32))) for episode in episodes
        ]
        log(f"{args.writers} writers; {args.kills} kills, each after 0-{args.uptime} s of service")
        kills = kills_mid_request = 0
        started = time.monotonic()
        try:
            for n in range(1, args.kills + 1):
                await service.wait_ready()
                await asyncio.sleep(rng.uniform(0, args.uptime))
                kills_mid_request += drill.in_flight > 0
                service.kill()
                kills += 1
                service.start()
                if n % 10 == 0:
                    log(f"  {n} kills, {len(drill.acks)} acknowledged")
            await service.wait_ready()
            await asyncio.sleep(1)
            drill.writing = False  # each writer finishes (acknowledges) its current submission
            await asyncio.wait_for(asyncio.gather(*writers), 120)
        finally:
            service.stop()
        elapsed = time.monotonic() - started
        counts, problems = await _check(cluster.dsn, org_id, drill.acks)

    replays = sum(a.replayed for a in drill.acks)
    print("\n== crash report")
    print(f"writers: {args.writers}; run: {elapsed:.0f} s; seed {args.seed}")
    print(
        f"kills (SIGKILL of the API process): {kills}, {kills_mid_request} with requests in flight"
    )
    print(f"acknowledged writes: {len(drill.acks)} ({replays} acknowledged by an idempotent replay")
    print(f"  of a write committed before a kill); retries: {dict(drill.retries)}")
    print(f"stored submissions: {counts['stored']}; alerts in acknowledgements: {counts['alerts']}")
    print(f"lost: {counts['lost']}")
    print(f"duplicates: {counts['duplicates']}")
    print(f"inconsistent (scores, audit event, alerts, outbox): {counts['inconsistent']}")
    print(f"stored but never acknowledged: {counts['unacknowledged']}")
    print(
        "outbox: checked (one submission.created event per submission)"
        if counts["outbox"]
        else "outbox: not checked (table absent)"
    )
    print(f"anomalies (non-retryable answers): {len(drill.anomalies)}")
    for line in (problems + drill.anomalies)[:20]:
        print(f"  ! {line}")
    print(f"service log: {service.log_path}")
    ok = not problems and not drill.anomalies and kills >= args.kills
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=4, help="concurrent writer clients")
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs of the API process")
    parser.add_argument(
        "--uptime", type=float, default=1.0, help="longest run of the service between kills (s)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (kill moments, answers)")
    sys.exit(asyncio.run(main(parser.parse_args())))
