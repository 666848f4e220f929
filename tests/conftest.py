"""Fixtures: real kernels started from the installed kernelspecs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import psutil
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager, start_new_kernel

from .utils import execute, flush_channels, gone, register_private_kernelspec

KernelPair = tuple[KernelManager, BlockingKernelClient]

# The kernelspec with signal-mode interrupts exists for the tests only: users of `make lab` see
# just `swift`, so the tests register this one in a private directory (signal_kernelspec).
SIGNAL_KERNEL = "swift-signal"


@pytest.fixture(scope="session", autouse=True)
def session_build_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the %install build cache of the kernels started by module fixtures out of the real home."""
    cache = tmp_path_factory.mktemp("swift-kernel-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SWIFT_KERNEL_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(autouse=True)
def build_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Give the kernels a test starts an empty %install build cache: a build is never another test's."""
    cache = tmp_path_factory.mktemp("swift-kernel-cache")
    monkeypatch.setenv("SWIFT_KERNEL_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def signal_kernelspec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Register `swift-signal` (signal-mode interrupts) privately, on JUPYTER_PATH for this session."""
    data = register_private_kernelspec(
        tmp_path_factory.mktemp("kernelspecs"),
        SIGNAL_KERNEL,
        "--interrupt-mode",
        "signal",
        "--display-name",
        "Swift (signal interrupts)",
    )
    with pytest.MonkeyPatch.context() as patch:
        # KernelSpecManager reads JUPYTER_PATH when it is created, so every later start sees it.
        patch.setenv("JUPYTER_PATH", os.pathsep.join(filter(None, [str(data), os.environ.get("JUPYTER_PATH")])))
        yield SIGNAL_KERNEL


def _require_kernelspec(name: str) -> None:
    specs = KernelSpecManager().find_kernel_specs()
    if name not in specs:
        # Fail, never skip: a missing kernelspec means `make setup` did not do its job.
        hint = "use the signal_kernelspec fixture" if name == SIGNAL_KERNEL else "run `make setup`"
        pytest.fail(f"kernelspec {name!r} is not installed ({hint}); found {sorted(specs)}")


def start_kernel(name: str = "swift", **kwargs: object) -> KernelPair:
    """Start a kernel from the installed kernelspec ``name`` and wait until it answers.

    For `swift-signal` the test must use the ``signal_kernelspec`` fixture, which registers it.
    """
    _require_kernelspec(name)
    km, kc = start_new_kernel(kernel_name=name, startup_timeout=60, **kwargs)
    try:
        # The Swift process starts in the background; wait for it so timings in tests mean what they say.
        warm_up = execute(kc, "()")
        assert warm_up.status == "ok", warm_up.content
    except BaseException:
        # Not left running, nor its connection file left in the temp folder, by a failed start.
        stop_kernel(km, kc)
        raise
    return km, kc


def stop_kernel(km: KernelManager, kc: BlockingKernelClient) -> None:
    """Shut a kernel down and make sure nothing it started is left running."""
    pid = km.provisioner.process.pid if km.provisioner and km.provisioner.process else None
    children = []
    if pid:
        try:
            children = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    _, alive = psutil.wait_procs(children, timeout=10)
    for process in alive:
        process.send_signal(signal.SIGKILL)
    assert not alive, f"processes left behind after shutdown: {[p.info for p in alive]}"


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelPair]:
    """One Swift kernel shared by a test module (message-mode interrupts)."""
    km, kc = start_kernel("swift")
    yield km, kc
    stop_kernel(km, kc)


@pytest.fixture
def kc(kernel: KernelPair) -> BlockingKernelClient:
    """The shared kernel's client, with stale messages dropped."""
    flush_channels(kernel[1])
    return kernel[1]


@pytest.fixture
def fresh_kernel() -> Iterator[Callable[..., KernelPair]]:
    """Start kernels that belong to one test; all are shut down after it."""
    started: list[KernelPair] = []

    def start(name: str = "swift", **kwargs: object) -> KernelPair:
        pair = start_kernel(name, **kwargs)
        started.append(pair)
        return pair

    yield start
    for km, kc in started:
        if km.is_alive():
            stop_kernel(km, kc)
        else:
            # A test killed it: close the client's sockets and the manager's leftovers.
            kc.stop_channels()
            km.cleanup_resources()


@pytest.fixture
def logged_kernel(
    fresh_kernel: Callable[..., KernelPair], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[KernelManager, BlockingKernelClient, Path]:
    """Return a fresh kernel's manager and client, and the debug log its kernel and LLDB host write."""
    log = tmp_path / "kernel.log"
    monkeypatch.setenv("SWIFT_KERNEL_LOG", str(log))
    km, kc = fresh_kernel()
    return km, kc, log


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """Three CPU-bound processes competing for the machine's cores while the test runs.

    Users run notebooks on busy machines; the interrupt and time-limit guarantees must hold there.
    Each process also ends by itself after 30 minutes, should the test's process die first.
    """
    hog = "import time\nend = time.time() + 1800\nwhile time.time() < end: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", hog]) for _ in range(3)]
    try:
        yield
    finally:
        for process in hogs:
            process.kill()
            process.wait()


def kernel_pid(km: KernelManager) -> int:
    """Return the kernel process's pid."""
    assert km.provisioner is not None and km.provisioner.process is not None
    return int(km.provisioner.process.pid)


def matching(processes: Iterable[psutil.Process], accepts: Callable[[psutil.Process], bool]) -> list[psutil.Process]:
    """Return those of ``processes`` that ``accepts`` takes, passing over any that end while asked."""
    found = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if accepts(process):
                found.append(process)
    return found


def named(processes: Iterable[psutil.Process], *names: str) -> list[psutil.Process]:
    """Return those of ``processes`` named one of ``names``, passing over any that end while asked."""
    return matching(processes, lambda process: process.name() in names)


def names_of(processes: Iterable[psutil.Process]) -> list[str]:
    """Return the names of ``processes``, passing over any that end while asked."""
    names = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            names.append(process.name())
    return names


def sourcekit_lsp(km_pid: int) -> list[psutil.Process]:
    """Return the running sourcekit-lsp processes below the kernel."""
    return [process for process in named(descendants(km_pid), "sourcekit-lsp") if not gone(process)]


def python_children(km: KernelManager) -> list[psutil.Process]:
    """Return the kernel's Python children: its LLDB hosts, the spare included."""
    return matching(psutil.Process(kernel_pid(km)).children(), lambda p: p.name().startswith("python"))


def lldb_host(km: KernelManager) -> psutil.Process:
    """Return the kernel's LLDB host process (``python -m swift_kernel.host``, a child of the kernel)."""
    hosts = matching(psutil.Process(kernel_pid(km)).children(), lambda p: "swift_kernel.host" in " ".join(p.cmdline()))
    assert len(hosts) == 1, hosts
    return hosts[0]


def execute_while_compiling(km: KernelManager, kc: BlockingKernelClient, code: str, cpu_seconds: float) -> str:
    """Send ``code`` and return its msg_id once the LLDB host has spent ``cpu_seconds`` on it: the compiler is at work.

    Decided by the host's progress, not by a wait: on a busy machine the compile starts later.
    """
    host = lldb_host(km)
    cpu_before = sum(host.cpu_times()[:2])
    msg_id = kc.execute(code)
    deadline = time.monotonic() + 120
    while sum(host.cpu_times()[:2]) - cpu_before < cpu_seconds:
        assert time.monotonic() < deadline, "the LLDB host never got to work on the cell"
        time.sleep(0.02)
    return str(msg_id)


def descendants(pid: int) -> list[psutil.Process]:
    """Return every process below ``pid``."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
