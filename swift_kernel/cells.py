"""The cell controller: the life of each cell and how it is stopped, kernel side, no LLDB.

A cell is *accepted* when the kernel takes its execute_request (``expect_cell``): from then on an
interrupt or its time limit applies to it, whatever it is doing. It then *evaluates* (compiles and
runs in the LLDB host, which cannot tell the two apart from here), may *wait for input* (its code
reads standard input) or *run a subprocess* (``%system``, a package build), and is *done* when the
kernel has its reply (``end_cell``).

``interrupt`` is the one entry point of every interrupt (control message, SIGINT, time limit). It
escalates under one lock until the evaluation returns: tell the host (``SwiftHost.mark``), a
SIGINT straight to the Swift process, LLDB's ``SendAsyncInterrupt``, and after the grace period
SIGKILL. Every interrupt is recorded (``interrupts``) with its rung, signal count and latency.

The controller reaches the Swift process only through ``SwiftHost`` (implemented by
``host.HostProcess``; the unit tests use a fake) and through the process's pid, which it signals
and reads in ``/proc``: no SBProcess method may be called while an evaluation runs.

Dependency direction: ``kernel`` → ``cells`` → ``host`` (transport) → ``lldb_session`` → ``lldb``;
this module also uses the pure leaves ``messages``, ``diagnostics``, ``asyncwrap``, ``output``
and ``procfs``.
"""

from __future__ import annotations

import array
import contextlib
import enum
import fcntl
import logging
import mmap
import os
import queue
import signal
import struct
import subprocess
import termios
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Protocol

from . import diagnostics
from .asyncwrap import AwaitRewriteError, rewrite_top_level_await
from .dap import RESUMING, DebugError, set_up_key
from .diagnostics import CellError, Frame
from .host import HOST_ENDED, HostProcess
from .messages import DebugEvent, Evaluate, Execute, Global, Installed, Outcome, Streams, SwiftProcessEnded
from .output import OutputCallback, OutputPump, StreamDecoder, Text, child_path, close_fds
from .procfs import (
    COMMAND_VARIABLE,
    SIGINT_BIT,
    end_owned_processes,
    owned_processes,
    proc_status,
    process_cpu_seconds,
    process_state,
    reading_stdin,
    resident_bytes,
    send_signal,
    thread_cpu_ns,
    waiting_in_call,
)
from .sources import placeholder_error
from .toolchain import Toolchain

__all__ = [
    "Cell",
    "CellController",
    "EarlyStart",
    "ExecutionResult",
    "InterruptRecord",
    "Phase",
    "Sent",
    "SwiftProcessEnded",
]

log = logging.getLogger(__name__)

# Called (on a watcher thread) when the Swift code reads standard input, with a function that takes
# the prompt (the unfinished line the code printed last): a future of the line to give it, None for
# end of input; cancelled if the cell ends first.
InputCallback = Callable[[Callable[[], str]], "Future[str | None]"]
# How long after a cell starts (or gets a line) its reads of stdin are looked for every 20 ms.
_STDIN_FAST_POLL_SECONDS = 2.0
# How long an interrupt waits on a compiling cell before it tells the user why nothing happens.
_COMPILING_NOTICE_SECONDS = 1.0
# How much CPU time the cell's thread may use after an interrupt without reaching a safe point
# before it is stopped wherever it is (a long library call, a loop in code not from a cell). Long
# enough for a collection's resize (a Set growing past 393,216 elements took over 20 ms), so that
# a loop doing one is stopped at its next safe point, not half-way between two statements. CPU
# time, not wall time: on a busy machine the code may wait long for a core, and that is no reason
# to stop it outside a safe point.
_SAFE_POINT_CPU_NS = 250_000_000
# How long the cell's thread must sleep in the kernel (sleep, read, a lock) before it is stopped
# there: such calls hold no half-done mutation, but a short wait for a lock may be inside one.
_BLOCKED_SECONDS = 0.004
# Said with an interrupt that could not wait for a safe point while the code ran.
_UNSAFE_NOTE = (
    "stopped outside a safe point, inside a call that ran on without reaching one: a value that "
    "call was changing may be half-updated"
)


def _held_note(count: int) -> str:
    """Say that ``count`` other threads running the cell's code were stopped with it."""
    threads = "thread that was" if count == 1 else f"{count} threads that were"
    return f"; the other {threads} running this cell's code stopped with it, for good"


class Phase(enum.Enum):
    """Where a cell is in its life; decides what an interrupt does."""

    IDLE = "idle"  # no cell accepted
    ACCEPTED = "accepted"
    EVALUATING = "evaluating"  # compiling or running in the host; LLDB does not say which
    WAITING_INPUT = "waiting for input"
    SUBPROCESS = "running a subprocess"
    DEBUGGING = "stopped in the debugger"


@dataclass
class ExecutionResult:
    """What one cell produced, beyond the output already streamed."""

    value: str | None = None
    error: CellError | None = None
    # The result's MIME bundle when it has more than text (text/plain is ``value``).
    data: dict[str, str] | None = None


@dataclass
class InterruptRecord:
    """One interrupt of one cell, kept for the log and the benchmarks."""

    source: str
    reason: str
    requested_at: float
    rung: str = ""
    signals_sent: int = 0
    stopped_at: float | None = None

    @property
    def latency(self) -> float | None:
        return None if self.stopped_at is None else self.stopped_at - self.requested_at


@dataclass(frozen=True)
class Sent:
    """Who sent a request (its client session) and when, by that client's clock (its header).

    A SIGINT has no sender: its session is ``ANY_CLIENT`` and its time the kernel's, when it came.
    """

    session: str
    at: datetime

    def before(self, other: Sent) -> bool:
        """Say whether this was sent before ``other``; only the same client's clock compares,
        and the kernel's with any client's (all on one machine, or kept in step)."""
        same_clock = self.session == other.session or ANY_CLIENT in (self.session, other.session)
        return same_clock and self.at < other.at


