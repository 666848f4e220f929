"""What the variable explorer costs: %whos and inspectVariables with 10 and with 200 globals.

One run prints one markdown table (and the machine it ran on), one row per number of globals.
The globals are declared one cell each, of five kinds in turn (Int, String, [Int] of 100, a
struct, a class instance), as a notebook would; then, through jupyter_client and the installed
`swift` kernelspec:

- ``%whos``: execute_request to execute_reply (the table checked for every name);
- ``inspectVariables`` on the control channel: debug_request to debug_reply;
- a trivial cell (``()``) for scale.

Medians of ``--trials`` runs each.

    .venv/bin/python bench/explorer.py [--counts 10,200] [--trials 10]
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

from bench.display_payload import machine
from bench.neutral import KERNEL_CWD
from tests.utils import execute

KINDS = [
    "var v{n} = {n}",
    'var v{n} = "text {n}"',
    "var v{n} = Array(0..<100)",
    'struct S{n} {{ var x = {n}; var name = "s" }}\nvar v{n} = S{n}()',
    "final class K{n} {{ var x = {n} }}\nvar v{n} = K{n}()",
]


def declare(kc: BlockingKernelClient, count: int) -> None:
    for n in range(count):
        execution = execute(kc, KINDS[n % len(KINDS)].format(n=n))
        assert execution.status == "ok", execution.content


def whos_seconds(kc: BlockingKernelClient, count: int) -> float:
    started = time.perf_counter()
    execution = execute(kc, "%whos")
    spent = time.perf_counter() - started
    assert execution.status == "ok", execution.content
    table = execution.of_type("display_data")[0]["content"]["data"]["text/plain"]
    assert len(table.split("\n")) == count + 2, table
    return spent


def inspect_seconds(kc: BlockingKernelClient, count: int) -> float:
    message = kc.session.msg("debug_request", {"type": "request", "seq": 1, "command": "inspectVariables"})
    started = time.perf_counter()
    kc.control_channel.send(message)
    while True:
        try:
            reply = kc.control_channel.get_msg(timeout=60)
        except queue.Empty:
            raise TimeoutError("no debug_reply") from None
        if reply["parent_header"].get("msg_id") == message["header"]["msg_id"]:
            break
    spent = time.perf_counter() - started
    assert len(reply["content"]["body"]["variables"]) == count, reply["content"]
    return spent


def trivial_seconds(kc: BlockingKernelClient) -> float:
    started = time.perf_counter()
    assert execute(kc, "()").status == "ok"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="10,200")
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    print(machine())
    print()
    print("| globals | %whos round trip, p50 | inspectVariables, p50 | trivial cell, p50 |")
    print("| ---: | ---: | ---: | ---: |")
    for count in (int(c) for c in args.counts.split(",")):
        km, kc = start_new_kernel(kernel_name="swift", startup_timeout=120, cwd=KERNEL_CWD)
        try:
            declare(kc, count)
            whos = [whos_seconds(kc, count) for _ in range(args.trials)]
            inspect = [inspect_seconds(kc, count) for _ in range(args.trials)]
            trivial = [trivial_seconds(kc) for _ in range(args.trials)]
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)
        cells = (statistics.median(whos), statistics.median(inspect), statistics.median(trivial))
        print(f"| {count} | " + " | ".join(f"{seconds * 1000:.0f} ms" for seconds in cells) + " |")


if __name__ == "__main__":
    main()
