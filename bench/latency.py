"""Kernel overhead against raw LLDB: round trip, start-up, print throughput, memory per cell.

One run prints one markdown table (and the machine it ran on):

- a trivial expression: raw ``SBTarget.EvaluateExpression`` in a session set up exactly as the
  kernel's (``LLDBSession``: same ``repl_swift`` launch, prelude and expression options) against
  the kernel's execute_request -> execute_reply round trip through jupyter_client (p50, p90, ratio);
- kernel start (``KernelManager.start_kernel``) to the first ``execute_result``;
- 200k printed lines: time until the reply, every line delivered in order, peak kernel RSS; against
  the raw session with the Swift process's stdout going to a file;
- kernel RSS growth per 100 one-line cells.

``--startup`` prints only the start-up profile (each phase of a kernel's start, from the kernel's
and its LLDB host's ``start-up:`` debug-log lines, median of ``--starts``) and restart → first
result (median of ``--restarts``), right after a first result and after 2 s idle.

``--floors`` measures only the floors under any kernel, interleaved: ``bench/bare_kernel.py`` (the
messages alone, on pyzmq and jupyter_client's Session) and ``bench/null_kernel.py`` (ipykernel
answering at once), each cell's reply and its end (idle status), p50.

``--warnings-figures`` measures only what the warnings pass costs: the trivial expression's round
trip (p50) and a 1,000-line cell's round trip against raw LLDB compiling the same source.

``--large-cells N`` measures only the 1,000-line cell (issue 18, item 4): N trials, each a cell
to the kernel, to the kernel with ``--SwiftKernel.show_warnings=False`` and to raw LLDB, in an
order that alternates; each trial's ratio to raw, their median and range.

    .venv/bin/python bench/latency.py [--trials 200] [--lines 200000] [--cells 300]   (or: make bench)

It re-executes itself with the toolchain's libraries on LD_LIBRARY_PATH (as ``python -m swift_kernel``
does), because LLDB's Python module needs them and the loader reads the variable only at start.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.neutral import KERNEL_CWD
from swift_kernel.toolchain import ensure_loader_path, find_toolchain

# Re-run the script that runs (this one, or one that imports it first) with the toolchain's
# libraries on LD_LIBRARY_PATH if they are missing.
ensure_loader_path([str(Path(sys.argv[0]).resolve()), *sys.argv[1:]])

import psutil
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from bench.raw_lldb import raw_session
from swift_kernel.lldb_session import LLDBSession, compiled_source

TOOLCHAIN = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
EXPRESSION = "x + 1"
# The same as the kernel has LLDB compile it: its lines named (no safe point in front: the kernel's
# cancel callback stops a cell interrupted before it runs).
KERNEL_FORM = compiled_source(EXPRESSION, "<Cell 1>")[0]
# The kernelspec the kernel figures start (``--kernel``): ``swift``, or an older build to compare.
KERNEL_NAME = "swift"
TIMEOUT = 600.0
MIB = 1 << 20


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def print_cell(lines: int) -> str:
    return f'for i in 0..<{lines} {{ print("line \\(i)") }}'


def expected_output(lines: int) -> str:
    return "".join(f"line {i}\n" for i in range(lines))


# ----- raw LLDB -----------------------------------------------------------------------------------


def evaluate(session: LLDBSession, code: str, as_cell: bool = False) -> Any:
    """Run ``code`` with the REPL's options (``as_cell``: a cell's), straight through LLDB; fail on errors."""
    value = session.evaluate(code, as_cell)
    error = value.GetError()
    if not error.Success() and (error.GetCString() or "").strip() != "unknown error":
        raise RuntimeError(f"raw LLDB failed on {code!r}: {error.GetCString()}")
    return value


def raw_start_seconds() -> float:
    """Time creating the debugger, launching repl_swift with the kernel's prelude, and a first result."""
    started = time.perf_counter()
    with raw_session(TOOLCHAIN) as session:
        assert evaluate(session, "1 + 1").GetValue() == "2"
        return time.perf_counter() - started


def raw_rss_per_100_cells(cells: int) -> float:
    """Return how much a fresh process hosting only LLDB grows per 100 one-line statement cells.

    Measured in a child process: in this one, memory freed by the earlier raw sessions would be
    reused and hide the growth.
    """
    child = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--raw-rss-child", "--cells", str(cells)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    return float(child.stdout.strip().splitlines()[-1])