ANY_CLIENT = ""


@dataclass
class Cell:
    """One accepted cell, from the kernel taking its request until its reply; interrupts land here."""

    generation: int
    time_limit: float | None = None
    timer: threading.Timer | None = None
    interrupt: InterruptRecord | None = None
    phase: Phase = Phase.ACCEPTED
    # True while an evaluation of this cell runs in the host; run_done is set when it returns.
    running: bool = False
    # When the cell's code first started to run (its time limit counts from there).
    started_at: float | None = None
    # Running time used before the last stop in the debugger, and when the code last went on.
    time_used: float = 0.0
    running_since: float | None = None
    # Who sent the cell's execute_request, and when, if the request said.
    sent: Sent | None = None
    run_done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Ladder:
    """Where one interrupt's escalation stands (see ``CellController._escalate``)."""

    grace_from: float
    thread_cpu_at_request: int
    process_cpu_at_request: float
    # None while the code may still reach a safe point; then what the rung's name adds.
    where: str | None = None
    blocked_since: float | None = None
    pending_since: float | None = None
    next_signal: float = 0.0
    next_async: float = 0.0
    told: bool = False
    # The LLDB host's CPU time when the interrupt came: a compile after it is the host's work.
    host_cpu_at_request: float = 0.0


class SwiftHost(Protocol):
    """What the controller needs of the LLDB host (``host.HostProcess``, or a fake in tests).

    ``start`` and the requests run on the controller's executing thread, one at a time; ``mark``
    and ``async_interrupt`` come from interrupt threads while a request may be running.
    """

    @property
    def pid(self) -> int:
        """The Swift process's pid, 0 when none runs."""

    @property
    def host_pid(self) -> int:
        """The LLDB host's pid, 0 when none runs."""

    @property
    def launches(self) -> int:
        """Swift processes launched so far."""

    def start(self) -> None: ...
    def execute(self, request: Execute, on_sent: Callable[[], None] | None = None) -> Outcome: ...
    def mark(self, generation: int, source: str) -> None: ...
    def async_interrupt(self) -> None: ...
    def end(self, because: str) -> None: ...
    def relaunch(self) -> None: ...
    def reset(self) -> None: ...
    def set_environment(self, name: str, value: str) -> CellError | None: ...
    def load_installed(self, installed: Installed) -> CellError | None: ...
    def reopen_stdin(self, path: str) -> CellError | None: ...
    def globals(self) -> tuple[Global, ...]: ...
    def evaluate(self, request: Evaluate) -> Outcome: ...
    def debug(self, command: str, arguments: dict[str, Any], timeout: float) -> dict[str, Any]: ...
    def shutdown(self) -> None: ...


# Builds the host from the paths of the Swift process's standard streams, the path of the stop
# flag page, a callback for text the host adds to the cell's stderr (notes about the standard
# streams) and one for the debugger's events.
HostFactory = Callable[[Streams, str, Callable[[str], None], Callable[[DebugEvent], None]], SwiftHost]
# How long a debug request may take in the host (an expression the console evaluates included).
_DEBUG_SECONDS = 30.0
# Breakpoint requests taken while a cell runs, applied once the host can (see ``debug``).
_DEFERRED = ("setBreakpoints", "setExceptionBreakpoints")


class StopFlag:
    """A page shared with the Swift process (a memfd it opens by path): the safe points' flag.

    Word 0 asks the code running now to stop at its next safe point; the Swift prelude sets
    word 1 when it stopped at one.
    """

    def __init__(self) -> None:
        self._fd = os.memfd_create("swift-kernel-stop-flag", os.MFD_CLOEXEC)
        os.ftruncate(self._fd, mmap.PAGESIZE)
        self._page = mmap.mmap(self._fd, mmap.PAGESIZE)

    @property
    def path_for_child(self) -> str:
        return child_path(self._fd)

    def request(self) -> None:
        """Ask the running code to stop at its next safe point."""
        struct.pack_into("i", self._page, 0, 1)

    def clear(self) -> None:
        """Withdraw the request and forget whether a safe point was reached."""
        struct.pack_into("ii", self._page, 0, 0, 0)

    def reached(self) -> bool:
        """Say whether the code stopped at a safe point since the last ``clear``."""
        return bool(struct.unpack_from("i", self._page, 4)[0])

    def close(self) -> None:
        self._page.close()
        close_fds(self._fd)


class StdinPipe:
    """The Swift process's standard input: a pipe whose write end the kernel holds."""

    def __init__(self) -> None:
        self.read_fd = self.write_fd = -1
        self.ended = False
        self.renew()

    @property
    def path_for_child(self) -> str:
        return child_path(self.read_fd)

    def renew(self) -> None:
        """Open a fresh pipe (the Swift process opens it by path)."""
        self.close()
        self.read_fd, self.write_fd = os.pipe()
        self.ended = False

    def give(self, text: str) -> None:
        """Write a line for the Swift code to read."""
        if self.write_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self.write_fd, text.encode())

    def unread(self) -> int:
        """Return how many bytes wait in the pipe, not yet read by the Swift process."""
        if self.read_fd < 0:
            return 0
        pending = array.array("i", [0])
        fcntl.ioctl(self.read_fd, termios.FIONREAD, pending)
        return pending[0]

    def end(self) -> None:
        """Send end of input: readLine() returns nil."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1
        self.ended = True

    def close(self) -> None:
        close_fds(self.read_fd, self.write_fd)
        self.read_fd = self.write_fd = -1


# Rungs that stop running code wherever it is, after it used its CPU budget without a safe point.
_UNSAFE_RUNGS = ("signal outside a safe point", "async interrupt outside a safe point")


def _unblock_sigint() -> None:
    """Let SIGINT reach a child process before it execs (see run_subprocess): unblocked, and its default
    action, where a parent that ignores it (one started in the background by a shell) passes that on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _stream_pipe(pipe: Any, name: str, on_output: OutputCallback) -> None:
    """Decode a subprocess pipe into output events as data arrives."""
    decoder = StreamDecoder()
    while True:
        data = pipe.read1(1 << 16)
        for event in decoder.feed(data, final=not data):
            on_output(name, event)
        if not data:
            return


