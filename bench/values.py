"""Measure what showing a cell's value costs per type, against an Int.

Two parts:

- **Round trips** (default): runs the installed kernels named on the command line through
  jupyter_client, each in turn, round by round (interleaved, so that a busy moment hits both): a
  cell that is just a global of each type, round trip to the reply with its execute_result. Prints
  the p50 per type (request to reply, which comes after the value) and its difference from Int.
  LLDB's compile of the cell dominates and moves by a millisecond or two between cells, so
  differences this small are near the noise.
- **Describing** (``--describe N``): the kernel's own LLDB session (``bench/raw_lldb.py``) in this
  process evaluates each global, then times only what turns the result into the text shown
  (``LLDBSession._describe``), N times per type. That is the cost a value adds beyond the cell's
  compile and run, without that noise. ``--source DIR`` takes ``swift_kernel`` from another
  checkout (an older build, to compare).

    .venv/bin/python bench/values.py [--rounds 40] [KERNEL ...]   (default: swift)
    .venv/bin/python bench/values.py --describe 200 [--source DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from neutral import KERNEL_CWD

DECLARE = (
    "struct Point { var x = 1; var y = 2 }\n"
    'let anInt = 42\nlet aString = "hello"\nlet aDouble = 3.14\nlet anArray = [1, 2, 3]\n'
    'let strings = ["a", "b"]\nlet aStruct = Point()\nlet aFloat = Float(0.5)\n'
    "let ints100 = Array(0..<100)\n"
    'let strings100 = (0..<100).map { "item \\($0)" }\n'
    "let doubles100 = (0..<100).map { Double($0) / 3 }\n"
    "let ints1000 = Array(0..<1000)"
)
VALUES = {
    "Int": "anInt",
    "String": "aString",
    "Double": "aDouble",
    "[Int]": "anArray",
    "[String]": "strings",
    "struct": "aStruct",
    "Float": "aFloat",
    "[Int], 100": "ints100",
    "[String], 100": "strings100",
    "[Double], 100": "doubles100",
    "[Int], 1,000": "ints1000",
}


def machine() -> str:
    return f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"


def round_trips(rounds: int, kernels: list[str]) -> None:
    from jupyter_client.blocking.client import BlockingKernelClient
    from jupyter_client.manager import start_new_kernel

    def round_trip(kc: BlockingKernelClient, code: str) -> float:
        """Time the request to its reply (the value is published before it), then wait for idle.

        Not to idle: after the reply the cell may stay busy up to ``warnings_wait`` (50 ms) for
        sourcekit-lsp's warnings, which take longer with this document's declarations than a cell.
        """
        start = time.monotonic()
        msg_id = kc.execute(code)
        while (reply := kc.get_shell_msg(timeout=60))["parent_header"].get("msg_id") != msg_id:
            pass
        seconds = time.monotonic() - start
        assert reply["content"]["status"] == "ok", reply["content"]
        while True:
            message = kc.get_iopub_msg(timeout=60)
            if message["parent_header"].get("msg_id") == msg_id and message["content"].get("execution_state") == "idle":
                return seconds

    started = {name: start_new_kernel(kernel_name=name, startup_timeout=60, cwd=KERNEL_CWD) for name in kernels}
    times: dict[str, dict[str, list[float]]] = {name: {kind: [] for kind in VALUES} for name in kernels}
    try:
        for _, kc in started.values():
            round_trip(kc, DECLARE)
            for code in VALUES.values():
                round_trip(kc, code)
        for _ in range(rounds):
            for name, (_, kc) in started.items():
                for kind, code in VALUES.items():
                    times[name][kind].append(round_trip(kc, code))
    finally:
        for km, kc in started.values():
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    print(f"{machine()}; rounds {rounds}")
    print("| kernel | value | p50 ms | vs Int ms |")
    print("| --- | --- | ---: | ---: |")
    for name in kernels:
        base = statistics.median(times[name]["Int"])
        for kind in VALUES:
            p50 = statistics.median(times[name][kind])
            print(f"| {name} | {kind} | {p50 * 1000:.1f} | {(p50 - base) * 1000:+.1f} |")


def describing(count: int) -> None:
    # Imported here: from --source's checkout when it is given (see main).
    from bench.raw_lldb import raw_session
    from swift_kernel.toolchain import ensure_loader_path

    toolchain = ensure_loader_path([str(Path(__file__).resolve()), *sys.argv[1:]])
    times: dict[str, list[float]] = {kind: [] for kind in VALUES}
    evaluations: dict[str, list[float]] = {kind: [] for kind in VALUES}
    texts: dict[str, str] = {}
    with raw_session(toolchain) as session:
        outcome = session.execute(DECLARE, "<declarations>")
        assert outcome.error is None, outcome.error
        for code in VALUES.values():  # a struct is described by Swift the first time
            session._describe(session.evaluate(code))
        for _ in range(count):
            for kind, code in VALUES.items():
                started = time.perf_counter()
                value = session.evaluate(code)
                evaluated = time.perf_counter()
                text, _ = session._describe(value)
                times[kind].append(time.perf_counter() - evaluated)
                evaluations[kind].append(evaluated - started)
                texts[kind] = text or ""
    source = Path(sys.modules["swift_kernel"].__file__ or "").parent.parent
    print(f"{machine()}; {count} values of each type; swift_kernel from {source}")
    print("| value | text | describing p50 ms | p90 ms | vs Int ms | LLDB's evaluation before it, p50 ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    base = statistics.median(times["Int"])
    for kind in VALUES:
        ordered = sorted(times[kind])
        p50, p90 = statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]
        text = texts[kind] if len(texts[kind]) < 24 else texts[kind][:20] + "..."
        evaluation = statistics.median(evaluations[kind]) * 1000
        cost = f"{p50 * 1000:.2f} | {p90 * 1000:.2f} | {(p50 - base) * 1000:+.2f}"
        print(f"| {kind} | `{text}` | {cost} | {evaluation:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--describe", type=int, metavar="N", help="time the LLDB session's describing instead")
    parser.add_argument("--source", type=Path, help="with --describe: the checkout whose swift_kernel to use")
    parser.add_argument("kernels", nargs="*", default=["swift"])
    options = parser.parse_args()
    if options.describe:
        bench_root = str(Path(__file__).resolve().parent.parent)
        sys.path[:0] = [str(options.source.resolve()), bench_root] if options.source else [bench_root]
        describing(options.describe)
    else:
        round_trips(options.rounds, options.kernels)


if __name__ == "__main__":
    main()
