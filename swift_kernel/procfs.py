"""Look at and signal processes through /proc and kill(2); no LLDB, no Jupyter.

Interrupts must never call an SBProcess method that takes the target's API lock while an
evaluation runs (``Stop``, ``GetState``... block until it ends), so both sides read ``/proc``
instead: the kernel's cell controller to decide its next rung, the LLDB session to check for a
SIGINT still pending before the next cell.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from types import TracebackType


def signal_bit(signum: int) -> int:
    """Return the bit of ``signum`` in /proc/<pid>/status's signal masks (SigPnd, ShdPnd, SigBlk)."""
    return 1 << (signum - 1)


SIGINT_BIT = signal_bit(signal.SIGINT)

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def proc_status(pid: int) -> tuple[str, int]:
    """Return (scheduler state letter, pending signal mask) of a process; ("X", 0) when it is gone."""
    try:
        state = _state_in(f"/proc/{pid}/stat")
        pending = 0
        for line in _read_record(f"/proc/{pid}/status").splitlines():
            if line.startswith(("SigPnd:", "ShdPnd:")):
                pending |= int(line.split()[1], 16)
        return state, pending
    except (OSError, IndexError, ValueError):
        return "X", 0


def process_state(pid: int) -> str:
    """Return the scheduler state letter of a process; "X" when it is gone (cheaper than ``proc_status``)."""
    return _state_or_gone(f"/proc/{pid}/stat")


class ProcessMemory:
    """Reads of a process's memory through its /proc/<pid>/mem, kept open: one pread a read.

    A gdb-remote read through LLDB costs a round trip to its debug server (0.1-0.3 ms once the
    process has moved); a pread costs microseconds. The kernel reads a few words around every cell
    (the standard streams' FILEs, the dispatch state, a result's bytes), right after LLDB's work
    has emptied the CPU's caches, where opening the file for each read cost more than the read.
    It needs ptrace access to the process (the same user, or root), which the process's own
    debugger host has; without it ``read`` returns None and the caller asks LLDB.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._fd = -1

    def read(self, pid: int, address: int, size: int) -> bytes | None:
        """Read ``size`` bytes at ``address`` of process ``pid``; None if it cannot."""
        with self._lock:  # held through the read: a close meanwhile could hand the fd to another file
            if pid != self._pid:
                self._close()
                try:
                    self._fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    return None
                self._pid = pid
            try:
                data = os.pread(self._fd, size, address)
            except (OSError, OverflowError):  # unmapped, or the process has ended
                return None
        return data if len(data) == size else None

    def close(self) -> None:
        """Close the file (the process ended or was replaced); a later read opens it again."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._pid, self._fd = 0, -1