class CellController:
    """Run cells in the LLDB host and stop them on demand without losing the Swift state."""

    def __init__(
        self,
        make_host: HostFactory,
        on_output: OutputCallback,
        interrupt_grace: float = 5.0,
        resend_interval: float = 0.25,
        *,
        safe_points: bool = True,
        process_status: Callable[[int], tuple[str, int]] = proc_status,
        signal_process: Callable[[int, int], None] = send_signal,
        thread_cpu: Callable[[int], int] = thread_cpu_ns,
        process_cpu: Callable[[int], float] = process_cpu_seconds,
        waiting_call: Callable[[int], bool] = waiting_in_call,
        compiling_notice_seconds: float = _COMPILING_NOTICE_SECONDS,
    ) -> None:
        # Put safe points into cells, where an interrupt stops the code with every value whole.
        self.safe_points = safe_points
        # Show a result that is a collection of rows as a table (%display tables on).
        self.tables = False
        self.interrupt_grace = interrupt_grace
        # How long a compile an interrupt came during may go on before the LLDB host is ended.
        self.compile_grace = 10.0
        self.resend_interval = resend_interval
        # How the ladder reads and signals the Swift process (``procfs``; fakes in unit tests).
        self._process_status = process_status
        self._signal = signal_process
        self._thread_cpu = thread_cpu
        self._process_cpu = process_cpu
        self._waiting_call = waiting_call
        self._compiling_notice_seconds = compiling_notice_seconds
        # The latest interrupts with their rung and latency, for logs and benchmarks.
        self.interrupts: deque[InterruptRecord] = deque(maxlen=1000)
        # The pipes the Swift process writes its stdout and stderr into, and their reader.
        self._pump = OutputPump(on_output)
        self._stdin = StdinPipe()
        self._stop_flag = StopFlag()
        # Asked for a line when the Swift code reads standard input; None means end of input.
        self._on_input: InputCallback | None = None
        # The running cells whose reads of standard input the watcher thread answers (``_watch_stdin``).
        self._stdin_cells: queue.SimpleQueue[tuple[Cell, InputCallback] | None] = queue.SimpleQueue()
        self._stdin_watcher: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cell: Cell | None = None
        # The %system or %install command running, with the mark its processes carry.
        self._subprocess: tuple[subprocess.Popen[bytes], str] | None = None
        self._generation = 0
        # The last interrupt that found no cell, and who sent it when (see ``interrupt``).
        self._unclaimed: tuple[str, Sent] | None = None
        # The code run under each name (a cell's ``<Cell 3>``, an included file's name), for the
        # source lines of tracebacks; None for a name that ran two different codes (a silent
        # request reuses the number of the cell before it), whose lines cannot be told apart.
        self._sources: dict[str, str | None] = {}
        # The frontend's debugger: told of stops; breakpoints set while the code ran, still to give the host.
        self.on_debug_event: Callable[[DebugEvent], None] = lambda event: None
        self._deferred: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        streams = Streams(self._stdin.path_for_child, self._pump.path("stdout"), self._pump.path("stderr"))
        self.host = make_host(
            streams,
            self._stop_flag.path_for_child,
            lambda text: self._pump.emit("stderr", Text(text)),
            self._debug_event,
        )

    # ----- life cycle -------------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        """Return the phase of the accepted cell, IDLE when there is none."""
        cell = self._cell
        return cell.phase if cell is not None else Phase.IDLE

    @property
    def launches(self) -> int:
        """Return how many Swift processes were launched; a new one has none of the earlier state."""
        return self.host.launches

    def set_input_callback(self, callback: InputCallback | None) -> None:
        """Answer reads of standard input through ``callback`` from now on (None: end of input)."""
        self._on_input = callback

    def set_output_callback(self, callback: OutputCallback) -> None:
        """Send the Swift process's output to ``callback`` from now on."""
        self._pump.set_callback(callback)

    def start(self) -> None:
        """Start the LLDB host and its Swift process; called from the executing thread."""
        self.host.start()

    def reset(self) -> None:
        """Replace the LLDB host and the Swift process with fresh ones (``%reset``)."""
        self.host.reset()

    def host_memory(self) -> int:
        """Return the LLDB host's resident memory in bytes (0 when none runs)."""
        return resident_bytes(self.host.host_pid)

    def relaunch(self) -> None:
        """Start a fresh Swift process; all Swift state is lost."""
        self.host.relaunch()

    def set_environment(self, name: str, value: str) -> CellError | None:
        """Set an environment variable inside the Swift process (and fresh ones)."""
        return self.host.set_environment(name, value)

    def load_installed(
        self, module_dirs: list[str], module_maps: list[str], library: str, include_dirs: tuple[str, ...] = ()
    ) -> CellError | None:
        """Load built packages into the Swift process (and fresh ones)."""
        return self.host.load_installed(Installed(tuple(module_dirs), tuple(module_maps), library, include_dirs))

    def kill_now(self) -> None:
        """Kill the Swift process at once; safe from any thread, even while a cell runs."""
        self._signal(self.host.pid, signal.SIGKILL)

    def shutdown(self) -> None:
        """End the host, its Swift process and the pipes; leave no process behind."""
        self.host.shutdown()
        self._stdin_cells.put(None)
        self._pump.close()
        self._stdin.close()
        self._stop_flag.close()

    # ----- the debugger ---------------------------------------------------------------------

    def _debug_event(self, event: DebugEvent) -> None:
        """Take note of a stop or resumption in the debugger (host-reader thread), then pass it on."""
        with self._lock:
            cell = self._cell
            if cell is not None and cell.running:
                if event.event == "stopped" and cell.phase is not Phase.DEBUGGING:
                    cell.phase = Phase.DEBUGGING
                    # A time limit counts the cell's running time, not the time it sits in the debugger.
                    if cell.timer is not None and cell.running_since is not None:
                        cell.timer.cancel()
                        cell.time_used += time.monotonic() - cell.running_since
                elif event.event == "continued":
                    self._leave_debugger(cell)
        self.on_debug_event(event)

    def _leave_debugger(self, cell: Cell) -> None:
        """Take note that a cell stopped in the debugger runs again; under the lock."""
        if cell.phase is not Phase.DEBUGGING:
            return
        cell.phase = Phase.EVALUATING
        if cell.timer is not None and cell.interrupt is None:
            self._arm_time_limit(cell)

    def debug(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Answer one request of the frontend's debugger (DAP ``command``); safe from any thread.

        The host answers at once while idle or while the cell is stopped in the debugger; while
        the code runs it can take only ``pause``, and breakpoints given then are kept here and
        handed over at the next stop or cell (the answer says they are set). Raises DebugError.
        """
        with self._lock:
            cell = self._cell
            running = cell is not None and cell.running and cell.phase is not Phase.DEBUGGING
            if running and command in _DEFERRED:
                self._deferred[set_up_key(command, arguments)] = (command, arguments)
            if cell is not None and command in RESUMING:
                # From now on the host runs the code: what needs a stop must wait for the next.
                self._leave_debugger(cell)
        if running and command in _DEFERRED:
            lines = [item.get("line") for item in arguments.get("breakpoints") or []]
            path = (arguments.get("source") or {}).get("path")
            return {"breakpoints": [{"verified": True, "line": line, "source": {"path": path}} for line in lines]}
        if running and command != "pause":
            raise DebugError(f"{command} needs the cell to be stopped: pause it first")
        if not running:
            self._hand_over_deferred()
        return self.host.debug(command, arguments, _DEBUG_SECONDS)

    def _hand_over_deferred(self) -> None:
        """Give the host the breakpoints set while the code ran (while it is idle or stopped)."""
        with self._lock:
            deferred, self._deferred = list(self._deferred.values()), {}
        for command, arguments in deferred:
            try:
                self.host.debug(command, arguments, _DEBUG_SECONDS)
            except DebugError as error:
                log.warning("the breakpoints set while the cell ran were not set: %s", error)

    # ----- cells ------------------------------------------------------------------------------

    def expect_cell(self, time_limit: float | None = None, sent: Sent | None = None) -> Cell:
        """Register the cell the kernel has accepted, so that an interrupt from now on applies to it.

        Called by the kernel as soon as it takes an execute_request, before the cell reaches the
        executing thread (which may still be starting the Swift process); ``end_cell`` closes it.
        ``sent`` says who sent the cell's execute_request and when: an interrupt_request the same
        client sent before it was meant for an earlier cell.
        """
        with self._lock:
            self._generation += 1
            cell = Cell(self._generation, time_limit, sent=sent)
            self._cell = cell
            unclaimed, self._unclaimed = self._unclaimed, None
            if unclaimed is not None and sent is not None and sent.before(unclaimed[1]):
                log.info("an interrupt from %s overtook this cell's request: the cell will not run", unclaimed[0])
                cell.interrupt = InterruptRecord(unclaimed[0], "Interrupted by user", time.monotonic())
        return cell

    def expect_cell_if_idle(self) -> Cell | None:
        """Register a cell as ``expect_cell`` does, unless one is registered already (then None).

        For work between cells that must not take the place of a cell the kernel just accepted
        (the Variables panel's requests, from the control thread).
        """
        with self._lock:
            if self._cell is not None:
                return None
            self._generation += 1
            cell = self._cell = Cell(self._generation)
        return cell

    def _start_clock(self, cell: Cell) -> None:
        """Start the cell's time limit when its code (or command) first runs; called under the lock.

        Waiting for the Swift process to start, or in the kernel's queue, is not the cell's time.
        """
        if cell.started_at is not None:
            return
        cell.started_at = time.monotonic()
        self._arm_time_limit(cell)

    def _arm_time_limit(self, cell: Cell) -> None:
        """Start the timer of the cell's time limit for the running time it has left; under the lock."""
        cell.running_since = time.monotonic()
        if cell.time_limit is not None and cell.time_limit > 0:
            cell.timer = threading.Timer(max(cell.time_limit - cell.time_used, 0.0), self.interrupt, ("time limit",))
            cell.timer.daemon = True
            cell.timer.start()

    def end_cell(self, cell: Cell) -> None:
        """Close a cell opened by ``expect_cell``: later interrupts find nothing to stop."""
        if cell.timer is not None:
            cell.timer.cancel()
        with self._lock:
            if self._cell is cell:
                self._cell = None

    def interrupted_result(self, cell: Cell) -> ExecutionResult | None:
        """Return the KeyboardInterrupt result if ``cell`` was interrupted, else None."""
        record = cell.interrupt
        if record is None:
            return None
        record.rung = record.rung or "before start"
        self._record_interrupt(record)
        return self._interrupted(record, ())

    def _mark_running(self, cell: Cell) -> bool:
        """Mark ``cell`` running, unless an interrupt came first; say whether it may run.

        From here on an interrupt finds the cell running and starts the ladder; one that came
        after the caller's "interrupted before start" check is caught here instead of lost.
        """
        with self._lock:
            if cell.interrupt is not None:
                return False
            cell.run_done = threading.Event()
            cell.running = True
            cell.phase = Phase.EVALUATING
            self._stop_flag.clear()
            self._start_clock(cell)
            return True

    def execute(
        self,
        code: str,
        cell_name: str,
        cell: Cell | None = None,
        source_path: str = "",
        on_sent: Callable[[], None] | None = None,
    ) -> ExecutionResult:
        """Evaluate Swift code in the host; called from the kernel's single executing thread.

        ``cell`` is the kernel's cell from ``expect_cell`` (a cell may evaluate several pieces:
        included files, then its own code); without one, a cell is opened and closed here.
        Output streams to the callback while the code runs and is drained before this returns.
        ``on_sent`` is called (on this thread) once the code is on its way to the LLDB host, if it gets that far.
        """
        owned = cell is None
        if cell is None:
            cell = self.expect_cell()
        try:
            early = self.interrupted_result(cell)
            if early is not None:
                # Interrupted before it could start: nothing ran, nothing to stop.
                return early
            self._remember_source(cell_name, code)
            placeholder = placeholder_error(code, cell_name)
            if placeholder is not None:
                return ExecutionResult(error=placeholder)
            try:
                # LLDB 6.3.1 segfaults (taking the host with it) on top-level `await`.
                code = rewrite_top_level_await(code)
            except AwaitRewriteError as error:
                return ExecutionResult(error=CellError("AwaitError", str(error), [f"AwaitError: {error}"]))
            if self._stdin.ended or self._stdin.unread():
                self._renew_stdin()
            if not self._mark_running(cell):
                return self.interrupted_result(cell)  # type: ignore[return-value]
            self._pump.reset_tail()
            if self._deferred:
                self._hand_over_deferred()
            request = Execute(cell.generation, code, cell_name, self.safe_points, self.tables, source_path)
            ask = self._on_input

            def sent() -> None:
                # Once the code is on its way: the watcher thread's wake-up would take the GIL from
                # this one while it sends the cell, and the code cannot read before it is compiled.
                if ask is not None:
                    self._watch_stdin(cell, ask)
                if on_sent is not None:
                    on_sent()

            try:
                outcome = self.host.execute(request, sent)
            finally:
                with self._lock:
                    cell.running = False
                    cell.phase = Phase.ACCEPTED
                    # No stop request may outlive the evaluation it was meant for.
                    at_safe_point = self._stop_flag.reached()
                    self._stop_flag.clear()
                    cell.run_done.set()
            if at_safe_point and cell.interrupt is not None and cell.interrupt.rung != "kill":
                cell.interrupt.rung = "safe point"
            return self._result(outcome, cell)
        finally:
            if owned:
                self.end_cell(cell)

    def globals(self) -> tuple[Global, ...]:
        """Return the globals the cells declared, newest declaration of each name (``%whos``, the Variables panel)."""
        return self.host.globals()

    def evaluate(self, code: str, name: str, cell: Cell) -> ExecutionResult:
        """Evaluate a Swift expression outside the REPL for ``cell`` (its ``user_expressions``).

        Nothing it declares stays, even when it fails to compile; its output goes to the output
        callback like a cell's (the kernel sets one that drops it) and it reads an ended standard
        input; an interrupt of ``cell`` stops it as it stops a cell's code.
        """
        early = self.interrupted_result(cell)
        if early is not None:
            return early
        self._remember_source(name, code)
        self._stdin.end()  # nobody is asked for input: readLine() gets nil, and the next cell a fresh pipe
        if not self._mark_running(cell):
            return self.interrupted_result(cell)  # type: ignore[return-value]
        self._pump.reset_tail()
        try:
            outcome = self.host.evaluate(Evaluate(cell.generation, code, name))
        finally:
            with self._lock:
                cell.running = False
                cell.phase = Phase.ACCEPTED
                self._stop_flag.clear()
                cell.run_done.set()
        return self._result(outcome, cell)

    def _remember_source(self, name: str, code: str) -> None:
        """Keep the code run under ``name`` for tracebacks (frames name a file by its last part)."""
        key = name if name.startswith("<") else os.path.basename(name)
        self._sources[key] = code if self._sources.get(key, code) == code else None

    def _result(self, outcome: Outcome, cell: Cell) -> ExecutionResult:
        """Turn the host's outcome into the cell's result, once its output is all sent."""
        record = cell.interrupt
        if record is not None:
            self._record_interrupt(record)
        # The runtime's report of the fatal error that crashed the code is not sent as output:
        # its message becomes the error's (it is the last text on stderr, held back for this).
        reported = outcome.stop is not None and outcome.stop.reported_by_runtime and record is None
        report = self._pump.drain(withhold_report=reported)
        if outcome.ended is not None:
            ended = outcome.ended
            if record is not None and record.rung == "kill":
                evalue = (
                    f"{record.reason}; the Swift code did not stop within {self.interrupt_grace:g} s, "
                    "so its process was killed"
                )
                traceback = [f"KeyboardInterrupt: {evalue}.", ended.fresh]
                return ExecutionResult(error=CellError("KeyboardInterrupt", evalue, traceback))
            evalue = f"{ended.why}{ended.exit_text}; its state is gone."
            return ExecutionResult(
                error=CellError("SwiftProcessEnded", evalue, [f"SwiftProcessEnded: {evalue}", ended.fresh])
            )
        if outcome.stop is not None:
            stop = outcome.stop
            if record is not None:
                unsafe = record.rung in _UNSAFE_RUNGS or stop.threads_held_unsafely > 0
                return self._interrupted(record, stop.frames, unsafe=unsafe, threads_held=stop.threads_held)
            if reported and not report:
                # It went out already (the code ran on after it): read the message from there.
                report = self._pump.tail("stderr")
            return ExecutionResult(
                error=diagnostics.runtime_error(
                    stop.reason,
                    stop.description,
                    report,
                    stop.frames,
                    self._sources,
                    in_other_thread=stop.in_other_thread,
                )
            )
        if outcome.thrown is not None and record is None:
            thrown = outcome.thrown
            evalue = thrown.description or f"an error of type {thrown.type_name}"
            return ExecutionResult(error=CellError(thrown.type_name, evalue, [f"{thrown.type_name}: {evalue}"]))
        if outcome.error is not None:
            if record is not None and outcome.error.ename == "CompileError":
                return self._interrupted(record, ())
            if record is not None and record.rung == "end host" and outcome.error.ename == HOST_ENDED:
                evalue = f"{record.reason}; {outcome.error.evalue[:1].lower()}{outcome.error.evalue[1:]}"
                traceback = [f"KeyboardInterrupt: {evalue}", *outcome.error.traceback[1:]]
                return ExecutionResult(error=CellError("KeyboardInterrupt", evalue, traceback))
            return ExecutionResult(error=outcome.error)
        if record is not None:
            # The code finished before the interrupt could stop it (a compile ending just then, a
            # cell too quick for it): an interrupt accepted for a cell still ends it as one.
            return self._interrupted(record, ())
        return ExecutionResult(value=outcome.value, data=outcome.data)

    def _record_interrupt(self, record: InterruptRecord) -> None:
        """Log an interrupt that ended its cell and keep its record, once."""
        if record.stopped_at is not None:
            return
        record.stopped_at = time.monotonic()
        log.info(
            "interrupt from %s stopped the cell by %s after %.1f ms (%d signals)",
            record.source,
            record.rung or "compile finishing",
            (record.latency or 0) * 1000,
            record.signals_sent,
        )
        self.interrupts.append(record)

    def _interrupted(
        self, record: InterruptRecord, frames: tuple[Frame, ...], unsafe: bool = False, threads_held: int = 0
    ) -> ExecutionResult:
        evalue = f"{record.reason} ({_UNSAFE_NOTE})" if unsafe else record.reason
        if threads_held:
            evalue += _held_note(threads_held)
        traceback = [f"KeyboardInterrupt: {evalue}", *diagnostics.frame_lines(frames, self._sources)]
        return ExecutionResult(error=CellError("KeyboardInterrupt", evalue, traceback))

    # ----- standard input ---------------------------------------------------------------------

    def _renew_stdin(self) -> None:
        """Give the Swift process a fresh standard input: after an end of input, or unread lines."""
        self._stdin.renew()
        failure = self.host.reopen_stdin(self._stdin.path_for_child)
        if failure is not None:
            log.warning("reopening stdin failed: %s", failure.evalue)

    def _watch_stdin(self, cell: Cell, ask: InputCallback) -> None:
        """Have the watcher thread answer ``cell``'s reads of standard input while it runs.

        One thread for every cell, made by the first: a thread made for each cell made the
        executing thread wait for it to start, 0.3 ms of every trivial cell here. A cell's watch
        ends when its code is done, so the next cell's never waits behind it.
        """
        if self._stdin_watcher is None:
            self._stdin_watcher = threading.Thread(target=self._stdin_watch_loop, name="swift-stdin", daemon=True)
            self._stdin_watcher.start()
        self._stdin_cells.put((cell, ask))

    def _stdin_watch_loop(self) -> None:
        while (watched := self._stdin_cells.get()) is not None:
            try:
                self._answer_stdin_reads(*watched)
            except Exception:
                log.exception("answering a read of standard input failed")

    def _answer_stdin_reads(self, cell: Cell, ask: InputCallback) -> None:
        """While the code runs, answer each read of standard input with a line from ``ask``.

        /proc is read every 20 ms for the first seconds after the cell starts or a line is given
        (an interactive prompt answers quickly), then every 100 ms: a cell computing for hours
        with many threads should not pay for file reads it never needs.
        """
        run_done = cell.run_done
        fast_until = time.monotonic() + _STDIN_FAST_POLL_SECONDS
        while not run_done.wait(0.02 if time.monotonic() < fast_until else 0.1):
            if not reading_stdin(self.host.pid):
                continue
            with self._lock:
                cell.phase = Phase.WAITING_INPUT
            answer = ask(self._pump.take_prompt)
            while not answer.done() and not run_done.wait(0.01):
                pass
            with self._lock:
                if cell.phase is Phase.WAITING_INPUT:
                    cell.phase = Phase.EVALUATING
            if run_done.is_set():
                # Interrupted (or the code ended) while waiting: nobody needs the line any more.
                answer.cancel()
                return
            line = None if answer.cancelled() or answer.exception() is not None else answer.result()
            log.debug("input answered: %r", line)
            if line is None:
                self._stdin.end()
                return
            self._stdin.give(line + "\n")
            fast_until = time.monotonic() + _STDIN_FAST_POLL_SECONDS
            # Let the Swift code take the line before looking for the next read.
            while self._stdin.unread() and not run_done.wait(0.005):
                pass

    # ----- subprocesses -----------------------------------------------------------------------

    def run_subprocess(
        self, command: str, environment: dict[str, str], on_output: OutputCallback, cell: Cell, cwd: str | None = None
    ) -> int | None:
        """Run a shell command in its own process group with its output streamed; interruptible.

        Returns its exit status, or None when it was interrupted.
        """
        if cell.interrupt is not None:
            return None
        # Every process of the command carries this, also one that leaves its group (setsid);
        # unique, so that the stop of an earlier command never takes a later one for its own.
        mark = f"{os.getpid()}:{uuid.uuid4().hex}"
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**environment, COMMAND_VARIABLE: mark},
            cwd=cwd or os.getcwd(),
            start_new_session=True,  # its own group: an interrupt signals all it started, not us
            # The kernel blocks SIGINT in every thread and children inherit that mask; undo it so
            # the command can be interrupted.
            preexec_fn=_unblock_sigint,  # noqa: PLW1509 - only two signal syscalls run in the child
        )
        readers = [
            threading.Thread(target=_stream_pipe, args=(pipe, name, on_output), daemon=True)
            for pipe, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))
        ]
        for reader in readers:
            reader.start()
        with self._lock:
            self._subprocess = (process, mark)
            cell.phase = Phase.SUBPROCESS
            self._start_clock(cell)
        try:
            status = process.wait()
        finally:
            with self._lock:
                self._subprocess = None
                cell.phase = Phase.ACCEPTED
            for reader, pipe in zip(readers, (process.stdout, process.stderr), strict=True):
                reader.join(timeout=5)
                # A pipe a grandchild still holds open stays with its reader thread.
                if pipe is not None and not reader.is_alive():
                    pipe.close()
        if cell.interrupt is not None:
            self._record_interrupt(cell.interrupt)
            return None
        return status

    # ----- interrupts -------------------------------------------------------------------------

    def interrupt(self, source: str, sent: Sent | None = None) -> str:
        """Stop the running cell, if any; safe from any thread and returns at once.

        ``source`` is ``message``, ``signal`` or ``time limit``; ``sent`` says who sent an
        interrupt_request and when (its header). The returned word says what happened:
        ``idle`` (nothing ran), ``already`` (an interrupt of this cell is under way), ``earlier``
        (sent before this cell's own request: it was meant for an earlier cell) or ``started``.
        """
        with self._lock:
            cell = self._cell
            if cell is None:
                # It may have overtaken its cell's execute_request (control and shell are two
                # sockets; a signal is handled at once, the request waits its turn on a busy
                # machine): a cell this client sent before it is stopped as soon as it comes.
                if sent is None and source == "signal":
                    sent = Sent(ANY_CLIENT, datetime.now(timezone.utc))
                self._unclaimed = (source, sent) if sent is not None else None
                log.info("interrupt from %s while idle: nothing to stop", source)
                return "idle"
            if cell.interrupt is not None:
                return "already"
            if sent is not None and cell.sent is not None and sent.before(cell.sent):
                # A burst of interrupts for the cell before, handled only now: not this cell's.
                log.info("interrupt sent at %s, before this cell (%s): ignored", sent.at, cell.sent.at)
                return "earlier"
            reason = "Interrupted by user"
            if source == "time limit":
                reason = f"Cell time limit of {cell.time_limit:g} s exceeded"
            record = cell.interrupt = InterruptRecord(source, reason, time.monotonic())
            subprocess_running, running = self._subprocess, cell.running
        if subprocess_running is not None:
            record.rung = "SIGINT to the command's processes"
            threading.Thread(
                target=self._stop_subprocess, args=(*subprocess_running, record), name="swift-interrupt", daemon=True
            ).start()
        elif running:
            threading.Thread(target=self._escalate, args=(cell, record), name="swift-interrupt", daemon=True).start()
        else:
            log.info("interrupt from %s before the cell's code started: it will not run", source)
        return "started"

    def _stop_subprocess(self, process: subprocess.Popen[bytes], mark: str, record: InterruptRecord) -> None:
        """SIGINT to every process of the command; SIGKILL to those left after the grace period.

        Its process group gets the signal, and so does any process of it that left the group
        (``setsid``), which would otherwise run on and hold the output pipes open. Once the
        command itself has ended, what is left of it gets SIGTERM.
        """
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        for pid in self._command_processes(mark):
            send_signal(pid, signal.SIGINT)
        deadline = time.monotonic() + self.interrupt_grace
        terminated = False
        while time.monotonic() < deadline:
            if process_state(process.pid) in ("X", "Z"):
                left = self._command_processes(mark)
                if not left:
                    return
                if not terminated:
                    # The command ended; what it started in the background ignores SIGINT (as
                    # a shell's background jobs do), but not SIGTERM.
                    terminated = True
                    for pid in left:
                        send_signal(pid, signal.SIGTERM)
            time.sleep(0.02)
        record.rung = "SIGKILL to the command's processes"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        end_owned_processes(mark, COMMAND_VARIABLE)

    @staticmethod
    def _command_processes(mark: str) -> list[int]:
        return [pid for pid, found in owned_processes(COMMAND_VARIABLE).items() if found == mark]

    def _escalate(self, cell: Cell, record: InterruptRecord) -> None:
        """Stop the evaluation: at a safe point if it gets to one, else by the ladder of signals.

        Runs on its own thread until the evaluation returns. The host is told first, so that it
        reports the stop as an interrupt; then the stop flag asks the code to stop itself at its
        next safe point (``safepoints.py``), where every value is whole.

        Code that does not get to one is stopped where it is: at once when its thread sleeps in
        the kernel (``sleep``, ``read``, waiting for a lock: no mutation is half done there), and
        after ``_SAFE_POINT_CPU_NS`` of CPU time when it runs (a long library call), saying so in
        the error. That ladder: a SIGINT straight to the Swift process; one that LLDB's helper
        calls swallow is sent again once the code runs and none is pending, never two at once (a
        second signal landing while LLDB restores the process has corrupted its JIT state); a
        SIGINT that stays pending is blocked by the program, so LLDB's SendAsyncInterrupt
        (SIGSTOP, which cannot be blocked) takes over. A signal sent while LLDB compiles the cell
        (the process sits in a ptrace stop, state 't') would only queue, so none is sent then.

        The grace period after which the Swift process is killed counts from when the code runs,
        and ends only once the process has had CPU time to stop by itself (half the grace): on
        a busy machine code that waits for a core is not killed for being slow. A compilation
        (inside the host) cannot be interrupted; an interrupt during one that takes long says so
        on stderr, and the LLDB host then never starts the cell's code.
        """
        run_done = cell.run_done
        self.host.mark(cell.generation, record.source)
        # Without safe points (or with no grace at all) nothing is asked of the code: the ladder
        # starts at once.
        waits = self.safe_points and self.interrupt_grace > 0
        with self._lock:
            if waits and cell.running and not run_done.is_set():
                self._stop_flag.request()
        pid = self.host.pid
        ladder = _Ladder(record.requested_at, self._thread_cpu(pid), self._process_cpu(pid))
        ladder.host_cpu_at_request = self._process_cpu(self.host.host_pid)
        if not waits:
            ladder.where = ""
        while not run_done.is_set():
            now = time.monotonic()
            state, pending = self._process_status(pid)
            if state == "X":
                break
            if state == "t" and record.signals_sent == 0 and not record.rung:
                ladder.grace_from = now
                if not ladder.told and now - record.requested_at > self._compiling_notice_seconds:
                    ladder.told = True
                    notice = (
                        f"{record.reason} while the compiler works on this cell: it stops as soon as it runs, "
                        f"or if the compiler is still at it {self.compile_grace:g} s after the interrupt, the "
                        "LLDB host is ended to stop it (earlier variables are then lost).\n"
                    )
                    self._pump.emit("stderr", Text(notice))
                if self._compile_over(now, record, ladder):
                    record.rung = "end host"
                    waited = now - record.requested_at
                    self.host.end(f"the compiler was still working on this cell {waited:.1f} s after the interrupt")
                    break
            if self._grace_over(pid, now, ladder):
                record.rung = "kill"
                log.warning("interrupt grace of %.1f s over: killing Swift process %d", self.interrupt_grace, pid)
                self._signal(pid, signal.SIGKILL)
                break
            if state != "t":
                if ladder.where is None:
                    self._give_up_on_safe_points(ladder, pid, state, now)
                if ladder.where is not None:
                    self._next_rung(ladder, record, pid, pending, now)
            run_done.wait(0.001 if now - record.requested_at < 0.05 else 0.01)

    def _give_up_on_safe_points(self, ladder: _Ladder, pid: int, state: str, now: float) -> None:
        """Decide whether the code must be stopped where it is, not at a safe point."""
        if state in ("S", "D"):
            ladder.blocked_since = ladder.blocked_since if ladder.blocked_since is not None else now
            # Asleep in sleep(), read() and the like: at once. In a lock's wait (futex), which
            # may be inside a mutation, only once it has lasted.
            if now - ladder.blocked_since >= _BLOCKED_SECONDS or self._waiting_call(pid):
                ladder.where = ""
        else:
            ladder.blocked_since = None
            if self._thread_cpu(pid) - ladder.thread_cpu_at_request >= _SAFE_POINT_CPU_NS:
                ladder.where = " outside a safe point"

    def _next_rung(self, ladder: _Ladder, record: InterruptRecord, pid: int, pending: int, now: float) -> None:
        """Send the next signal of the ladder, if one is due."""
        if pending & SIGINT_BIT:
            ladder.pending_since = ladder.pending_since or now
        blocked = ladder.pending_since is not None and now - ladder.pending_since > self.resend_interval
        if blocked or record.signals_sent >= 3:
            if now >= ladder.next_async:
                # Repeated because a lone SendAsyncInterrupt has been seen to get lost.
                self.host.async_interrupt()
                record.rung = f"async interrupt{ladder.where}"
                ladder.next_async = now + self.resend_interval
        elif not pending & SIGINT_BIT and now >= ladder.next_signal:
            self._signal(pid, signal.SIGINT)
            record.signals_sent += 1
            record.rung = record.rung or f"signal{ladder.where}"
            ladder.next_signal = now + self.resend_interval

    def _compile_over(self, now: float, record: InterruptRecord, ladder: _Ladder) -> bool:
        """Say whether a compile the interrupt came during has had its grace period, in time and in progress.

        A compile cannot be interrupted, only ended with the LLDB host that runs it. A host that
        has not had CPU time (a busy machine) gets up to three grace periods.
        """
        waited = now - record.requested_at
        if waited < self.compile_grace:
            return False
        ran = self._process_cpu(self.host.host_pid) - ladder.host_cpu_at_request
        return ran >= self.compile_grace / 2 or waited >= 3 * self.compile_grace

    def _grace_over(self, pid: int, now: float, ladder: _Ladder) -> bool:
        """Say whether code that was asked to stop has had its grace period, in time and in progress."""
        waited = now - ladder.grace_from
        if waited < self.interrupt_grace:
            return False
        # A process that could not run (a busy machine) has not had its chance yet; three grace
        # periods are the most it waits in any case.
        ran = self._process_cpu(pid) - ladder.process_cpu_at_request
        return ran >= self.interrupt_grace / 2 or waited >= 3 * self.interrupt_grace


