"""Measure Tab (complete_request) and Shift-Tab (inspect_request) latency over a 50-cell notebook.

Runs the installed ``swift`` kernel through jupyter_client, executes 50 cells (types, functions,
extensions, Foundation, loops), then times requests the way a frontend sends them, each with a
different edited cell so sourcekit-lsp re-reads the document every time. Prints the machine
and a table of p50/p90/max; latencies are client-side round trips (message to reply).

    .venv/bin/python bench/completion.py [--rounds 60] [--kernel swift]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import time

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel
from neutral import KERNEL_CWD

CELLS = 50


def notebook_cells() -> list[str]:
    """Return 50 cells that look like a data-exploration notebook."""
    cells = ["import Foundation"]
    for index in range(CELLS - 1):
        kind = index % 7
        if kind == 0:
            cells.append(
                f"/// Sample number {index}.\nstruct Sample{index} {{\n  var id: Int\n  var label: String\n"
                f'  var weight{index}: Double\n  func describe() -> String {{ "\\(id): \\(label)" }}\n}}'
            )
        elif kind == 1:
            cells.append(
                f"/// Scales a value by {index}.\nfunc scale{index}(_ value: Double) -> Double {{ value * {index} }}"
            )
        elif kind == 2:
            cells.append(f"var values{index} = (0..<100).map {{ Double($0) * {index} }}\nvalues{index}.count")
        elif kind == 3:
            cells.append(
                "extension Array where Element == Double {\n"
                f"  var mean{index}: Double {{ reduce(0, +) / Double(count) }}\n}}"
            )
        elif kind == 4:
            cells.append(
                f'let formatter{index} = DateFormatter()\nformatter{index}.dateFormat = "yyyy-MM-dd"\n'
                f"let today{index} = formatter{index}.string(from: Date())"
            )
        elif kind == 5:
            cells.append(f"var total{index} = 0\nfor i in 0..<{index} {{ total{index} += i }}\nprint(total{index})")
        else:
            cells.append(
                f'let sample{index} = Sample{index - 6}(id: {index}, label: "s{index}", weight{index - 6}: 1.5)'
            )
    return cells


def completion_requests(round_: int) -> list[tuple[str, int]]:
    """Return the (code, cursor) of one round of Tab presses, different every round."""
    n = round_ % 40
    return [
        (f"let a{n} = sample6.", len(f"let a{n} = sample6.")),  # members of a struct from an earlier cell
        (f"let b{n} = scal", len(f"let b{n} = scal")),  # functions from earlier cells
        (f"let c{n} = Date().timeInterval", len(f"let c{n} = Date().timeInterval")),  # Foundation
        (f"let d{n} = values2.mea", len(f"let d{n} = values2.mea")),  # an extension from an earlier cell
    ]


def inspect_requests(round_: int) -> list[tuple[str, int]]:
    """Return the (code, cursor) of one round of Shift-Tab presses."""
    n = round_ % 40
    return [
        (f"let e{n} = scale1(2)", len(f"let e{n} = scale")),
        (f"let f{n} = sample6.describe()", len(f"let f{n} = sample6.desc")),
        (f"let g{n} = formatter4.string(", len(f"let g{n} = formatter4.string(")),
    ]


def timed_complete(kc: BlockingKernelClient, code: str, cursor: int) -> tuple[float, bool]:
    """Return the seconds one complete_request took and whether it offered anything."""
    started = time.perf_counter()
    reply = kc.complete(code, cursor, reply=True, timeout=60)
    return time.perf_counter() - started, bool(reply["content"]["matches"])


def timed_inspect(kc: BlockingKernelClient, code: str, cursor: int) -> tuple[float, bool]:
    """Return the seconds one inspect_request took and whether it found something."""
    started = time.perf_counter()
    reply = kc.inspect(code, cursor, reply=True, timeout=60)
    return time.perf_counter() - started, bool(reply["content"]["found"])


def percentile(samples: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def machine() -> str:
    """Describe the machine: CPU, cores, memory, OS, Swift."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read(), re.MULTILINE)
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(re.search(r"MemTotal:\s+(\d+)", meminfo.read()).group(1))  # type: ignore[union-attr]
        memory = f"{kib / 2**20:.1f} GiB"
    except (OSError, AttributeError):
        pass
    swift = "unknown"
    for candidate in (os.environ.get("SWIFT_TOOLCHAIN", "/opt/swift") + "/usr/bin/swift", "swift"):
        try:
            out = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=60, check=False)
        except OSError:
            continue
        match = re.search(r"Swift version (\S+)", out.stdout + out.stderr)
        if match:
            swift = match.group(1)
            break
    return f"{cpu}; {os.cpu_count()} cores; {memory} memory; {platform.system()} {platform.release()}; Swift {swift}"


