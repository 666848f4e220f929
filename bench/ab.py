"""Two or more kernelspecs side by side: the trivial cell's reply and end, cell by cell in turn.

Comparing two builds of the kernel with separate runs of ``bench/latency.py`` mixes in how fast
LLDB is at the moment, which moves by more than a change of a millisecond. Here each cell of
``x + 1`` goes to every kernel in turn (the order rotating), so each pair of cells meets the
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
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.display_payload import machine
from bench.latency import EXPRESSION, Reply, other_kernel, run

WARM_UP = 20


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
        times: list[list[Reply]] = [[] for _ in clients]
        for cell in range(args.cells):
            # Rotated: each kernel takes each place in turn. Alternating forward and backward gave
            # the first and last kernel two cells in a row at every turn (warm caches), which made
            # a middle kernel look 0.1-0.2 ms slower than identical ones at the ends.
            for step in range(len(clients)):
                index = (cell + step) % len(clients)
                times[index].append(run(clients[index], EXPRESSION))
    print(f"1-minute load average: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"\n`x + 1`, {args.cells} cells per kernel, each cell to every kernel in turn\n")
    print("| kernel | reply p50 | end (idle) p50 | reply vs the first, cell by cell, p50 |")
    print("| --- | ---: | ---: | ---: |")
    for name, replies in zip(args.kernels, times, strict=True):
        diff = statistics.median(reply.seconds - first.seconds for reply, first in zip(replies, times[0], strict=True))
        print(
            f"| {name} | {statistics.median(r.seconds for r in replies) * 1e3:.2f} ms "
            f"| {statistics.median(r.ended for r in replies) * 1e3:.2f} ms "
            f"| {diff * 1e3:+.2f} ms |"
        )


if __name__ == "__main__":
    main()