def hosted_controller(toolchain: Toolchain, on_output: OutputCallback, **kwargs: Any) -> CellController:
    """Return a controller whose cells run in a real LLDB host process (``host.HostProcess``)."""
    def make_host(
        streams: Streams,
        stop_flag: str,
        on_stderr: Callable[[str], None],
        on_debug_event: Callable[[DebugEvent], None],
    ) -> SwiftHost:
        return HostProcess(
            toolchain, streams, stop_flag=stop_flag, on_stderr=on_stderr, on_debug_event=on_debug_event
        )

    return CellController(make_host, on_output, **kwargs)


@dataclass
class EarlyStart:
    """A controller whose LLDB host starts before the kernel object exists.

    ``python -m swift_kernel`` begins this before importing ipykernel, so that starting the host,
    launching ``repl_swift`` and running the prelude overlap with the Jupyter imports; the kernel
    takes it.
    """

    controller: CellController
    toolchain: Toolchain
    thread: ThreadPoolExecutor
    started: Future[None]

    _pending: ClassVar[EarlyStart | None] = None

    @classmethod
    def begin(cls, toolchain: Toolchain) -> EarlyStart:
        """Start the LLDB host process (and its Swift process) from the executing thread."""
        controller = hosted_controller(toolchain, lambda name, event: None)
        # Every request to the LLDB host waits on this one thread; other threads only signal.
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="swift-lldb")
        early = cls(controller, toolchain, thread, thread.submit(controller.start))
        cls._pending = early
        return early

    @classmethod
    def begun(cls) -> bool:
        """Say whether an early start is waiting for the kernel to take it."""
        return cls._pending is not None

    @classmethod
    def take(cls) -> EarlyStart | None:
        """Hand over the early start, once."""
        early, cls._pending = cls._pending, None
        return early
