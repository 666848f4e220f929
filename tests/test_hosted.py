"""LLDB runs in a child process of the kernel (the LLDB host): its crash must not end the kernel."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

import psutil
import pytest

from swift_kernel.hosted import HostedExecutor
from swift_kernel.output import OutputEvent
from swift_kernel.toolchain import find_toolchain, loader_path

from .conftest import KernelPair, descendants, kernel_pid
from .utils import collect, execute

pytestmark = pytest.mark.lldb


def lldb_host(km: object) -> psutil.Process:
    """Return the kernel's LLDB host process (its one Python child)."""
    hosts = [p for p in psutil.Process(kernel_pid(km)).children() if p.name().startswith("python")]  # type: ignore[arg-type]
    assert len(hosts) == 1, hosts
    return hosts[0]


def assert_crash_reported(content: dict[str, object], while_running: bool) -> None:
    assert content["ename"] == "LLDBCrashed", content
    evalue = str(content["evalue"])
    assert "LLDB crashed (killed by SIGSEGV)" in evalue, evalue
    assert "a fresh Swift process was started: earlier variables are gone" in evalue, evalue
    assert ("while the cell ran" in evalue) == while_running, evalue


def test_host_crash_while_a_cell_runs(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel()
    assert execute(kc, "let before = 1").status == "ok"
    host = lldb_host(km)
    old = host.children(recursive=True)
    msg_id = kc.execute("while true {}")
    time.sleep(0.5)
    os.kill(host.pid, signal.SIGSEGV)
    started = time.monotonic()
    execution = collect(kc, msg_id, timeout=30)
    assert time.monotonic() - started < 10
    assert_crash_reported(execution.content, while_running=True)
    assert km.is_alive()
    # The crashed host's debug server and Swift process do not outlive it.
    _, alive = psutil.wait_procs(old, timeout=5)
    assert not alive, alive
    assert lldb_host(km).pid != host.pid
    assert execute(kc, "1 + 1").result == "2"
    assert execute(kc, "before").content["ename"] == "CompileError"


def test_host_crash_while_idle(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel()
    assert execute(kc, "let before = 1").status == "ok"
    host = lldb_host(km)
    os.kill(host.pid, signal.SIGSEGV)
    host.wait(timeout=10)
    # The next cell is not run against a Swift process that lost the earlier cells: it says so.
    told = execute(kc, "before + 1", timeout=60)
    assert_crash_reported(told.content, while_running=False)
    assert execute(kc, "let after = 2\nafter").result == "2"
    assert km.is_alive()
    names = sorted(p.name() for p in descendants(kernel_pid(km)))
    assert names.count("repl_swift") == 1 and names.count("lldb-server") == 1, names


class UnguardedHost(HostedExecutor):
    """A host without the kernel's top-level await rewrite, which LLDB 6.3.1 segfaults on."""

    host_command: ClassVar[list[str]] = [
        sys.executable,
        "-c",
        "import swift_kernel.executor as e; e.rewrite_top_level_await = lambda code: code\n"
        "from swift_kernel.hosted import main; main()",
    ]


@pytest.fixture
def unguarded(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostedExecutor]:
    toolchain = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
    # The host loads liblldb, which needs the toolchain's libraries on the loader path at start.
    monkeypatch.setenv("LD_LIBRARY_PATH", loader_path(toolchain, os.environ.get("LD_LIBRARY_PATH", "")))
    output: list[tuple[str, OutputEvent]] = []
    executor = UnguardedHost(toolchain, lambda name, event: output.append((name, event)))
    executor.start()
    yield executor
    executor.shutdown()


def test_a_real_lldb_crash_is_survived(unguarded: HostedExecutor) -> None:
    assert unguarded.execute("let kept = 1", "<Cell 1>").error is None
    first_host = unguarded.host_pid
    crashed = unguarded.execute("func work() async -> Int { 7 }\nlet r = await work()\nr", "<Cell 2>")
    assert crashed.error is not None and crashed.error.ename == "LLDBCrashed", crashed
    assert unguarded.host_pid != first_host
    assert unguarded.execute("1 + 1", "<Cell 3>").value == "2"
    gone = unguarded.execute("kept", "<Cell 4>")
    assert gone.error is not None and gone.error.ename == "CompileError"
