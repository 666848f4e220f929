"""Run Swift cells in a REPL process through LLDB, and stop them on demand.

``LLDBExecutor`` owns one LLDB debugger, the toolchain's ``repl_swift`` stopped
at its REPL entry point, and the expression options that make cells behave like
the Swift REPL. It knows nothing of Jupyter: the kernel calls ``execute`` from
one worker thread and ``interrupt`` from any thread (control channel, sigwait
thread, cell timer).

Interrupts never call an SBProcess method that takes the target's API lock while
an evaluation runs (``Stop``, ``GetState``... block until the evaluation ends).
They read ``/proc`` instead and signal the Swift process directly.
"""

from __future__ import annotations

import array
import contextlib
import enum
import fcntl
import json
import logging
import os
import re
import signal
import subprocess
import sys
import termios
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from . import diagnostics
from .asyncwrap import AwaitRewriteError, rewrite_top_level_await
from .diagnostics import CellError, Frame
from .output import OutputCallback, OutputPump, Pump, StreamDecoder, Text, child_path, close_fds
from .toolchain import Toolchain

log = logging.getLogger(__name__)

# Integer and Bool results are shown from LLDB's own reading of the value; everything else goes
# through Swift's String(reflecting:), which costs a second (small) evaluation.
_FAST_TYPES = {
    f"Swift.{name}"
    for name in ("Int", "Int8", "Int16", "Int32", "Int64", "UInt", "UInt8", "UInt16", "UInt32", "UInt64")
}
# Called (on a watcher thread) when the Swift code reads standard input, with a function that takes
# the prompt (the unfinished line the code printed last): a future of the line to give it, None for
# end of input; cancelled if the cell ends first.
InputCallback = Callable[[Callable[[], str]], "Future[str | None]"]
_LLDB_MODULE_PREFIX = re.compile(r"\b__lldb_expr_\d+\.")
_SIGINT_BIT = 1 << (signal.SIGINT - 1)
# Frames walked when reading a stack; LLDB's own cap keeps a stack overflow from taking minutes.
_MAX_BACKTRACE_DEPTH = 1000
_FRAMES_READ = 64
# Bytes of stack searched for the callers LLDB's unwinder did not find (see _callers_on_the_stack).
_STACK_SEARCHED = 16384
# How long an interrupted library call may run on to return to cell code before unwinding.
_RETURN_SECONDS = 0.3
# Library functions that block in the kernel holding no user-space lock: unwound where they are.
# How long after a cell starts (or gets a line) its reads of stdin are looked for every 20 ms.
_STDIN_FAST_POLL_SECONDS = 2.0
# How long an interrupt waits on a compiling cell before it tells the user why nothing happens.
_COMPILING_NOTICE_SECONDS = 1.0
_BLOCKING_CALL = re.compile(r"sleep|read|write|poll|select|futex|wait|recv|accept|pause|sigsuspend|nanosleep")


class State(enum.Enum):
    """What the executor is doing; decides what an interrupt does."""

    STARTING = "starting"
    IDLE = "idle"
    EVALUATING = "evaluating"  # compiling or running a cell; LLDB does not say which
    WAITING_INPUT = "waiting for input"
    SUBPROCESS = "running a subprocess"
    DEAD = "dead"


@dataclass
class ExecutionResult:
    """What one cell produced, beyond the output already streamed."""

    value: str | None = None
    error: CellError | None = None


@dataclass
class InterruptRecord:
    """One interrupt of one evaluation, kept for the log and the benchmarks."""

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
    # True while an EvaluateExpression of this cell runs; run_done is set when it returns.
    running: bool = False
    run_done: threading.Event = field(default_factory=threading.Event)


class SwiftProcessEnded(Exception):
    """The Swift process could not be started or kept alive."""


def _proc_status(pid: int) -> tuple[str, int]:
    """Return (scheduler state letter, pending signal mask) of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0].decode()
        pending = 0
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("SigPnd:", "ShdPnd:")):
                    pending |= int(line.split()[1], 16)
        return state, pending
    except (OSError, IndexError, ValueError):
        return "X", 0


def _signal(pid: int, signum: int) -> None:
    """Send a signal, ignoring a process that is already gone."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _reading_stdin(pid: int) -> bool:
    """Say whether a thread of ``pid`` sleeps in a read of file descriptor 0 (from /proc).

    Only a sleeping thread counts: one stopped by the debugger, or just back from a read the
    kernel answered, still shows the read in its syscall file.
    """
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/syscall") as syscall:
                # "0 0x0 ..." is read(0, ...) on x86_64 (syscall 0; aarch64's read is 63).
                if not syscall.read().startswith(("0 0x0 ", "63 0x0 ")):
                    continue
            with open(f"/proc/{pid}/task/{task}/stat") as stat:
                if stat.read().rsplit(")", 1)[-1].split()[0] == "S":
                    return True
    except OSError:
        return False
    return False


