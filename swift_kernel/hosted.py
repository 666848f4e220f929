"""Run the LLDB executor in a child process of the kernel, so that a crash of LLDB spares the kernel.

LLDB runs in whichever process imports it: an assertion in the Swift expression compiler or a
segfault in LLDB ends that process. Here it is a child, the *LLDB host*
(``python -m swift_kernel.hosted FD``), which the kernel starts and starts again when it dies; the
running cell then gets an ``LLDBCrashed`` error and the next one runs in a fresh host.

The kernel side, ``HostedExecutor``, keeps ``LLDBExecutor``'s API and everything that needs no
LLDB: the cell records, the interrupt ladder (signals go from the kernel straight to the Swift
process by pid; only ``SendAsyncInterrupt`` travels to the host), ``%system`` commands and the
output pipes. The Swift process opens those pipes by ``/proc/<kernel pid>/fd/N`` path, so its
output goes straight to the kernel, never through the host.

The two talk over one socket pair with ``multiprocessing.connection.Connection`` (pickled tuples):

kernel -> host
    ``("init", config)``                    first message: toolchain, output pipe paths, environment
    ``("call", id, method, args)``          run on the host's main thread, one at a time
    ``("mark", id, generation, record)``    an interrupt of the kernel's cell ``generation``
    ``("async_interrupt",)``                SBProcess.SendAsyncInterrupt, from the host's reader thread
    ``("reply", id, ok, value)``            answer to a host call
host -> kernel
    ``("reply", id, ok, value)``            answer to a call or mark
    ``("event", name, args)``               drain / emit / reset_tail of the output pump, launched
    ``("call", id, name, args)``            tail (of a stream, for crash messages), ask_input, take_prompt

Messages are handled in order on each side, so a ``drain`` the host sends before a cell's result
has been carried out before the kernel sees the result.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any, ClassVar

from .diagnostics import CellError
from .executor import Cell, ExecutionResult, InterruptRecord, LLDBExecutor, State, SwiftProcessEnded, _signal
from .output import OutputCallback, OutputEvent
from .toolchain import Toolchain, find_toolchain

log = logging.getLogger(__name__)

# How long the kernel waits for the host to take note of an interrupt before signalling anyway.
_MARK_SECONDS = 1.0
# How long a shutdown waits for the host to end the Swift process and exit by itself.
_SHUTDOWN_SECONDS = 5.0
# A host that dies this many times within _CRASH_WINDOW_SECONDS is not started again: LLDB that
# crashes at once every time (a broken toolchain, a package whose loading crashes it) would
# otherwise be restarted for ever, each cell paying a start and getting the same error.
_CRASH_LOOP_LIMIT = 3
_CRASH_WINDOW_SECONDS = 60.0


class HostDied(Exception):
    """The LLDB host process ended (crashed, or was killed) before it answered."""


class Channel:
    """One end of the kernel-host connection: ordered sends from any thread, requests with replies.

    Only one thread (the side's reader) calls ``recv``; it hands replies to ``resolve``.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, Future[Any]] = {}
        self._closed: BaseException | None = None

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def send(self, message: tuple[Any, ...]) -> None:
        """Send one message; raises HostDied (on the kernel side) when the other end is gone."""
        try:
            with self._send_lock:
                self._connection.send(message)
        except (OSError, ValueError) as error:
            raise HostDied(f"the other end is gone: {error}") from error

    def request(self, kind: str, *fields: Any) -> Future[Any]:
        """Send ``(kind, id, *fields)`` and return a future of the ``("reply", id, ...)``."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed is not None:
                future.set_exception(HostDied(str(self._closed)))
                return future
            request_id = next(self._ids)
            self._waiting[request_id] = future
        try:
            self.send((kind, request_id, *fields))
        except HostDied as error:
            self._settle(request_id, False, error)
        return future

    def call(self, name: str, *args: Any, timeout: float | None = None) -> Any:
        """Call ``name(*args)`` on the other side and wait for its result (or its exception)."""
        return self.request("call", name, args).result(timeout)

    def recv(self) -> Any:
        return self._connection.recv()

    def reply(self, request_id: int, ok: bool, value: Any) -> None:
        """Answer a request of the other side; an exception that cannot be pickled goes as text."""
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - anything unpicklable is sent as its text
            value = RuntimeError(repr(value))
        try:
            self.send(("reply", request_id, ok, value))
        except HostDied:
            log.debug("reply %d not sent: the other side is gone", request_id)

    def _settle(self, request_id: int, ok: bool, value: Any) -> None:
        with self._lock:
            future = self._waiting.pop(request_id, None)
        if future is None or future.done():
            return  # cancelled by its caller, or answered twice
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def resolve(self, request_id: int, ok: bool, value: Any) -> None:
        """Hand the reply to a request to whoever waits for it."""
        self._settle(request_id, ok, value)

    def close(self, reason: BaseException) -> None:
        """Fail every request still waiting, and any made later, with ``HostDied``."""
        with self._lock:
            self._closed = reason
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(HostDied(str(reason)))
        self._connection.close()


# ----- the kernel side --------------------------------------------------------------------------


def _describe_exit(status: int | None) -> str:
    if status is None:
        return "it stopped answering"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def _crash_result(how: str, while_running: bool, fresh: str) -> ExecutionResult:
    when = "while the cell ran" if while_running else "while no cell ran, so this cell did not run"
    evalue = f"LLDB crashed ({how}) {when}; a fresh Swift process was started: earlier variables are gone"
    return ExecutionResult(error=CellError("LLDBCrashed", evalue, [f"LLDBCrashed: {evalue}", fresh]))


class HostedExecutor(LLDBExecutor):
    """``LLDBExecutor``'s API, with LLDB in a child process that is started again when it dies.

    Inherits the kernel-side half of the executor unchanged: cells, ``interrupt`` and its ladder,
    ``run_subprocess``, the output pump. Overrides what needs LLDB to forward it to the host.
    """

    # The host's command line; the connection's file descriptor is appended.
    host_command: ClassVar[list[str]] = [sys.executable, "-m", "swift_kernel.hosted"]

    def __init__(self, toolchain: Toolchain, on_output: OutputCallback, **kwargs: Any) -> None:
        super().__init__(toolchain, on_output, **kwargs)
        # Both belong to the host's executor; this process never has a Swift process of its own.
        self._results.close()
        self._stdin.close()
        self._host: subprocess.Popen[bytes] | None = None
        self._channel: Channel | None = None
        self._debug_server_pid = 0
        # Hosts started so far, and the last load_installed, replayed into a fresh host.
        self.hosts_started = 0
        self._installed: tuple[list[str], list[str], str] | None = None
        # Replacing a dead host happens on whichever thread notices first: the executing thread
        # (its call failed) or the dead host's reader thread (the host died while idle).
        self._host_lock = threading.Lock()
        # The host that finished starting: only such a host is replaced as soon as it dies.
        self._ready_host: subprocess.Popen[bytes] | None = None
        self._shutting_down = False
        # How the last host ended; set while no cell ran, so that the next cell says so.
        self._last_crash = ""
        self._idle_crash: str | None = None
        # When hosts died lately, and the error every cell gets once they died too often.
        self._crash_times: deque[float] = deque()
        self._gave_up: str | None = None

    @property
    def host_pid(self) -> int:
        """Return the LLDB host's pid (0 when none runs)."""
        return self._host.pid if self._host is not None else 0

    # ----- life cycle -------------------------------------------------------------------------

    def load(self) -> None:
        """Do nothing: LLDB is loaded by the host, never in this process."""

    def start(self) -> None:
        """Start the LLDB host and its Swift process; called from the kernel's executing thread."""
        self._start_host()

    def _start_host(self) -> None:
        self._state = State.STARTING
        kernel_end, host_end = socket.socketpair()
        with host_end:
            # SIGINT stays blocked in the host (it inherits this thread's mask across exec): a
            # SIGINT to the kernel's process group must not reach LLDB.
            host = subprocess.Popen(
                [*self.host_command, str(host_end.fileno())],
                pass_fds=(host_end.fileno(),),
                stdin=subprocess.DEVNULL,
                # liblldb loads the Swift runtime, whose crash handler prints a report and, for a
                # SIGSEGV sent by kill(), returns: the host lived on (measured). A real segfault
                # ended it either way; without the handler both end it, at once and quietly.
                env={**os.environ, "SWIFT_BACKTRACE": "enable=no"},
            )
        channel = Channel(Connection(kernel_end.detach()))
        self._host, self._channel = host, channel
        self.hosts_started += 1
        threading.Thread(
            target=self._read_host, args=(channel, host), name="swift-lldb-host-reader", daemon=True
        ).start()
        config = {
            "toolchain": str(self.toolchain.root),
            "stdout": self._pump.path("stdout"),
            "stderr": self._pump.path("stderr"),
            "environment": dict(self.environment),
            "interrupt_grace": self.interrupt_grace,
        }
        channel.send(("init", config))
        try:
            channel.call("start")
            if self._installed is not None:
                failure = channel.call("load_installed", *self._installed)
                if failure is not None:
                    log.warning("installed packages not loaded into the fresh host: %s", failure.evalue)
        except HostDied as error:
            self._state = State.DEAD
            how = _describe_exit(host.poll())
            raise SwiftProcessEnded(f"the LLDB host process ended while starting ({how})") from error
        self._ready_host = host
        self._state = State.IDLE

    def _read_host(self, channel: Channel, host: subprocess.Popen[bytes]) -> None:
        """Carry out what the host sends, in order, until it ends (the kernel's host-reader thread)."""
        while True:
            try:
                message = channel.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "reply":
                channel.resolve(*message[1:])
            elif kind == "event":
                self._host_event(message[1], message[2])
            elif kind == "call":
                self._host_call(channel, message[1], message[2], message[3])
        try:
            status: int | None = host.wait(timeout=2)
        except subprocess.TimeoutExpired:
            status = None
        log.warning("LLDB host %d ended (%s)", host.pid, _describe_exit(status))
        channel.close(HostDied(f"LLDB host ended ({_describe_exit(status)})"))
        self._host_ended(host)

    def _host_ended(self, host: subprocess.Popen[bytes]) -> None:
        """Start a fresh host at once when a ready one died (the dead host's reader thread).

        A call waiting on the host (a running cell) has already failed with HostDied; whichever of
        its thread and this one takes the host lock first replaces the host, the other finds it
        replaced. If this thread did it, the crash happened while no cell ran (or the cell's thread
        takes the report back, see ``_host_crashed``): the next cell is told instead of running
        without the state it expects.
        """
        with self._host_lock:
            if self._shutting_down or host is not self._ready_host:
                return
            log.info("LLDB host %d died while idle: starting a fresh one now", host.pid)
            self._idle_crash = self._replace_host(host)

    def _host_event(self, name: str, args: tuple[Any, ...]) -> None:
        if name == "drain":
            self._pump.drain()
        elif name == "emit":
            self._pump.emit(*args)
        elif name == "reset_tail":
            self._pump.reset_tail()
        elif name == "launched":
            self._pid, self._debug_server_pid = args
            self.launches += 1

    def _host_call(self, channel: Channel, request_id: int, name: str, args: tuple[Any, ...]) -> None:
        if name == "tail":
            channel.reply(request_id, True, self._pump.tail(*args))
        elif name == "take_prompt":
            channel.reply(request_id, True, self._pump.take_prompt())
        elif name == "ask_input":
            ask = self._on_input
            if ask is None:
                channel.reply(request_id, True, None)
                return
            # The prompt is the unfinished line of the kernel's stdout pipe, read here.
            answer = ask(self._pump.take_prompt)

            def answered(done: Future[str | None]) -> None:
                line = None if done.cancelled() or done.exception() is not None else done.result()
                channel.reply(request_id, True, line)

            answer.add_done_callback(answered)
        else:
            channel.reply(request_id, False, RuntimeError(f"unknown call {name!r}"))

    def _replace_host(self, host: subprocess.Popen[bytes] | None) -> str:
        """Clean up after the dead ``host`` and start a fresh one; return how the dead one ended.

        Called with the host lock held. Gives up (every later cell gets ``self._gave_up``) once
        hosts have died ``_CRASH_LOOP_LIMIT`` times within ``_CRASH_WINDOW_SECONDS``.
        """
        status = host.poll() if host is not None else None
        if host is not None and status is None:
            # It did not die but stopped answering (or the connection broke): end it for good.
            host.kill()
            status = host.wait()
        # lldb-server usually takes its Swift process with it; make sure of both.
        for pid in (self._pid, self._debug_server_pid):
            if pid:
                _signal(pid, signal.SIGKILL)
        self._pid = self._debug_server_pid = 0
        self._ready_host = None
        how = self._last_crash = _describe_exit(status)
        now = time.monotonic()
        self._crash_times.append(now)
        while self._crash_times and now - self._crash_times[0] > _CRASH_WINDOW_SECONDS:
            self._crash_times.popleft()
        if len(self._crash_times) >= _CRASH_LOOP_LIMIT:
            self._state = State.DEAD
            self._gave_up = (
                f"LLDB crashed {len(self._crash_times)} times within {_CRASH_WINDOW_SECONDS:g} s (last: {how}), "
                "so no fresh LLDB host is started again: restart the kernel"
            )
            log.error("%s", self._gave_up)
            return how
        try:
            self._start_host()
        except SwiftProcessEnded as error:
            self._state = State.DEAD
            log.warning("starting a fresh LLDB host failed: %s", error)
        return how

    def _host_crashed(self, host: subprocess.Popen[bytes] | None, while_running: bool) -> ExecutionResult:
        """Replace ``host`` unless that is done already, and return the error that says it died."""
        with self._host_lock:
            # Not when the dead host's reader thread replaced it already.
            if self._gave_up is None and host is self._host:
                how = self._replace_host(host)
            else:
                how = self._last_crash
            # The cell that was running reports the crash itself: the next one need not.
            self._idle_crash = None
            gave_up = self._gave_up
        if gave_up is not None:
            return ExecutionResult(error=CellError("LLDBCrashed", gave_up, [f"LLDBCrashed: {gave_up}"]))
        if self._host_alive():
            fresh = "A fresh Swift process has been started: earlier variables, functions and imports are gone."
        else:
            fresh = "Starting a fresh LLDB host failed; the next cell tries again."
        return _crash_result(how, while_running, fresh)

    def _unusable(self) -> ExecutionResult | None:
        """Return the error a call gets when no working host is there (replacing it if it can)."""
        if self._gave_up is not None:
            return self._host_crashed(None, while_running=False)
        with self._host_lock:
            idle_crash, self._idle_crash = self._idle_crash, None
        if idle_crash is not None:
            fresh = "A fresh Swift process was started at the crash: earlier variables, functions and imports are gone."
            return _crash_result(idle_crash, False, fresh)
        if not self._host_alive():
            return self._host_crashed(self._host, while_running=False)
        return None

    def _host_alive(self) -> bool:
        return self._channel is not None and not self._channel.closed and self._host is not None

    def relaunch(self) -> None:
        """Start a fresh Swift process (a fresh host, if the host died)."""
        if self._gave_up is not None:
            raise SwiftProcessEnded(self._gave_up)
        host = self._host
        if self._host_alive():
            assert self._channel is not None
            try:
                self._channel.call("relaunch")
            except HostDied:
                pass
            else:
                with self._host_lock:
                    self._idle_crash = None  # the state is gone anyway, and the caller says so
                return
        failed = self._host_crashed(host, while_running=False).error
        if not self._host_alive():
            raise SwiftProcessEnded(failed.evalue if failed is not None else "no LLDB host")

    def _call_for_error(self, method: str, *args: Any) -> CellError | None:
        """Call an LLDBExecutor method in the host that answers with an error or None."""
        unusable = self._unusable()
        if unusable is not None:
            return unusable.error
        assert self._channel is not None
        host = self._host
        try:
            failure: CellError | None = self._channel.call(method, *args)
        except HostDied:
            return self._host_crashed(host, while_running=True).error
        return failure

    def set_environment(self, name: str, value: str) -> CellError | None:
        """Set an environment variable inside the Swift process; kept for fresh hosts too."""
        failure = self._call_for_error("set_environment", name, value)
        if failure is None:
            self.environment[name] = value
        return failure

    def load_installed(self, module_dirs: list[str], module_maps: list[str], library: str) -> CellError | None:
        """Load built packages into the Swift process; a fresh host loads them again."""
        failure = self._call_for_error("load_installed", module_dirs, module_maps, library)
        if failure is None:
            self._installed = (module_dirs, module_maps, library)
        return failure

    def shutdown(self) -> None:
        """End the host, its Swift process and the output pipes; leave no process behind."""
        with self._host_lock:
            # After this no dead host is replaced; one being started now is ended below.
            self._shutting_down = True
            self._state = State.DEAD
            channel, host = self._channel, self._host
        if channel is not None and not channel.closed:
            try:
                channel.call("shutdown", timeout=_SHUTDOWN_SECONDS)
            except Exception:
                log.debug("host shutdown did not answer", exc_info=True)
        if host is not None:
            try:
                host.wait(timeout=_SHUTDOWN_SECONDS)
            except subprocess.TimeoutExpired:
                host.kill()
                host.wait()
        for pid in (self._pid, self._debug_server_pid):
            if pid:
                _signal(pid, signal.SIGKILL)
        self._pump.close()

    def is_process_alive(self) -> bool:
        """Say whether the host is there to answer; the host checks its Swift process itself."""
        return self._host_alive()

    # ----- execution --------------------------------------------------------------------------

    def execute(
        self, code: str, cell_name: str, time_limit: float | None = None, cell: Cell | None = None
    ) -> ExecutionResult:
        """Evaluate Swift code in the host; called from the kernel's single executing thread."""
        owned = cell is None
        if cell is None:
            cell = self.expect_cell(time_limit)
        try:
            early = self.interrupted_result(cell)
            if early is not None:
                return early
            unusable = self._unusable()
            if unusable is not None:
                return unusable
            assert self._channel is not None
            host = self._host
            if not self._mark_running(cell):
                return self.interrupted_result(cell)  # type: ignore[return-value]
            try:
                # The kernel sets these after the host started (its traits); the host's messages use them.
                settings = {"check_warnings": self.check_warnings, "interrupt_grace": self.interrupt_grace}
                result: ExecutionResult = self._channel.call(
                    "execute", cell.generation, code, cell_name, settings, self._on_input is not None
                )
            except HostDied:
                result = self._host_crashed(host, while_running=True)
            finally:
                with self._lock:
                    cell.running = False
                    cell.run_done.set()
            record = cell.interrupt
            if record is not None and record.stopped_at is None:
                # The host saw a copy taken before any signal; this one has the ladder's rung and count.
                record.stopped_at = time.monotonic()
                self._record_interrupt(record)
            return result
        finally:
            if owned:
                self.end_cell(cell)

    # ----- interrupts: the ladder runs here, LLDB's part in the host ---------------------------

    def _tell_host(self, cell_generation: int, record: InterruptRecord) -> None:
        """Make the host's cell take note of the interrupt before any signal can stop its code."""
        channel = self._channel
        if channel is None:
            return
        try:
            channel.request("mark", cell_generation, record).result(_MARK_SECONDS)
        except Exception:
            log.warning("the LLDB host did not take note of the interrupt", exc_info=True)

    def _escalate(self, record: InterruptRecord, run_done: threading.Event) -> None:
        cell = self._cell
        if cell is not None:
            self._tell_host(cell.generation, record)
        super()._escalate(record, run_done)

    def _send_async_interrupt(self) -> None:
        if self._channel is not None:
            try:
                self._channel.send(("async_interrupt",))
            except HostDied:
                pass

    def _kill_after_grace(self, pid: int, record: InterruptRecord) -> None:
        record.rung = "kill"
        cell = self._cell
        if cell is not None:
            self._tell_host(cell.generation, record)
        super()._kill_after_grace(pid, record)


# ----- the host side ----------------------------------------------------------------------------


class RemotePump:
    """The host's view of the kernel's output pump: the pipes' paths, and calls over the channel."""

    def __init__(self, channel: Channel, paths: dict[str, str]) -> None:
        self._channel = channel
        self._paths = paths

    def path(self, name: str) -> str:
        return self._paths[name]

    def set_callback(self, callback: OutputCallback) -> None:
        """Do nothing: the kernel sends the output where it belongs."""

    def reset_tail(self) -> None:
        self._channel.send(("event", "reset_tail", ()))

    def tail(self, name: str) -> str:
        text: str = self._channel.call("tail", name)
        return text

    def drain(self) -> None:
        self._channel.send(("event", "drain", ()))

    def take_prompt(self) -> str:
        text: str = self._channel.call("take_prompt")
        return text

    def emit(self, name: str, event: OutputEvent) -> None:
        self._channel.send(("event", "emit", (name, event)))

    def close(self) -> None:
        """Do nothing: the pipes are the kernel's."""


class HostExecutor(LLDBExecutor):
    """The executor inside the host: tells the kernel about every Swift process it launches."""

    def __init__(self, channel: Channel, toolchain: Toolchain, **kwargs: Any) -> None:
        super().__init__(toolchain, lambda name, event: None, **kwargs)
        self._channel = channel

    def _record_interrupt(self, interrupt: InterruptRecord) -> None:
        """Log only that the cell ended by an interrupt: the kernel records its rung and latency.

        The host's copy of the record was taken when the kernel told it of the interrupt, before
        the kernel sent any signal, so its rung and signal count say nothing.
        """
        log.info("the cell ended by the kernel's interrupt from %s (the kernel logs how it stopped)", interrupt.source)

    def _launch(self) -> None:
        super()._launch()
        try:
            with open(f"/proc/{self._pid}/stat") as stat:
                debug_server = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            debug_server = 0
        self._channel.send(("event", "launched", (self._pid, debug_server)))


class Host:
    """Serve one kernel: calls on the main thread (LLDB's), everything else on the reader thread."""

    def __init__(self, channel: Channel, config: dict[str, Any]) -> None:
        self.channel = channel
        pump = RemotePump(channel, {"stdout": config["stdout"], "stderr": config["stderr"]})
        self.executor = HostExecutor(
            channel,
            find_toolchain(config["toolchain"]),
            environment=config["environment"],
            interrupt_grace=config["interrupt_grace"],
            pump=pump,
        )
        self.calls: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._marks_lock = threading.Lock()
        # The kernel cell being evaluated, and interrupts of kernel cells this host has heard of.
        self._generation: int | None = None
        self._marks: dict[int, InterruptRecord] = {}

    def read(self) -> None:
        """Take the kernel's messages until it goes away, then end the Swift process and exit."""
        while True:
            try:
                message = self.channel.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "call":
                self.calls.put(message)
            elif kind == "reply":
                self.channel.resolve(*message[1:])
            elif kind == "mark":
                self.channel.reply(message[1], True, self._mark(message[2], message[3]))
            elif kind == "async_interrupt":
                try:
                    self.executor._send_async_interrupt()
                except Exception:
                    log.debug("async interrupt failed", exc_info=True)
        # The kernel is gone (or closed the connection): nobody is left to use the Swift process.
        self.executor.kill_now()
        os._exit(0)

    def _mark(self, generation: int, record: InterruptRecord) -> bool:
        with self._marks_lock:
            known = self._marks.get(generation)
            if known is None:
                self._marks[generation] = record
            else:
                known.rung = record.rung or known.rung
            if self._generation == generation:
                return self.executor.mark_interrupted(record)
        return False

    def serve(self) -> None:
        """Run the kernel's calls one at a time until it asks for a shutdown."""
        while True:
            _, request_id, method, args = self.calls.get()
            try:
                value = getattr(self, f"do_{method}")(*args)
            except Exception as error:  # noqa: BLE001 - the kernel gets the exception, the host lives on
                self.channel.reply(request_id, False, error)
            else:
                self.channel.reply(request_id, True, value)
            if method == "shutdown":
                return

    def do_start(self) -> None:
        self.executor.start()

    def do_execute(
        self, generation: int, code: str, cell_name: str, settings: dict[str, Any], has_input: bool
    ) -> ExecutionResult:
        self.executor.check_warnings = settings["check_warnings"]
        self.executor.interrupt_grace = settings["interrupt_grace"]
        self.executor.set_input_callback(self._ask_input if has_input else None)
        with self._marks_lock:
            cell = self.executor.expect_cell(None)
            self._generation = generation
            self._marks = {g: r for g, r in self._marks.items() if g >= generation}
            mark = self._marks.get(generation)
            if mark is not None:
                self.executor.mark_interrupted(mark)
        try:
            return self.executor.execute(code, cell_name, None, cell)
        finally:
            with self._marks_lock:
                self._generation = None
            self.executor.end_cell(cell)
            self.executor.set_input_callback(None)

    def _ask_input(self, take_prompt: Callable[[], str]) -> Future[str | None]:
        # The kernel takes the prompt from its own pump (the output pipes are its), not through this one.
        return self.channel.request("call", "ask_input", ())

    def do_relaunch(self) -> None:
        self.executor.relaunch()

    def do_set_environment(self, name: str, value: str) -> CellError | None:
        return self.executor.set_environment(name, value)

    def do_load_installed(self, module_dirs: list[str], module_maps: list[str], library: str) -> CellError | None:
        return self.executor.load_installed(module_dirs, module_maps, library)

    def do_shutdown(self) -> None:
        self.executor.shutdown()


def main() -> None:
    """Serve the kernel on the connection whose file descriptor is the only argument."""
    # First, before LLDB starts threads: SIGINT is for the kernel to handle, never for this process.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    channel = Channel(Connection(int(sys.argv[1])))
    kind, config = channel.recv()
    assert kind == "init", kind
    log_file = os.environ.get("SWIFT_KERNEL_LOG")
    if log_file:
        logging.basicConfig(
            filename=log_file,
            level=logging.DEBUG,
            format=f"%(asctime)s host-{os.getpid()} %(threadName)s %(name)s %(levelname)s %(message)s",
        )
    host = Host(channel, config)
    # LLDB's Python support must be set up on the main thread (see LLDBExecutor.load).
    host.executor.load()
    threading.Thread(target=host.read, name="swift-host-reader", daemon=True).start()
    host.serve()
    os._exit(0)


if __name__ == "__main__":
    main()
