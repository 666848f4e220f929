"""Jupyter Enterprise Gateway runs the Swift kernel for a Jupyter Server started with --gateway-url.

Two of the gateway's process proxies, each with one kernel: the local one (LocalProcessProxy,
message-mode interrupts over the control channel) and the SSH one (DistributedProcessProxy, the
kernel started over SSH by ``python -m swift_kernel.gateway`` on a private sshd, signal-mode
interrupts through the launcher's communication port to the kernel's sigwait thread). Through
Jupyter Server's REST API and websocket: execute, interrupt ``while true {}`` (KeyboardInterrupt,
variable kept), restart, shut down, and no process of either kernel left.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from .gateway import Sshd, enterprise_gateway, private_sshd, register_gateway_kernelspecs, server_through_gateway
from .helpers import VENV_BIN, Server, assert_all_exit, process_tree
from .test_server import KernelChannels

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KernelProcesses = Callable[[str], list[psutil.Process]]


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return register_gateway_kernelspecs(tmp_path_factory.mktemp("gateway-kernelspecs"))


def kernel_processes_by_id(kernel_id: str) -> list[psutil.Process]:
    """Return the processes of the kernel the launcher started for ``kernel_id``, with everything below them.

    A kernel started over SSH is nobody's child once the remote shell has left (``nohup ... &``),
    so it is found by the kernel id on its command line.
    """
    found: list[psutil.Process] = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "swift_kernel.gateway" in cmdline and kernel_id in cmdline:
            found += process_tree(process.pid)
    return found


def kernel_processes_below(server: Server) -> KernelProcesses:
    """Return a finder for the kernel processes a local gateway started (its descendants)."""

    def find(kernel_id: str) -> list[psutil.Process]:
        below = process_tree(server.process.pid)[1:]
        kernels = [p for p in below if re.search(r"-m swift_kernel_launcher -f ", " ".join(p.cmdline()))]
        return [q for p in kernels for q in process_tree(p.pid)]

    return find


def check_swift_kernel_through_gateway(server: Server, gateway: Server, name: str, find: KernelProcesses) -> None:
    """Create, execute, interrupt, restart and shut down a Swift kernel through Jupyter Server and the gateway."""
    specs = server.request("GET", "/api/kernelspecs")["kernelspecs"]
    assert name in specs, sorted(specs)
    assert specs[name]["spec"]["language"] == "swift"

    kernel_id = server.request("POST", "/api/kernels", json.dumps({"name": name}).encode())["id"]
    channels = KernelChannels(server, kernel_id)
    try:
        reply, outputs = channels.collect(channels.start('var kept = 41\nprint("ready \\(kept)")'))
        assert reply["status"] == "ok", reply
        assert "".join(o["content"]["text"] for o in outputs if o["msg_type"] == "stream") == "ready 41\n"

        loop = channels.start("while true { kept &+= 0 }")
        time.sleep(1.0)  # let it get well into the loop
        assert server.request("POST", f"/api/kernels/{kernel_id}/interrupt") is None  # 204 No Content
        reply, outputs = channels.collect(loop, timeout=30)
        assert reply["status"] == "error", reply
        assert reply["ename"] == "KeyboardInterrupt", reply
        assert [o["content"]["ename"] for o in outputs if o["msg_type"] == "error"] == ["KeyboardInterrupt"]
        assert channels.value("kept + 1") == "42"
    finally:
        channels.close()

    first = find(kernel_id)
    assert any(p.name() == "repl_swift" for p in first), first
    assert server.request("POST", f"/api/kernels/{kernel_id}/restart")["id"] == kernel_id
    assert_all_exit(first)
    channels = KernelChannels(server, kernel_id)
    try:
        reply, _ = channels.collect(channels.start("kept"))
        assert reply["status"] == "error" and "kept" in reply["evalue"], reply  # a fresh Swift session
        assert channels.value("1 + 1") == "2"
    finally:
        channels.close()

    second = find(kernel_id)
    assert any(p.name() == "repl_swift" for p in second), second
    assert server.request("DELETE", f"/api/kernels/{kernel_id}") is None
    assert_all_exit(second)
    assert server.status("GET", f"/api/kernels/{kernel_id}") == 404
    assert gateway.request("GET", "/api/kernels") == []


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    with private_sshd(tmp_path / "sshd") as server:
        yield server


@pytest.mark.timeout(240)
def test_local_process_proxy(tmp_path: Path, specs: Path) -> None:
    with (
        enterprise_gateway(tmp_path / "gateway", specs) as gateway,
        server_through_gateway(tmp_path / "server", gateway) as server,
    ):
        check_swift_kernel_through_gateway(server, gateway, "swift-eg-local", kernel_processes_below(gateway))
        log = gateway.log.read_text()
    # The local proxy's interrupt is an interrupt_request on the control channel (message mode).
    assert "LocalProcessProxy" in log


@pytest.mark.timeout(300)
def test_ssh_process_proxy(tmp_path: Path, specs: Path, sshd: Sshd) -> None:
    spec = json.loads((specs / "kernels" / "swift-eg-ssh" / "kernel.json").read_text())
    environments: list[dict[str, str]] = []

    def remote_kernels(kernel_id: str) -> list[psutil.Process]:
        found = kernel_processes_by_id(kernel_id)
        environments.append(found[0].environ())  # the launcher, which became the kernel
        return found

    with (
        enterprise_gateway(tmp_path / "gateway", specs, sshd) as gateway,
        server_through_gateway(tmp_path / "server", gateway) as server,
    ):
        check_swift_kernel_through_gateway(server, gateway, "swift-eg-ssh", remote_kernels)
        log = gateway.log.read_text()
    # The remote kernel had nothing but sshd's environment, the kernelspec's env and the gateway's
    # KERNEL_* and Jupyter folders: the kernelspec is complete by itself (no venv on PATH).
    assert len(environments) == 2, environments
    for environment in environments:
        assert str(VENV_BIN) not in environment.get("PATH", ""), environment
        assert environment["LD_LIBRARY_PATH"] == spec["env"]["LD_LIBRARY_PATH"]
        assert environment["KERNEL_ID"] and "VIRTUAL_ENV" not in environment
    # The launcher writes its connection files into the runtime folder the gateway passes on
    # (JUPYTER_RUNTIME_DIR) and removes them as each kernel ends.
    runtime = tmp_path / "gateway" / "runtime"
    assert runtime.is_dir() and not list(runtime.glob("kernel-*.json")), list(runtime.iterdir())
    # Both starts went over SSH to the private sshd, and the interrupt went to the launcher's port.
    assert log.count(f"Kernel launched on '{sshd.host}'") == 2, log[-3000:]
    assert "Signal (2) sent via gateway communication port" in log
    assert sshd.log.read_text().count("Accepted publickey") >= 2