def _raw_rss_child(cells: int) -> float:
    this = psutil.Process()
    with raw_session(TOOLCHAIN) as session:
        evaluate(session, "var counter = 0")
        before = this.memory_info().rss
        for i in range(cells):
            evaluate(session, f"counter += {i}")
        return (this.memory_info().rss - before) / cells * 100


def raw_expression_seconds(session: LLDBSession, code: str = EXPRESSION) -> float:
    """Time one raw evaluation of the trivial expression, reading its value as the kernel does.

    The kernel's form of the cell (``KERNEL_FORM``) is evaluated with a cell's options, cancel callback and all.
    """
    started = time.perf_counter()
    value = evaluate(session, code, as_cell=code == KERNEL_FORM)
    result = value.GetValue()
    seconds = time.perf_counter() - started
    assert result == "42", result
    return seconds


def raw_print_seconds(lines: int, buffered: bool) -> float:
    """Time the print cell in a raw session whose stdout is a file; check the file holds every line."""
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "stdout.txt")
        Path(path).touch()
        with raw_session(TOOLCHAIN, path) as session:
            evaluate(session, "import Glibc")
            if buffered:
                # The C default for a file; the kernel's prelude makes stdout unbuffered instead.
                evaluate(session, "setvbuf(stdout, nil, _IOFBF, 1 << 16)")
            started = time.perf_counter()
            evaluate(session, print_cell(lines) + "\nfflush(stdout)")
            seconds = time.perf_counter() - started
        if Path(path).read_text() != expected_output(lines):
            raise RuntimeError("raw LLDB's output file does not hold every line in order")
    return seconds


# ----- the kernel ---------------------------------------------------------------------------------


@dataclass
class Reply:
    seconds: float  # execute_request sent -> execute_reply received
    ended: float  # execute_request sent -> the cell's idle status received (when frontends call it done)
    status: str
    result: str | None
    stdout: str
    stream_messages: int


def run(kc: BlockingKernelClient, code: str, collect_output: bool = True) -> Reply:
    """Execute ``code``; time the round trip to the reply, then read its iopub messages up to idle."""
    started = time.perf_counter()
    msg_id = kc.execute(code)
    while True:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    seconds = time.perf_counter() - started
    result, stdout, stream_messages = None, [], 0
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "execute_result":
            result = msg["content"]["data"]["text/plain"]
        elif kind == "stream" and msg["content"]["name"] == "stdout" and collect_output:
            stdout.append(msg["content"]["text"])
            stream_messages += 1
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            break
    ended = time.perf_counter() - started
    return Reply(seconds, ended, reply["content"]["status"], result, "".join(stdout), stream_messages)


@dataclass
class Start:
    ready: float  # start_kernel() -> first kernel_info_reply
    first_result: float  # start_kernel() -> execute_result of the first cell


@contextmanager
def kernel(arguments: list[str] | None = None) -> Iterator[tuple[KernelManager, BlockingKernelClient, Start]]:
    """Start the installed ``swift`` kernel; also yield how long it took to answer and to run a cell."""
    km = KernelManager(kernel_name=KERNEL_NAME)
    started = time.perf_counter()
    km.start_kernel(extra_arguments=arguments or [], cwd=KERNEL_CWD)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        ready = time.perf_counter() - started
        first = run(kc, "1 + 1")
        start = Start(ready, time.perf_counter() - started)
        assert first.result == "2", first
        yield km, kc, start
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


# ----- start-up profile and restart ---------------------------------------------------------------

# The phases the kernel and its LLDB host log (``start-up: ...`` lines in $SWIFT_KERNEL_LOG), in
# the order they happen: a name, and a pattern its line matches.
PHASES = [
    ("kernel process running (Python started, `python -m swift_kernel`)", r"start-up: kernel process"),
    ("LLDB host process spawned", r"start-up: LLDB host spawned"),
    ("kernel sockets bound, kernel_info answered from here on (startup.py)", r"start-up: kernel sockets bound"),
    ("ipykernel and the kernel's modules imported", r"start-up: kernel modules imported"),
    ("LLDB host has its first request (Python started, host modules imported)", r"start-up: the LLDB host has"),
    ("LLDB loaded, debugger created", r"start-up: LLDB loaded"),
    ("launching `repl_swift`", r"start-up: launching"),
    ("`repl_swift` stopped at repl_main", r"start-up: Swift process \d+ stopped at repl_main"),
    ("kernel's Swift library imported, its set-up run: Swift process ready", r"start-up: Swift process \d+ ready"),
    ("kernel answering on its sockets", r"start-up: kernel ready"),
]


