"""Two or more kernelspecs side by side: the trivial cell's reply and end, cell by cell in turn.

Comparing two builds of the kernel with separate runs of ``bench/latency.py`` mixes in how fast
LLDB is at the moment, which moves by more than a change of a millisecond. Here each cell of
``x + 1`` goes to every kernel in turn (the order alternating), so each pair of cells meets the
same machine; the difference is taken cell by cell.

    .venv/bin/python bench/ab.py swift-before swift [--cells 300]

A kernelspec of an older build: ``git worktree add /tmp/before <commit>``, then ``register.py
--prefix /tmp/specs --name swift-before``, its ``kernel.json`` env given ``PYTHONPATH=/tmp/before``,
and ``JUPYTER_PATH=/tmp/specs/share/jupyter`` for this script. Run it with the lock the other
kernel benchmarks take (``flock /tmp/swift-kernel-tests.lock``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.display_payload import machine

TIMEOUT = 120.0
WARM_UP = 20


@contextmanager
def running(name: str) -> Iterator[BlockingKernelClient]:
    km, kc = start_new_kernel(kernel_name=name, startup_timeout=TIMEOUT)
    try:
        kc.execute_interactive("var x = 1", timeout=TIMEOUT, output_hook=lambda msg: None)
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def round_trip(kc: BlockingKernelClient) -> tuple[float, float]:
    """Send ``x + 1``; return seconds to its execute_reply and to its idle status."""
    while kc.iopub_channel.msg_ready():
        kc.get_iopub_msg(timeout=0)
    started = time.perf_counter()
    msg_id = kc.execute("x + 1")
    while kc.get_shell_msg(timeout=TIMEOUT)["parent_header"].get("msg_id") != msg_id:
        pass
    replied = time.perf_counter()
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            return replied - started, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kernels", nargs="+", help="kernelspec names; the first is the base")
    parser.add_argument("--cells", type=int, default=300, help="cells per kernel")
    args = parser.parse_args()
    print(machine())
    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        clients = [stack.enter_context(running(name)) for name in args.kernels]
        for kc in clients:
            for _ in range(WARM_UP):
                round_trip(kc)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in args.kernels}
        pairs = list(zip(args.kernels, clients, strict=True))
        for cell in range(args.cells):
            for name, kc in pairs if cell % 2 == 0 else reversed(pairs):
                times[name].append(round_trip(kc))
    print(f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"\n`x + 1`, {args.cells} cells per kernel, each cell to every kernel in turn\n")
    print("| kernel | reply p50 | end (idle) p50 | reply vs the first, cell by cell, p50 |")
    print("| --- | ---: | ---: | ---: |")
    base = times[args.kernels[0]]
    for name in args.kernels:
        replies = [reply for reply, _ in times[name]]
        ends = [end for _, end in times[name]]
        diff = statistics.median(reply - first for (reply, _), (first, _) in zip(times[name], base, strict=True))
        print(
            f"| {name} | {statistics.median(replies) * 1e3:.2f} ms | {statistics.median(ends) * 1e3:.2f} ms "
            f"| {diff * 1e3:+.2f} ms |"
        )


if __name__ == "__main__":
    main()
