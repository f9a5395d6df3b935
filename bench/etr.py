"""Expected-response benchmark and simulation figures (issue 16; DESIGN.md §10.5).

    .venv/bin/python bench/etr.py                  # 10,000 episodes of 20 sessions
    .venv/bin/python bench/etr.py --episodes 2000  # quicker

1. Times `services.trajectory.etr.fit` on `--episodes` simulated episodes of 20 ORS sessions (goal:
   under 5 s for 10,000), next to a baseline in the same run: one `sorted()` of every score, the
   least any percentile fit must do, so the ratio says what the fit costs whatever the machine.
2. Reports the simulation study of the test suite (tests/unit/test_not_on_track_model.py, the
   same generators and seeds): held-out coverage of the p10-p90 band per session, the median
   session of the first not-on-track alert for deteriorating clients with the fitted model and
   with the rule of DESIGN.md §10.3 (no model), and the false-alarm rate of each on clients who
   recover as expected (the share ever flagged), all among clients starting in the clinical range.
3. Times the pure alert step of one submission with and without a model (what evaluating the
   model adds per submission; the submission benchmark, `make bench`, measures whole requests).
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.instruments import get_builtin  # noqa: E402
from services.trajectory import etr  # noqa: E402
from tests.unit.test_not_on_track_model import detection, simulate  # noqa: E402


def timing(episodes: int) -> None:
    data = simulate(random.Random(7), episodes, deteriorate=False, sessions=20)
    scores = [v for e in data for _, v in e]
    start = time.perf_counter()
    sorted(scores)
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    model = etr.fit(get_builtin("ors"), data)
    took = time.perf_counter() - start
    print(
        f"fit: {episodes} episodes x 20 sessions ({len(scores)} scores) in {took:.2f} s "
        f"(goal < 5 s): {'PASS' if took < 5 else 'FAIL'}"
    )
    print(
        f"  baseline sorted() of the scores {baseline * 1000:.1f} ms; fit / baseline "
        f"{took / baseline:.0f}x; held-out coverage {model.coverage}"
    )


def figures() -> None:
    ors = get_builtin("ors")
    rng = random.Random(16)
    model = etr.fit(ors, simulate(rng, 2000, deteriorate=False))
    check = etr.coverage(model, simulate(rng, 2000, deteriorate=False))
    by_session = ", ".join(f"{s}: {v:.1%}" for s, v in check.by_session.items())
    print(f"coverage of held-out scores by session: {by_session}")
    rng = random.Random(1601)
    model = etr.fit(ors, simulate(rng, 2000, deteriorate=False))
    worse = simulate(rng, 300, deteriorate=True)
    well = simulate(rng, 600, deteriorate=False)
    for name, used in (("fitted model", model), ("rule without a model", None)):
        flags, share = detection(worse, used)
        _, false_alarms = detection(well, used)
        print(
            f"{name}: deteriorating clients flagged {share:.0%}, first flag at median session "
            f"{statistics.median(flags):g}; false alarms on recovering clients {false_alarms:.0%}"
        )


def evaluation(repeats: int = 2000) -> None:
    """What the model adds to the alert step of one submission (the pure part the submission path
    runs): the same 12-session series, with and without a fitted model."""
    from services.alerts import SeriesPoint, step

    ors = get_builtin("ors")
    model = etr.fit(ors, simulate(random.Random(16), 2000, deteriorate=False))
    # A client below the band and in the clinical range: both rules raise an alert every session.
    series = [SeriesPoint(s, f"s{s}", 18.0 - s / 10, {}, {}) for s in range(1, 13)]
    timings = {"without": float("inf"), "with": float("inf")}
    for _ in range(5):  # interleaved rounds, the fastest of each: less noise from a busy machine
        for name, used in (("without", None), ("with", model)):
            start = time.perf_counter()
            for _ in range(repeats // 5):
                step([], ors, series, "adult", expected=used)
            took = (time.perf_counter() - start) / (repeats // 5)
            timings[name] = min(timings[name], took)
    added = timings["with"] - timings["without"]
    print(
        f"alert step of one submission: {timings['without'] * 1e6:.0f} us without a model, "
        f"{timings['with'] * 1e6:.0f} us with one ({added * 1e6:+.0f} us per submission)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    args = parser.parse_args()
    timing(args.episodes)
    evaluation()
    figures()


if __name__ == "__main__":
    main()
