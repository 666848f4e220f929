"""Safe points: torn values after random interrupts of mutation loops, with and without them, and their cost.

For each loop of tests/mutations.py (a global collection mutated in the loop, or in a function
from an earlier cell), interrupts at random moments in a kernel with safe points (the default)
and one started with ``--SwiftKernel.safe_points=False``: interrupt -> reply latency, and the
trials whose global was torn afterwards (the check failed or crashed). Then the cost of the
checks: a tight loop's run time with and without safe points. Prints markdown tables and the
machine.

    .venv/bin/python bench/safe_points.py [--trials 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.neutral import KERNEL_CWD
from swift_kernel.toolchain import ensure_loader_path

TOOLCHAIN = ensure_loader_path([str(Path(__file__).resolve()), *sys.argv[1:]])

from jupyter_client.manager import start_new_kernel

from tests.mutations import MUTATIONS, run_trials
from tests.utils import execute

TIGHT_LOOP = "var sum = 0\nfor i in 0..<20_000_000 { sum &+= i }\nsum"
WITHOUT = ["--SwiftKernel.safe_points=False"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def started(arguments: list[str]) -> tuple[object, object]:
    km, kc = start_new_kernel(kernel_name="swift", startup_timeout=60, extra_arguments=arguments, cwd=KERNEL_CWD)
    assert execute(kc, "()").status == "ok"
    return km, kc


def torn_rows(trials: int) -> list[str]:
    rows = []
    for name, mutation in MUTATIONS.items():
        for through_function in (False, True):
            label = f"{name}{' (in a function from an earlier cell)' if through_function else ''}"
            for safe, arguments in (("yes", []), ("no", WITHOUT)):
                km, kc = started(arguments)
                try:
                    results = run_trials(kc, mutation, through_function, trials)
                finally:
                    kc.stop_channels()  # type: ignore[attr-defined]
                    km.shutdown_kernel(now=True)  # type: ignore[attr-defined]
                ms = [trial.latency * 1000 for trial in results if trial.latency > 0]
                torn = sum(1 for trial in results if trial.wrong)
                outside = sum(1 for trial in results if trial.outside_safe_point)
                rows.append(
                    f"| {label} | {safe} | {statistics.median(ms):.1f} | {percentile(ms, 0.99):.1f} | "
                    f"{torn}/{len(results)} | {outside} |"
                )
    return rows


def tight_loop_seconds(arguments: list[str], runs: int) -> float:
    km, kc = started(arguments)
    try:
        best = float("inf")
        for _ in range(runs):
            begun = time.perf_counter()
            assert execute(kc, TIGHT_LOOP, timeout=600).status == "ok"  # type: ignore[arg-type]
            best = min(best, time.perf_counter() - begun)
        return best
    finally:
        kc.stop_channels()  # type: ignore[attr-defined]
        km.shutdown_kernel(now=True)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=50, help="interrupts per loop and kernel")
    parser.add_argument("--runs", type=int, default=5, help="runs of the tight loop per kernel (best is kept)")
    args = parser.parse_args()
    rows = torn_rows(args.trials)
    with_points = tight_loop_seconds([], args.runs)
    without_points = tight_loop_seconds(WITHOUT, args.runs)
    cores, memory = os.cpu_count(), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    print(
        f"Machine: {platform.machine()}, {cores} cores, {memory:.0f} GiB, Linux {platform.release()}, "
        f"{TOOLCHAIN.version()}; {args.trials} interrupts per row at random moments; load {load:.1f} at the end\n"
    )
    print("| loop mutating a global | safe points | p50 ms | p99 ms | torn | stopped outside a safe point |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    overhead = (with_points / without_points - 1) * 100
    print(f"\n| `{TIGHT_LOOP.splitlines()[1]}` (best of {args.runs}) | time |")
    print("| --- | ---: |")
    print(f"| without safe points | {without_points * 1000:.0f} ms |")
    print(f"| with safe points | {with_points * 1000:.0f} ms ({overhead:+.1f}%) |")


if __name__ == "__main__":
    main()
