"""The LLDB host process and the transport between it and the kernel.

LLDB runs in whichever process imports it: an assertion in the Swift expression compiler or a
segfault in LLDB ends that process. So LLDB runs in a child of the kernel, the *LLDB host*
(``python -m swift_kernel.host FD``), which the kernel starts, and starts again when it dies.

Two halves, one per process, joined by one socket pair carrying the typed messages of
``messages.py`` (pickled by ``multiprocessing.connection.Connection``, in order both ways):

- ``HostProcess`` (kernel side) starts and replaces the host, forwards the cell controller's
  requests and turns a dead host into an ``LLDBCrashed`` error. It holds no LLDB.
- ``HostServer`` (host side) runs an ``lldb_session.LLDBSession`` on the host's main thread, one
  request at a time; ``Mark`` and ``AsyncInterrupt`` are handled at once on its reader thread.

The Swift process opens the kernel's output and input pipes by ``/proc/<kernel pid>/fd/N`` path,
so its output goes straight to the kernel, never through the host.

Dependencies: ``messages``, ``procfs``, ``diagnostics``, ``toolchain``; the host side also
``lldb_session`` (which imports ``lldb`` only when the host loads it).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import logging
import os
import pickle
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any, ClassVar

from .dap import DebugError, set_up_key
from .diagnostics import CellError
from .hostspawn import HOST_COMMAND, TEMP_PREFIX, EarlyHost, Spawned, make_temp_dir, spawn
from .lldb_session import DebugCall, LLDBSession, discard_text, import_lldb
from .messages import (
    ENVELOPES,
    EVENTS,
    PROTOCOL_VERSION,
    REQUESTS,
    AsyncInterrupt,
    Call,
    Debug,
    DebugEvent,
    Emit,
    Evaluate,
    Execute,
    Global,
    Globals,
    Init,
    Installed,
    Launched,
    LoadInstalled,
    Mark,
    Notice,
    Outcome,
    Relaunch,
    ReopenStdin,
    Reply,
    SetEnvironment,
    Shutdown,
    Streams,
    SwiftProcessEnded,
)
from .procfs import (
    OWNER_VARIABLE,
    describe_exit,
    end_owned_processes,
    owner_alive,
    process_state,
    remove_stale_temp_dirs,
    send_signal,
    wait_for_exit,
)
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
# A host, or its debug server, stopped by a signal (SIGSTOP, state T) answers nothing until
# someone continues it: a request waiting on it would wait for ever, and no interrupt reaches the
# code behind it. One stopped this long is ended, and a fresh one started. Checked every
# _WATCH_SECONDS while a request waits.
_STOPPED_SECONDS = 5.0
_WATCH_SECONDS = 0.25
# The error a cell gets when its host was ended because it could not answer (see HostProcess.end).
HOST_ENDED = "LLDBHostEnded"


class HostDied(Exception):
    """The other end of the connection is gone (the host crashed, was killed, or the kernel left)."""


class ProtocolError(Exception):
    """A message that is not one of ``messages.py``'s, or a request the other side cannot take."""