class StdinPipe:
    """The Swift process's standard input: a pipe whose write end the kernel holds."""

    def __init__(self) -> None:
        self.read_fd = self.write_fd = -1
        self.ended = False

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


def _frame_of(function: str, entry: Any) -> Frame:
    """Return a Frame for ``function`` at the place a line entry names (none if it is invalid)."""
    spec = entry.GetFileSpec() if entry.IsValid() else None
    file = spec.GetFilename() if spec is not None and spec.IsValid() else None
    return Frame(function, file, entry.GetLine() or 0, entry.GetColumn() or 0)


def _in_cell_code(module: Any) -> bool:
    """Say whether a module is one LLDB JIT-compiled from a cell (or the prelude)."""
    return module.IsValid() and (module.GetFileSpec().GetFilename() or "").startswith("$__lldb_expr")


def _frames(thread: Any) -> list[Frame]:
    frames = []
    last = None
    for index in range(_FRAMES_READ):
        frame = thread.GetFrameAtIndex(index)
        if not frame.IsValid():
            break
        frames.append(_frame_of(frame.GetDisplayFunctionName() or "??", frame.GetLineEntry()))
        last = frame
    # A cell's top-level code is its `main`; below it LLDB's unwinder has always found the REPL.
    if last is not None and len(frames) < _FRAMES_READ and _in_cell_code(last.GetModule()):
        if last.GetFunctionName() != "main":
            frames += _callers_on_the_stack(thread, last, _FRAMES_READ - len(frames))
    return frames


def _callers_on_the_stack(thread: Any, frame: Any, limit: int) -> list[Frame]:
    """Find the cell frames above ``frame`` that LLDB's unwinder could not reach, from the stack.

    LLDB unwinds a function JIT-compiled from an earlier cell by profiling its instructions, and
    gets the frame's size wrong where it pushes arguments for a call: for ``explode(_:)`` calling
    ``_assertionFailure`` it takes the CFA as rsp+40 where it is rsp+48 (measured, ``log enable lldb
    unwind``), reads the return address from the wrong slot (-1) and stops. The callers' return
    addresses are still on the stack above the frame. A word there counts as one when it points
    into cell code, not at a function's first instruction, just after a call instruction; its
    frame is the function and line of that call. The search ends at a cell's top-level code.
    A stale return address left in a frame's unused slots would pass these tests; none was seen.
    """
    lldb = sys.modules["lldb"]
    process = thread.GetProcess()
    target = process.GetTarget()
    size = target.GetAddressByteSize()
    error = lldb.SBError()
    # Partial when the stack ends sooner; the error then only says so.
    stack = process.ReadMemory(frame.GetSP(), _STACK_SEARCHED, error) or b""
    order: Literal["little", "big"] = "little" if target.GetByteOrder() == lldb.eByteOrderLittle else "big"
    found: list[Frame] = []
    for offset in range(0, len(stack) - size + 1, size):
        if len(found) >= limit:
            break
        address = int.from_bytes(stack[offset : offset + size], order)
        if not _is_return_address(process, target, address):
            continue
        call = target.ResolveLoadAddress(address - 1).GetSymbolContext(lldb.eSymbolContextEverything)
        function = call.GetFunction().GetDisplayName() if call.GetFunction().IsValid() else None
        found.append(_frame_of(function or call.GetSymbol().GetName() or "??", call.GetLineEntry()))
        if function == "main":
            break
    return found


def _is_return_address(process: Any, target: Any, address: int) -> bool:
    """Say whether ``address`` is in cell code right after a call instruction (see _callers_on_the_stack)."""
    lldb = sys.modules["lldb"]
    resolved = target.ResolveLoadAddress(address)
    if not resolved.IsValid() or not _in_cell_code(resolved.GetModule()):
        return False
    if resolved.GetSection().GetSectionType() != lldb.eSectionTypeCode:
        return False
    symbol = resolved.GetSymbol()
    if symbol.IsValid() and symbol.GetStartAddress().GetLoadAddress(target) == address:
        return False  # a function pointer, not a place a call returns to
    error = lldb.SBError()
    # A call is 2 to 7 bytes on x86-64 (4 on arm64): one of those lengths must decode as a call.
    for length in range(2, 8):
        code = process.ReadMemory(address - length, length, error)
        if not error.Success() or not code:
            continue
        instructions = target.GetInstructions(lldb.SBAddress(address - length, target), code)
        if instructions.GetSize() == 0:
            continue
        first = instructions.GetInstructionAtIndex(0)
        mnemonic = first.GetMnemonic(target) or ""
        if first.GetByteSize() == length and (mnemonic.startswith("call") or mnemonic in ("bl", "blr")):
            return True
    return False


PRELUDE = Path(__file__).with_name("swift") / "prelude.swift"


def _prelude(result_path: str) -> str:
    """Return the Swift code run once per Swift process, before the first cell."""
    return PRELUDE.read_text().replace("@RESULT_PATH@", result_path)


