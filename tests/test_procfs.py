"""What the kernel reads of a process through /proc: its state and its memory."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

import pytest

from swift_kernel.procfs import ProcessMemory, ProgressWatchdog, children, process_state, wait_for_exit

from .utils import until


def test_memory_is_read_through_proc() -> None:
    buffer = ctypes.create_string_buffer(b"the Swift process's FILE flags", 30)
    address = ctypes.addressof(buffer)
    memory = ProcessMemory()
    assert memory.read(os.getpid(), address, 30) == b"the Swift process's FILE flags"
    assert memory.read(os.getpid(), address + 4, 5) == b"Swift"
    memory.close()


def test_memory_that_cannot_be_read_gives_none() -> None:
    memory = ProcessMemory()
    assert memory.read(os.getpid(), 8, 4) is None  # page zero is never mapped
    assert memory.read(os.getpid(), 1 << 62, 4) is None  # outside the address space
    assert memory.read(0, 0x1000, 4) is None  # no process 0 to read
    buffer = ctypes.create_string_buffer(b"still read", 10)
    assert memory.read(os.getpid(), ctypes.addressof(buffer), 10) == b"still read"
    memory.close()


def memory_files() -> list[str]:
    """Return the /proc/PID/mem files this process has open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own fd is gone
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.endswith("/mem"):
                found.append(target)
    return found


def test_the_memory_file_stays_open_for_its_process_and_is_closed_for_the_next() -> None:
    buffer = ctypes.create_string_buffer(b"mine", 4)
    memory = ProcessMemory()
    for _ in range(20):
        assert memory.read(os.getpid(), ctypes.addressof(buffer), 4) == b"mine"
    assert memory_files() == [f"/proc/{os.getpid()}/mem"]  # one file, opened once
    code = (
        "import ctypes, time; b = ctypes.create_string_buffer(b'theirs', 6)\n"
        "print(ctypes.addressof(b), flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        address = int(child.stdout.readline())  # type: ignore[union-attr]
        assert memory.read(child.pid, address, 6) == b"theirs"
        assert memory_files() == [f"/proc/{child.pid}/mem"]  # the first process's file was closed
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    assert memory.read(child.pid, address, 6) is None  # it ended
    memory.close()
    assert memory_files() == []


def test_a_process_state_is_read_and_a_gone_one_is_x() -> None:
    assert process_state(os.getpid()) == "R"  # this test runs
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 30
        while process_state(child.pid) != "S" and time.monotonic() < deadline:
            time.sleep(0.01)  # until it sleeps
        assert process_state(child.pid) == "S"
    finally:
        child.kill()
        child.wait()
    assert process_state(child.pid) == "X"  # reaped: no /proc entry left


def test_waiting_for_an_exit_wakes_at_the_exit() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(0.3); sys.exit(3)"])
    assert wait_for_exit(child, 30) == 3
    assert wait_for_exit(child, 30) == 3  # reaped already: its status, without another wait


def test_waiting_for_an_exit_times_out_as_popen_does() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_for_exit(child, 0.1)
    finally:
        child.kill()
    assert wait_for_exit(child, 30) == -signal.SIGKILL


def test_children_are_read_from_the_kernels_children_lists() -> None:
    """``children``: a process's children, from its threads' lists; reaped ones are gone from them."""
    assert children(os.getpid()) is not None
    with (
        subprocess.Popen(["sleep", "60"]) as started,
        subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True) as shell,
    ):
        assert shell.stdout is not None
        grandchild = int(shell.stdout.readline())
        try:
            listed = children(os.getpid()) or []
            # Only the direct children: the shell's sleep is the shell's.
            assert started.pid in listed and shell.pid in listed and grandchild not in listed
            assert children(shell.pid) == [grandchild]
        finally:
            os.kill(grandchild, signal.SIGKILL)
            started.kill()
            shell.kill()
    assert started.pid not in (children(os.getpid()) or [])


def test_children_of_a_process_that_is_gone_cannot_be_read() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert children(gone.pid) is None


# ----- ProgressWatchdog: a run stopped by the thread's progress, not by wall time -------------------

# Until SIGINT: busy, or asleep; then it prints the CPU time it had and exits.
_WATCHED = """
import signal, sys, time
def stop(*_):
    print(time.process_time(), flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
print("ready", flush=True)
if sys.argv[1] == "busy":
    while True:
        pass
time.sleep(60)
"""


def _watched(mode: str) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", _WATCHED, mode], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


def _cpu_at_the_signal(child: subprocess.Popen[str]) -> float:
    out, _ = child.communicate(timeout=30)
    return float(out)


def test_a_busy_thread_sharing_its_core_gets_its_whole_cpu_budget() -> None:
    # Two busy loops share one core with the watched thread: 0.3 s of its CPU takes about 0.9 s.
    core = {min(os.sched_getaffinity(0))}
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    child = _watched("busy")
    try:
        for process in (*burners, child):
            os.sched_setaffinity(process.pid, core)
        started = time.monotonic()
        with ProgressWatchdog(
            child.pid, child.pid, signal.SIGINT, cpu_ns=300_000_000, blocked_seconds=0.3, hang_seconds=30
        ) as watchdog:
            cpu = _cpu_at_the_signal(child)
        elapsed = time.monotonic() - started
    finally:
        for process in (*burners, child):
            process.kill()
            process.wait()
    assert watchdog.fired is not None and watchdog.fired.startswith("ran"), watchdog.fired
    assert cpu >= 0.3, cpu
    assert elapsed > 0.45, f"{elapsed:.2f} s: with its core shared three ways, 0.3 s of CPU takes longer"


def test_a_blocked_thread_is_signalled_once_it_has_not_run_for_a_while() -> None:
    child = _watched("asleep")
    try:
        started = time.monotonic()
        with ProgressWatchdog(
            child.pid, child.pid, signal.SIGINT, cpu_ns=300_000_000, blocked_seconds=0.3, hang_seconds=30
        ) as watchdog:
            assert _cpu_at_the_signal(child) < 0.3
        elapsed = time.monotonic() - started
    finally:
        child.kill()
        child.wait()
    assert watchdog.fired is not None and watchdog.fired.startswith("blocked"), watchdog.fired
    assert 0.3 <= elapsed < 10, elapsed


def test_a_stopped_thread_meets_the_hang_guard_and_a_run_that_ends_meets_nothing() -> None:
    child = _watched("asleep")
    try:
        os.kill(child.pid, signal.SIGSTOP)  # state T: neither running nor blocked
        with ProgressWatchdog(
            child.pid, child.pid, signal.SIGINT, cpu_ns=300_000_000, blocked_seconds=0.3, hang_seconds=0.5
        ) as watchdog:
            until(lambda: watchdog.fired is not None, 10)
        assert watchdog.fired is not None and watchdog.fired.startswith("not done"), watchdog.fired
        os.kill(child.pid, signal.SIGCONT)
        _cpu_at_the_signal(child)  # the pending SIGINT ends it
        with ProgressWatchdog(
            os.getpid(), os.getpid(), signal.SIGINT, cpu_ns=300_000_000, blocked_seconds=0.3, hang_seconds=30
        ) as quiet:
            pass
        assert quiet.fired is None
    finally:
        child.kill()
        child.wait()
