"""Start-up: start_kernel() -> first kernel_info_reply, and -> the first ``1 + 1`` result.

Starts the installed ``swift`` kernel N times, interleaved with ipykernel's ``python3`` kernel as
the anchor, and prints one markdown table (p50, min, max) and the machine. Each start is timed
the way a frontend sees it: one kernel_info_request sent as soon as the channels are up (no
heartbeat wait, no iopub flush as in ``wait_for_ready``), then one execute_request once it is
answered and iopub is seen to be connected; "first result" is the arrival of that cell's execute_result.

    .venv/bin/python bench/startup.py [--starts 10] [--burners 3]

``--burners N`` runs N CPU-bound processes (``while True: pass``) for the whole measurement and
kills them afterwards: a loaded machine. Run it with the lock the other kernel benchmarks take
(``flock /tmp/swift-kernel-tests.lock``).
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.display_payload import machine
from bench.neutral import KERNEL_CWD

TIMEOUT = 120.0


@dataclass(frozen=True)
class Start:
    kernel_info: float  # start_kernel() called -> kernel_info_reply received
    first_result: float  # start_kernel() called -> execute_result of `1 + 1` received


def _reply_to(kc: BlockingKernelClient, msg_id: str, deadline: float) -> dict[str, Any]:
    while True:
        message = kc.get_shell_msg(timeout=max(0.01, deadline - time.perf_counter()))
        if message["parent_header"].get("msg_id") == msg_id:
            return message


def _iopub_connected(kc: BlockingKernelClient) -> bool:
    try:
        kc.get_iopub_msg(timeout=0.2)
    except queue.Empty:
        return False
    return True


def _result_of(kc: BlockingKernelClient, msg_id: str, deadline: float) -> dict[str, Any]:
    while True:
        message = kc.get_iopub_msg(timeout=max(0.01, deadline - time.perf_counter()))
        if message["parent_header"].get("msg_id") == msg_id and message["msg_type"] in {"execute_result", "error"}:
            return message


def one_start(kernel_name: str) -> Start:
    """Start ``kernel_name`` once, time its first kernel_info reply and its first result, shut it down."""
    km = KernelManager(kernel_name=kernel_name)
    started = time.perf_counter()
    km.start_kernel(cwd=KERNEL_CWD)
    kc = km.client()
    kc.start_channels()
    try:
        deadline = started + TIMEOUT
        _reply_to(kc, kc.kernel_info(), deadline)
        info = time.perf_counter() - started
        # As wait_for_ready does: an iopub message shows the subscription is through, else ask again
        # (a result published before it would be lost).
        while not _iopub_connected(kc):
            _reply_to(kc, kc.kernel_info(), deadline)
        result = _result_of(kc, kc.execute("1 + 1"), deadline)
        first = time.perf_counter() - started
        assert result["msg_type"] == "execute_result", result["content"]
        assert result["content"]["data"]["text/plain"] == "2", result["content"]
        return Start(info, first)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


@contextmanager
def burners(count: int) -> Iterator[None]:
    """Keep ``count`` CPU-bound processes running meanwhile (each also ends by itself after an hour)."""
    code = "import time\nend = time.time() + 3600\nwhile time.time() < end: pass"
    processes = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
    try:
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


def row(name: str, what: str, values: list[float]) -> str:
    p50 = statistics.median(values)
    return f"| {name} | {what} | {p50:.2f} | {min(values):.2f} | {max(values):.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=10, help="starts of each kernel (default 10)")
    parser.add_argument("--burners", type=int, default=0, help="CPU-bound processes running meanwhile (default 0)")
    parser.add_argument("--kernels", nargs="+", default=["swift", "python3"], help="kernelspecs to start")
    options = parser.parse_args()
    results: dict[str, list[Start]] = {name: [] for name in options.kernels}
    load_before = os.getloadavg()[0]
    with burners(options.burners):
        for _ in range(options.starts):
            # Interleaved, so that load from elsewhere on the machine weighs on every kernel alike.
            for name in options.kernels:
                results[name].append(one_start(name))
    print(f"{options.starts} starts each, {options.burners} CPU burners; seconds after start_kernel()\n")
    print("| kernel | until | p50 | min | max |")
    print("| --- | --- | --- | --- | --- |")
    for name, starts in results.items():
        print(row(name, "kernel_info reply", [s.kernel_info for s in starts]))
        print(row(name, "first `1 + 1` result", [s.first_result for s in starts]))
    print()
    print(machine())
    print(f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
