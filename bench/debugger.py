"""Measure JupyterLab's debugger on the Swift kernel: stop, inspect, step, and what it costs when off.

Runs the installed ``swift`` kernel through jupyter_client and speaks the debugger's protocol as
JupyterLab does (debug_request on the control channel, debug_event on iopub). Each round:

- ``execute_request`` of a cell with a breakpoint on its second line → the ``stopped`` event
  (the first line is a tight loop whose end is timed inside the Swift process, so the figure is
  from the line being reached, not from the request);
- what JupyterLab sends next to fill its panels: ``stackTrace`` + ``scopes`` + ``variables``;
- one ``next`` (step over) → the next ``stopped`` event;
- ``continue`` → the cell's reply.

Then the trivial-cell round trip (``1 + 1``) with the debugger off and attached (no breakpoints).
Prints the machine and a table of p50/p90/max in milliseconds.

    .venv/bin/python bench/debugger.py [--rounds 30] [--kernel swift]
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import statistics
import time
from typing import Any

from ipykernel.compiler import murmur2_x86
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import start_new_kernel
from neutral import KERNEL_CWD


class Frontend:
    """The debugger side of JupyterLab, reduced to requests and events."""

    def __init__(self, kc: BlockingKernelClient) -> None:
        self.kc = kc
        self.seq = 0

    def request(self, command: str, **arguments: Any) -> dict[str, Any]:
        self.seq += 1
        message = self.kc.session.msg(
            "debug_request", {"type": "request", "seq": self.seq, "command": command, "arguments": arguments}
        )
        self.kc.control_channel.send(message)
        while True:
            reply = self.kc.control_channel.get_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == message["header"]["msg_id"]:
                content: dict[str, Any] = reply["content"]
                if not content["success"]:
                    raise RuntimeError(f"{command} failed: {content.get('message')}")
                return dict(content["body"])

    def event(self, name: str) -> tuple[dict[str, Any], float]:
        """Wait for the debug_event ``name``; return its body and when it arrived."""
        while True:
            message = self.kc.get_iopub_msg(timeout=60)
            if message["msg_type"] == "debug_event" and message["content"]["event"] == name:
                return dict(message["content"]["body"]), time.monotonic()

    def drain(self) -> None:
        while True:
            try:
                self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                return


def trivial_round_trip(kc: BlockingKernelClient, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.monotonic()
        reply = kc.execute_interactive("1 + 1", timeout=60, output_hook=lambda message: None)
        times.append(time.monotonic() - start)
        assert reply["content"]["status"] == "ok", reply["content"]
    return times


def measure(rounds: int, kernel: str) -> dict[str, list[float]]:
    km, kc = start_new_kernel(kernel_name=kernel, startup_timeout=60, cwd=KERNEL_CWD)
    figures: dict[str, list[float]] = {name: [] for name in ("stop", "panels", "step", "continue", "off", "on")}
    try:
        frontend = Frontend(kc)
        trivial_round_trip(kc, 5)  # the first cells compile more
        figures["off"] = trivial_round_trip(kc, rounds)
        frontend.request("initialize", clientID="bench", adapterID=kernel)
        frontend.request("attach")
        frontend.request("configurationDone")
        figures["on"] = trivial_round_trip(kc, rounds)
        info = frontend.request("debugInfo")
        for index in range(rounds):
            # The loop's end is the moment the breakpoint's line is reached: the cell prints the
            # time (CLOCK_MONOTONIC, as Python's monotonic) before it, so the figure starts there.
            code = (
                f"var spin{index} = 0; for i in 0..<20_000 {{ spin{index} &+= i }}; "
                "var now = timespec(); clock_gettime(CLOCK_MONOTONIC, &now); "
                'print("reached", Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)\n'
                f"spin{index} += 1\n"
                f"spin{index} += 2\n"
            )
            name = murmur2_x86(code, info["hashSeed"])  # type: ignore[no-untyped-call]
            path = f"{info['tmpFilePrefix']}{name}{info['tmpFileSuffix']}"
            frontend.request("dumpCell", code=code)
            frontend.request("setBreakpoints", source={"path": path}, breakpoints=[{"line": 2}])
            frontend.drain()
            msg_id = kc.execute(code)
            reached = stopped_at = None
            # The cell's output and the host's event travel apart: either may come first.
            while reached is None or stopped_at is None:
                message = kc.get_iopub_msg(timeout=60)
                if message["msg_type"] == "stream" and message["content"]["text"].startswith("reached"):
                    reached = float(message["content"]["text"].split()[1])
                if message["msg_type"] == "debug_event" and message["content"]["event"] == "stopped":
                    stopped_at = time.monotonic()
                    thread = message["content"]["body"]["threadId"]
            figures["stop"].append(stopped_at - reached)
            start = time.monotonic()
            frames = frontend.request("stackTrace", threadId=thread)["stackFrames"]
            scopes = frontend.request("scopes", frameId=frames[0]["id"])["scopes"]
            frontend.request("variables", variablesReference=scopes[-1]["variablesReference"])
            figures["panels"].append(time.monotonic() - start)
            start = time.monotonic()
            frontend.request("next", threadId=thread)
            frontend.event("stopped")
            figures["step"].append(time.monotonic() - start)
            start = time.monotonic()
            frontend.request("continue", threadId=thread)
            while True:
                reply = kc.get_shell_msg(timeout=60)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            figures["continue"].append(time.monotonic() - start)
            assert reply["content"]["status"] == "ok", reply["content"]
            frontend.request("setBreakpoints", source={"path": path}, breakpoints=[])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return figures


def row(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"| {label} | {statistics.median(ordered) * 1000:.1f} | {p90 * 1000:.1f} | {ordered[-1] * 1000:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--kernel", default="swift")
    parser.add_argument(
        "--trivial-only", action="store_true", help="only the trivial cell with the debugger off (any kernel)"
    )
    options = parser.parse_args()
    if options.trivial_only:
        km, kc = start_new_kernel(kernel_name=options.kernel, startup_timeout=60, cwd=KERNEL_CWD)
        try:
            trivial_round_trip(kc, 5)
            print(row(f"trivial cell, {options.kernel}", trivial_round_trip(kc, options.rounds)))
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        return
    figures = measure(options.rounds, options.kernel)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; rounds {options.rounds}"
    )
    print("| measure | p50 ms | p90 ms | max ms |")
    print("| --- | ---: | ---: | ---: |")
    print(row("line reached → stopped event", figures["stop"]))
    print(row("stackTrace + scopes + variables", figures["panels"]))
    print(row("step over → stopped event", figures["step"]))
    print(row("continue → cell's reply", figures["continue"]))
    print(row("trivial cell, debugger off", figures["off"]))
    print(row("trivial cell, debugger attached, no breakpoints", figures["on"]))


if __name__ == "__main__":
    main()
