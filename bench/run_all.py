"""A notebook run at once after a start (Restart Kernel and Run All Cells): whose warnings come in time.

Starts a kernel and, from the moment ``start_new_kernel`` returns, sends quick cells one after the
other, each with a warning (``var w`` never mutated) and a print, each sent once the one before has
ended (its idle status), as JupyterLab's Run All does. For each cell: when its idle status came,
counted from that moment, and whether its warning came before it (JupyterLab shows only what comes
before). Kernelspecs alternate, run by run, so that the machine's state hits them alike.

    .venv/bin/python bench/run_all.py [--cells 12] [--runs 3] [--kernels swift swift-before]
        [--burners 3] [-- --SwiftKernel.warnings_start_wait=2]

Run it with the lock the other kernel benchmarks take (``flock /tmp/swift-kernel-tests.lock``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.display_payload import machine
from bench.neutral import KERNEL_CWD

TIMEOUT = 60.0


def cell(number: int) -> str:
    """A quick cell with one warning (``w`` is never mutated) and a print."""
    return f"func f{number}() -> Int {{\n    var w = {number}\n    return w\n}}\nprint(f{number}())"


def run_cells(kc: BlockingKernelClient, cells: int) -> list[tuple[float, bool]]:
    """Send ``cells`` cells in turn; return each one's idle time (s from now) and whether its warning came first."""
    started = time.perf_counter()
    ended = []
    for number in range(cells):
        msg_id = kc.execute(cell(number))
        warned = False
        while True:
            msg = kc.get_iopub_msg(timeout=TIMEOUT)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and "never mutated" in msg["content"]["text"]:
                warned = True
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        kc.get_shell_msg(timeout=TIMEOUT)
        ended.append((time.perf_counter() - started, warned))
    return ended


def one_run(kernel: str, cells: int, arguments: list[str]) -> list[tuple[float, bool]]:
    km, kc = start_new_kernel(kernel_name=kernel, cwd=KERNEL_CWD, extra_arguments=arguments)
    try:
        return run_cells(kc, cells)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kernels", nargs="+", default=["swift"])
    parser.add_argument("--burners", type=int, default=0, help="CPU-bound processes running meanwhile")
    parser.add_argument("arguments", nargs="*", help="the kernel's extra arguments (after --)")
    args = parser.parse_args()
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burners)]
    load_before = os.getloadavg()[0]
    rows: dict[str, list[list[tuple[float, bool]]]] = {kernel: [] for kernel in args.kernels}
    try:
        for _ in range(args.runs):
            for kernel in args.kernels:
                rows[kernel].append(one_run(kernel, args.cells, args.arguments))
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    print(f"{args.cells} quick cells with a warning each, sent at once after a start; {args.burners} CPU burners")
    print(f"kernel arguments: {' '.join(args.arguments) or '(none)'}")
    print()
    print("| kernel | run | warnings before the idle status | the first cell's idle status | the last cell's |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kernel, runs in rows.items():
        for index, ended in enumerate(runs, 1):
            shown = sum(warned for _, warned in ended)
            print(f"| {kernel} | {index} | {shown} of {len(ended)} | {ended[0][0]:.2f} s | {ended[-1][0]:.2f} s |")
        last = statistics.median(ended[-1][0] for ended in runs)
        print(f"| {kernel} | median | | | {last:.2f} s |")
    print()
    print(machine())
    print(f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