def log_times(path: Path) -> list[tuple[float, str]]:
    """Return (epoch seconds, message) of each ``start-up:`` line of a kernel's debug log."""
    times = []
    for line in path.read_text().splitlines():
        if "start-up: " not in line:
            continue
        stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        times.append((stamp, line[line.index("start-up: ") :]))
    return times


def phase_offsets(times: list[tuple[float, str]], started: float) -> dict[str, float]:
    """Map each phase to the seconds after ``started`` of the first line that matches it."""
    offsets: dict[str, float] = {}
    for name, pattern in PHASES:
        stamp = next((stamp for stamp, message in times if re.match(pattern, message)), None)
        if stamp is not None:
            offsets[name] = stamp - started
    return offsets


def startup_profile(starts: int) -> tuple[list[dict[str, float]], list[float], list[float], list[dict[str, float]]]:
    """Start the kernel ``starts`` times with a debug log.

    Returns phase offsets, ready and first-result times, and the CPU seconds each of the kernel's
    processes had used by the first result.
    """
    profiles, ready, first, cpu = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="swift-kernel-startup-") as folder:
        for n in range(starts):
            log = Path(folder) / f"kernel-{n}.log"
            os.environ["SWIFT_KERNEL_LOG"] = str(log)
            try:
                started = time.time()
                with kernel() as (km, _, start):
                    cpu.append(cpu_seconds(kernel_process(km)))
                    ready.append(start.ready)
                    first.append(start.first_result)
            finally:
                del os.environ["SWIFT_KERNEL_LOG"]
            profiles.append(phase_offsets(log_times(log), started))
    return profiles, ready, first, cpu


def cpu_seconds(process: psutil.Process) -> dict[str, float]:
    """Return the CPU seconds (user and system) of ``process`` and its descendants, by kind of process."""
    used: dict[str, float] = {}
    for each in [process, *process.children(recursive=True)]:
        with suppress(psutil.Error):
            command = " ".join(each.cmdline())
            if each.pid == process.pid:
                kind = "kernel"
            elif "swift_kernel.host" in command:
                kind = "LLDB host"
            else:
                kind = each.name()
            times = each.cpu_times()
            used[kind] = used.get(kind, 0.0) + times.user + times.system
    return used


def restart_figures(restarts: int, idle: float = 0.0) -> list[tuple[float, float, float]]:
    """Restart a kernel ``restarts`` times: (restart call, → kernel_info reply, → first result) seconds.

    Each restart comes right after the first result of the kernel before it, or, with ``idle``,
    once that kernel has sat idle that long (its start-up's background work done, as when a user
    restarts a kernel they have worked with).
    """
    figures = []
    with kernel() as (km, kc, _):
        assert run(kc, "let kept = 1").status == "ok"
        for _ in range(restarts):
            time.sleep(idle)
            started = time.perf_counter()
            km.restart_kernel(now=False)
            returned = time.perf_counter() - started
            kc.wait_for_ready(timeout=120)
            answered = time.perf_counter() - started
            reply = run(kc, "1 + 1")
            assert reply.result == "2", reply
            figures.append((returned, answered, time.perf_counter() - started))
    return figures