def check_message(message: Any) -> Any:
    """Return ``message`` if it is a known envelope holding a known request or event."""
    if not isinstance(message, ENVELOPES):
        raise ProtocolError(f"not a message of this protocol: {message!r:.200}")
    if isinstance(message, Call) and type(message.request) not in REQUESTS:
        raise ProtocolError(f"unknown request: {message.request!r:.200}")
    if isinstance(message, Notice) and not isinstance(message.event, EVENTS):
        raise ProtocolError(f"unknown event: {message.event!r:.200}")
    return message


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

    def send(self, message: Call | Reply | Notice) -> None:
        """Send one message; raises HostDied when the other end is gone."""
        self._send_pickled(pickle.dumps(message))

    def _send_pickled(self, data: bytes) -> None:
        try:
            with self._send_lock:
                self._connection.send_bytes(data)
        except (OSError, ValueError) as error:
            raise HostDied(f"the other end is gone: {error}") from error

    def request(self, request: Any) -> Future[Any]:
        """Send ``request`` in a ``Call`` and return a future of its reply's value."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed is not None:
                future.set_exception(HostDied(str(self._closed)))
                return future
            request_id = next(self._ids)
            self._waiting[request_id] = future
        try:
            self.send(Call(request_id, request))
        except HostDied as error:
            self._settle(request_id, None, error)
        return future

    def call(self, request: Any, timeout: float | None = None) -> Any:
        """Send ``request`` and wait for its reply's value; a failed request raises SwiftProcessEnded."""
        return self.request(request).result(timeout)

    def recv(self) -> Any:
        """Return the next message (raises EOFError or OSError when the other end is gone)."""
        return check_message(self._connection.recv())

    def reply(self, request_id: int, value: Any = None, error: str | None = None) -> None:
        """Answer a request of the other side; a value that cannot be pickled is sent as an error."""
        try:
            data = pickle.dumps(Reply(request_id, value, error))  # once: a cell's reply is on its path
        except Exception as failure:  # noqa: BLE001 - anything unpicklable is reported as text
            data = pickle.dumps(Reply(request_id, None, f"unpicklable reply {value!r:.200}: {failure}"))
        try:
            self._send_pickled(data)
        except HostDied:
            log.debug("reply %d not sent: the other side is gone", request_id)

    def _settle(self, request_id: int, value: Any, error: BaseException | None) -> None:
        with self._lock:
            future = self._waiting.pop(request_id, None)
        if future is None or future.done():
            return  # cancelled by its caller, or answered twice
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    def resolve(self, reply: Reply) -> None:
        """Hand a reply to whoever waits for it."""
        error = SwiftProcessEnded(reply.error) if reply.error is not None else None
        self._settle(reply.id, reply.value, error)

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


def _private_temp_dir(early: Spawned | None) -> str:
    """Remove the temporary folders of kernels that are gone; return this kernel's own (``hostspawn``)."""
    remove_stale_temp_dirs(TEMP_PREFIX)
    return early.temp_dir if early is not None else make_temp_dir()


def _remove_own_temp_dir() -> None:
    """Remove the kernel's temporary folder the host was given (the host's last act)."""
    path = os.environ.get("TMPDIR", "")
    if os.path.basename(path).startswith(TEMP_PREFIX):
        shutil.rmtree(path, ignore_errors=True)


def _crash_outcome(how: str, while_running: bool, fresh: str, ended_because: str | None = None) -> Outcome:
    when = "while the cell ran" if while_running else "while no cell ran, so this cell did not run"
    gone = "a fresh Swift process was started: earlier variables are gone"
    if ended_because is not None:
        ename, evalue = HOST_ENDED, f"{ended_because}, so the LLDB host was ended {when}; {gone}"
    else:
        ename, evalue = "LLDBCrashed", f"LLDB crashed ({how}) {when}; {gone}"
    return Outcome(error=CellError(ename, evalue, [f"{ename}: {evalue}", fresh]))


