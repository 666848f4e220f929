"""Kernel start and interrupt through Jupyter Enterprise Gateway, against the kernel run directly.

    python bench/gateway.py [--interrupts 5]

Every path is driven the way a notebook user's browser drives it, through Jupyter Server's REST API
and kernel websocket: a Jupyter Server running its own kernels (the direct kernel), and Jupyter
Servers started with ``--gateway-url`` whose kernels Enterprise Gateway starts with its local
process proxy or, over SSH (a private sshd on 127.0.0.2, as in tests/e2e/test_enterprise_gateway.py),
with its DistributedProcessProxy and ``python -m swift_kernel.gateway``, in message and in signal
interrupt mode. One run: per path one kernel start (POST /api/kernels until the websocket brings
the result of ``1 + 1``) and ``--interrupts`` interrupts of ``while true {}`` (POST .../interrupt
until the execute_reply arrives).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.e2e.gateway import enterprise_gateway, private_sshd, server_through_gateway
from tests.e2e.helpers import Server, free_port, jupyter_env, jupyter_server_argv, running_server
from tests.e2e.test_server import KernelChannels
from tests.utils import register_private_kernelspec


@contextmanager
def plain_server(home: Path) -> Iterator[Server]:
    """Jupyter Server running its kernels itself (the venv's `swift` kernelspec)."""
    port, token = free_port(), uuid.uuid4().hex
    (home / "root").mkdir(parents=True, exist_ok=True)
    argv = jupyter_server_argv(port, token, home / "root")
    with running_server(
        argv, port=port, token=token, env=jupyter_env(home), log=home / "server.log", ready_path="/api/status"
    ) as server:
        yield server


def measure(server: Server, kernel_name: str, interrupts: int) -> tuple[float, list[float]]:
    """Return (start to first result in s, interrupt to reply in ms for each interrupt)."""
    started = time.perf_counter()
    kernel_id = server.request("POST", "/api/kernels", json.dumps({"name": kernel_name}).encode())["id"]
    channels = KernelChannels(server, kernel_id)
    try:
        assert channels.value("1 + 1") == "2"
        start = time.perf_counter() - started
        latencies = []
        for _ in range(interrupts):
            loop = channels.start("while true {}")
            time.sleep(0.5)  # well into the loop
            sent = time.perf_counter()
            server.request("POST", f"/api/kernels/{kernel_id}/interrupt")
            reply, _ = channels.collect(loop, timeout=30)
            latencies.append((time.perf_counter() - sent) * 1000)
            assert reply["ename"] == "KeyboardInterrupt", reply
    finally:
        channels.close()
    server.request("DELETE", f"/api/kernels/{kernel_id}")
    return start, latencies


def row(path: str, mode: str, start: float, latencies: list[float]) -> str:
    return f"| {path} | {mode} | {start:.2f} | {statistics.median(latencies):.1f} | {max(latencies):.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interrupts", type=int, default=5)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, load {load:.2f}")
    print("| path | interrupt mode | start → first result, s | interrupt → reply, median ms | max ms |")
    print("| --- | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="swift-kernel-bench-gateway-") as folder, ExitStack() as stack:
        root = Path(folder)
        with plain_server(root / "direct") as server:
            direct = measure(server, "swift", args.interrupts)
            print(row("Jupyter Server, kernel started by it (direct)", "message", *direct), flush=True)
        specs = register_private_kernelspec(root / "specs", "swift-eg-local", "--gateway", "local")
        register_private_kernelspec(root / "specs", "swift-eg-ssh-message", "--gateway", "ssh")
        register_private_kernelspec(root / "specs", "swift-eg-ssh", "--gateway", "ssh", "--interrupt-mode", "signal")
        sshd = stack.enter_context(private_sshd(root / "sshd"))
        gateway = stack.enter_context(enterprise_gateway(root / "gateway", specs, sshd))
        server = stack.enter_context(server_through_gateway(root / "server", gateway))
        for path, name, mode in [
            ("Jupyter Server → Enterprise Gateway, local process proxy", "swift-eg-local", "message"),
            ("Jupyter Server → Enterprise Gateway, SSH (DistributedProcessProxy)", "swift-eg-ssh-message", "message"),
            ("Jupyter Server → Enterprise Gateway, SSH (DistributedProcessProxy)", "swift-eg-ssh", "signal"),
        ]:
            print(row(path, mode, *measure(server, name, args.interrupts)), flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
