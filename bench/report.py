"""Summarise the wrk results of one benchmark run (bench/run calls this).

Reads RESULTS_DIR/{floor,service}-<round>.json (written by submit.lua's done() hook), prints a
table of every round and of the medians, the service/floor ratios and the verdict against the
goal, writes the whole record as JSON to --out, and exits 0 on PASS, 1 otherwise.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

GOAL_CONNECTIONS = 16
GOAL_THROUGHPUT_RATIO = 0.5  # service req/s >= 50 % of the floor's
GOAL_P99_RATIO = 2.0  # service p99 <= 2x the floor's


def load_rounds(results: Path, app: str) -> list[dict[str, Any]]:
    rounds = []
    for path in sorted(results.glob(f"{app}-*.json"), key=lambda p: int(p.stem.split("-")[1])):
        rounds.append(json.loads(path.read_text()))
    return rounds


def median(rounds: list[dict[str, Any]]) -> dict[str, float]:
    result = {
        "rps": statistics.median(r["rps_ok"] for r in rounds),
        "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in rounds),
        "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in rounds),
        "non2xx": sum(r["non2xx"] for r in rounds),
        "socket_errors": sum(sum(r["socket_errors"].values()) for r in rounds),
        # CPU milliseconds per successful request (bench/cpu.py): what the code costs, whatever
        # else the machine runs; absent in results written before it was measured.
        "cpu_app_ms": statistics.median(
            r.get("cpu_ms_per_request", {}).get("app", 0.0) for r in rounds
        ),
        "cpu_postgres_ms": statistics.median(
            r.get("cpu_ms_per_request", {}).get("postgres", 0.0) for r in rounds
        ),
    }
    # WEBHOOKS=1: the worker's CPU per request of the round and per delivery attempt it made.
    worker = [
        r["cpu_ms_per_request"]["worker"]
        for r in rounds
        if "worker" in r.get("cpu_ms_per_request", {})
    ]
    if worker:
        result["cpu_worker_ms"] = statistics.median(worker)
    per_attempt = [
        r["worker_cpu_ms_per_attempt"] for r in rounds if "worker_cpu_ms_per_attempt" in r
    ]
    if per_attempt:
        result["cpu_worker_ms_per_attempt"] = statistics.median(per_attempt)
    return result


def expected_response_effect(
    rounds: dict[str, list[dict[str, Any]]], medians: dict[str, dict[str, float]]
) -> dict[str, Any] | None:
    """ETR=1: what the organisation with the model ("etr") costs against the one without
    ("service"), both on the same service in the same run: ratios of the medians, and of CPU
    per request round by round (the rounds of a pair ran back to back)."""
    if "etr" not in medians or "service" not in medians:
        return None
    with_model, without = medians["etr"], medians["service"]

    def ratio(a: float, b: float) -> float:
        return a / b if b else float("inf")

    effect: dict[str, Any] = {
        "throughput_etr_over_service": ratio(with_model["rps"], without["rps"]),
        "cpu_app_etr_over_service": ratio(with_model["cpu_app_ms"], without["cpu_app_ms"]),
        "cpu_postgres_etr_over_service": ratio(
            with_model["cpu_postgres_ms"], without["cpu_postgres_ms"]
        ),
    }
    total = [
        ratio(
            e["cpu_ms_per_request"]["app"] + e["cpu_ms_per_request"]["postgres"],
            s["cpu_ms_per_request"]["app"] + s["cpu_ms_per_request"]["postgres"],
        )
        for e, s in zip(rounds["etr"], rounds["service"], strict=False)
        if "cpu_ms_per_request" in e and "cpu_ms_per_request" in s
    ]
    effect["cpu_total_etr_over_service_by_round"] = total
    print(
        "expected-response model (etr: the organisation with one; service: without), medians: "
        f"throughput etr/service = {effect['throughput_etr_over_service']:.3f}, CPU per request "
        f"etr/service: app {effect['cpu_app_etr_over_service']:.3f}, PostgreSQL "
        f"{effect['cpu_postgres_etr_over_service']:.3f}; app + PostgreSQL by round: "
        + ", ".join(f"{r:.3f}" for r in total)
    )
    return effect


def problems(app: str, rounds: list[dict[str, Any]]) -> list[str]:
    found = []
    for i, r in enumerate(rounds, 1):
        if r["non2xx"]:
            statuses = ", ".join(
                f"{code} x {n}" for code, n in sorted(r["statuses"].items()) if code[0] != "2"
            )
            found.append(f"{app} round {i}: {r['non2xx']} non-2xx responses ({statuses})")
            found.extend(f"    e.g. {sample}" for sample in dict.fromkeys(r["error_samples"]))
        errors = {k: v for k, v in r["socket_errors"].items() if v}
        if errors:
            found.append(f"{app} round {i}: socket errors {errors}")
        if r["ok"] == 0:
            found.append(f"{app} round {i}: no successful request at all")
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", default="{}", help="the run's settings, as JSON")
    parser.add_argument("--service-skipped", default="", help="why the service was not measured")
    args = parser.parse_args()
    config = json.loads(args.config)

    rounds = {app: load_rounds(args.results, app) for app in ("floor", "service")}
    # ETR=1: the service loaded as a second organisation, the one with an expected-response model.
    etr_rounds = load_rounds(args.results, "etr")
    if etr_rounds:
        rounds["etr"] = etr_rounds
    medians = {app: median(r) for app, r in rounds.items() if r}

    row = "{:<10} {:>6} {:>10} {:>9} {:>9} {:>8} {:>8}"
    print()
    print(row.format("app", "round", "req/s", "p50 ms", "p99 ms", "non-2xx", "sock err"))
    for app, app_rounds in rounds.items():
        for i, r in enumerate(app_rounds, 1):
            lat = r["latency_ms"]
            socket_errors = sum(r["socket_errors"].values())
            print(
                row.format(
                    app,
                    i,
                    f"{r['rps_ok']:.1f}",
                    f"{lat['p50']:.2f}",
                    f"{lat['p99']:.2f}",
                    r["non2xx"],
                    socket_errors,
                )
            )
    print()
    print(row.format("app", "", "req/s", "p50 ms", "p99 ms", "non-2xx", "sock err"))
    for app, m in medians.items():
        print(
            row.format(
                app,
                "median",
                f"{m['rps']:.1f}",
                f"{m['p50_ms']:.2f}",
                f"{m['p99_ms']:.2f}",
                m["non2xx"],
                m["socket_errors"],
            )
        )
    print()

    issues = [issue for app, app_rounds in rounds.items() for issue in problems(app, app_rounds)]
    ratios: dict[str, float] = {}
    if "floor" in medians and "service" in medians:
        floor, service = medians["floor"], medians["service"]
        ratios = {
            "throughput": service["rps"] / floor["rps"] if floor["rps"] else 0.0,
            "p99": service["p99_ms"] / floor["p99_ms"] if floor["p99_ms"] else float("inf"),
        }
        print(
            f"ratio throughput service/floor = {ratios['throughput']:.2f}"
            f"   (goal >= {GOAL_THROUGHPUT_RATIO:.2f})"
        )
        print(f"ratio p99 service/floor = {ratios['p99']:.2f}   (goal <= {GOAL_P99_RATIO:.2f})")
        for app in medians:
            m = medians[app]
            worker = ""
            if "cpu_worker_ms" in m:
                worker = f", worker {m['cpu_worker_ms']:.3f} ms"
            if "cpu_worker_ms_per_attempt" in m:
                worker += f" ({m['cpu_worker_ms_per_attempt']:.3f} ms per delivery attempt)"
            print(
                f"CPU per request, {app}: app {m['cpu_app_ms']:.3f} ms, "
                f"PostgreSQL {m['cpu_postgres_ms']:.3f} ms{worker} (medians)"
            )
    etr_effect = expected_response_effect(rounds, medians)

    if args.service_skipped:
        verdict = "FAIL"
        issues.insert(0, f"service not measured: {args.service_skipped}")
    elif issues or not ratios:
        verdict = "INVALID"
    elif ratios["throughput"] >= GOAL_THROUGHPUT_RATIO and ratios["p99"] <= GOAL_P99_RATIO:
        verdict = "PASS"
    else:
        verdict = "FAIL"

    if issues:
        print("\n" + "!" * 78, file=sys.stderr)
        print("!!! NOT A VALID COMPARISON:", file=sys.stderr)
        for issue in issues:
            print(f"!!! {issue}", file=sys.stderr)
        print("!" * 78 + "\n", file=sys.stderr)
    connections = config.get("connections")
    if connections is not None and connections != GOAL_CONNECTIONS:
        print(
            f"note: the goal is defined at {GOAL_CONNECTIONS} connections; this run used "
            f"{connections}"
        )
    print(
        f"{verdict}: service throughput >= {GOAL_THROUGHPUT_RATIO:.0%} of the floor's and "
        f"p99 <= {GOAL_P99_RATIO:g}x the floor's, on PostgreSQL"
    )

    record = {
        "config": config,
        "rounds": rounds,
        "median": medians,
        "ratios": ratios,
        "expected_response": etr_effect,
        "goal": {
            "connections": GOAL_CONNECTIONS,
            "throughput_ratio_min": GOAL_THROUGHPUT_RATIO,
            "p99_ratio_max": GOAL_P99_RATIO,
        },
        "issues": issues,
        "verdict": verdict,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