def print_startup_figures(starts: int, restarts: int) -> None:
    """Print the --startup tables: each start-up phase's time, and restart → first result."""
    load_before = os.getloadavg()[0]
    raw_start = statistics.median(raw_start_seconds() for _ in range(3))
    profiles, ready, first, cpu = startup_profile(starts)
    restarts_taken = restart_figures(restarts)
    restarts_idle = restart_figures(restarts, idle=2.0)
    print(machine())
    print(f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print()
    print(f"Start-up profile: median seconds after `KernelManager.start_kernel` was called, of {starts} starts")
    print()
    print("| phase | at (s) | since the phase before it in its process (s) |")
    print("| --- | ---: | ---: |")
    kernel_side = {PHASES[0][0], PHASES[1][0], PHASES[2][0], PHASES[3][0], PHASES[-1][0]}
    last: dict[bool, float] = {}
    for name, _ in PHASES:
        values = [p[name] for p in profiles if name in p]
        if not values:
            continue
        at = statistics.median(values)
        side = name in kernel_side
        since = f"{at - last[side]:.3f}" if side in last else ""
        last[side] = at
        print(f"| {name} | {at:.3f} | {since} |")
    print(f"| first kernel_info reply (client) | {statistics.median(ready):.3f} | |")
    print(f"| first result of `1 + 1` (client) | {statistics.median(first):.3f} | |")
    print(f"| raw LLDB: debugger, launch, prelude, `1 + 1` (median of 3) | {raw_start:.3f} | |")
    print()
    by_kind = {kind: statistics.median(u.get(kind, 0.0) for u in cpu) for used in cpu for kind in used}
    total = statistics.median(sum(used.values()) for used in cpu)
    parts = ", ".join(f"{kind} {seconds:.2f} s" for kind, seconds in sorted(by_kind.items(), key=lambda k: -k[1]))
    cores = os.cpu_count() or 1
    print(
        f"CPU used by the kernel's processes by the first result, median of {starts}: {total:.2f} s ({parts}); "
        f"{cores} cores over the {statistics.median(first):.2f} s to the first result give "
        f"{cores * statistics.median(first):.2f} s: {total / (cores * statistics.median(first)):.0%} of them"
    )
    print()
    for taken, when in ((restarts_taken, "right after a first result"), (restarts_idle, "after 2 s idle")):
        calls = [r[0] for r in taken]
        answers = [r[1] for r in taken]
        results = [r[2] for r in taken]
        print(
            f"Restart (`KernelManager.restart_kernel`) {when}, median of {restarts}: the call returns at "
            f"{statistics.median(calls):.2f} s, kernel_info answered at {statistics.median(answers):.2f} s, "
            f"first result at {statistics.median(results):.2f} s (runs: {', '.join(f'{r:.2f}' for r in results)})"
        )


def kernel_process(km: KernelManager) -> psutil.Process:
    assert km.provisioner is not None and km.provisioner.process is not None
    return psutil.Process(km.provisioner.process.pid)


def kernel_rss(process: psutil.Process) -> int:
    """Return the kernel's resident memory, with its LLDB host process's when LLDB runs in one."""
    rss = int(process.memory_info().rss)
    for child in process.children():
        with suppress(psutil.NoSuchProcess):
            if child.name().startswith("python"):
                rss += child.memory_info().rss
    return rss


class PeakRSS:
    """Sample a process's resident memory on a thread until stopped."""

    def __init__(self, process: psutil.Process, interval: float = 0.005) -> None:
        self.process, self.interval = process, interval
        self.peak = kernel_rss(process)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, kernel_rss(self.process))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def kernel_figures(trials: int, lines: int, cells: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with kernel() as (km, kc, start_to_result), raw_session(TOOLCHAIN) as raw:
        figures["start"] = [start_to_result]
        process = kernel_process(km)
        assert run(kc, "let x = 41").status == "ok"
        evaluate(raw, "let x = 41")
        for _ in range(20):
            run(kc, EXPRESSION)
            raw_expression_seconds(raw)
        # Interleaved, so that load from elsewhere on the machine weighs on both sides alike.
        figures["round trip"], figures["raw"] = [], []
        for _ in range(trials):
            reply = run(kc, EXPRESSION)
            assert reply.result == "42", reply
            figures["round trip"].append(reply.seconds)
            figures["raw"].append(raw_expression_seconds(raw))

        assert run(kc, "var counter = 0").status == "ok"
        before = kernel_rss(process)
        started = time.perf_counter()
        for i in range(cells):
            assert run(kc, f"counter += {i}").status == "ok"
        figures["cells seconds"] = time.perf_counter() - started
        figures["rss per 100 cells"] = (kernel_rss(process) - before) / cells * 100
        figures["rss before print"] = kernel_rss(process)
        with PeakRSS(process) as peak:
            reply = run(kc, print_cell(lines))
        figures["print seconds"] = reply.seconds
        figures["print in order"] = reply.status == "ok" and reply.stdout == expected_output(lines)
        figures["print messages"] = reply.stream_messages
        figures["print peak rss"] = peak.peak
    for _ in range(4):  # more starts, for a median
        with kernel() as (_, _, start_to_result):
            figures["start"].append(start_to_result)
    return figures


def large_cell(lines: int, tag: str) -> str:
    """Return a cell of ``lines`` lines: functions of ten lines, each with a few statements."""
    functions = []
    for f in range(lines // 10):
        body = "".join(f"    let s{j} = a &* {j} &+ s{j - 1}\n" for j in range(1, 7))
        functions.append(f"func big{tag}_{f}(_ a: Int) -> Int {{\n    let s0 = a\n{body}    return s6\n}}\n")
    return "".join(functions)


def warnings_figures(
    trials: int, arguments: list[str], large_trials: int = 5, lines: int = 1000
) -> dict[str, list[float]]:
    """Time the trivial expression (kernel and raw, interleaved) and a 1,000-line cell (kernel and raw)."""
    figures: dict[str, list[float]] = {
        "round trip": [],
        "ended": [],
        "raw": [],
        "form session: plain": [],
        "form session: as the kernel compiles it": [],
        "null": [],
        "null ended": [],
        "hop": [],
        "hop ended": [],
        "large": [],
        "large raw": [],
    }
    with (
        kernel(arguments) as (_, kc, _),
        raw_session(TOOLCHAIN) as raw,
        # What the kernel's form of the cell costs LLDB: the two forms in turn in a session of
        # their own (LLDB's evaluations slow down as a session's expressions add up, so ``raw``
        # keeps as many as the kernel's session; two sessions differ by more than the form does).
        raw_session(TOOLCHAIN) as raw_form,
        other_kernel("null") as null,
        other_kernel("null-hop") as hop,
    ):
        assert run(kc, "let x = 41").status == "ok"
        evaluate(raw, "let x = 41")
        evaluate(raw_form, "let x = 41")
        for _ in range(20):
            run(kc, EXPRESSION)
            raw_expression_seconds(raw)
            raw_expression_seconds(raw_form)
            raw_expression_seconds(raw_form, KERNEL_FORM)
            run(null, EXPRESSION)
            run(hop, EXPRESSION)
        for _ in range(trials):
            reply = run(kc, EXPRESSION)
            assert reply.result == "42", reply
            figures["round trip"].append(reply.seconds)
            figures["ended"].append(reply.ended)
            figures["raw"].append(raw_expression_seconds(raw))
            forms = [("form session: plain", EXPRESSION), ("form session: as the kernel compiles it", KERNEL_FORM)]
            for name, code in forms if len(figures["raw"]) % 2 else reversed(forms):
                figures[name].append(raw_expression_seconds(raw_form, code))
            # ipykernel's floor in the same moment: the machine's speed moves it as much as the kernel.
            floor = run(null, EXPRESSION)
            figures["null"].append(floor.seconds)
            figures["null ended"].append(floor.ended)
            floor = run(hop, EXPRESSION)
            figures["hop"].append(floor.seconds)
            figures["hop ended"].append(floor.ended)
        for trial in range(large_trials):
            sides = [("large", kc), ("large raw", raw)]
            for name, side in sides if trial % 2 == 0 else reversed(sides):
                tag = f"{'r' if side is raw else 'k'}{trial}"  # one name per function in each session
                figures[name].append(large_cell_seconds(side, lines, tag))
    return figures


def large_cell_seconds(side: BlockingKernelClient | LLDBSession, lines: int, tag: str) -> float:
    """Time one cell of ``lines`` lines (``large_cell``): a kernel's round trip, or raw LLDB's evaluation."""
    code = large_cell(lines, tag)
    if isinstance(side, LLDBSession):
        started = time.perf_counter()
        evaluate(side, code)
        return time.perf_counter() - started
    reply = run(side, code)
    assert reply.status == "ok", reply
    return reply.seconds


def print_large_cells(trials: int, arguments: list[str], lines: int = 1000) -> None:
    """Print the --large-cells table: the kernel with and without warnings against raw LLDB, trial by trial."""
    load_before = os.getloadavg()[0]
    seconds: dict[str, list[float]] = {"kernel": [], "kernel, show_warnings=False": [], "raw LLDB": []}
    with (
        kernel(arguments) as (_, with_warnings, _),
        kernel([*arguments, "--SwiftKernel.show_warnings=False"]) as (_, without, _),
        raw_session(TOOLCHAIN) as raw,
    ):
        sides: list[tuple[str, BlockingKernelClient | LLDBSession]] = [
            ("kernel", with_warnings),
            ("kernel, show_warnings=False", without),
            ("raw LLDB", raw),
        ]
        for trial in range(trials):
            # Alternating, so that neither side always follows the other's leftovers (sourcekit-lsp
            # may still be checking the kernel's cell when its reply is out).
            for number, (name, side) in enumerate(sides if trial % 2 == 0 else reversed(sides)):
                seconds[name].append(large_cell_seconds(side, lines, f"t{trial}s{number}"))
    print(machine())
    print(f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print()
    print(f"| {lines:,}-line cell, {trials} trials | median | each trial / raw LLDB's, median (min-max) |")
    print("| --- | ---: | ---: |")
    raw_seconds = seconds["raw LLDB"]
    for name, values in seconds.items():
        ratios = [value / base for value, base in zip(values, raw_seconds, strict=True)]
        spread = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        print(f"| {name} | {statistics.median(values):.2f} s | {spread if name != 'raw LLDB' else ''} |")


def print_warnings_figures(trials: int, arguments: list[str]) -> None:
    """Print the --warnings-figures table."""
    load_before = os.getloadavg()[0]
    w = warnings_figures(trials, arguments)
    p50 = statistics.median
    print(machine())
    print(f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"kernel arguments: {' '.join(arguments) or '(none)'}")
    print()
    print("| measure | kernel | raw LLDB | kernel vs raw |")
    print("| --- | --- | --- | --- |")
    rt, raw, ended = p50(w["round trip"]), p50(w["raw"]), p50(w["ended"])
    trivial = f"trivial `{EXPRESSION}`, p50 of {trials}: reply"
    print(f"| {trivial} | {rt * 1000:.1f} ms | {raw * 1000:.1f} ms | {rt / raw:.2f}x |")
    print(f"| same: the cell's end (idle status) | {ended * 1000:.1f} ms | {raw * 1000:.1f} ms | {ended / raw:.2f}x |")
    null, null_ended = p50(w["null"]), p50(w["null ended"])
    print(
        f"| floor, interleaved: bench/null_kernel.py's reply / end | {null * 1000:.1f} / {null_ended * 1000:.1f} ms "
        f"| | best ratio on ipykernel: {(raw + null) / raw:.2f}x / {(raw + null_ended) / raw:.2f}x |"
    )
    form_cost = p50(w["form session: as the kernel compiles it"]) - p50(w["form session: plain"])
    form = raw + form_cost
    print(
        f"| raw LLDB compiling the cell as the kernel does (#sourceLocation, cancel callback; the two forms in turn "
        f"in a second session) | | {form * 1000:.1f} ms | {rt / form:.2f}x; the form costs {form_cost * 1000:.1f} ms |"
    )
    hop, hop_ended = p50(w["hop"]), p50(w["hop ended"])
    print(
        f"| floor with a process hop, interleaved: null-hop's reply / end | {hop * 1000:.1f} / {hop_ended * 1000:.1f} "
        f"ms | | best ratio with LLDB in a process of its own: {(raw + hop) / raw:.2f}x / "
        f"{(raw + hop_ended) / raw:.2f}x |"
    )
    print(
        f"| the kernel's own, beyond raw and the floor: reply / end | {(rt - raw - null) * 1000:.1f} / "
        f"{(ended - raw - null_ended) * 1000:.1f} ms | | |"
    )
    print(
        f"| the same beyond the kernel's form and the floor with a process hop: reply / end | "
        f"{(rt - form - hop) * 1000:.1f} / {(ended - form - hop_ended) * 1000:.1f} ms | | |"
    )
    large, large_raw, runs = p50(w["large"]), p50(w["large raw"]), len(w["large"])
    print(f"| 1,000-line cell, median of {runs} | {large:.2f} s | {large_raw:.2f} s | {large / large_raw:.2f}x |")


def print_floors(trials: int) -> None:
    """Print the --floors table: the messages alone against ipykernel answering at once."""
    load_before = os.getloadavg()[0]
    floors: dict[str, tuple[list[float], list[float]]] = {"bare": ([], []), "null": ([], [])}
    with other_kernel("bare") as bare, other_kernel("null") as null:
        clients = {"bare": bare, "null": null}
        for trial in range(20 + trials):
            for name, client in clients.items():
                reply = run(client, EXPRESSION)
                if trial >= 20:
                    floors[name][0].append(reply.seconds)
                    floors[name][1].append(reply.ended)
    p50 = statistics.median
    print(machine())
    print(f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print()
    print(f"| kernel (p50 of {trials}, interleaved) | reply | the cell's end (idle status) |")
    print("| --- | ---: | ---: |")
    names = {"bare": "bench/bare_kernel.py: the messages alone", "null": "bench/null_kernel.py: ipykernel"}
    for name, (replies, ends) in floors.items():
        print(f"| {names[name]} | {p50(replies) * 1000:.2f} ms | {p50(ends) * 1000:.2f} ms |")
    (bare_replies, bare_ends), (null_replies, null_ends) = floors["bare"], floors["null"]
    print(
        f"| ipykernel's own share | {(p50(null_replies) - p50(bare_replies)) * 1000:.2f} ms "
        f"| {(p50(null_ends) - p50(bare_ends)) * 1000:.2f} ms |"
    )


def python_kernel_round_trips(trials: int, kernel_name: str = "python3") -> list[float]:
    """Round trips of ``1 + 1`` on ipykernel's own python kernel: what the Jupyter hop costs anyway."""
    with other_kernel(kernel_name) as kc:
        for _ in range(20):
            run(kc, "1 + 1")
        return [run(kc, "1 + 1").seconds for _ in range(trials)]


@contextmanager
def other_kernel(kernel_name: str) -> Iterator[BlockingKernelClient]:
    """Start an installed kernel, or bench/null_kernel.py: ``null`` (ipykernel's floor, no IPython at all)
    or ``null-hop`` (the same through a child process, the LLDB host's shape), or bench/bare_kernel.py:
    ``bare`` (the messages alone, no ipykernel)."""
    with tempfile.TemporaryDirectory(prefix="null-kernelspec-") as spec_dir:
        if kernel_name in ("null", "null-hop", "bare"):
            # From a throw-away kernelspec in ``spec_dir``; null-hop: through a child process and back.
            (Path(spec_dir) / kernel_name).mkdir()
            script = "bare_kernel.py" if kernel_name == "bare" else "null_kernel.py"
            argv = [sys.executable, str(HERE / script), "-f", "{connection_file}"]
            spec = {"argv": argv, "language": "text", "env": {"NULL_KERNEL_HOP": str(int(kernel_name == "null-hop"))}}
            (Path(spec_dir) / kernel_name / "kernel.json").write_text(json.dumps(spec))
            manager = KernelSpecManager(kernel_dirs=[spec_dir])
            km = KernelManager(kernel_name=kernel_name, kernel_spec_manager=manager)
        else:
            km = KernelManager(kernel_name=kernel_name)
        km.start_kernel(cwd=KERNEL_CWD)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            yield kc
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)


# ----- report -------------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"Machine: {os.cpu_count()} cores ({model}), {memory:.1f} GiB RAM, Linux {platform.release()}, "
        f"{TOOLCHAIN.version()}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200, help="round trips per side")
    parser.add_argument("--lines", type=int, default=200_000, help="lines the print cell writes")
    parser.add_argument("--cells", type=int, default=300, help="one-line cells for the memory figure")
    load_before = os.getloadavg()[0]
    parser.add_argument("--raw-rss-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warnings-figures", action="store_true", help="only the warnings pass's figures")
    parser.add_argument("--floors", action="store_true", help="only the floors: no ipykernel, and ipykernel")
    parser.add_argument("--large-cells", type=int, default=0, help="only the 1,000-line cell, this many trials")
    parser.add_argument("--kernel", default="swift", help="the kernelspec to measure (default: swift)")
    parser.add_argument("--startup", action="store_true", help="only the start-up profile and restart figures")
    parser.add_argument("--starts", type=int, default=7, help="kernel starts for the start-up profile")
    parser.add_argument("--restarts", type=int, default=5, help="restarts for the restart figure")
    parser.add_argument("--kernel-arg", action="append", default=[], help="an argument for the kernel (repeatable)")
    args = parser.parse_args()
    global KERNEL_NAME  # noqa: PLW0603 - one setting for every kernel() of this run
    KERNEL_NAME = args.kernel
    # The modes that measure one thing only, each instead of the whole table.
    only: list[tuple[object, Callable[[], None]]] = [
        (args.warnings_figures, lambda: print_warnings_figures(args.trials, args.kernel_arg)),
        (args.large_cells, lambda: print_large_cells(args.large_cells, args.kernel_arg)),
        (args.floors, lambda: print_floors(args.trials)),
        (args.startup, lambda: print_startup_figures(args.starts, args.restarts)),
        (args.raw_rss_child, lambda: print(_raw_rss_child(args.cells))),
    ]
    for chosen, measure in only:
        if chosen:
            measure()
            return

    raw_start = statistics.median(raw_start_seconds() for _ in range(3))
    raw_rss = raw_rss_per_100_cells(args.cells)
    raw_print_unbuffered = raw_print_seconds(args.lines, buffered=False)
    raw_print_buffered = raw_print_seconds(args.lines, buffered=True)
    k = kernel_figures(args.trials, args.lines, args.cells)
    raw = k["raw"]
    python_round_trip = python_kernel_round_trips(args.trials)
    null_round_trip = python_kernel_round_trips(args.trials, "null")

    ms: Callable[[float], str] = lambda seconds: f"{seconds * 1000:.1f} ms"  # noqa: E731 - a formatter
    raw_p50, raw_p90 = statistics.median(raw), percentile(raw, 0.9)
    rt_p50, rt_p90 = statistics.median(k["round trip"]), percentile(k["round trip"], 0.9)
    start = statistics.median(s.first_result for s in k["start"])
    ready = statistics.median(s.ready for s in k["start"])
    lines_per_second = args.lines / k["print seconds"]
    share_unbuffered = raw_print_unbuffered / k["print seconds"]
    share_buffered = raw_print_buffered / k["print seconds"]
    rows = [
        (f"trivial expression `{EXPRESSION}`, p50", ms(rt_p50), ms(raw_p50), f"{rt_p50 / raw_p50:.2f}x", "≤ 1.2x"),
        (f"trivial expression `{EXPRESSION}`, p90", ms(rt_p90), ms(raw_p90), f"{rt_p90 / raw_p90:.2f}x", ""),
        (
            "anchor: ipykernel's python kernel, `1 + 1` round trip, p50 / p90",
            f"{ms(statistics.median(python_round_trip))} / {ms(percentile(python_round_trip, 0.9))}",
            "",
            f"kernel - raw at p50: {ms(rt_p50 - raw_p50)}",
            "",
        ),
        (
            "floor: bench/null_kernel.py (ipykernel answering at once), round trip p50 / p90",
            f"{ms(statistics.median(null_round_trip))} / {ms(percentile(null_round_trip, 0.9))}",
            "",
            f"best ratio any ipykernel kernel can reach here: "
            f"{(raw_p50 + statistics.median(null_round_trip)) / raw_p50:.2f}x",
            "",
        ),
        (
            f"kernel start → first result (median of {len(k['start'])})",
            f"{start:.2f} s (runs: {', '.join(f'{s.first_result:.2f}' for s in k['start'])}); "
            f"first kernel_info reply at {ready:.2f} s",
            f"{raw_start:.2f} s (debugger, launch, prelude, `1 + 1`; median of 3)",
            f"{start / raw_start:.1f}x",
            "≤ 2 s",
        ),
        (
            f"{args.lines:,} printed lines: time",
            f"{k['print seconds']:.2f} s ({lines_per_second:,.0f} lines/s)",
            f"{raw_print_unbuffered:.2f} s unbuffered (kernel's prelude) / {raw_print_buffered:.2f} s block-buffered",
            f"kernel at {share_unbuffered:.0%} / {share_buffered:.0%} of raw speed",
            "≥ 50% of raw",
        ),
        (
            f"{args.lines:,} printed lines: all delivered in order",
            ("yes" if k["print in order"] else "**no**") + f" ({k['print messages']} stream messages)",
            "yes (file checked)",
            "",
            "yes",
        ),
        (
            f"{args.lines:,} printed lines: peak kernel RSS",
            f"{k['print peak rss'] / MIB:.0f} MiB (+{(k['print peak rss'] - k['rss before print']) / MIB:.0f} MiB)",
            "",
            "",
            "bounded",
        ),
        (
            f"kernel RSS growth per 100 one-line cells ({args.cells} cells)",
            f"{k['rss per 100 cells'] / MIB:.1f} MiB ({k['cells seconds'] / args.cells * 1000:.0f} ms per cell)",
            f"{raw_rss / MIB:.1f} MiB (a fresh process hosting LLDB)",
            f"{k['rss per 100 cells'] / raw_rss:.2f}x" if raw_rss > 0 else "",
            "",
        ),
    ]
    print(machine())
    print(f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(
        f"{args.trials} round trips per side after 20 warm-up, kernel and raw interleaved; "
        "round trip = execute_request sent → execute_reply received"
    )
    print()
    print("| measure | kernel | raw LLDB | kernel vs raw | target |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
