"""CPU per row of the service's exports, measured in process: what `bench/export.py` measures
from outside (rows/s against COPY) moves with the machine's load; the Python CPU an export spends
per row moves much less, so changes to the export code are compared with this.

    .venv/bin/python bench/export.py --rows 300000 --keep          # seed a database once, then
    .venv/bin/python bench/export_cpu.py --database attune_bench_export_<pid>
    .venv/bin/python bench/export_cpu.py --database ... --datasets submissions --formats parquet \\
        --modes identified --profile 25                             # and the top of a cProfile

Each export chosen (dataset x format x mode, default all 18) is read as the service reads it on
PostgreSQL (`services.exports.store.PgExportStore`, batches of `runner.BATCH_ROWS`, the same
statement, decoding and encoders), its bytes thrown away, `--repeat` (3) times; it prints the
least CPU time of this process per statement row (µs: fetching and decoding by asyncpg, shaping
and encoding; not PostgreSQL's), the share of it in the cyclic garbage collector, the wall time,
and the largest growth of this process's RSS during an export (sampled every 10 ms, over its RSS
just before). As in the service (`api.app`), what is loaded at start-up is frozen out of the
collector's reach (`gc.freeze`) before the first export, which loads the rest (pyarrow)
unfrozen. ``--rows`` cuts the export at the first N rows in change order, as `bench/export.py`
does.
"""

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import os
import pstats
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from export import BASE, DATASETS, FORMATS, MODES, PGHOST, PGPORT, PGUSER, _choice  # noqa: E402

from services.exports import columns  # noqa: E402
from services.exports.runner import BATCH_ROWS, ExportQuery, PreparedExport  # noqa: E402
from services.exports.store import PgExportStore  # noqa: E402


async def export_once(pool: asyncpg.Pool, p: PreparedExport) -> tuple[int, int]:
    """(export rows, bytes) of one export, its bytes dropped."""
    rows = size = 0
    async for count, chunk in PgExportStore(None, pool).batches(p, BATCH_ROWS):  # type: ignore[arg-type]
        rows += count
        size += len(chunk)
    return rows, size


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssPeak:
    """The peak of this process's RSS over its RSS at the start, sampled every 10 ms."""

    def __init__(self) -> None:
        self.start = self.peak = rss_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_kib())

    def growth_mib(self) -> float:
        self._stop.set()
        self._thread.join()
        return (max(self.peak, rss_kib()) - self.start) / 1024


class GcTimer:
    """CPU time spent in the cyclic garbage collector, and its collections per generation."""

    def __init__(self) -> None:
        self.seconds, self.collections, self._started = 0.0, [0, 0, 0], 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started
            self.collections[info["generation"]] += 1

    def reset(self) -> None:
        self.seconds, self.collections = 0.0, [0, 0, 0]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="seeded by bench/export.py --keep")
    parser.add_argument("--rows", type=int, help="the first N rows (default: all)")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, help="print the top N of a cProfile")
    args = parser.parse_args()
    import api.app  # noqa: F401  what the service has loaded when it freezes (not pyarrow)

    gc.collect()
    gc.freeze()
    collector = GcTimer()
    dsn = f"postgresql://{PGUSER}@{PGHOST}:{PGPORT}/{args.database}"
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    org_id = await pool.fetchval("SELECT id FROM organizations WHERE slug = 'bench'")
    secret = "bench-export-cpu-secret"
    total = await pool.fetchval("SELECT count(*) FROM submissions")
    size = min(args.rows or total, total)
    until = BASE + timedelta(milliseconds=size + 1)
    print(f"== {size:,} rows, load average {os.getloadavg()[0]:.1f}", flush=True)
    for dataset in _choice(args.datasets, DATASETS, "--datasets"):
        for fmt in _choice(args.formats, FORMATS, "--formats"):
            for mode in _choice(args.modes, MODES, "--modes"):
                identified = mode == "identified"
                p = PreparedExport(
                    run_id=uuid.uuid4(),
                    query=ExportQuery(dataset, fmt, None, until, None, identified),
                    since=None,
                    until=until,
                    org_id=org_id,
                    clinician_id=None,
                    sees_concerns=True,
                    secret=secret,
                    columns=columns(dataset, identified=identified),
                )
                await export_once(pool, dataclasses.replace(p, until=BASE + timedelta(seconds=1)))
                cpus, walls, in_gc, growths = [], [], [], []
                for _ in range(args.repeat):
                    collector.reset()
                    rss = RssPeak()
                    wall, cpu = time.perf_counter(), time.process_time()
                    rows, written = await export_once(pool, p)
                    cpus.append(time.process_time() - cpu)
                    walls.append(time.perf_counter() - wall)
                    growths.append(rss.growth_mib())
                    in_gc.append((collector.seconds, collector.collections))
                least = min(range(len(cpus)), key=cpus.__getitem__)
                gc_seconds, collections = in_gc[least]
                print(
                    f"   {dataset}/{fmt}/{mode:<13} {rows:>9,} rows {written / 2**20:>7.1f} MiB  "
                    f"CPU {cpus[least] / size * 1e6:6.2f} µs/row "
                    f"({gc_seconds / cpus[least]:4.0%} in gc {'/'.join(map(str, collections))})  "
                    f"wall {min(walls):6.2f} s  RSS growth {max(growths):5.1f} MiB",
                    flush=True,
                )
                if args.profile:
                    profile = cProfile.Profile()
                    profile.enable()
                    await export_once(pool, p)
                    profile.disable()
                    stats = pstats.Stats(profile)
                    stats.sort_stats("tottime").print_stats(args.profile)
    await pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