class ResultChannel:
    """A pipe the Swift process writes framed messages into (``kind length\\npayload``)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self._buffer = b""

    @property
    def path_for_child(self) -> str:
        return child_path(self.write_fd)

    def read_messages(self) -> list[tuple[str, str]]:
        """Return every complete message in the pipe now."""
        while True:
            try:
                data = os.read(self.read_fd, 1 << 16)
            except BlockingIOError:
                break
            if not data:
                break
            self._buffer += data
        messages = []
        while b"\n" in self._buffer:
            header, rest = self._buffer.split(b"\n", 1)
            kind, _, length_text = header.decode("utf-8", "replace").partition(" ")
            length = int(length_text) if length_text.isdigit() else 0
            if len(rest) < length:
                break
            messages.append((kind, rest[:length].decode("utf-8", "replace")))
            self._buffer = rest[length:]
        return messages

    def close(self) -> None:
        close_fds(self.read_fd, self.write_fd)


class LLDBExecutor:
    """Evaluate Swift cells in one ``repl_swift`` process and interrupt them without losing state."""

    def __init__(
        self,
        toolchain: Toolchain,
        on_output: OutputCallback,
        interrupt_grace: float = 5.0,
        resend_interval: float = 0.25,
        environment: dict[str, str] | None = None,
        *,
        check_warnings: bool = True,
        pump: Pump | None = None,
    ) -> None:
        self.toolchain = toolchain
        # Compile each cell once more, without running it, to show its warnings (see _show_warnings).
        self.check_warnings = check_warnings
        self.interrupt_grace = interrupt_grace
        self.resend_interval = resend_interval
        self.environment = dict(environment or {})
        # The latest interrupts with their rung and latency, for logs and benchmarks.
        self.interrupts: deque[InterruptRecord] = deque(maxlen=1000)
        # The pipes the Swift process writes its stdout and stderr into, and their reader.
        self._pump: Pump = pump if pump is not None else OutputPump(on_output)
        self._results = ResultChannel()
        self._stdin = StdinPipe()
        # Asked for a line when the Swift code reads standard input; None means end of input.
        self._on_input: InputCallback | None = None
        self._lock = threading.Lock()
        self._state = State.STARTING
        self._cell: Cell | None = None
        self._subprocess: subprocess.Popen[bytes] | None = None
        self._generation = 0
        self._pid = 0
        # Swift processes started so far; a new one has none of the earlier cells' state.
        self.launches = 0
        self._lldb: Any = None
        self._debugger: Any = None
        self._target: Any = None
        self._process: Any = None
        self._main_thread_id = 0
        self._options: Any = None
        self._plain_options: Any = None
        self._check_options: Any = None

    # ----- life cycle -------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def pid(self) -> int:
        """Return the Swift process's pid (0 when none runs)."""
        return self._pid

    def set_input_callback(self, callback: InputCallback | None) -> None:
        """Answer reads of standard input through ``callback`` from now on (None: end of input)."""
        self._on_input = callback

    def set_output_callback(self, callback: OutputCallback) -> None:
        """Send the Swift process's output to ``callback`` from now on."""
        self._pump.set_callback(callback)

    def load(self) -> None:
        """Import LLDB and create the debugger; call on the main thread, once.

        LLDB's Python support installs a SIGINT handler when a debugger is created, which Python
        allows only on the main thread; ``sys.path`` is also best changed before other threads
        run imports.
        """
        sys.path.insert(0, str(self.toolchain.lldb_python_dir))
        import lldb  # noqa: PLC0415 - imported late: the caller blocks SIGINT before LLDB starts threads

        self._lldb = lldb
        self._debugger = lldb.SBDebugger.Create(False)  # False: ignore ~/.lldbinit
        self._debugger.SetAsync(False)
        self._command(f"settings set target.process.thread.max-backtrace-depth {_MAX_BACKTRACE_DEPTH}")
        # Regex literals (/a+/), as swiftc has them in Swift 6 mode; LLDB leaves them off by default.
        self._command("settings set target.experimental.swift-enable-bare-slash-regex true")
        self._options = self._expression_options(repl=True)
        self._plain_options = self._expression_options(repl=False)
        self._check_options = self._expression_options(repl=True)
        # The check only compiles: no JIT means its code can never run, even if it compiled.
        self._check_options.SetAllowJIT(False)
        # An error with a fix-it would make LLDB compile the fixed text again, for nothing.
        self._check_options.SetAutoApplyFixIts(False)

    def start(self) -> None:
        """Launch ``repl_swift`` and run the prelude; called from the executing thread."""
        if self._debugger is None:
            self.load()
        self._launch()

    def _command(self, command: str) -> None:
        result = self._lldb.SBCommandReturnObject()
        self._debugger.GetCommandInterpreter().HandleCommand(command, result)
        if not result.Succeeded():
            log.warning("lldb command %r failed: %s", command, result.GetError())

    def _expression_options(self, repl: bool) -> Any:
        lldb = self._lldb
        options = lldb.SBExpressionOptions()
        options.SetLanguage(lldb.eLanguageTypeSwift)
        options.SetREPLMode(repl)
        # Left at the point of a crash or interrupt so its frames can be read; unwound by hand.
        options.SetUnwindOnError(False)
        options.SetGenerateDebugInfo(True)
        options.SetTimeoutInMicroSeconds(0)
        options.SetTryAllThreads(True)
        # The REPL runs with the other threads going; the default stops them after 250 ms and
        # resumes them, which makes sleep() misbehave and races with interrupts.
        options.SetStopOthers(False)
        return options

    def _launch(self) -> None:
        lldb = self._lldb
        self._state = State.STARTING
        if self._target is not None:
            self._debugger.DeleteTarget(self._target)
        log.debug("launching %s", self.toolchain.repl_swift)
        target = self._debugger.CreateTarget(str(self.toolchain.repl_swift))
        if not target.IsValid():
            raise SwiftProcessEnded(f"LLDB could not load {self.toolchain.repl_swift}")
        target.BreakpointCreateByName("repl_main", target.GetExecutable().GetFilename())
        info = lldb.SBLaunchInfo([])
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("JPY_", "SWIFT_KERNEL_")) and key != "PYTHONPATH"
        }
        # Swift's own crash reporter would try to attach to the already-debugged process.
        environment["SWIFT_BACKTRACE"] = "enable=no"
        environment.update(self.environment)
        info.SetEnvironmentEntries([f"{key}={value}" for key, value in environment.items()], False)
        info.SetWorkingDirectory(os.getcwd())
        self._stdin.renew()
        info.AddOpenFileAction(0, self._stdin.path_for_child, True, False)
        info.AddOpenFileAction(1, self._pump.path("stdout"), False, True)
        info.AddOpenFileAction(2, self._pump.path("stderr"), False, True)
        error = lldb.SBError()
        process = target.Launch(info, error)
        if not error.Success() or not process.IsValid():
            raise SwiftProcessEnded(f"could not launch {self.toolchain.repl_swift}: {error.GetCString()}")
        signals = process.GetUnixSignals()
        # SIGINT stops the Swift code for the debugger and never reaches the program itself.
        signals.SetShouldStop(signal.SIGINT, True)
        signals.SetShouldNotify(signal.SIGINT, True)
        signals.SetShouldSuppress(signal.SIGINT, True)
        self._target, self._process = target, process
        self._pid = process.GetProcessID()
        self._main_thread_id = process.GetSelectedThread().GetThreadID()
        log.debug("Swift process %d stopped at repl_main; running the prelude", self._pid)
        value = target.EvaluateExpression(_prelude(self._results.path_for_child), self._options)
        error_text = value.GetError().GetCString() or ""
        if not value.GetError().Success() and not diagnostics.is_no_result(error_text):
            raise SwiftProcessEnded(f"the kernel's Swift prelude failed: {error_text}")
        self._results.read_messages()
        self.launches += 1
        self._state = State.IDLE
        log.info("Swift process %d ready", self._pid)

    def relaunch(self) -> None:
        """Kill the Swift process (if any) and start a fresh one; all Swift state is lost."""
        self._kill_process()
        self._launch()

    def _kill_process(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.IsValid():
            try:
                process.Kill()
            except Exception:
                log.debug("kill failed", exc_info=True)
        if self._pid:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._pid = 0

    def set_environment(self, name: str, value: str) -> CellError | None:
        """Set an environment variable inside the Swift process (``setenv``)."""
        code = f"setenv({json.dumps(name)}, {json.dumps(value)}, 1)"
        result = self._target.EvaluateExpression(code, self._plain_options)
        if not result.GetError().Success():
            return CellError("EnvError", f"setenv in the Swift process failed: {result.GetError().GetCString()}")
        self.environment[name] = value
        return None

    def load_installed(self, module_dirs: list[str], module_maps: list[str], library: str) -> CellError | None:
        """Put built modules on LLDB's search path and load their library into the Swift process."""
        for directory in module_dirs:
            self._command(f"settings append target.swift-module-search-paths {directory}")
        for module_map in module_maps:
            self._command(f"settings append target.swift-extra-clang-flags -fmodule-map-file={module_map}")
        code = f"dlopen({json.dumps(library)}, RTLD_NOW | RTLD_GLOBAL) == nil ? String(cString: dlerror()) : \"\""
        result = self._target.EvaluateExpression(code, self._plain_options)
        error = result.GetError()
        if not error.Success():
            return CellError("InstallError", f"loading {library} failed: {error.GetCString()}")
        message = (result.GetSummary() or "").strip('"')
        if message:
            return CellError("InstallError", f"loading {library} failed: {message}")
        return None

    def kill_now(self) -> None:
        """Kill the Swift process at once; safe from any thread, even while a cell runs."""
        self._state = State.DEAD
        if self._pid:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def shutdown(self) -> None:
        """End the Swift process and the debugger; leave no process behind."""
        self._state = State.DEAD
        self._kill_process()
        if self._debugger is not None:
            if self._target is not None:
                self._debugger.DeleteTarget(self._target)
                self._target = None
            self._lldb.SBDebugger.Destroy(self._debugger)
            self._debugger = None
        self._pump.close()
        self._results.close()
        self._stdin.close()

    def is_process_alive(self) -> bool:
        """Say whether the Swift process is alive; only call while no evaluation runs."""
        if self._process is None or not self._process.IsValid():
            return False
        # LLDB's own state lags when the process or its debug server is killed from outside.
        if _proc_status(self._pid)[0] in ("X", "Z"):
            return False
        return bool(self._process.GetState() == self._lldb.eStateStopped)

    # ----- execution --------------------------------------------------------------------------

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
            self._state = State.EVALUATING
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
                self._state = State.IDLE

    def interrupted_result(self, cell: Cell) -> ExecutionResult | None:
        """Return the KeyboardInterrupt result if ``cell`` was interrupted, else None."""
        record = cell.interrupt
        if record is None:
            return None
        if record.stopped_at is None:
            record.stopped_at = time.monotonic()
            record.rung = record.rung or "before start"
        return self._interrupted(record, [])

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
            return True

    def execute(
        self, code: str, cell_name: str, time_limit: float | None = None, cell: Cell | None = None
    ) -> ExecutionResult:
        """Evaluate Swift code; called from the kernel's single executing thread.

        ``cell`` is the kernel's cell from ``expect_cell`` (a cell may evaluate several pieces:
        included files, then its own code); without one, a cell is opened and closed here.
        Output streams to the callback while the code runs and is drained before this returns.
        """
        owned = cell is None
        if cell is None:
            cell = self.expect_cell(time_limit)
        try:
            early = self.interrupted_result(cell)
            if early is not None:
                # Interrupted before it could start: nothing ran, nothing to stop.
                return early
            if not self.is_process_alive():
                return self._process_ended("The Swift process ended before this cell ran")
            try:
                # LLDB 6.3.1 segfaults (taking this process with it) on top-level `await`.
                code = rewrite_top_level_await(code)
            except AwaitRewriteError as error:
                return ExecutionResult(error=CellError("AwaitError", str(error), [f"AwaitError: {error}"]))
            if self._stdin.ended:
                self._reopen_stdin()
            if not self._mark_running(cell):
                return self.interrupted_result(cell)  # type: ignore[return-value]
            if self._on_input is not None:
                threading.Thread(
                    target=self._answer_stdin_reads,
                    args=(cell.run_done, self._on_input),
                    name="swift-stdin",
                    daemon=True,
                ).start()
            self._pump.reset_tail()
            source = f'#sourceLocation(file: "{cell_name}", line: 1)\n{code}\n'
            try:
                if self.check_warnings:
                    self._show_warnings(code, cell_name)
                value = self._target.EvaluateExpression(source, self._options)
            finally:
                with self._lock:
                    cell.running = False
                    cell.run_done.set()
            return self._finish(value, cell, cell_name, code)
        finally:
            if owned:
                self.end_cell(cell)

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
            self._state = State.SUBPROCESS
        try:
            status = process.wait()
        finally:
            with self._lock:
                self._subprocess = None
                self._state = State.EVALUATING
            for reader in readers:
                reader.join(timeout=5)
        if cell.interrupt is not None:
            cell.interrupt.stopped_at = time.monotonic()
            return None
        return status

    def _answer_stdin_reads(self, run_done: threading.Event, ask: InputCallback) -> None:
        """While the code runs, answer each read of standard input with a line from ``ask``.

        /proc is read every 20 ms for the first seconds after the cell starts or a line is given
        (an interactive prompt answers quickly), then every 100 ms: a cell computing for hours
        with many threads should not pay for file reads it never needs.
        """
        pid = self._pid
        fast_until = time.monotonic() + _STDIN_FAST_POLL_SECONDS
        while not run_done.wait(0.02 if time.monotonic() < fast_until else 0.1):
            if not _reading_stdin(pid):
                continue
            with self._lock:
                self._state = State.WAITING_INPUT
            answer = ask(self._pump.take_prompt)
            while not answer.done() and not run_done.wait(0.01):
                pass
            with self._lock:
                if self._state is State.WAITING_INPUT:
                    self._state = State.EVALUATING
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

    def _reopen_stdin(self) -> None:
        """Give the Swift process a fresh standard input after an end of input was sent."""
        self._stdin.renew()
        code = f"__SwiftKernel.reopenStdin({json.dumps(self._stdin.path_for_child)})"
        result = self._target.EvaluateExpression(code, self._plain_options)
        if not result.GetError().Success() and not diagnostics.is_no_result(result.GetError().GetCString() or ""):
            log.warning("reopening stdin failed: %s", result.GetError().GetCString())

    def _show_warnings(self, code: str, cell_name: str) -> None:
        """Compile the cell without running it and send its warnings to stderr, before it runs.

        LLDB drops the diagnostics of an expression that compiles, so this compilation is made to
        fail after the compiler's warning passes (``diagnostics.warning_check_source``); it costs
        1-3 ms for a small cell. It registers the cell's declarations with LLDB as a compilation
        does, but they are never linked: the real compilation must always follow, and it does,
        right after, whatever happens (an interrupt stops the code once it runs).
        """
        check = self._target.EvaluateExpression(diagnostics.warning_check_source(code, cell_name), self._check_options)
        warnings = diagnostics.compile_warnings(check.GetError().GetCString() or "", cell_name)
        if warnings:
            self._pump.emit("stderr", Text(warnings))

    def _finish(self, value: Any, cell: Cell, source_name: str, source: str) -> ExecutionResult:
        error = value.GetError()
        error_text = error.GetCString() or ""
        interrupt = cell.interrupt
        if interrupt is not None:
            interrupt.stopped_at = time.monotonic()
        if error.Success():
            self._pump.drain()
            return ExecutionResult(value=self._describe(value))
        if diagnostics.is_no_result(error_text):
            self._pump.drain()
            return ExecutionResult()
        if diagnostics.is_process_gone(error_text) or not self.is_process_alive():
            self._pump.drain()
            return self._process_ended("The Swift process ended while the cell ran", interrupt)
        reason = diagnostics.interruption_reason(error_text)
        if reason is None:
            self._pump.drain()
            compile_error = diagnostics.compile_error(error_text, source_name, source)
            if compile_error is not None:
                if interrupt is not None:
                    return self._interrupted(interrupt, [])
                return ExecutionResult(error=compile_error)
            return ExecutionResult(error=CellError("SwiftError", error_text.strip().removeprefix("error: ")))
        crashed = self._process.GetSelectedThread()
        stop_description = crashed.GetStopDescription(256) or ""
        if interrupt is not None and "SIGINT" in reason:
            main = self._process.GetThreadByID(self._main_thread_id)
            frames = diagnostics.cell_frames(_frames(main))
        else:
            frames = diagnostics.cell_frames(_frames(crashed))
        stopped_by_us = interrupt is not None and "SIGINT" in reason
        if diagnostics.process_left_stopped(error_text) and not self._unwind(run_to_cell_code=stopped_by_us):
            self._pump.drain()
            return self._process_ended("The Swift process could not be returned to its state before the cell")
        self._clear_pending_interrupt()
        self._pump.drain()
        stderr_text = self._pump.tail("stderr")
        if interrupt is not None:
            return self._interrupted(interrupt, frames)
        return ExecutionResult(error=diagnostics.runtime_error(reason, stop_description, stderr_text, frames))

    def _record_interrupt(self, interrupt: InterruptRecord) -> None:
        """Log an interrupt that ended its cell and keep its record."""
        log.info(
            "interrupt from %s stopped the cell by %s after %.1f ms (%d signals)",
            interrupt.source,
            interrupt.rung or "compile finishing",
            (interrupt.latency or 0) * 1000,
            interrupt.signals_sent,
        )
        self.interrupts.append(interrupt)

    def _interrupted(self, interrupt: InterruptRecord, frames: list[Frame]) -> ExecutionResult:
        self._pump.drain()
        self._record_interrupt(interrupt)
        traceback = [f"KeyboardInterrupt: {interrupt.reason}"] + [f"  {frame.render()}" for frame in frames]
        return ExecutionResult(error=CellError("KeyboardInterrupt", interrupt.reason, traceback))

    def _return_to_cell_code(self, thread: Any) -> Any:
        """Let a thread stopped inside a library run on until it is back in cell code.

        An interrupt can land inside malloc while it holds the heap lock (or inside any other
        library lock); unwinding the cell from there leaves the lock taken for ever and the next
        cell that allocates hangs (measured: one interrupt in three of an allocating loop). So a
        one-shot breakpoint goes on the return address in the innermost cell frame and the
        process runs on to it. A call that does not get there within ``_RETURN_SECONDS`` is
        stopped again by a SIGINT wherever it is; calls blocked in a system call (sleep, read)
        hold no such locks and are unwound at once. Returns the thread, refreshed.
        """
        user_index = None
        for index in range(_FRAMES_READ):
            frame = thread.GetFrameAtIndex(index)
            if not frame.IsValid():
                break
            if _in_cell_code(frame.GetModule()):
                user_index = index
                break
        if not user_index:
            return thread
        innermost = thread.GetFrameAtIndex(0).GetFunctionName() or ""
        log.debug("stopped in %s, %d frames above cell code", innermost, user_index)
        if _BLOCKING_CALL.search(innermost):
            return thread
        breakpoint = self._target.BreakpointCreateBySBAddress(thread.GetFrameAtIndex(user_index).GetPCAddress())
        breakpoint.SetThreadID(self._main_thread_id)
        breakpoint.SetOneShot(True)
        pid = self._pid
        watchdog = threading.Timer(_RETURN_SECONDS, lambda: _signal(pid, signal.SIGINT))
        watchdog.start()
        try:
            self._process.Continue()
        finally:
            watchdog.cancel()
            self._target.BreakpointDelete(breakpoint.GetID())
        thread = self._process.GetThreadByID(self._main_thread_id)
        log.debug("ran on to %s (%s)", thread.GetFrameAtIndex(0).GetFunctionName(), thread.GetStopDescription(100))
        return thread

    def _unwind(self, run_to_cell_code: bool) -> bool:
        """Return the main thread to its state before the expression; say whether that worked.

        ``run_to_cell_code`` only after our own SIGINT: a crashed thread would crash again.
        """
        thread = self._process.GetThreadByID(self._main_thread_id)
        if not thread.IsValid():
            return False
        if run_to_cell_code:
            thread = self._return_to_cell_code(thread)
        if not self.is_process_alive() or not thread.IsValid():
            return False
        result = thread.UnwindInnermostExpression()
        if not result.Success():
            log.warning("unwinding the expression failed: %s", result.GetCString())
            return False
        self._process.SetSelectedThread(thread)
        return True

    def _clear_pending_interrupt(self) -> None:
        """Swallow a SIGINT still queued for the Swift process, so it cannot stop the next cell."""
        if not self._pid or not _proc_status(self._pid)[1] & _SIGINT_BIT:
            return
        log.info("a SIGINT was still pending after the interrupt; absorbing it")
        signals = self._process.GetUnixSignals()
        signals.SetShouldStop(signal.SIGINT, False)
        signals.SetShouldNotify(signal.SIGINT, False)
        try:
            self._target.EvaluateExpression("__SwiftKernel.noop()", self._plain_options)
        finally:
            signals.SetShouldStop(signal.SIGINT, True)
            signals.SetShouldNotify(signal.SIGINT, True)

    def _describe(self, value: Any) -> str | None:
        """Return the cell's result the way Swift describes it, or None for a Void result."""
        type_name = value.GetTypeName() or ""
        if type_name in ("()", "Swift.Void", ""):
            return None
        if type_name in _FAST_TYPES and value.GetValue() is not None:
            return str(value.GetValue())
        if type_name == "Swift.Bool" and value.GetValue() is not None:
            return "false" if value.GetValue() in ("0", "false") else "true"
        name = value.GetName()
        if not name:
            return None
        # REPL mode: only REPL expressions can see the $R result variables.
        described = self._target.EvaluateExpression(f"__SwiftKernel.describe({name})", self._options)
        messages = [payload for kind, payload in self._results.read_messages() if kind == "result"]
        if messages:
            # Types declared in cells live in per-cell modules named __lldb_expr_N.
            return _LLDB_MODULE_PREFIX.sub("", messages[-1])
        error_text = described.GetError().GetCString() or ""
        log.warning("describing %s failed: %s", name, error_text)
        return value.GetSummary() or value.GetValue() or f"<{type_name}>"

    def _process_ended(self, why: str, interrupt: InterruptRecord | None = None) -> ExecutionResult:
        if interrupt is not None:
            self._record_interrupt(interrupt)
        exit_text = ""
        if self._process is not None and self._process.IsValid():
            if self._process.GetState() == self._lldb.eStateExited:
                exit_text = f" (exit status {self._process.GetExitStatus()})"
        try:
            self.relaunch()
            fresh = "A fresh Swift process has been started: earlier variables, functions and imports are gone."
        except SwiftProcessEnded as error:
            self._state = State.DEAD
            fresh = f"Starting a fresh Swift process failed: {error}"
        if interrupt is not None and interrupt.rung == "kill":
            evalue = (
                f"{interrupt.reason}; the Swift code did not stop within {self.interrupt_grace:g} s, "
                "so its process was killed"
            )
            traceback = [f"KeyboardInterrupt: {evalue}.", fresh]
            return ExecutionResult(error=CellError("KeyboardInterrupt", evalue, traceback))
        evalue = f"{why}{exit_text}; its state is gone."
        return ExecutionResult(error=CellError("SwiftProcessEnded", evalue, [f"SwiftProcessEnded: {evalue}", fresh]))

    # ----- interrupts -------------------------------------------------------------------------

    def interrupt(self, source: str) -> str:
        """Stop the running cell, if any; safe from any thread and returns at once.

        ``source`` is ``message``, ``signal`` or ``time limit``. The returned word says what happened:
        ``idle`` (nothing ran), ``already`` (an interrupt of this cell is under way) or ``started``.
        """
        with self._lock:
            cell = self._cell
            if cell is None:
                log.info("interrupt from %s while %s: nothing to stop", source, self._state.value)
                return "idle"
            if cell.interrupt is not None:
                return "already"
            reason = "Interrupted by user"
            if source == "time limit":
                reason = f"Cell time limit of {cell.time_limit:g} s exceeded"
            record = cell.interrupt = InterruptRecord(source, reason, time.monotonic())
            subprocess_running, running, run_done = self._subprocess, cell.running, cell.run_done
        if subprocess_running is not None:
            record.rung = "SIGINT to the command's process group"
            threading.Thread(
                target=self._stop_subprocess, args=(subprocess_running, record), name="swift-interrupt", daemon=True
            ).start()
        elif running:
            threading.Thread(
                target=self._escalate, args=(record, run_done), name="swift-interrupt", daemon=True
            ).start()
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

    def _escalate(self, record: InterruptRecord, run_done: threading.Event) -> None:
        """Stop the evaluation: SIGINT, then LLDB's own interrupt, then kill after the grace period.

        Runs on its own thread until the evaluation returns. A SIGINT sent while LLDB compiles the
        cell (the process sits in a ptrace stop, state 't') would only queue, so none is sent
        then; it goes out as soon as the code runs. One that LLDB's helper calls swallow is sent
        again once the code runs and none is pending, never two at once: a second signal landing
        while LLDB restores the process has corrupted its JIT state. A SIGINT that stays pending
        while the code runs is blocked by the program: LLDB's SendAsyncInterrupt (SIGSTOP, which
        cannot be blocked) takes over. After ``interrupt_grace`` seconds the process is killed.

        The grace period counts from when the code runs. A compilation (inside this process) cannot
        be interrupted, and killing the Swift process meanwhile would only throw its state away:
        an interrupt during a compile that takes long says so on stderr and waits for the code.
        """
        pid = self._pid
        deadline = record.requested_at + self.interrupt_grace
        next_signal = record.requested_at
        next_async = 0.0
        pending_since: float | None = None
        told = False
        while not run_done.is_set():
            now = time.monotonic()
            state, pending = _proc_status(pid)
            if state == "X":
                break
            if state == "t" and record.signals_sent == 0 and not record.rung:
                deadline = now + self.interrupt_grace
                if not told and now - record.requested_at > _COMPILING_NOTICE_SECONDS:
                    told = True
                    notice = f"{record.reason} while the compiler works on this cell: it stops as soon as it runs.\n"
                    self._pump.emit("stderr", Text(notice))
            if now >= deadline:
                self._kill_after_grace(pid, record)
                break
            if state != "t":
                if pending & _SIGINT_BIT:
                    pending_since = pending_since or now
                blocked = pending_since is not None and now - pending_since > self.resend_interval
                if blocked or record.signals_sent >= 3:
                    if now >= next_async:
                        # Repeated because a lone SendAsyncInterrupt has been seen to get lost.
                        self._send_async_interrupt()
                        record.rung = "async interrupt"
                        next_async = now + self.resend_interval
                elif not pending & _SIGINT_BIT and now >= next_signal:
                    _signal(pid, signal.SIGINT)
                    record.signals_sent += 1
                    record.rung = record.rung or "signal"
                    next_signal = now + self.resend_interval
            run_done.wait(0.002 if now - record.requested_at < 0.05 else 0.01)


    def _send_async_interrupt(self) -> None:
        """Ask LLDB to stop the Swift process (SIGSTOP); safe while an evaluation runs."""
        self._process.SendAsyncInterrupt()

    def _kill_after_grace(self, pid: int, record: InterruptRecord) -> None:
        """Kill the Swift process whose code did not stop within the grace period."""
        record.rung = "kill"
        log.warning("interrupt grace of %.1f s over: killing Swift process %d", self.interrupt_grace, pid)
        _signal(pid, signal.SIGKILL)

    def mark_interrupted(self, record: InterruptRecord) -> bool:
        """Record an interrupt whose signals someone else sends (the kernel, when LLDB runs in a child).

        The evaluation then ends as an interrupt (KeyboardInterrupt, run on to cell code before
        unwinding) rather than as a crash by SIGINT. Returns whether a cell was open to take it.
        """
        with self._lock:
            cell = self._cell
            if cell is None:
                return False
            if cell.interrupt is None:
                cell.interrupt = record
            else:
                cell.interrupt.rung = record.rung or cell.interrupt.rung
            return True


@dataclass
class EarlyStart:
    """An executor whose Swift process starts before the kernel object exists.

    ``python -m swift_kernel`` begins this before importing ipykernel, so that launching
    ``repl_swift`` and running the prelude overlap with the Jupyter imports; the kernel takes it.
    """

    executor: LLDBExecutor
    thread: ThreadPoolExecutor
    started: Future[None]

    _pending: ClassVar[EarlyStart | None] = None

    @classmethod
    def begin(cls, toolchain: Toolchain) -> EarlyStart:
        """Start the LLDB host process (and its Swift process) from the executing thread."""
        from .hosted import HostedExecutor  # noqa: PLC0415 - hosted builds on this module

        executor = HostedExecutor(toolchain, lambda name, event: None)
        # Every call into the LLDB host waits on this one thread; other threads only signal.
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="swift-lldb")
        early = cls(executor, thread, thread.submit(executor.start))
        cls._pending = early
        return early

    @classmethod
    def take(cls) -> EarlyStart | None:
        """Hand over the early start, once."""
        early, cls._pending = cls._pending, None
        return early
