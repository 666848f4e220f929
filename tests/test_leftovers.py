"""Nothing left behind (issue 14 items 12 and 13): processes and temporary files.

A kernel's processes carry its mark (``procfs.OWNER_VARIABLE``), and so does what they start, even
a process that left the kernel's process tree: ``setsid`` from ``%system``, a ``fork()`` of the
Swift process. A graceful shutdown ends them all; when the kernel is killed, its LLDB host does;
when the host cannot (stopped), the next kernel to start does. Temporary files of the kernel and
of what it runs (LLDB, SwiftPM, the Swift driver, sourcekit-lsp) go into folders of the kernel's
own, removed at shutdown.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from swift_kernel.procfs import proc_status
from swift_kernel.toolchain import find_toolchain

from .conftest import KernelPair, descendants, kernel_pid, lldb_host, named
from .test_install import install
from .utils import execute, run_python, value

pytestmark = [pytest.mark.lldb, pytest.mark.timeout(300)]

# A process that leaves the command's group and session, and one forked by the Swift process (a
# fork does not inherit the parent-death signal the Swift process has).
ESCAPED = "%system setsid sh -c 'echo $$ > {file}; exec sleep 300' > /dev/null 2>&1 &"
FORKED = "import Glibc\nlet forked = fork()\nif forked == 0 { sleep(300); exit(0) }\nforked"


def gone(pid: int) -> bool:
    return proc_status(pid)[0] in ("X", "Z")  # a zombie has ended; its new parent reaps it


def left_running(pids: list[int], timeout: float = 30) -> list[int]:
    """Wait until every process of ``pids`` has ended; return those still running at the timeout."""
    deadline = time.monotonic() + timeout
    while any(not gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if not gone(pid)]


def start_escapees(kc: object, folder: Path) -> list[int]:
    """Have the kernel start a setsid process and a forked one; return their pids."""
    pid_file = folder / "escaped.pid"
    assert execute(kc, ESCAPED.format(file=pid_file)).status == "ok"  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the setsid process never started"
        time.sleep(0.02)
    escaped = int(pid_file.read_text())
    forked = int(value(kc, FORKED) or "0")  # type: ignore[arg-type]
    assert escaped > 0 and forked > 0 and not gone(escaped) and not gone(forked)
    return [escaped, forked]


def test_shutdown_ends_what_the_kernel_started_outside_its_tree(
    fresh_kernel: Callable[..., KernelPair], tmp_path: Path
) -> None:
    km, kc = fresh_kernel()
    escapees = start_escapees(kc, tmp_path)
    assert escapees[0] not in {p.pid for p in descendants(kernel_pid(km))}  # out of the tree
    tree = [p.pid for p in descendants(kernel_pid(km))]
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    assert left_running(escapees + tree) == []


def test_a_killed_kernels_host_ends_what_the_kernel_started(
    fresh_kernel: Callable[..., KernelPair], tmp_path: Path
) -> None:
    km, kc = fresh_kernel()
    escapees = start_escapees(kc, tmp_path)
    tree = [p.pid for p in descendants(kernel_pid(km))]
    os.kill(kernel_pid(km), signal.SIGKILL)
    assert left_running(escapees + tree) == []


def test_the_next_kernel_ends_what_a_killed_kernel_and_its_stopped_host_left(
    fresh_kernel: Callable[..., KernelPair], tmp_path: Path
) -> None:
    km, kc = fresh_kernel()
    escapees = start_escapees(kc, tmp_path)
    tree = [p.pid for p in descendants(kernel_pid(km))]
    host = lldb_host(km)
    host.suspend()  # it cannot end anything now
    os.kill(kernel_pid(km), signal.SIGKILL)
    time.sleep(1.0)
    assert not gone(host.pid) and not gone(escapees[0])  # still there: nobody could end them
    fresh_kernel()
    assert left_running(escapees + tree) == []


def test_lldb_server_does_not_hold_the_kernels_connection_to_its_host(kernel: KernelPair) -> None:
    km, _ = kernel
    host = lldb_host(km)
    connection = os.readlink(f"/proc/{host.pid}/fd/{host.cmdline()[-1]}")
    assert connection.startswith("socket:")
    servers = named(descendants(host.pid), "lldb-server")
    assert len(servers) == 1, servers
    held = {os.readlink(f"/proc/{servers[0].pid}/fd/{fd}") for fd in os.listdir(f"/proc/{servers[0].pid}/fd")}
    assert connection not in held


def test_a_session_with_an_install_and_completion_leaves_no_temporary_files(
    fresh_kernel: Callable[..., KernelPair], tmp_path: Path
) -> None:
    # The kernel's temp directory is this test's: whatever the kernel or the programs it runs
    # (LLDB, swift build, the Swift driver, sourcekit-lsp) leave there is found.
    temp = tmp_path / "tmp"
    temp.mkdir()
    km, kc = fresh_kernel(env={**os.environ, "TMPDIR": str(temp)})
    assert execute(kc, install("Greeter", "Greeter"), timeout=300).status == "ok"
    assert value(kc, 'import Greeter\ngreet("temp")') == '"Hello, temp!"'
    msg_id = kc.complete("gre", 3)
    reply = kc.get_shell_msg(timeout=60)
    assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok"
    assert os.listdir(temp)  # the kernel's folders, while it runs
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    assert sorted(os.listdir(temp)) == []


def test_reading_the_toolchains_version_leaves_no_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # register.py and a kernel started without SWIFT_KERNEL_SWIFT_VERSION run `swift --version`,
    # whose driver leaves an empty TemporaryDirectory.XXXXXX in TMPDIR each time.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert "Swift version" in find_toolchain(None).version()
    assert os.listdir(tmp_path) == []


# ipykernel's own ending of the kernel's children at shutdown, seen from a process of its own (in
# this one it would signal every child of the test run's process group).
CHILDREN_AT_SHUTDOWN = """
import asyncio, logging, subprocess, threading
from ipykernel.kernelbase import Kernel
from swift_kernel.kernel import SwiftKernel

calls = []
original = Kernel._progressively_terminate_all_children


async def recording(self):
    calls.append(True)
    await original(self)


Kernel._progressively_terminate_all_children = recording
kernel = SwiftKernel.__new__(SwiftKernel)
kernel.log = logging.getLogger("check")
asyncio.run(kernel._progressively_terminate_all_children())
assert calls == [], "ipykernel looked for children where there were none"
child = subprocess.Popen(["sleep", "60"])
reaped = []
reaper = threading.Thread(target=lambda: reaped.append(child.wait()))  # no zombie for ipykernel to wait on
reaper.start()
asyncio.run(kernel._progressively_terminate_all_children())
reaper.join(30)
assert calls == [True], calls
assert reaped == [-15], reaped
print("ok")
"""


def test_a_child_left_at_shutdown_is_still_ended_by_ipykernel() -> None:
    """The kernel skips ipykernel's scan of every process only when its children lists are empty."""
    run_python(CHILDREN_AT_SHUTDOWN)
