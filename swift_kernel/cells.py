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
import os
import signal
import subprocess
import termios
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from . import diagnostics
from .asyncwrap import AwaitRewriteError, rewrite_top_level_await
from .diagnostics import CellError, Frame
from .host import HostProcess
from .messages import Installed, Outcome, Streams, SwiftProcessEnded
from .output import OutputCallback, OutputPump, StreamDecoder, Text, child_path, close_fds
from .procfs import SIGINT_BIT, proc_status, reading_stdin, send_signal
from .toolchain import Toolchain

__all__ = ["Cell", "CellController", "EarlyStart", "ExecutionResult", "InterruptRecord", "SwiftProcessEnded"]

log = logging.getLogger(__name__)

# Called (on a watcher thread) when the Swift code reads standard input, with a function that takes
# the prompt (the unfinished line the code printed last): a future of the line to give it, None for
# end of input; cancelled if the cell ends first.
InputCallback = Callable[[Callable[[], str]], "Future[str | None]"]
# How long after a cell starts (or gets a line) its reads of stdin are looked for every 20 ms.
_STDIN_FAST_POLL_SECONDS = 2.0
# How long an interrupt waits on a compiling cell before it tells the user why nothing happens.
_COMPILING_NOTICE_SECONDS = 1.0


class Phase(enum.Enum):
    """Where a cell is in its life; decides what an interrupt does."""

    IDLE = "idle"  # no cell accepted
    ACCEPTED = "accepted"
    EVALUATING = "evaluating"  # compiling or running in the host; LLDB does not say which
    WAITING_INPUT = "waiting for input"
    SUBPROCESS = "running a subprocess"


@dataclass
class ExecutionResult:
    """What one cell produced, beyond the output already streamed."""

    value: str | None = None
    error: CellError | None = None


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
    run_done: threading.Event = field(default_factory=threading.Event)


class SwiftHost(Protocol):
    """What the controller needs of the LLDB host (``host.HostProcess``, or a fake in tests).

    ``start`` and the requests run on the controller's executing thread, one at a time; ``mark``
    and ``async_interrupt`` come from interrupt threads while a request may be running.
    """

    @property
    def pid(self) -> int:
        """The Swift process's pid, 0 when none runs."""

    @property
    def launches(self) -> int:
        """Swift processes launched so far."""

    def start(self) -> None: ...
    def execute(self, generation: int, code: str, cell_name: str, check_warnings: bool) -> Outcome: ...
    def mark(self, generation: int, source: str) -> None: ...
    def async_interrupt(self) -> None: ...
    def relaunch(self) -> None: ...
    def set_environment(self, name: str, value: str) -> CellError | None: ...
    def load_installed(self, installed: Installed) -> CellError | None: ...
    def reopen_stdin(self, path: str) -> CellError | None: ...
    def shutdown(self) -> None: ...


# Builds the host from the paths of the Swift process's standard streams and a callback for text
# the host adds to the cell's stderr (compiler warnings).
HostFactory = Callable[[Streams, Callable[[str], None]], SwiftHost]


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


