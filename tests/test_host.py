"""LLDB runs in a child process of the kernel (the LLDB host): its crash must not end the kernel."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from swift_kernel.cells import CellController, hosted_controller
from swift_kernel.host import HostProcess
from swift_kernel.hostspawn import EarlyHost
from swift_kernel.messages import Execute
from swift_kernel.output import OutputEvent
from swift_kernel.toolchain import find_toolchain, loader_path

from .conftest import KernelPair, descendants, kernel_pid, lldb_host, named, names_of, python_children
from .utils import collect, execute, value

pytestmark = pytest.mark.lldb


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


def ready_host_after(km: object, dead: psutil.Process, timeout: float = 30) -> psutil.Process:
    """Wait, sending no request, until a fresh host replaced ``dead`` and runs a Swift process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hosts = python_children(km)  # type: ignore[arg-type]
        fresh = [h for h in hosts if h.pid != dead.pid]
        with contextlib.suppress(psutil.NoSuchProcess):
            if len(fresh) == 1 and any(p.name() == "repl_swift" for p in fresh[0].children(recursive=True)):
                return fresh[0]
        time.sleep(0.05)
    raise AssertionError(f"no fresh LLDB host within {timeout} s")


def test_host_crash_while_idle(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel()
    assert execute(kc, "let before = 1").status == "ok"
    host = lldb_host(km)
    os.kill(host.pid, signal.SIGSEGV)
    host.wait(timeout=10)
    # The fresh host starts as soon as the crash is noticed, not when the next cell comes.
    fresh = ready_host_after(km, host)
    # The next cell is not run against a Swift process that lost the earlier cells: it says so.
    told = execute(kc, "before + 1", timeout=60)
    assert lldb_host(km).pid == fresh.pid
    assert_crash_reported(told.content, while_running=False)
    assert execute(kc, "let after = 2\nafter").result == "2"
    assert km.is_alive()
    names = sorted(names_of(descendants(kernel_pid(km))))
    assert names.count("repl_swift") == 1 and names.count("lldb-server") == 1, names


def start_controller(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CellController:
    toolchain = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
    # The host loads liblldb, which needs the toolchain's libraries on the loader path at start.
    monkeypatch.setenv("LD_LIBRARY_PATH", loader_path(toolchain, os.environ.get("LD_LIBRARY_PATH", "")))
    # The host writes its log here.
    monkeypatch.setenv("SWIFT_KERNEL_LOG", str(tmp_path / "host.log"))
    output: list[tuple[str, OutputEvent]] = []
    controller = hosted_controller(toolchain, lambda name, event: output.append((name, event)))
    controller.start()
    return controller


@pytest.fixture
def hosted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CellController]:
    controller = start_controller(monkeypatch, tmp_path)
    yield controller
    controller.shutdown()


def test_the_host_spawned_first_is_the_kernels_first_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``python -m swift_kernel`` spawns the host before importing the kernel's modules (``hostspawn``)."""
    toolchain = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
    monkeypatch.setenv("LD_LIBRARY_PATH", loader_path(toolchain, os.environ.get("LD_LIBRARY_PATH", "")))
    EarlyHost.begin()
    early = EarlyHost._spawned
    assert early is not None
    # A host of another command (a test's) leaves it alone.
    monkeypatch.setattr(HostProcess, "host_command", [*HostProcess.host_command, "--other"])
    assert EarlyHost.take(HostProcess.host_command) is None
    monkeypatch.undo()
    monkeypatch.setenv("LD_LIBRARY_PATH", loader_path(toolchain, os.environ.get("LD_LIBRARY_PATH", "")))
    controller = hosted_controller(toolchain, lambda name, event: None)
    try:
        controller.start()
        assert controller.host.host_pid == early.process.pid  # type: ignore[attr-defined]
        assert controller.execute("1 + 1", "<Cell 1>").value == "2"
        assert EarlyHost._spawned is None  # taken once
    finally:
        controller.shutdown()
    assert early.process.wait(timeout=30) == 0
    assert not Path(early.temp_dir).exists()


def test_a_real_lldb_crash_is_survived(hosted: CellController) -> None:
    host = hosted.host
    assert isinstance(host, HostProcess)
    assert hosted.execute("let kept = 1", "<Cell 1>").error is None
    first_host = host.host_pid
    # Straight to the host, past the controller's top-level await rewrite: LLDB 6.3.1 segfaults on it.
    crashed = host.execute(Execute(2, "func work() async -> Int { 7 }\nlet r = await work()\nr", "<Cell 2>"))
    assert crashed.error is not None and crashed.error.ename == "LLDBCrashed", crashed
    assert host.host_pid != first_host
    assert hosted.execute("1 + 1", "<Cell 3>").value == "2"
    gone = hosted.execute("kept", "<Cell 4>")
    assert gone.error is not None and gone.error.ename == "CompileError"


def test_a_crash_loop_ends_in_one_clear_error(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel()
    assert execute(kc, "1").status == "ok"
    host = lldb_host(km)
    for _ in range(2):
        os.kill(host.pid, signal.SIGKILL)
        host = ready_host_after(km, host)
        # Once this is answered the fresh host is ready (a host that dies while starting is not
        # replaced until a cell asks for it).
        assert execute(kc, "1", timeout=60).content["ename"] == "LLDBCrashed"
    os.kill(host.pid, signal.SIGKILL)
    host.wait(timeout=10)
    time.sleep(1)
    # The third death within a minute: no fresh host, and every cell says why at once.
    assert not python_children(km)
    for _ in range(2):
        started = time.monotonic()
        reply = execute(kc, "1 + 1", timeout=30)
        assert time.monotonic() - started < 2
        assert reply.content["ename"] == "LLDBCrashed", reply.content
        assert "LLDB crashed 3 times within 60 s" in reply.content["evalue"], reply.content
        assert "restart the kernel" in reply.content["evalue"], reply.content
    assert km.is_alive()
    assert not named(descendants(kernel_pid(km)), "repl_swift", "lldb-server")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_installed_packages_are_loaded_again_after_a_host_crash(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel()
    package = Path(__file__).resolve().parent / "packages" / "Greeter"
    built = execute(kc, f"%install '.package(path: \"{package}\")' Greeter", timeout=300)
    assert built.status == "ok", built.content
    assert value(kc, 'import Greeter\ngreet("before")') == '"Hello, before!"'
    host = lldb_host(km)
    os.kill(host.pid, signal.SIGSEGV)
    ready_host_after(km, host)
    assert execute(kc, "1", timeout=60).content["ename"] == "LLDBCrashed"
    assert value(kc, 'import Greeter\ngreet("after")') == '"Hello, after!"'


@pytest.mark.parametrize(
    ("code", "safe_points", "rung", "signals"),
    [
        ("var spins = 0\nwhile true { spins &+= 1 }", True, "safe point", 0),
        ("import Glibc\nsleep(1000)", True, "signal", 1),
        # Turned off, the ladder starts at once, as before safe points existed.
        ("var spins = 0\nwhile true { spins &+= 1 }", False, "signal", 1),
    ],
    ids=["loop at a safe point", "sleep", "loop without safe points"],
)
def test_interrupt_records_the_kernels_ladder(
    hosted: CellController, code: str, safe_points: bool, rung: str, signals: int
) -> None:
    log_file = Path(os.environ["SWIFT_KERNEL_LOG"])
    hosted.safe_points = safe_points
    started = threading.Event()

    def interrupt_soon() -> None:
        started.wait()
        time.sleep(1.0)
        hosted.interrupt("message")

    helper = threading.Thread(target=interrupt_soon)
    helper.start()
    started.set()
    result = hosted.execute(code, "<Cell 1>")
    helper.join()
    assert result.error is not None and result.error.ename == "KeyboardInterrupt", result
    assert result.error.evalue == "Interrupted by user", result.error
    record = hosted.interrupts[-1]
    assert record.rung == rung and record.signals_sent == signals, record
    assert record.latency is not None and record.latency < 1, record
    # The host only hears of the interrupt; its log does not pretend to know how it stopped.
    host_lines = [line for line in log_file.read_text().splitlines() if " host-" in line and "interrupt" in line]
    assert any("the kernel logs how it stopped" in line for line in host_lines), host_lines
    assert not any("stopped the cell by" in line for line in host_lines), host_lines


def kernel_temp_dirs(pid: int) -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob(f"swift-kernel-tmp-{pid}-*"))


def test_lldbs_files_stay_in_the_kernels_own_temp_folder_which_goes_with_it(
    fresh_kernel: Callable[..., KernelPair],
) -> None:
    # A folder left by a kernel whose whole process group was killed: the next start removes it.
    stale = Path(tempfile.mkdtemp(prefix="swift-kernel-tmp-999999999-"))
    stale_install = Path(tempfile.mkdtemp(prefix="swift-kernel-install-999999999-"))
    before = set(Path(tempfile.gettempdir()).glob("repl*.cpp"))
    km, kc = fresh_kernel()
    assert not stale.exists()
    assert not stale_install.exists(), "a killed kernel's %install folder was left"
    assert list(Path(tempfile.gettempdir()).glob(f"swift-kernel-install-{kernel_pid(km)}-*"))
    for number in range(3):
        assert execute(kc, f"let t{number} = {number}").status == "ok"
    pid = kernel_pid(km)
    (own,) = kernel_temp_dirs(pid)
    assert list(own.glob("repl*.cpp")), "LLDB's expression files are not in the kernel's folder"
    assert set(Path(tempfile.gettempdir()).glob("repl*.cpp")) <= before
    # Killed, the kernel leaves it to its LLDB host, which removes it as it ends.
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while own.exists():
        assert time.monotonic() < deadline, sorted(own.iterdir())
        time.sleep(0.1)
