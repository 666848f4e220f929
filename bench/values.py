"""Measure what showing a cell's value costs per type, against an Int (LLDB's own reading, no evaluation).

Runs the installed kernels named on the command line through jupyter_client, each in turn, round
by round (interleaved, so that a busy moment hits both): a cell that is just a global of each
type, round trip to the reply with its execute_result. Prints the machine and, per kernel, the
p50 per type and its difference from Int.

    .venv/bin/python bench/values.py [--rounds 40] [KERNEL ...]   (default: swift)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel

DECLARE = (
    "struct Point { var x = 1; var y = 2 }\n"
    'let anInt = 42\nlet aString = "hello"\nlet aDouble = 3.14\nlet anArray = [1, 2, 3]\n'
    'let strings = ["a", "b"]\nlet aStruct = Point()\nlet aFloat = Float(0.5)'
)
VALUES = {
    "Int": "anInt",
    "String": "aString",
    "Double": "aDouble",
    "[Int]": "anArray",
    "[String]": "strings",
    "struct": "aStruct",
    "Float": "aFloat",
}


def round_trip(kc: BlockingKernelClient, code: str) -> float:
    start = time.monotonic()
    reply = kc.execute_interactive(code, timeout=60, output_hook=lambda message: None)
    assert reply["content"]["status"] == "ok", reply["content"]
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("kernels", nargs="*", default=["swift"])
    options = parser.parse_args()
    started = {name: start_new_kernel(kernel_name=name, startup_timeout=60) for name in options.kernels}
    times: dict[str, dict[str, list[float]]] = {name: {kind: [] for kind in VALUES} for name in options.kernels}
    try:
        for _, kc in started.values():
            round_trip(kc, DECLARE)
            for code in VALUES.values():
                round_trip(kc, code)
        for _ in range(options.rounds):
            for name, (_, kc) in started.items():
                for kind, code in VALUES.items():
                    times[name][kind].append(round_trip(kc, code))
    finally:
        for km, kc in started.values():
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; rounds {options.rounds}"
    )
    print("| kernel | value | p50 ms | vs Int ms |")
    print("| --- | --- | ---: | ---: |")
    for name in options.kernels:
        base = statistics.median(times[name]["Int"])
        for kind in VALUES:
            p50 = statistics.median(times[name][kind])
            print(f"| {name} | {kind} | {p50 * 1000:.1f} | {(p50 - base) * 1000:+.1f} |")


if __name__ == "__main__":
    main()
