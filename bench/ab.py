"""Two or more kernelspecs side by side: the trivial cell's reply, result and end, cell by cell in turn.

Comparing two builds of the kernel with separate runs of ``bench/latency.py`` mixes in how fast
LLDB is at the moment, which moves by more than a change of a millisecond. Here each cell of
``x + 1`` goes to every kernel in turn (the order rotating), so each pair of cells meets the
same machine; the difference is taken cell by cell. The shell and iopub sockets are watched
together, so the time the ``execute_result`` arrives is known too (a kernel that sped its reply up
by sending the result later would show it there).

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
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import zmq
from jupyter_client.blocking.client import BlockingKernelClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.display_payload import machine
from bench.latency import EXPRESSION, TIMEOUT, other_kernel, run

WARM_UP = 20


@dataclass
class Cell:
    reply: float  # execute_request sent -> its execute_reply received
    result: float  # -> its execute_result received
    ended: float  # -> its idle status received


def timed(kc: BlockingKernelClient, code: str) -> Cell:
    """Run ``code`` (which must have a result); time its reply, result and idle status as each arrives."""
    poller = zmq.Poller()
    shell, iopub = kc.shell_channel.socket, kc.iopub_channel.socket
    poller.register(shell, zmq.POLLIN)
    poller.register(iopub, zmq.POLLIN)
    started = time.perf_counter()
    msg_id = kc.execute(code)
    seen: dict[str, float] = {}
    while len(seen) < 3:
        ready = dict(poller.poll(TIMEOUT * 1000))
        if not ready:
            raise TimeoutError(f"no answer to {code!r} within {TIMEOUT} s")
        now = time.perf_counter() - started
        if shell in ready:
            msg = kc.get_shell_msg(timeout=0)
            if msg["parent_header"].get("msg_id") == msg_id:
                assert msg["content"]["status"] == "ok", msg["content"]
                seen["reply"] = now
        if iopub in ready:
            msg = kc.get_iopub_msg(timeout=0)
            if msg["parent_header"].get("msg_id") == msg_id:
                if msg["msg_type"] == "execute_result":
                    seen["result"] = now
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    seen["ended"] = now
    return Cell(**seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kernels", nargs="+", help="kernelspec names; the first is the base")
    parser.add_argument("--cells", type=int, default=300, help="cells per kernel")
    args = parser.parse_args()
    print(machine())
    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        clients = [stack.enter_context(other_kernel(name)) for name in args.kernels]
        for kc in clients:
            assert run(kc, "var x = 1").status == "ok"
            for _ in range(WARM_UP):
                run(kc, EXPRESSION)
        # By position, not name: the same kernelspec may be given twice (to see the noise).
        times: list[list[Cell]] = [[] for _ in clients]
        for cell in range(args.cells):
            # Rotated: each kernel takes each place in turn. Alternating forward and backward gave
            # the first and last kernel two cells in a row at every turn (warm caches), which made
            # a middle kernel look 0.1-0.2 ms slower than identical ones at the ends.
            for step in range(len(clients)):
                index = (cell + step) % len(clients)
                times[index].append(timed(clients[index], EXPRESSION))
    print(f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"\n`x + 1`, {args.cells} cells per kernel, each cell to every kernel in turn\n")
    parts = ("reply", "result", "ended")
    print(
        "| kernel | reply p50 | result p50 | end (idle) p50 | against the first, cell by cell: reply / result / end |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, cells in zip(args.kernels, times, strict=True):
        pairs = list(zip(cells, times[0], strict=True))
        diffs = [statistics.median(getattr(c, part) - getattr(first, part) for c, first in pairs) for part in parts]
        medians = [statistics.median(getattr(cell, part) for cell in cells) * 1e3 for part in parts]
        print(
            f"| {name} | {medians[0]:.2f} ms | {medians[1]:.2f} ms | {medians[2]:.2f} ms "
            f"| {diffs[0] * 1e3:+.2f} / {diffs[1] * 1e3:+.2f} / {diffs[2] * 1e3:+.2f} ms |"
        )


if __name__ == "__main__":
    main()