def _read_record(path: str) -> str:
    """Return a /proc file that Linux writes whole at one read (stat, status, statm, syscall, schedstat).

    Not ``open()``: its buffered text file cost more than the read itself, on paths taken around
    every cell and every 10 ms of the progress watchdog.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 4096).decode(errors="replace")  # a command name may be any bytes
    finally:
        os.close(fd)


def _stat_fields(stat_path: str) -> list[str]:
    """Return the fields of a /proc stat file after the parenthesized command name (the state first)."""
    return _read_record(stat_path).rsplit(")", 1)[1].split()


def _state_in(stat_path: str) -> str:
    """Return the scheduler state letter in a /proc stat file."""
    return _stat_fields(stat_path)[0]


def thread_state(pid: int, tid: int) -> str:
    """Return the scheduler state letter of thread ``tid`` of ``pid`` ("X" when it is gone)."""
    return _state_or_gone(f"/proc/{pid}/task/{tid}/stat")


def _state_or_gone(stat_path: str) -> str:
    """Return the state letter in a /proc stat file; "X" when the file is gone (its process ended)."""
    try:
        return _state_in(stat_path)
    except (OSError, IndexError):
        return "X"


def parent_pid(pid: int) -> int:
    """Return the parent of ``pid`` (0 when it cannot be read)."""
    try:
        return int(_stat_fields(f"/proc/{pid}/stat")[1])
    except (OSError, ValueError, IndexError):
        return 0


def file_identity(stat: os.stat_result) -> tuple[int, int]:
    """Return what a stat result is of: (device, inode)."""
    return stat.st_dev, stat.st_ino


def fd_identity(pid: int, fd: int) -> tuple[int, int] | None:
    """Return what fd ``fd`` of process ``pid`` leads to (device, inode); None if it is closed."""
    try:
        return file_identity(os.stat(f"/proc/{pid}/fd/{fd}"))
    except OSError:
        return None


def open_fds(pid: int) -> list[int]:
    """Return the open fds of process ``pid`` (none when it is gone)."""
    try:
        return [int(name) for name in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return []


def send_signal(pid: int, signum: int) -> None:
    """Send a signal, ignoring a process that is already gone (or a pid of 0: none)."""
    if pid <= 0:
        return
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


class ProgressWatchdog:
    """Signal a process once one of its threads, let run, has had its share: decided by progress, not wall time.

    Used as a context manager around a run that should end by itself (a thread run on to a safe
    point or out of a library call). Sends ``signum`` to ``pid`` once thread ``tid`` has run
    ``cpu_ns`` of CPU time since the start; once it has slept (blocked in the kernel, state S or
    D) ``blocked_seconds`` without running; or, as a hang guard, after ``hang_seconds``. On a busy
    machine a thread that makes progress gets its whole budget, however long that takes in wall
    time; a thread that waits for something that will not come is stopped after
    ``blocked_seconds``. Checks every ``interval`` seconds; sends at most once.
    """

    def __init__(
        self,
        pid: int,
        tid: int,
        signum: int,
        *,
        cpu_ns: int,
        blocked_seconds: float,
        hang_seconds: float,
        interval: float = 0.01,
    ) -> None:
        self.pid, self.tid, self.signum = pid, tid, signum
        self.cpu_ns = cpu_ns
        self.blocked_seconds = blocked_seconds
        self.hang_seconds = hang_seconds
        self.interval = interval
        self.fired: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="progress-watchdog", daemon=True)

    def __enter__(self) -> ProgressWatchdog:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        started = last_progress = time.monotonic()
        first = last = thread_cpu_ns(self.pid, self.tid)
        while not self._done.wait(self.interval):
            now, spent = time.monotonic(), thread_cpu_ns(self.pid, self.tid)
            if spent != last:
                last, last_progress = spent, now
            if spent - first >= self.cpu_ns:
                self.fired = f"ran {(spent - first) / 1e6:.0f} ms of CPU"
            elif thread_state(self.pid, self.tid) in ("S", "D") and now - last_progress >= self.blocked_seconds:
                self.fired = f"blocked {now - last_progress:.2f} s"
            elif now - started >= self.hang_seconds:
                self.fired = f"not done after {now - started:.1f} s"
            else:
                continue
            send_signal(self.pid, self.signum)
            return


def wait_for_exit(process: subprocess.Popen[bytes], timeout: float) -> int:
    """``process.wait(timeout)``, woken by the exit itself instead of Popen's polling.

    Popen.wait with a timeout sleeps between polls, each sleep twice the last up to 50 ms: a
    process that ends after 20 ms is seen at 31.5 ms, one that ends after 40 ms at 63.5 ms, and a
    restart waits for it. A pidfd (Linux 5.3) becomes readable at the exit. Raises
    ``subprocess.TimeoutExpired`` as Popen.wait does.
    """
    if process.returncode is not None:
        return process.returncode  # reaped: its pid may be another process's by now
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # an older kernel, or reaped by another thread meanwhile
        return process.wait(timeout)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if not ready:
        raise subprocess.TimeoutExpired(process.args, timeout)
    return process.wait(timeout)  # reaps it: it has ended


def reading_stdin(pid: int) -> bool:
    """Say whether a thread of ``pid`` sleeps in a read of file descriptor 0.

    Only a sleeping thread counts: one stopped by the debugger, or just back from a read the
    kernel answered, still shows the read in its syscall file.
    """
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            # "0 0x0 ..." is read(0, ...) on x86_64 (syscall 0; aarch64's read is 63).
            if not _read_record(f"/proc/{pid}/task/{task}/syscall").startswith(("0 0x0 ", "63 0x0 ")):
                continue
            if _state_in(f"/proc/{pid}/task/{task}/stat") == "S":
                return True
    except OSError:
        return False
    return False


# System calls in which a thread waits for time or input, holding no lock of its process: sleep,
# read, poll and the like (x86_64 and aarch64 numbers); futex, a lock's wait, is not one of them.
# In order: read, poll, select, nanosleep, accept, recvfrom, wait4, clock_nanosleep, epoll_wait,
# pselect6, ppoll, epoll_pwait (aarch64 has no poll, select or epoll_wait).
_WAITING_CALLS = {
    "x86_64": {0, 7, 23, 35, 43, 45, 61, 230, 232, 270, 271, 281},
    "aarch64": {63, 101, 202, 207, 260, 115, 72, 73, 22},
}.get(os.uname().machine, set())


def waiting_in_call(pid: int) -> bool:
    """Say whether the main thread of ``pid`` sleeps in a system call that waits for time or input."""
    try:
        number = _read_record(f"/proc/{pid}/syscall").split(" ", 1)[0]
    except OSError:
        return False
    return number.isdigit() and int(number) in _WAITING_CALLS


def thread_cpu_ns(pid: int, tid: int = 0) -> int:
    """Return how long thread ``tid`` (default: the main thread) of ``pid`` has run on a CPU, in ns (0 if unknown)."""
    try:
        return int(_read_record(f"/proc/{pid}/task/{tid}/schedstat" if tid else f"/proc/{pid}/schedstat").split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def process_cpu_seconds(pid: int) -> float:
    """Return the CPU time all threads of ``pid`` have used, in seconds (0 if unknown)."""
    try:
        fields = _stat_fields(f"/proc/{pid}/stat")
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return 0.0


def resident_bytes(pid: int) -> int:
    """Return a process's resident memory in bytes (0 when it is gone)."""
    try:
        return int(_read_record(f"/proc/{pid}/statm").split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


def describe_exit(status: int | None) -> str:
    """Say how a child process ended, from its ``Popen.returncode``-style status."""
    if status is None:
        return "it stopped answering"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def remove_stale_temp_dirs(prefix: str, root: str | None = None) -> None:
    """Remove ``root``'s folders named ``<prefix><pid>-...`` whose process is gone (a killed kernel's).

    Each kernel names its temporary folders after its pid; ``root`` defaults to the temp directory.
    """
    root = root or tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        owner = name[len(prefix) :].split("-", 1)[0] if name.startswith(prefix) else ""
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


# ----- the processes a kernel started ----------------------------------------------------------

# Every process a kernel starts (its LLDB host, lldb-server, the Swift process, sourcekit-lsp,
# %system and %install commands) inherits this variable, naming the kernel as "<pid>:<start
# time>"; so do the processes those start, even ones that left the kernel's process tree (setsid,
# a double fork): the kernel ends them at shutdown, the host when the kernel is gone, and the next
# kernel to start those of a kernel that was killed before it could.
OWNER_VARIABLE = "SWIFT_KERNEL_OWNER"
# And each %system or %install command's processes carry this, naming the command.
COMMAND_VARIABLE = "SWIFT_KERNEL_COMMAND"


def children(pid: int) -> list[int] | None:
    """Return ``pid``'s child processes from its threads' children lists; None when they cannot be read.

    ``/proc/<pid>/task/<tid>/children`` (Linux 3.5 and later, with CONFIG_PROC_CHILDREN) names
    each thread's children, where psutil finds them by reading every process's stat.
    """
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as listed:
                found.update(int(child) for child in listed.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            return None  # no children lists in this kernel
        except (OSError, ValueError):
            return None
    return sorted(found)


def _start_time(pid: int) -> str:
    """Return a process's start time in clock ticks since boot ("" when it is gone)."""
    try:
        return _stat_fields(f"/proc/{pid}/stat")[19]
    except (OSError, IndexError):
        return ""


def mark_as_owner() -> str:
    """Name this process as the owner of every process it starts from now on; return the mark."""
    mark = f"{os.getpid()}:{_start_time(os.getpid())}"
    os.environ[OWNER_VARIABLE] = mark
    return mark


def owned_processes(variable: str = OWNER_VARIABLE) -> dict[int, str]:
    """Return ``{pid: mark}`` of every readable process whose environment has ``variable``."""
    needle = variable.encode() + b"="
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
        except OSError:
            continue  # gone, or another user's
        mark = next((v[len(needle) :] for v in variables if v.startswith(needle)), None)
        if mark is not None:
            found[int(entry)] = mark.decode(errors="replace")
    return found


# The kernel's flag for a task that has begun to exit (PF_EXITING, include/linux/sched.h).
_PF_EXITING = 0x4


def owner_alive(mark: str) -> bool:
    """Say whether the process an owner mark names still runs (not gone, not a zombie, not exiting).

    A killed kernel's sockets close while it exits, before it is a zombie: its LLDB host sees the
    connection end while /proc still says the kernel runs, and must not take it for alive then.
    """
    pid, _, started = mark.partition(":")
    if not pid.isdigit():
        return False
    try:
        fields = _stat_fields(f"/proc/{pid}/stat")
        state, flags, start = fields[0], int(fields[6]), fields[19]
    except (OSError, IndexError, ValueError):
        return False
    return start == started and state not in ("X", "Z") and not flags & _PF_EXITING


def end_owned_processes(owner: str | None = None, variable: str = OWNER_VARIABLE) -> list[int]:
    """SIGKILL the processes marked ``owner`` (by default: of owners that are gone); return their pids.

    Never this process. Repeated while it finds more (one may start another while they end).
    """
    ended: list[int] = []
    for _ in range(5):
        victims = [
            pid
            for pid, mark in owned_processes(variable).items()
            if pid != os.getpid()
            and pid not in ended
            and (mark == owner if owner is not None else not owner_alive(mark))
        ]
        if not victims:
            break
        for pid in victims:
            send_signal(pid, signal.SIGKILL)
        ended.extend(victims)
    return ended