def _unblock_sigint() -> None:
    """Unblock SIGINT in a child process before it execs (see run_subprocess)."""
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
        check_warnings: bool = True,
        process_status: Callable[[int], tuple[str, int]] = proc_status,
        signal_process: Callable[[int, int], None] = send_signal,
        compiling_notice_seconds: float = _COMPILING_NOTICE_SECONDS,
    ) -> None:
        # Compile each cell once more, without running it, to show its warnings.
        self.check_warnings = check_warnings
        self.interrupt_grace = interrupt_grace
        self.resend_interval = resend_interval
        # How the ladder reads and signals the Swift process (``procfs``; fakes in unit tests).
        self._process_status = process_status
        self._signal = signal_process
        self._compiling_notice_seconds = compiling_notice_seconds
        # The latest interrupts with their rung and latency, for logs and benchmarks.
        self.interrupts: deque[InterruptRecord] = deque(maxlen=1000)
        # The pipes the Swift process writes its stdout and stderr into, and their reader.
        self._pump = OutputPump(on_output)
        self._stdin = StdinPipe()
        # Asked for a line when the Swift code reads standard input; None means end of input.
        self._on_input: InputCallback | None = None
        self._lock = threading.Lock()
        self._cell: Cell | None = None
        self._subprocess: subprocess.Popen[bytes] | None = None
        self._generation = 0
        streams = Streams(self._stdin.path_for_child, self._pump.path("stdout"), self._pump.path("stderr"))
        self.host = make_host(streams, lambda text: self._pump.emit("stderr", Text(text)))

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

    def relaunch(self) -> None:
        """Start a fresh Swift process; all Swift state is lost."""
        self.host.relaunch()

    def set_environment(self, name: str, value: str) -> CellError | None:
        """Set an environment variable inside the Swift process (and fresh ones)."""
        return self.host.set_environment(name, value)

    def load_installed(self, module_dirs: list[str], module_maps: list[str], library: str) -> CellError | None:
        """Load built packages into the Swift process (and fresh ones)."""
        return self.host.load_installed(Installed(tuple(module_dirs), tuple(module_maps), library))

    def kill_now(self) -> None:
        """Kill the Swift process at once; safe from any thread, even while a cell runs."""
        self._signal(self.host.pid, signal.SIGKILL)

    def shutdown(self) -> None:
        """End the host, its Swift process and the pipes; leave no process behind."""
        self.host.shutdown()
        self._pump.close()
        self._stdin.close()

    # ----- cells ------------------------------------------------------------------------------

    def expect_cell(self, time_limit: float | None = None) -> Cell:
        """Register the cell the kernel has accepted, so that an interrupt from now on applies to it.

        Called by the kernel as soon as it takes an execute_request, before the cell reaches the
        executing thread (which may still be starting the Swift process); ``end_cell`` closes it.
        The time limit counts from here.
        """
        with self._lock:
            self._generation += 1
            cell = Cell(self._generation, time_limit)
            self._cell = cell
        if time_limit is not None and time_limit > 0:
            cell.timer = threading.Timer(time_limit, self.interrupt, args=("time limit",))
            cell.timer.daemon = True
            cell.timer.start()
        return cell

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
            return True

    def execute(self, code: str, cell_name: str, cell: Cell | None = None) -> ExecutionResult:
        """Evaluate Swift code in the host; called from the kernel's single executing thread.

        ``cell`` is the kernel's cell from ``expect_cell`` (a cell may evaluate several pieces:
        included files, then its own code); without one, a cell is opened and closed here.
        Output streams to the callback while the code runs and is drained before this returns.
        """
        owned = cell is None
        if cell is None:
            cell = self.expect_cell()
        try:
            early = self.interrupted_result(cell)
            if early is not None:
                # Interrupted before it could start: nothing ran, nothing to stop.
                return early
            try:
                # LLDB 6.3.1 segfaults (taking the host with it) on top-level `await`.
                code = rewrite_top_level_await(code)
            except AwaitRewriteError as error:
                return ExecutionResult(error=CellError("AwaitError", str(error), [f"AwaitError: {error}"]))
            if self._stdin.ended or self._stdin.unread():
                self._renew_stdin()
            if not self._mark_running(cell):
                return self.interrupted_result(cell)  # type: ignore[return-value]
            if self._on_input is not None:
                threading.Thread(
                    target=self._answer_stdin_reads,
                    args=(cell, self._on_input),
                    name="swift-stdin",
                    daemon=True,
                ).start()
            self._pump.reset_tail()
            try:
                outcome = self.host.execute(cell.generation, code, cell_name, self.check_warnings)
            finally:
                with self._lock:
                    cell.running = False
                    cell.phase = Phase.ACCEPTED
                    cell.run_done.set()
            return self._result(outcome, cell)
        finally:
            if owned:
                self.end_cell(cell)

    def _result(self, outcome: Outcome, cell: Cell) -> ExecutionResult:
        """Turn the host's outcome into the cell's result, once its output is all sent."""
        record = cell.interrupt
        if record is not None:
            self._record_interrupt(record)
        self._pump.drain()
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
                return self._interrupted(record, stop.frames)
            stderr_text = self._pump.tail("stderr")
            return ExecutionResult(
                error=diagnostics.runtime_error(stop.reason, stop.description, stderr_text, list(stop.frames))
            )
        if outcome.error is not None:
            if record is not None and outcome.error.ename == "CompileError":
                return self._interrupted(record, ())
            return ExecutionResult(error=outcome.error)
        return ExecutionResult(value=outcome.value)

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

    def _interrupted(self, record: InterruptRecord, frames: tuple[Frame, ...]) -> ExecutionResult:
        traceback = [f"KeyboardInterrupt: {record.reason}"] + [f"  {frame.render()}" for frame in frames]
        return ExecutionResult(error=CellError("KeyboardInterrupt", record.reason, traceback))

    # ----- standard input ---------------------------------------------------------------------

    def _renew_stdin(self) -> None:
        """Give the Swift process a fresh standard input: after an end of input, or unread lines."""
        self._stdin.renew()
        failure = self.host.reopen_stdin(self._stdin.path_for_child)
        if failure is not None:
            log.warning("reopening stdin failed: %s", failure.evalue)

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
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            cwd=cwd or os.getcwd(),
            start_new_session=True,  # its own group: an interrupt signals all it started, not us
            # The kernel blocks SIGINT in every thread and children inherit that mask; undo it so
            # the command can be interrupted.
            preexec_fn=_unblock_sigint,  # noqa: PLW1509 - only a signal-mask syscall runs in the child
        )
        readers = [
            threading.Thread(target=_stream_pipe, args=(pipe, name, on_output), daemon=True)
            for pipe, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))
        ]
        for reader in readers:
            reader.start()
        with self._lock:
            self._subprocess = process
            cell.phase = Phase.SUBPROCESS
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

    def interrupt(self, source: str) -> str:
        """Stop the running cell, if any; safe from any thread and returns at once.

        ``source`` is ``message``, ``signal`` or ``time limit``. The returned word says what happened:
        ``idle`` (nothing ran), ``already`` (an interrupt of this cell is under way) or ``started``.
        """
        with self._lock:
            cell = self._cell
            if cell is None:
                log.info("interrupt from %s while idle: nothing to stop", source)
                return "idle"
            if cell.interrupt is not None:
                return "already"
            reason = "Interrupted by user"
            if source == "time limit":
                reason = f"Cell time limit of {cell.time_limit:g} s exceeded"
            record = cell.interrupt = InterruptRecord(source, reason, time.monotonic())
            subprocess_running, running = self._subprocess, cell.running
        if subprocess_running is not None:
            record.rung = "SIGINT to the command's process group"
            threading.Thread(
                target=self._stop_subprocess, args=(subprocess_running, record), name="swift-interrupt", daemon=True
            ).start()
        elif running:
            threading.Thread(target=self._escalate, args=(cell, record), name="swift-interrupt", daemon=True).start()
        else:
            log.info("interrupt from %s before the cell's code started: it will not run", source)
        return "started"

    def _stop_subprocess(self, process: subprocess.Popen[bytes], record: InterruptRecord) -> None:
        """SIGINT to the command's process group; SIGKILL after the grace period."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=self.interrupt_grace)
        except subprocess.TimeoutExpired:
            record.rung = "SIGKILL to the command's process group"
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def _escalate(self, cell: Cell, record: InterruptRecord) -> None:
        """Stop the evaluation: SIGINT, then LLDB's own interrupt, then kill after the grace period.

        Runs on its own thread until the evaluation returns. The host is told first, so that it
        reports the stop as an interrupt and lets a library call run on to cell code before
        unwinding. A SIGINT sent while LLDB compiles the cell (the process sits in a ptrace stop,
        state 't') would only queue, so none is sent then; it goes out as soon as the code runs.
        One that LLDB's helper calls swallow is sent again once the code runs and none is pending,
        never two at once: a second signal landing while LLDB restores the process has corrupted
        its JIT state. A SIGINT that stays pending while the code runs is blocked by the program:
        LLDB's SendAsyncInterrupt (SIGSTOP, which cannot be blocked) takes over. After
        ``interrupt_grace`` seconds the process is killed.

        The grace period counts from when the code runs. A compilation (inside the host) cannot be
        interrupted, and killing the Swift process meanwhile would only throw its state away: an
        interrupt during a compile that takes long says so on stderr and waits for the code.
        """
        run_done = cell.run_done
        self.host.mark(cell.generation, record.source)
        pid = self.host.pid
        deadline = record.requested_at + self.interrupt_grace
        next_signal = record.requested_at
        next_async = 0.0
        pending_since: float | None = None
        told = False
        while not run_done.is_set():
            now = time.monotonic()
            state, pending = self._process_status(pid)
            if state == "X":
                break
            if state == "t" and record.signals_sent == 0 and not record.rung:
                deadline = now + self.interrupt_grace
                if not told and now - record.requested_at > self._compiling_notice_seconds:
                    told = True
                    notice = f"{record.reason} while the compiler works on this cell: it stops as soon as it runs.\n"
                    self._pump.emit("stderr", Text(notice))
            if now >= deadline:
                record.rung = "kill"
                log.warning("interrupt grace of %.1f s over: killing Swift process %d", self.interrupt_grace, pid)
                self._signal(pid, signal.SIGKILL)
                break
            if state != "t":
                if pending & SIGINT_BIT:
                    pending_since = pending_since or now
                blocked = pending_since is not None and now - pending_since > self.resend_interval
                if blocked or record.signals_sent >= 3:
                    if now >= next_async:
                        # Repeated because a lone SendAsyncInterrupt has been seen to get lost.
                        self.host.async_interrupt()
                        record.rung = "async interrupt"
                        next_async = now + self.resend_interval
                elif not pending & SIGINT_BIT and now >= next_signal:
                    self._signal(pid, signal.SIGINT)
                    record.signals_sent += 1
                    record.rung = record.rung or "signal"
                    next_signal = now + self.resend_interval
            run_done.wait(0.002 if now - record.requested_at < 0.05 else 0.01)


def hosted_controller(toolchain: Toolchain, on_output: OutputCallback, **kwargs: Any) -> CellController:
    """Return a controller whose cells run in a real LLDB host process (``host.HostProcess``)."""
    def make_host(streams: Streams, on_stderr: Callable[[str], None]) -> SwiftHost:
        return HostProcess(toolchain, streams, on_stderr=on_stderr)

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
    def take(cls) -> EarlyStart | None:
        """Hand over the early start, once."""
        early, cls._pending = cls._pending, None
        return early