def row(name: str, samples: list[float], hits: int) -> str:
    """Format one table row in milliseconds."""
    ms = [s * 1000 for s in samples]
    return (
        f"| {name:<24} | {len(ms):>4} | {percentile(ms, 0.5):>7.1f} | {percentile(ms, 0.9):>7.1f} | "
        f"{max(ms):>7.1f} | {statistics.mean(ms):>7.1f} | {hits:>4} |"
    )


COMPLETION_LABELS = ["struct members (p.)", "earlier functions", "Foundation members", "extension members"]
INSPECT_LABELS = ["function", "method", "callee in call"]
Samples = dict[str, list[tuple[float, bool]]]


def run_notebook(kc: BlockingKernelClient) -> None:
    """Execute the 50 cells, failing on any error."""
    for cell in notebook_cells():
        msg_id = kc.execute(cell)
        reply = kc.get_shell_msg(timeout=120)
        while reply["parent_header"].get("msg_id") != msg_id:  # e.g. start_new_kernel's kernel_info_reply
            reply = kc.get_shell_msg(timeout=120)
        assert reply["content"]["status"] == "ok", (cell, reply["content"])


def warm_up(kc: BlockingKernelClient) -> tuple[float, bool]:
    """Return the first (cold) request's latency and hit, then warm sourcekit-lsp up."""
    first = timed_complete(kc, "let z = sample6.", 16)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not timed_complete(kc, "let z = sample6.", 16)[1]:
        pass
    for round_ in range(5):
        for code, cursor in completion_requests(1000 + round_):
            timed_complete(kc, code, cursor)
        for code, cursor in inspect_requests(1000 + round_):
            timed_inspect(kc, code, cursor)
    return first


def measure(kc: BlockingKernelClient, rounds: int) -> tuple[Samples, Samples]:
    """Time ``rounds`` rounds of completions and inspections."""
    completions: Samples = {label: [] for label in COMPLETION_LABELS}
    inspections: Samples = {label: [] for label in INSPECT_LABELS}
    for round_ in range(rounds):
        for label, (code, cursor) in zip(COMPLETION_LABELS, completion_requests(round_), strict=True):
            completions[label].append(timed_complete(kc, code, cursor))
        for label, (code, cursor) in zip(INSPECT_LABELS, inspect_requests(round_), strict=True):
            inspections[label].append(timed_inspect(kc, code, cursor))
    return completions, inspections


def table(name: str, samples: Samples) -> list[str]:
    """Return the rows for one request kind: all of them, then each case."""
    everything = [sample for case in samples.values() for sample in case]
    rows = [row(f"{name} (all)", [t for t, _ in everything], sum(hit for _, hit in everything))]
    for label, case in samples.items():
        rows.append(row(f"  {label}", [t for t, _ in case], sum(hit for _, hit in case)))
    return rows


def main() -> None:
    """Run the notebook, warm up, measure, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="rounds of 4 completions and 3 inspections")
    parser.add_argument("--kernel", default="swift", help="kernelspec name")
    args = parser.parse_args()

    km: KernelManager
    kc: BlockingKernelClient
    km, kc = start_new_kernel(kernel_name=args.kernel, startup_timeout=120, cwd=KERNEL_CWD)
    try:
        run_notebook(kc)
        first, first_hit = warm_up(kc)
        load_before = os.getloadavg()[0]
        completions, inspections = measure(kc, args.rounds)
        load_after = os.getloadavg()[0]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)

    print(f"Machine: {machine()}")
    print(f"Notebook: {CELLS} cells executed; {args.rounds} rounds after warm-up; client-side round trips in ms")
    print("'hits': replies that offered matches (complete) or found something (inspect)")
    print(f"First request after kernel start (cold sourcekit-lsp): {first * 1000:.0f} ms, matches: {first_hit}")
    # Other work on the machine shows up in the tail: say how busy it was.
    print(f"Load average (1 min) before / after the measured rounds: {load_before:.1f} / {load_after:.1f}")
    print()
    print(f"| {'request':<24} | {'n':>4} | {'p50':>7} | {'p90':>7} | {'max':>7} | {'mean':>7} | hits |")
    print(f"|{'-' * 26}|{'-' * 5}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|{'-' * 5}:|")
    for line in table("complete", completions) + table("inspect", inspections):
        print(line)


if __name__ == "__main__":
    main()
