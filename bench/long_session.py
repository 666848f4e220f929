"""A long session: memory and round trip every 100 cells over 2,000 cells, against LLDB alone.

The cells cycle through what a notebook holds: a variable, a function using it, a call, a struct,
an expression using both. Every 100 cells it records the resident memory of the kernel, its LLDB
host and the Swift process, and the median round trip of those 100 cells; the same cells then run
through LLDB alone (``bench/raw_lldb.py``: the kernel's session in a fresh process, no kernel),
and through a kernel with the warnings pass off (``--SwiftKernel.show_warnings=False``).

    .venv/bin/python bench/long_session.py [--cells 2000] [--every 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import psutil
from jupyter_client.manager import KernelManager

from bench.latency import TOOLCHAIN, evaluate, run
from bench.neutral import KERNEL_CWD
from bench.raw_lldb import raw_session

MIB = 1 << 20


def cell(n: int) -> str:
    """The ``n``-th cell of the session."""
    i = n // 5
    return [
        f"var v{i} = {i}",
        f"func f{i}(_ x: Int) -> Int {{ x + v{i} }}",
        f"f{i}(1)",
        f'struct S{i} {{ var a = {i}; var b = "s{i}" }}',
        f"S{i}().a + f{i}(v{i})",
    ][n % 5]


def rss(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    with suppress(psutil.NoSuchProcess):
        return process.memory_info().rss / MIB
    return 0.0


def kernel_session(cells: int, every: int, arguments: list[str]) -> list[dict[str, float]]:
    km = KernelManager(kernel_name="swift")
    km.start_kernel(extra_arguments=arguments, cwd=KERNEL_CWD)
    kc = km.client()
    kc.start_channels()
    rows: list[dict[str, float]] = []
    try:
        kc.wait_for_ready(timeout=120)
        assert run(kc, "1 + 1").result == "2"
        assert km.provisioner is not None and km.provisioner.process is not None
        kernel = psutil.Process(km.provisioner.process.pid)
        children = kernel.children(recursive=True)
        host = next(p for p in children if "swift_kernel.host" in " ".join(p.cmdline()))
        swift = next(p for p in children if p.name() == "repl_swift")
        window: list[float] = []
        for n in range(cells):
            reply = run(kc, cell(n))
            assert reply.status == "ok", (n, cell(n), reply)
            window.append(reply.seconds)
            if (n + 1) % every == 0:
                rows.append(
                    {
                        "cells": n + 1,
                        "kernel MiB": rss(kernel),
                        "host MiB": rss(host),
                        "swift MiB": rss(swift),
                        "p50 ms": statistics.median(window) * 1000,
                    }
                )
                window = []
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    return rows


def raw_child(cells: int, every: int) -> None:
    """LLDB alone (this process) evaluating the same cells; prints one JSON row per window."""
    this = psutil.Process()
    with raw_session(TOOLCHAIN) as session:
        evaluate(session, "1 + 1")
        swift = next(p for p in this.children(recursive=True) if p.name() == "repl_swift")
        window: list[float] = []
        for n in range(cells):
            started = time.perf_counter()
            evaluate(session, cell(n))
            window.append(time.perf_counter() - started)
            if (n + 1) % every == 0:
                row = {"cells": n + 1, "host MiB": rss(this), "swift MiB": rss(swift)}
                row["p50 ms"] = statistics.median(window) * 1000
                print(json.dumps(row), flush=True)
                window = []


def raw_session_rows(cells: int, every: int) -> list[dict[str, float]]:
    child = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--raw-child", "--cells", str(cells), "--every", str(every)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]


def growth(rows: list[dict[str, float]], key: str, start: int, end: int) -> float:
    """MiB per 100 cells of ``key`` between the rows at ``start`` and ``end`` cells (0 for one row)."""
    at = {int(r["cells"]): r[key] for r in rows}
    return (at[end] - at[start]) / (end - start) * 100 if end > start else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--raw-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_child:
        raw_child(args.cells, args.every)
        return
    sides = {
        "kernel": kernel_session(args.cells, args.every, []),
        "kernel, warnings off": kernel_session(args.cells, args.every, ["--SwiftKernel.show_warnings=False"]),
        "LLDB alone": raw_session_rows(args.cells, args.every),
    }
    print(f"load average {psutil.getloadavg()[0]:.2f}; {args.cells} cells\n")
    print("| cells | " + " | ".join(f"{name}: host+kernel MiB / Swift MiB / p50 ms" for name in sides) + " |")
    print("| ---: |" + " ---: |" * len(sides))
    for index, row in enumerate(sides["kernel"]):
        parts = []
        for rows in sides.values():
            r = rows[index]
            parts.append(f"{r['host MiB'] + r.get('kernel MiB', 0):.0f} / {r['swift MiB']:.0f} / {r['p50 ms']:.1f}")
        print(f"| {int(row['cells'])} | " + " | ".join(parts) + " |")
    first, last = args.every, args.cells
    middle = (last // 2 // args.every) * args.every
    if middle in (first, last):
        middle = last  # too few windows for two halves
    print()
    for name, rows in sides.items():
        early = growth(rows, "host MiB", first, middle)
        late = growth(rows, "host MiB", middle, last)
        at = {int(r["cells"]): r["p50 ms"] for r in rows}
        print(
            f"{name}: LLDB's process grows {early:.1f} MiB per 100 cells over cells {first}-{middle}, "
            f"{late:.1f} over {middle}-{last}; p50 {at[first]:.1f} ms at {first} cells, {at[last]:.1f} ms at {last}"
        )


if __name__ == "__main__":
    main()