class HostProcess:
    """The kernel's handle on its LLDB host: requests to it, and a fresh host when it dies.

    Implements ``cells.SwiftHost``. ``start`` and every request run on the kernel's one
    executing thread; ``mark`` and ``async_interrupt`` come from interrupt threads, while a
    request may be waiting; the dead host's reader thread replaces a host that died while idle.
    """

    # The host's command line; the connection's file descriptor is appended.
    host_command: ClassVar[list[str]] = HOST_COMMAND

    def __init__(
        self,
        toolchain: Toolchain,
        streams: Streams,
        *,
        environment: dict[str, str] | None = None,
        stop_flag: str = "",
        on_stderr: Callable[[str], None] = discard_text,
        on_debug_event: Callable[[DebugEvent], None] | None = None,
    ) -> None:
        self.toolchain = toolchain
        self.environment = dict(environment or {})
        self._streams = streams
        self._on_debug_event = on_debug_event
        # The debugger's set-up (attach, breakpoints per file, exception filters), in order: given
        # again to a fresh host.
        self._debug_setup: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._stop_flag = stop_flag
        # The host ``python -m swift_kernel`` spawned first, if any: this one's first host.
        self._early = EarlyHost.take(self.host_command)
        self._temp_dir = _private_temp_dir(self._early)
        self._on_stderr = on_stderr
        self._host: subprocess.Popen[bytes] | None = None
        self._channel: Channel | None = None
        # The Swift process and its debug server, as the host last reported them.
        self._pid = 0
        self._debug_server_pid = 0
        # Swift processes and hosts started so far; a new one has none of the earlier cells' state.
        self.launches = 0
        self.hosts_started = 0
        # The last load_installed, replayed into a fresh host.
        self._installed: Installed | None = None
        # Replacing a dead host happens on whichever thread notices first: the executing thread
        # (its call failed) or the dead host's reader thread (the host died while idle).
        # Reentrant: a host started with the lock held may be ended (``end``) while it starts.
        self._host_lock = threading.RLock()
        # The host that finished starting: only such a host is replaced as soon as it dies.
        self._ready_host: subprocess.Popen[bytes] | None = None
        self._shutting_down = False
        # How the last host ended; set while no cell ran, so that the next cell says so.
        self._last_crash = ""
        self._idle_crash: str | None = None
        # When hosts died lately, and the error every cell gets once they died too often.
        self._crash_times: deque[float] = deque()
        self._gave_up: str | None = None
        # Why the kernel ended the last host itself (``end``), until a cell has said so.
        self._ended_because: str | None = None

    @property
    def pid(self) -> int:
        """Return the Swift process's pid (0 when none runs)."""
        return self._pid

    @property
    def host_pid(self) -> int:
        """Return the LLDB host's pid (0 when none runs)."""
        return self._host.pid if self._host is not None else 0

    # ----- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the LLDB host and its Swift process; raises SwiftProcessEnded when that fails."""
        self._start_host()

    def _start_host(self) -> None:
        spawned, self._early = self._early, None
        if spawned is None:
            spawned = spawn(self.host_command, self._temp_dir)
            log.debug("start-up: LLDB host spawned (pid %d)", spawned.process.pid)
        host = spawned.process
        channel = Channel(Connection(spawned.kernel_end.detach()))
        self._host, self._channel = host, channel
        self.hosts_started += 1
        threading.Thread(
            target=self._read_host, args=(channel, host), name="swift-lldb-host-reader", daemon=True
        ).start()
        init = Init(
            PROTOCOL_VERSION,
            str(self.toolchain.root),
            self._streams,
            dict(self.environment),
            self._installed,
            self._stop_flag,
        )
        try:
            self._wait(channel.request(init))
        except HostDied as error:
            with self._host_lock:
                because, self._ended_because = self._ended_because, None
            how = because or describe_exit(host.poll())
            raise SwiftProcessEnded(f"the LLDB host process ended while starting ({how})") from error
        self._ready_host = host
        for command, arguments in list(self._debug_setup.values()):
            # A fresh host knows nothing of the frontend's debugger: attach and breakpoints again.
            try:
                self._wait(channel.request(Debug(command, arguments)))
            except (HostDied, SwiftProcessEnded):
                log.warning("the debugger's %s was not given to the fresh LLDB host", command, exc_info=True)

    def _read_host(self, channel: Channel, host: subprocess.Popen[bytes]) -> None:
        """Carry out what the host sends, in order, until it ends (the kernel's host-reader thread)."""
        while True:
            try:
                message = channel.recv()
            except (EOFError, OSError):
                break
            except ProtocolError:
                log.exception("the LLDB host sent something this kernel does not understand")
                continue
            if isinstance(message, Reply):
                channel.resolve(message)
            elif isinstance(message, Notice):
                event = message.event
                if isinstance(event, Launched):
                    self._pid, self._debug_server_pid = event.pid, event.debug_server_pid
                    self.launches += 1
                elif isinstance(event, Emit):
                    self._on_stderr(event.text)
                elif isinstance(event, DebugEvent) and self._on_debug_event is not None:
                    self._on_debug_event(event)
        try:
            status: int | None = wait_for_exit(host, 2)
        except subprocess.TimeoutExpired:
            status = None
        log.warning("LLDB host %d ended (%s)", host.pid, describe_exit(status))
        channel.close(HostDied(f"LLDB host ended ({describe_exit(status)})"))
        self._host_ended(host)

    def _host_ended(self, host: subprocess.Popen[bytes]) -> None:
        """Start a fresh host at once when a ready one died (the dead host's reader thread).

        A request waiting on the host (a running cell) has already failed with HostDied; whichever
        of its thread and this one takes the host lock first replaces the host, the other finds it
        replaced. If this thread did it, the crash happened while no cell ran (or the cell's thread
        takes the report back, see ``_host_crashed``): the next cell is told instead of running
        without the state it expects.
        """
        with self._host_lock:
            if self._shutting_down or host is not self._ready_host:
                return
            log.info("LLDB host %d died while idle: starting a fresh one now", host.pid)
            self._idle_crash = self._replace_host(host)

    def _replace_host(self, host: subprocess.Popen[bytes] | None) -> str:
        """Clean up after the dead ``host`` and start a fresh one; return how the dead one ended.

        Called with the host lock held. Gives up (every later request gets ``self._gave_up``)
        once hosts have died ``_CRASH_LOOP_LIMIT`` times within ``_CRASH_WINDOW_SECONDS``.
        """
        status = host.poll() if host is not None else None
        if host is not None and status is None:
            # It did not die but stopped answering (or the connection broke): end it for good.
            host.kill()
            status = host.wait()
        # lldb-server usually takes its Swift process with it; make sure of both.
        for pid in (self._pid, self._debug_server_pid):
            send_signal(pid, signal.SIGKILL)
        self._pid = self._debug_server_pid = 0
        self._ready_host = None
        how = self._last_crash = describe_exit(status)
        now = time.monotonic()
        if self._ended_because is None:  # a host the kernel ended is no crash of LLDB's
            self._crash_times.append(now)
        while self._crash_times and now - self._crash_times[0] > _CRASH_WINDOW_SECONDS:
            self._crash_times.popleft()
        if len(self._crash_times) >= _CRASH_LOOP_LIMIT:
            self._gave_up = (
                f"LLDB crashed {len(self._crash_times)} times within {_CRASH_WINDOW_SECONDS:g} s (last: {how}), "
                "so no fresh LLDB host is started again: restart the kernel"
            )
            log.error("%s", self._gave_up)
            return how
        try:
            self._start_host()
        except SwiftProcessEnded as error:
            log.warning("starting a fresh LLDB host failed: %s", error)
        return how

    def _host_crashed(self, host: subprocess.Popen[bytes] | None, while_running: bool) -> Outcome:
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
            ended_because, self._ended_because = self._ended_because, None
        if gave_up is not None:
            return Outcome(error=CellError("LLDBCrashed", gave_up, [f"LLDBCrashed: {gave_up}"]))
        if self._host_alive():
            fresh = "A fresh Swift process has been started: earlier variables, functions and imports are gone."
        else:
            fresh = "Starting a fresh LLDB host failed; the next cell tries again."
        return _crash_outcome(how, while_running, fresh, ended_because)

    def _unusable(self) -> Outcome | None:
        """Return the error a request gets when no working host is there (replacing it if it can)."""
        if self._gave_up is not None:
            return self._host_crashed(None, while_running=False)
        with self._host_lock:
            idle_crash, self._idle_crash = self._idle_crash, None
            ended_because = None
            if idle_crash is not None:
                ended_because, self._ended_because = self._ended_because, None
        if idle_crash is not None:
            fresh = "A fresh Swift process was started at the crash: earlier variables, functions and imports are gone."
            return _crash_outcome(idle_crash, False, fresh, ended_because)
        if not self._host_alive():
            return self._host_crashed(self._host, while_running=False)
        return None

    def _host_alive(self) -> bool:
        return self._channel is not None and not self._channel.closed and self._host is not None

    def _request(self, request: Any, on_sent: Callable[[], None] | None = None) -> Outcome | Any:
        """Send a request to a working host and return its reply's value, or the crash Outcome."""
        unusable = self._unusable()
        if unusable is not None:
            return unusable
        assert self._channel is not None
        host = self._host
        try:
            reply = self._channel.request(request)
            if on_sent is not None:
                on_sent()
            return self._wait(reply)
        except HostDied:
            return self._host_crashed(host, while_running=True)

    def _wait(self, reply: Future[Any]) -> Any:
        """Return the reply's value once it comes; end the host if it or its debug server stays stopped."""
        stopped_since: float | None = None
        while True:
            try:
                return reply.result(_WATCH_SECONDS)
            except concurrent.futures.TimeoutError:
                pass
            stopped = self._stopped_part()
            now = time.monotonic()
            if stopped is None:
                stopped_since = None
            elif stopped_since is None:
                stopped_since = now
            elif now - stopped_since >= _STOPPED_SECONDS:
                self.end(f"{stopped} was stopped by a signal and did not answer for {_STOPPED_SECONDS:g} s")
                stopped_since = float("inf")  # once: the reply now fails with HostDied

    def _stopped_part(self) -> str | None:
        """Name the debugger-side process that is stopped by a signal (state T), if one is."""
        for name, pid in (("the LLDB host", self.host_pid), ("its debug server (lldb-server)", self._debug_server_pid)):
            if pid and process_state(pid) == "T":
                return name
        return None

    def end(self, because: str) -> None:
        """End a host that cannot be made to answer; the request waiting on it gets ``LLDBHostEnded``.

        Safe from any thread. ``because`` says why, as the start of a sentence. The Swift process
        and its debug server go with it; a fresh host starts as after a crash.
        """
        with self._host_lock:
            host = self._host
            if host is None or host.poll() is not None:
                return
            self._ended_because = because[:1].upper() + because[1:]
        log.warning("ending LLDB host %d: %s", host.pid, because)
        host.kill()
        for pid in (self._pid, self._debug_server_pid):
            send_signal(pid, signal.SIGKILL)

    def _request_for_error(self, request: Any) -> CellError | None:
        """Send a request whose reply is an error or None; a dead host's error is the crash's."""
        answer = self._request(request)
        if isinstance(answer, Outcome):
            return answer.error
        failure: CellError | None = answer
        return failure

    def reset(self) -> None:
        """Replace the host and its Swift process with fresh ones: all of LLDB's memory is freed.

        Installed packages and environment variables are given to the fresh host, as after a
        crash; raises SwiftProcessEnded when it cannot start.
        """
        with self._host_lock:
            host = self._host
            self._ready_host = None  # its end is no crash
            if host is not None and host.poll() is None:
                host.kill()
                host.wait()
            for pid in (self._pid, self._debug_server_pid):
                send_signal(pid, signal.SIGKILL)
            self._pid = self._debug_server_pid = 0
            self._idle_crash = self._ended_because = None
            self._start_host()

    def relaunch(self) -> None:
        """Start a fresh Swift process (a fresh host, if the host died)."""
        if self._gave_up is not None:
            raise SwiftProcessEnded(self._gave_up)
        host = self._host
        if self._host_alive():
            assert self._channel is not None
            try:
                self._channel.call(Relaunch())
            except HostDied:
                pass
            else:
                with self._host_lock:
                    self._idle_crash = None  # the state is gone anyway, and the caller says so
                return
        failed = self._host_crashed(host, while_running=False).error
        if not self._host_alive():
            raise SwiftProcessEnded(failed.evalue if failed is not None else "no LLDB host")

    def set_environment(self, name: str, value: str) -> CellError | None:
        """Set an environment variable inside the Swift process; kept for fresh hosts too."""
        failure = self._request_for_error(SetEnvironment(name, value))
        if failure is None:
            self.environment[name] = value
        return failure

    def load_installed(self, installed: Installed) -> CellError | None:
        """Load built packages into the Swift process; a fresh host loads them again."""
        failure = self._request_for_error(LoadInstalled(installed))
        if failure is None:
            self._installed = installed
        return failure

    def reopen_stdin(self, path: str) -> CellError | None:
        """Make the pipe at ``path`` the Swift process's standard input (and a fresh host's)."""
        self._streams = dataclasses.replace(self._streams, stdin=path)
        return self._request_for_error(ReopenStdin(path))

    def shutdown(self) -> None:
        """End the host and its Swift process; leave no process behind."""
        with self._host_lock:
            # After this no dead host is replaced; one being started now is ended below.
            self._shutting_down = True
            channel, host = self._channel, self._host
        # First thing: a kernel manager that loses patience kills this process before the end.
        shutil.rmtree(self._temp_dir, ignore_errors=True)
        if channel is not None and not channel.closed:
            try:
                channel.call(Shutdown(), timeout=_SHUTDOWN_SECONDS)
            except Exception:
                log.debug("host shutdown did not answer", exc_info=True)
        if host is not None:
            try:
                wait_for_exit(host, _SHUTDOWN_SECONDS)
            except subprocess.TimeoutExpired:
                host.kill()
                host.wait()
        for pid in (self._pid, self._debug_server_pid):
            send_signal(pid, signal.SIGKILL)
        shutil.rmtree(self._temp_dir, ignore_errors=True)

    # ----- cells and interrupts ---------------------------------------------------------------

    def execute(self, request: Execute, on_sent: Callable[[], None] | None = None) -> Outcome:
        """Evaluate one piece of a cell in the host; a crash of the host is the result.

        ``on_sent`` is called once the request has been sent, while the host works on it.
        """
        outcome: Outcome = self._request(request, on_sent)
        return outcome

    def evaluate(self, request: Evaluate) -> Outcome:
        """Evaluate a plain expression in the host (``user_expressions``); a crash of the host is the result."""
        outcome: Outcome = self._request(request)
        return outcome

    def globals(self) -> tuple[Global, ...]:
        """Return the globals the cells declared; raises SwiftProcessEnded when the host died meanwhile."""
        answer = self._request(Globals())
        if isinstance(answer, Outcome):
            raise SwiftProcessEnded(answer.error.evalue if answer.error is not None else "the LLDB host ended")
        found: tuple[Global, ...] = answer
        return found

    def mark(self, generation: int, source: str) -> None:
        """Make the host's evaluation of cell ``generation`` take note of an interrupt; wait ≤ 1 s."""
        channel = self._channel
        if channel is None:
            return
        try:
            channel.request(Mark(generation, source)).result(_MARK_SECONDS)
        except Exception:
            log.warning("the LLDB host did not take note of the interrupt", exc_info=True)

    def debug(self, command: str, arguments: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one debugger request and return the body of its answer; safe from any thread.

        Raises ``DebugError`` when the host fails it, is gone, or does not answer in ``timeout``
        seconds (the caller sends only what the host answers at once: it is idle, or the cell is
        stopped in the debugger).
        """
        channel = self._channel
        if channel is None or channel.closed:
            raise DebugError("the LLDB host is not running")
        try:
            body: dict[str, Any] = channel.request(Debug(command, arguments)).result(timeout)
        except concurrent.futures.TimeoutError as error:
            raise DebugError(f"the LLDB host did not answer {command} within {timeout:g} s") from error
        except (HostDied, SwiftProcessEnded) as error:
            raise DebugError(str(error)) from error
        if command == "disconnect":
            self._debug_setup.clear()
        elif command in ("attach", "setExceptionBreakpoints", "setBreakpoints"):
            self._debug_setup[set_up_key(command, arguments)] = (command, arguments)
        return body

    def async_interrupt(self) -> None:
        """Have LLDB stop the Swift process (``SendAsyncInterrupt``), from the host's reader thread."""
        channel = self._channel
        if channel is not None:
            try:
                channel.send(Call(0, AsyncInterrupt()))
            except HostDied:
                pass


# ----- the host side ----------------------------------------------------------------------------


# Put among the requests to wake a cell stopped in the debugger (an interrupt came).
_WAKE: Any = object()


class HostServer:
    """Serve one kernel: requests on the main thread (LLDB's), ``IMMEDIATE`` ones on the reader."""

    def __init__(self, channel: Channel, init: Init) -> None:
        self.channel = channel
        self.session = LLDBSession(
            find_toolchain(init.toolchain),
            init.streams,
            init.environment,
            stop_flag=init.stop_flag,
            on_launch=lambda pid, debug_server: self._notify(Launched(pid, debug_server)),
            on_stderr=lambda text: self._notify(Emit("stderr", text)),
            debug_requests=self._next_debug_call,
            on_debug_event=lambda event, body: self._notify(DebugEvent(event, body)),
        )
        self._installed = init.installed
        self.calls: queue.Queue[Call] = queue.Queue()
        self._marks_lock = threading.Lock()
        # The kernel cell being evaluated, and interrupts of kernel cells this host has heard of.
        self._generation: int | None = None
        self._marks: dict[int, Mark] = {}
        self._handlers: dict[type, Callable[[Any], Any]] = {
            Init: self._start,
            Execute: self._execute,
            Relaunch: lambda request: self.session.relaunch(),
            SetEnvironment: lambda request: self.session.set_environment(request.name, request.value),
            LoadInstalled: lambda request: self.session.load_installed(request.installed),
            ReopenStdin: lambda request: self.session.reopen_stdin(request.path),
            Globals: lambda request: self.session.cell_globals(),
            Evaluate: self._evaluate,
            Debug: lambda request: self.session.debug_command(request.command, request.arguments),
            Shutdown: lambda request: self.session.end_before_exit(),
        }

    def _notify(self, event: Launched | Emit | DebugEvent) -> None:
        try:
            self.channel.send(Notice(event))
        except HostDied:
            log.debug("event %r not sent: the kernel is gone", event)

    def read(self) -> None:
        """Take the kernel's messages until it goes away, then end the Swift process and exit."""
        while True:
            try:
                message = self.channel.recv()
            except (EOFError, OSError):
                break
            except ProtocolError:
                log.exception("the kernel sent something this host does not understand")
                continue
            if not isinstance(message, Call):
                continue
            request = message.request
            if isinstance(request, Mark):
                self.channel.reply(message.id, self._mark(request))
            elif isinstance(request, AsyncInterrupt):
                try:
                    self.session.send_async_interrupt()
                except Exception:
                    log.debug("async interrupt failed", exc_info=True)
            elif isinstance(request, Debug) and request.command == "pause":
                # Pausing a running cell cannot wait for the main thread, which runs it.
                self.channel.reply(message.id, self.session.pause())
            else:
                self.calls.put(message)
        # The kernel is gone (or closed the connection): nobody is left to use the Swift process.
        self.session.kill_now()
        owner = os.environ.get(OWNER_VARIABLE, "")
        if owner and not owner_alive(owner):
            # Killed: it could not end what it started (sourcekit-lsp, %system commands, what
            # the Swift process started); this host can.
            end_owned_processes(owner)
        _remove_own_temp_dir()
        os._exit(0)

    def serve(self, first: Call) -> None:
        """Answer ``first`` (the Init), then the kernel's requests one at a time until Shutdown."""
        call = first
        while True:
            if call is _WAKE:
                call = self.calls.get()
                continue
            try:
                value = self._handlers[type(call.request)](call.request)
            except DebugError as error:
                self.channel.reply(call.id, None, str(error))
            except Exception as error:
                log.warning("%s failed", type(call.request).__name__, exc_info=True)
                self.channel.reply(call.id, None, str(error) or type(error).__name__)
            else:
                self.channel.reply(call.id, value)
            if isinstance(call.request, Shutdown):
                return
            call = self.calls.get()

    def _start(self, init: Init) -> None:
        self.session.start()
        if self._installed is not None:
            failure = self.session.load_installed(self._installed)
            if failure is not None:
                log.warning("installed packages not loaded into the fresh host: %s", failure.evalue)

    def _mark(self, mark: Mark) -> bool:
        log.debug("interrupt of cell %d from %s", mark.generation, mark.source)
        with self._marks_lock:
            self._marks.setdefault(mark.generation, mark)
            if self._generation == mark.generation:
                self.session.interrupted.set()
                self.calls.put(_WAKE)  # a cell stopped in the debugger waits for requests
                return True
        return False

    def _next_debug_call(self) -> DebugCall | None:
        """Wait for the next debug request while a cell is stopped (None: woken by an interrupt)."""
        while True:
            call = self.calls.get()
            if call is _WAKE:
                return None
            request = call.request
            if isinstance(request, Debug):

                def answer(body: dict[str, Any] | None, error: str | None, call_id: int = call.id) -> None:
                    self.channel.reply(call_id, body, error)

                return request, answer
            # The kernel sends nothing else while a cell runs.
            self.channel.reply(call.id, None, f"{type(request).__name__} while a cell is stopped in the debugger")

    def _execute(self, request: Execute) -> Outcome:
        return self._run_marked(
            request.generation,
            lambda: self.session.execute(
                request.code, request.cell_name, request.safe_points, request.tables, request.source_path
            ),
        )

    def _evaluate(self, request: Evaluate) -> Outcome:
        code, name = request.code, request.name
        return self._run_marked(request.generation, lambda: self.session.evaluate_expression(code, name))

    def _run_marked(self, generation: int, run: Callable[[], Outcome]) -> Outcome:
        """Run Swift code of the kernel's cell ``generation``, which the kernel's interrupts of that cell stop."""
        with self._marks_lock:
            self._generation = generation
            self._marks = {g: m for g, m in self._marks.items() if g >= generation}
            mark = self._marks.get(generation)
            if mark is None:
                self.session.interrupted.clear()
            else:
                self.session.interrupted.set()
        # A cell may have closed, replaced or buffered the Swift process's standard streams or the
        # result channel: put back before it runs and once its code is done, before its output is
        # drained, so that none of its output moves to a later cell.
        self.session.keep_streams()
        try:
            outcome = run()
        finally:
            with self._marks_lock:
                self._generation = None
                mark = self._marks.get(generation)
                self.session.interrupted.clear()
        self.session.keep_streams()
        if mark is not None:
            # The kernel sent the signals, so only it knows the rung and the latency.
            log.info("the cell ended by the kernel's interrupt from %s (the kernel logs how it stopped)", mark.source)
        return outcome


def _import_lldb_early() -> None:
    """Import LLDB's Python module (0.07 s) while the kernel is still making its first request.

    ``python -m swift_kernel`` spawns this process before it binds its sockets and imports its own
    modules, so the Init request comes later than this process could take it. The toolchain is
    the kernel's, ``$SWIFT_KERNEL_TOOLCHAIN`` (its kernelspec, or the kernel's loader-path set-up
    sets it); without it, LLDB is imported when Init names the toolchain, as before.
    """
    root = os.environ.get("SWIFT_KERNEL_TOOLCHAIN")
    if not root:
        return
    try:
        import_lldb(find_toolchain(root))
    except Exception:  # LLDBSession.load reports it, with the Init's toolchain
        log.debug("LLDB not imported before Init", exc_info=True)
        return
    log.debug("start-up: LLDB imported before Init")


def main() -> None:
    """Serve the kernel on the connection whose file descriptor is the only argument."""
    # First, before LLDB starts threads: SIGINT is for the kernel to handle, never for this process.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    # Not for lldb-server or anything else this process starts: a child holding the connection
    # would keep the kernel from seeing this host end.
    os.set_inheritable(int(sys.argv[1]), False)
    channel = Channel(Connection(int(sys.argv[1])))
    log_file = os.environ.get("SWIFT_KERNEL_LOG")
    if log_file:
        logging.basicConfig(
            filename=log_file,
            level=logging.DEBUG,
            format=f"%(asctime)s host-{os.getpid()} %(threadName)s %(name)s %(levelname)s %(message)s",
        )
    _import_lldb_early()
    first = channel.recv()
    log.debug("start-up: the LLDB host has its first request")
    if not isinstance(first, Call) or not isinstance(first.request, Init):
        raise ProtocolError(f"the first message must be an Init request, not {first!r:.200}")
    if first.request.version != PROTOCOL_VERSION:
        channel.reply(
            first.id,
            None,
            f"the LLDB host speaks protocol version {PROTOCOL_VERSION}, the kernel {first.request.version}: "
            "reinstall swift_kernel so that both come from the same version",
        )
        sys.exit(2)
    server = HostServer(channel, first.request)
    # LLDB's Python support must be set up on the main thread (see LLDBSession.load).
    server.session.load()
    log.debug("start-up: LLDB loaded")
    threading.Thread(target=server.read, name="swift-host-reader", daemon=True).start()
    server.serve(first)
    _remove_own_temp_dir()
    os._exit(0)


if __name__ == "__main__":
    main()
