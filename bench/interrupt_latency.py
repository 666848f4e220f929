"""Interrupt latency: interrupt sent -> execute_reply received, per loop kind and interrupt mode.

Beside the kernel's figures, the raw LLDB rungs are measured in the same run (a direct SIGINT
to the Swift process, SBProcess.SendAsyncInterrupt), and ipykernel's own python kernel
interrupting ``while True: pass`` as the anchor. Prints one markdown table and the machine.

    .venv/bin/python bench/interrupt_latency.py [--trials 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


from bench.neutral import KERNEL_CWD
from swift_kernel.toolchain import ensure_loader_path

TOOLCHAIN = ensure_loader_path([str(Path(__file__).resolve()), *sys.argv[1:]])

from jupyter_client.manager import start_new_kernel

from tests.utils import collect, execute, register_private_kernelspec

LOOPS = {
    "while true {}": "while true {}",
    "sleep(1000)": "sleep(1000)",
    "print flood": 'var flood = 0\nwhile true { print("line \\(flood)"); flood += 1 }',
    "deep recursion": (
        "func dive(_ n: Int) -> Int { if n == 0 { while true {} }; return dive(n - 1) + 1 }\ndive(5_000)"
    ),
    "allocating loop": (
        "var words: [String] = []\n"
        "while true { words.append(String(words.count)); if words.count > 500 { words.removeAll() } }"
    ),
    "concurrentPerform": (
        "DispatchQueue.concurrentPerform(iterations: 1_000_000_000) { i in\n"
        "    var t = 0; for j in 0..<2000 { t &+= i &* j }; if t == -1 { print(t) }\n}"
    ),
    "background thread + wait": (
        "let gate = DispatchSemaphore(value: 0)\n"
        "DispatchQueue.global().async { var spin = 0; while spin >= 0 { spin &+= 1 }; gate.signal() }\ngate.wait()"
    ),
}
# Time the code runs before the interrupt: well past compilation, so this measures stopping running code.
RUN_BEFORE_INTERRUPT = 0.3


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def kernel_latencies(kernel_name: str, code: str, trials: int, setup: str = "") -> list[float]:
    km, kc = start_new_kernel(kernel_name=kernel_name, startup_timeout=60, cwd=KERNEL_CWD)
    try:
        # Wait for the Swift process (or Python) to be up: this measures interrupts, not start-up.
        assert execute(kc, setup or ("()" if kernel_name.startswith("swift") else "None")).status == "ok"
        latencies = []
        for _ in range(trials):
            msg_id = kc.execute(code)
            time.sleep(RUN_BEFORE_INTERRUPT)
            sent = time.perf_counter()
            km.interrupt_kernel()
            execution = collect(kc, msg_id, timeout=60)
            latencies.append(time.perf_counter() - sent)
            assert execution.content.get("ename") == "KeyboardInterrupt", execution.content
        return latencies
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def raw_lldb_latencies(trials: int) -> dict[str, list[float]]:
    """Interrupt `while true {}` evaluated straight through LLDB, no kernel, with each raw rung."""
    from bench.raw_lldb import raw_session

    with raw_session(TOOLCHAIN) as session:
        return _raw_rungs(session, trials)


def _raw_rungs(session: Any, trials: int) -> dict[str, list[float]]:
    target, process, pid = session._target, session._process, session.pid
    main_thread = session._main_thread_id
    results: dict[str, list[float]] = {"raw LLDB: SIGINT to the Swift process": [], "raw LLDB: SendAsyncInterrupt": []}
    for label, send in (
        ("raw LLDB: SIGINT to the Swift process", lambda: os.kill(pid, signal.SIGINT)),
        ("raw LLDB: SendAsyncInterrupt", process.SendAsyncInterrupt),
    ):
        for _ in range(trials):
            sent_at: list[float] = []

            def fire(send: object = send, sent_at: list[float] = sent_at) -> None:
                sent_at.append(time.perf_counter())
                send()  # type: ignore[operator]

            timer = threading.Timer(RUN_BEFORE_INTERRUPT, fire)
            timer.start()
            value = target.EvaluateExpression("while true {}", session._options)
            results[label].append(time.perf_counter() - sent_at[0])
            assert not value.GetError().Success()
            process.GetThreadByID(main_thread).UnwindInnermostExpression()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    rows: list[tuple[str, str, list[float]]] = []
    for label, values in raw_lldb_latencies(args.trials).items():
        rows.append((label, "-", values))
    with tempfile.TemporaryDirectory(prefix="swift-kernel-bench-specs-") as specs:
        # `make setup` registers only `swift`; the signal-mode spec is registered here, as the tests do.
        data = register_private_kernelspec(Path(specs), "swift-signal", "--interrupt-mode", "signal")
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(data), os.environ.get("JUPYTER_PATH")]))
        for mode, kernel_name in (("message", "swift"), ("signal", "swift-signal")):
            for label, code in LOOPS.items():
                setup = "import Foundation" if "sleep" in code or "Dispatch" in code else ""
                rows.append((label, mode, kernel_latencies(kernel_name, code, args.trials, setup)))
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" in KernelSpecManager().find_kernel_specs():
        anchor = kernel_latencies("python3", "while True: pass", args.trials)
        rows.append(("ipykernel python: while True: pass", "signal", anchor))
    cores, memory = os.cpu_count(), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"Machine: {platform.machine()}, {cores} cores, {memory:.0f} GiB, Linux {platform.release()}, "
        f"{TOOLCHAIN.version()}; {args.trials} trials per row; "
        f"interrupt sent {RUN_BEFORE_INTERRUPT} s after execute_request\n"
    )
    print("| loop | mode | p50 ms | p99 ms | max ms |")
    print("| --- | --- | ---: | ---: | ---: |")
    for label, mode, values in rows:
        ms = [v * 1000 for v in values]
        print(f"| {label} | {mode} | {statistics.median(ms):.1f} | {percentile(ms, 0.99):.1f} | {max(ms):.1f} |")


if __name__ == "__main__":
    main()
