#!/usr/bin/python3
"""The issues' speed targets, measured: each benchmark against its floor, in rounds.

Every target in the table below is a benchmark timed beside a floor (the bare Eigen kernel that
bounds it) with a limit on the ratio, or, for the rebalancer, a limit in microseconds. A round runs
each benchmark binary once, with its targets and floors interleaved at random over a few
repetitions, and takes the ratio of the two medians *within that run*. On a shared machine whose
speed drifts between runs (and whose floor moves with heap and code placement), a ratio is only
meaningful inside one run; the rounds show how far it moves from run to run. The report gives, for
each target and size, the median ratio over the rounds, its range, in how many rounds it was
within the limit, and the floor's median time (which tells a slow floor from a fast target when
builds or days are compared).

Usage (after `cmake --preset release && cmake --build --preset release --target
dynweight_benchmarks`):

    /usr/bin/python3 bench/ratios.py                      # every target, 5 rounds
    /usr/bin/python3 bench/ratios.py --issue 4 --rounds 9
    /usr/bin/python3 bench/ratios.py --build build/native --min-time 0.05 --rounds 1

Standard library only. Exit status: 0 when every benchmark ran (whether or not its target is
met), 1 with --fail-on-miss when a median misses its limit, 2 when a benchmark is missing or a
run fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Target:
    issue: int
    binary: str  # bench/dynweight_<binary>_bench
    benchmark: str
    floor: str | None  # None: `limit` is in microseconds
    sizes: tuple[int, ...]
    limit: float
    note: str = ""


# The targets as the issues state them (issue 3: the statistics engine; 4: shrinkage; 5: risk
# parity; 6: the rebalancer; 7: the pipeline). Rows marked "(reference)" are not targets of their
# own: they time the method an issue specified where the library's default differs, or a variant.
TARGETS = (
    Target(3, "stats", "BM_RollingCovUpdate", "BM_RankUpdateFloor", (100, 500, 1000), 1.5),
    Target(3, "stats", "BM_EwmaCovUpdate", "BM_RankOneUpdateFloor", (100, 500, 1000), 1.5),
    Target(4, "estimators", "BM_LedoitWolf", "BM_SampleCovarianceFloor", (10, 100, 500, 1000), 3.0),
    Target(4, "estimators", "BM_LedoitWolfRollingUpdate", "BM_RankUpdateFloor", (500,), 2.0),
    Target(4, "estimators", "BM_OasRollingUpdate", "BM_RankUpdateFloor", (500,), 2.0),
    Target(4, "estimators", "BM_ConstCorrRollingUpdate", "BM_RankUpdateFloor", (500,), 6.0,
           "default source: the window pass at W <= 2N"),
    Target(4, "estimators", "BM_ConstCorrRunningSums", "BM_RankUpdateFloor", (500,), 6.0,
           "(reference) the running sums the issue specified"),
    Target(5, "policies", "BM_RiskParityCold", "BM_CovMatVecFloor", (100, 500), 8.0),
    Target(5, "policies", "BM_RiskParityWarm", "BM_CovMatVecFloor", (100, 500), 2.0),
    Target(5, "policies", "BM_RiskParityWarmCarried", "BM_CovMatVecFloor", (100, 500), 2.0,
           "(reference) warm, Σx carried through the covariance's lineage"),
    Target(6, "rebalance", "BM_Rebalance", None, (1000,), 50.0, "limit in µs"),
    Target(7, "pipeline", "BM_PipelineStep", "BM_RankUpdateFloor", (500,), 15.0,
           "a bar that rebalances"),
    Target(7, "pipeline", "BM_PipelineStepNoRebalance", "BM_RankUpdateFloor", (500,), 3.0),
)

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def base_name(run_name: str) -> tuple[str, int]:
    """'BM_RiskParityCold/100/manual_time' -> ('BM_RiskParityCold', 100)."""
    parts = run_name.split("/")
    return parts[0], int(parts[1])


def run_binary(path: Path, names: set[str], sizes: set[int], repetitions: int,
               min_time: float) -> dict[tuple[str, int], float]:
    """One run of a benchmark binary: the median real time (ns) of each benchmark and size."""
    pattern = "^({})/({})(/manual_time)?$".format(
        "|".join(sorted(names)), "|".join(str(n) for n in sorted(sizes)))
    command = [str(path), f"--benchmark_filter={pattern}", "--benchmark_format=json",
               f"--benchmark_repetitions={repetitions}",
               "--benchmark_enable_random_interleaving=true",
               f"--benchmark_min_time={min_time}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{path.name} exited with {result.returncode}: {result.stderr.strip()}")
    times: dict[tuple[str, int], list[float]] = {}
    for entry in json.loads(result.stdout)["benchmarks"]:
        if entry.get("run_type") != "iteration":
            continue
        key = base_name(entry["run_name"])
        times.setdefault(key, []).append(entry["real_time"] * UNIT_NS[entry["time_unit"]])
    return {key: statistics.median(values) for key, values in times.items()}


Results = dict[tuple[str, str, int], list[tuple[float, float]]]


def measure(targets: list[Target], build: Path, rounds: int, repetitions: int,
            min_time: float) -> Results:
    """Per target (binary, benchmark, size), one (ratio or µs, floor µs or NaN) per round."""
    by_binary: dict[str, list[Target]] = {}
    for target in targets:
        by_binary.setdefault(target.binary, []).append(target)
    results: Results = {}
    for round_index in range(rounds):
        for binary, group in by_binary.items():
            path = build / "bench" / f"dynweight_{binary}_bench"
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: build the release preset's "
                                        "dynweight_benchmarks target first")
            names = {t.benchmark for t in group} | {t.floor for t in group if t.floor}
            sizes = {n for t in group for n in t.sizes}
            times = run_binary(path, names, sizes, repetitions, min_time)
            for target in group:
                for n in target.sizes:
                    key = (target.benchmark, n)
                    if key not in times or (target.floor and (target.floor, n) not in times):
                        raise KeyError(f"{binary}: no time for {target.benchmark}/{n}"
                                       + (f" or {target.floor}/{n}" if target.floor else ""))
                    floor = times[(target.floor, n)] if target.floor else float("nan")
                    value = times[key] / floor if target.floor else times[key] / 1e3
                    results.setdefault((binary, target.benchmark, n), []).append(
                        (value, floor / 1e3))
        print(f"round {round_index + 1} of {rounds} done", file=sys.stderr)
    return results


def figure(value: float) -> str:
    """Three significant digits, without an exponent."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def report(targets: list[Target], results: Results, rounds: int) -> bool:
    """Prints the Markdown table; returns whether every median is within its limit."""
    print("| issue | benchmark | against | N | limit | median | range | rounds within "
          "| floor (median) | |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---|")
    all_met = True
    for target in targets:
        unit = "×" if target.floor else " µs"
        for n in target.sizes:
            values = [value for value, _ in results[(target.binary, target.benchmark, n)]]
            floors = [floor for _, floor in results[(target.binary, target.benchmark, n)]]
            median = statistics.median(values)
            floor = f"{figure(statistics.median(floors))} µs" if target.floor else "—"
            within = sum(value <= target.limit for value in values)
            met = median <= target.limit
            if not target.note.startswith("(reference)"):
                all_met = all_met and met
            verdict = "met" if met else "**not met**"
            print(f"| {target.issue} | {target.benchmark} | {target.floor or '—'} | {n} "
                  f"| {target.limit:g}{unit} | {figure(median)}{unit} "
                  f"| {figure(min(values))}–{figure(max(values))} | {within} of {rounds} | {floor} "
                  f"| {verdict}{'; ' + target.note if target.note else ''} |")
    return all_met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=Path("build/release"),
                        help="the build directory holding bench/ (default: build/release)")
    parser.add_argument("--issue", type=int, action="append",
                        help="only this issue's targets (repeatable)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each binary (default 5)")
    parser.add_argument("--repetitions", type=int, default=3,
                        help="interleaved repetitions per run, whose median is taken (default 3)")
    parser.add_argument("--min-time", type=float, default=0.3,
                        help="Google Benchmark's --benchmark_min_time, seconds (default 0.3)")
    parser.add_argument("--fail-on-miss", action="store_true",
                        help="exit 1 when a target's median misses its limit")
    args = parser.parse_args()
    if args.rounds < 1 or args.repetitions < 1 or args.min_time <= 0:
        parser.error("--rounds and --repetitions must be >= 1 and --min-time > 0")
    targets = [t for t in TARGETS if not args.issue or t.issue in args.issue]
    if not targets:
        parser.error(f"no targets for issue(s) {args.issue}")
    try:
        results = measure(targets, args.build, args.rounds, args.repetitions, args.min_time)
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        print(f"ratios.py: {error}", file=sys.stderr)
        return 2
    all_met = report(targets, results, args.rounds)
    return 1 if args.fail_on_miss and not all_met else 0


if __name__ == "__main__":
    sys.exit(main())
