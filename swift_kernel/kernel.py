"""The Jupyter side of the Swift kernel: protocol only.

Requests become calls on the cell controller (``cells.CellController``), and its results become
messages; the only module built on ipykernel (its application too: ``SwiftKernelApp``, which ``__main__``
launches, takes over the sockets ``startup`` answered kernel_info on). Dependency direction: ``kernel`` →
``cells`` → ``host`` (transport) → ``lldb_session`` → ``lldb``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fnmatch
import inspect
import logging
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

from ipykernel import iostream
from ipykernel.compiler import murmur2_x86
from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel
from traitlets import Bool, DottedObjectName, Float, Integer, TraitError, validate

from . import __version__, dap, kernelinfo
from .cells import Cell, EarlyStart, ExecutionResult, InputCallback, Phase, Sent, SwiftProcessEnded
from .cellwarnings import CellWarnings, DelayedAsk, declares
from .completeness import check_completeness
from .dap import DebugError
from .diagnostics import CellError
from .directives import (
    MAX_TIMEOUT_SECONDS,
    Directive,
    DirectiveError,
    Include,
    InstallFlags,
    InstallIncludeCommand,
    InstallLocation,
    InstallMirror,
    InstallPackage,
    ListGlobals,
    ListInstalled,
    ListNames,
    ResetSession,
    RunSystem,
    SetDisplay,
    SetEnv,
    SetTimeout,
    ShowHelp,
    exit_request,
    help_text,
    parse_cell,
)
from .display import DisplayError, display_message, progress_bundle, result_bundle, variables_bundle
from .imports import ModuleChecker, imported_modules, missing_import_error
from .install import (
    BuildCache,
    BuildCompleteFilter,
    BuildProgress,
    InstallError,
    PackageWorkspace,
    default_cache_dir,
    lsp_arguments,
    network_error,
    unreachable_urls,
)
from .lazylsp import LazySourceKitLSP
from .messages import DebugEvent, Global
from .output import Clear, Display, OutputCallback, OutputEvent, Text
from .procfs import OWNER_VARIABLE, children, describe_exit, end_owned_processes, remove_stale_temp_dirs
from .sources import SourceError, check_source, expand_user, read_source_file
from .startup import EarlyKernelInfo, Held
from .toolchain import find_toolchain

log = logging.getLogger(__name__)

# Shown for `exit` or `quit` where the frontend keeps the session (a notebook, JupyterLab's console).
_EXIT_EXPLAINED = (
    "{typed}: this frontend keeps the kernel running (only jupyter console ends its session on exit or quit).\n"
    "Kernel > Shut Down Kernel stops it; Kernel > Restart Kernel starts over.\n"
    "Swift's exit(0) ends just the Swift process: a fresh one starts, without the earlier variables.\n"
)


_INSTALL_PREFIX = "swift-kernel-install-"
# The seed of the hash a cell's file is named by (JupyterLab computes the same name from debugInfo).
_CELL_HASH_SEED = 0xC70F6907
MIB = 1 << 20


class OutStream(iostream.OutStream):
    """ipykernel's sys.stdout and sys.stderr, whose flush returns at once when nothing waits to be sent.

    ipykernel flushes both before every execute reply, and each flush is a round trip to its IOPub
    thread even when there is nothing to send (about 0.5 ms of every cell here); this kernel's
    own output never goes through them. ``SwiftKernelApp`` makes ipykernel use this class.
    """

    def flush(self) -> None:
        try:
            with self._buffer_lock:
                waiting = any(buffer.tell() for buffer in self._buffers.values())
            pending = waiting or self._flush_pending or self._subprocess_flush_pending or self.echo is not None
        except AttributeError:  # another ipykernel's insides: flush as it does
            pending = True
        if pending:
            super().flush()


def _error_content(error: CellError) -> dict[str, Any]:
    """Return the ename, evalue and traceback fields of an error reply or message."""
    traceback = error.traceback or [f"{error.ename}: {error.evalue}"]
    return {"ename": error.ename, "evalue": error.evalue, "traceback": traceback}


def _kernel_error(what: str, error: Exception) -> CellError:
    """Return the error that answers a request the kernel failed to carry out (a bug, or input it did not foresee)."""
    return CellError("KernelError", f"{what} failed inside the kernel: {type(error).__name__}: {error}")


def _sent(message: dict[str, Any]) -> Sent | None:
    """Return who sent ``message`` and when (its header; jupyter_client parses the date)."""
    header = message.get("header", {})
    date, session = header.get("date"), header.get("session")
    if isinstance(date, datetime) and date.tzinfo is not None and isinstance(session, str):
        return Sent(session, date)
    return None


# How long a debug request waits for the LLDB thread: control requests are handled one at a time,
# and an interrupt_request must not wait behind a listing of variables.
_INSPECT_SECONDS = 5.0
_BUSY = "a cell is running: variables can be inspected when it is done"


def _expression_result(result: ExecutionResult) -> dict[str, Any]:
    """Return one ``user_expressions`` entry: the value's MIME bundle, or the error."""
    if result.error is not None:
        return {"status": "error", **_error_content(result.error)}
    # A Void expression (an assignment, a call) has the value Swift prints for Void.
    data, _ = result_bundle(result.value if result.value is not None else "()", result.data)
    return {"status": "ok", "data": data, "metadata": {}}


_TYPE_WORDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "an object",
    type(None): "null",
}

# What the content of each request must hold for ipykernel's handler to read it: field ->
# (accepted types, required). A handler that cannot read its request sends no reply at all (the
# frontend waits for ever), and a `code` that is not a string would reach the cell's history.
_INTEGER = (int,)
_OPTIONAL_INTEGER = (int, type(None))
_REQUEST_FIELDS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "execute_request": {"code": ((str,), True), "user_expressions": ((dict, type(None)), False)},
    "complete_request": {"code": ((str,), True), "cursor_pos": (_INTEGER, True)},
    "inspect_request": {"code": ((str,), True), "cursor_pos": (_INTEGER, True), "detail_level": (_INTEGER, False)},
    "is_complete_request": {"code": ((str,), True)},
    "shutdown_request": {"restart": ((bool,), True)},
    "history_request": {
        "hist_access_type": ((str,), True),
        "output": ((bool,), True),
        "raw": ((bool,), True),
        "pattern": ((str, type(None)), False),
        "n": (_OPTIONAL_INTEGER, False),
        "start": (_OPTIONAL_INTEGER, False),
        "stop": (_OPTIONAL_INTEGER, False),
        "session": (_OPTIONAL_INTEGER, False),
    },
}


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def malformed_request(msg_type: str, message: dict[str, Any]) -> str | None:
    """Say what is wrong with a request this kernel cannot read, or None if it can."""
    content, metadata = message.get("content"), message.get("metadata", {})
    if not isinstance(content, dict):
        return f"{msg_type}: its content must be an object, not {_type_name(content)}"
    if not isinstance(metadata, dict):
        return f"{msg_type}: its metadata must be an object, not {_type_name(metadata)}"
    for name, (types, required) in _REQUEST_FIELDS.get(msg_type, {}).items():
        if name not in content:
            if required:
                return f"{msg_type}: the field {name!r} is missing"
            continue
        value = content[name]
        # JSON's true and false are Python bools, which are ints too: not a number here.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join(_TYPE_WORDS[t] for t in types)
            return f"{msg_type}: the field {name!r} must be {wanted}, not {_type_name(value)}"
    return None


class SwiftKernel(Kernel):
    """Run Swift cells in a persistent REPL process through LLDB."""

    implementation = kernelinfo.IMPLEMENTATION
    implementation_version = __version__
    language = "swift"

    cell_timeout = Float(
        0.0,
        config=True,
        help="Seconds a cell may run before it is interrupted like a user interrupt (0: no limit). "
        "%timeout in a cell overrides it for the cells that follow.",
    )
    max_cell_lines = Integer(
        4000,
        config=True,
        help="Most lines of code (not blank, not comments) a cell may send to the compiler: it takes "
        "superlinear time in the number of top-level statements (1,000 lines: 3 s; 10,000: minutes).",
    )
    show_warnings = Bool(
        True,
        config=True,
        help="Show the compiler's warnings for cells that compile, on stderr. LLDB drops them; they come "
        "from sourcekit-lsp, asked while the cell runs or after its reply (see warnings_delay and warnings_wait).",
    )
    warnings_delay = Float(
        0.05,
        config=True,
        help="Seconds a cell runs, counted from when its code has gone to the LLDB host, before sourcekit-lsp "
        "is asked for its warnings while it runs. A cell done sooner (a quick one) is checked once its reply "
        "is out, while it stays busy for them (warnings_wait): asked beside LLDB's compile, the check took "
        "the CPU LLDB's debug server and the Swift process need, and a trivial cell's reply came 0.7 ms later "
        "(README: Warnings). A longer cell (a large compile, a loop) is checked while it runs, so that its "
        "warnings come before its end. At 0, every cell is checked as soon as its code has gone to LLDB.",
    )
    warnings_wait = Float(
        0.05,
        config=True,
        help="Seconds at most a cell stays busy after its reply, for warnings sourcekit-lsp has not sent "
        "yet: they go to the cell's stderr before its idle status, which is when frontends stop listening "
        "to it. The reply itself never waits for warnings. Warnings that come later still go out.",
    )
    warnings_start_wait = Float(
        0.0,
        config=True,
        help="Seconds at most the first cell that replies while sourcekit-lsp is still starting (in the first "
        "second or so after the kernel's start) stays busy for its warnings, instead of warnings_wait; the "
        "cells after it wait as usual. Run at once after a start (Restart Kernel and Run All Cells), the first "
        "few quick cells get their warnings after their idle status, where JupyterLab does not show them: 2 "
        "shows them, and the first cell then ends about 0.4 s later (README: Warnings). 0: as warnings_wait.",
    )
    # ipykernel sleeps 0.5 ms before every execute reply, for Python prints still on their way; this
    # kernel's output is published before its reply is sent (issue 18: the trivial cell's round trip).
    _execute_sleep = Float(0.0)
    safe_points = Bool(
        True,
        config=True,
        help="Put a safe point at the start of every loop body in cells: an interrupt "
        "stops running code there, where no mutation is half done, so every variable stays whole. Costs "
        "one load and compare per loop iteration.",
    )
    start_code_intelligence = Bool(
        True,
        config=True,
        help="Start sourcekit-lsp in the background when the kernel starts, so that the first Tab is "
        "answered; False starts it on the first completion or inspection request instead.",
    )
    max_include_bytes = Integer(
        8 << 20,
        config=True,
        help="Largest file %include reads, in bytes: it is read whole into the kernel's memory.",
    )
    compile_grace = Float(
        10.0,
        config=True,
        help="Seconds the compilation of an interrupted cell may go on before the LLDB host running it "
        "is ended to stop it (a fresh Swift process is started: earlier variables are lost).",
    )
    host_memory_warning = Integer(
        4096,
        config=True,
        help="MiB of LLDB host memory past which a cell's output says so, once, and how to free it "
        "(%reset); 0 for never. LLDB keeps the code of every cell it compiled.",
    )
    interrupt_grace = Float(
        5.0,
        config=True,
        help="Seconds an interrupted cell gets to stop before its Swift process is killed and restarted.",
    )

    @validate("cell_timeout")
    def _check_cell_timeout(self, proposal: dict[str, Any]) -> float:
        """Refuse a time limit past %timeout's longest: the timer would silently keep none."""
        seconds = float(proposal["value"])
        if not 0 <= seconds <= MAX_TIMEOUT_SECONDS:
            raise TraitError(f"cell_timeout takes 0 (no limit) to {MAX_TIMEOUT_SECONDS:,} s (30 days), not {seconds:g}")
        return seconds

    @validate("_control_lock")
    def _keep_control_lock(self, proposal: dict[str, Any]) -> asyncio.Lock:
        """Keep the first control lock: start() makes another, and held requests (start) wait on the first."""
        current: asyncio.Lock | None = self._trait_values.get("_control_lock")
        return current if current is not None else proposal["value"]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # ipykernel creates the lock of its control channel only in start(), after the control
        # thread begins taking messages: an interrupt_request that came during start-up then
        # failed on None ("Exception in control handler") and got no reply.
        self._control_lock = asyncio.Lock()
        # Every request gets a reply: see _answering.
        for handlers in (self.shell_handlers, self.control_handlers):
            for msg_type, handler in list(handlers.items()):
                handlers[msg_type] = self._answering(msg_type, handler)
        # ipykernel sets SIGINT to "ignore", which children inherit across exec (a %system
        # command could not be interrupted). SIGINT stays blocked here, taken by the sigwait
        # thread, so the default action never runs in the kernel itself.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        self.toolchain = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
        self.swift_version = kernelinfo.swift_version(self.toolchain)
        self.language_info = kernelinfo.language_info(self.swift_version)
        self.banner = kernelinfo.banner(self.swift_version)
        # Requests read before ipykernel was up (startup), handed to its dispatchers by start().
        self._held_requests: list[Held] = []
        self._said_starting = False
        self._time_limit: float | None = self.cell_timeout or None
        # The generated SwiftPM package that %install adds to; lives as long as the kernel.
        # Named after this kernel's pid: a later kernel removes it should this one be killed.
        remove_stale_temp_dirs(_INSTALL_PREFIX)
        self._install_dir = tempfile.TemporaryDirectory(prefix=f"{_INSTALL_PREFIX}{os.getpid()}-")
        # input_request waits of the running cell (on the event loop); cancelled when it ends.
        self._input_tasks: set[asyncio.Task[str | None]] = set()
        self.packages = PackageWorkspace(Path(self._install_dir.name), library_dir=Path(self._install_dir.name))
        # The generated package and its build live in a cache folder that the next kernel reuses.
        self.build_cache = BuildCache(default_cache_dir(dict(os.environ)), self.swift_version)
        self.modules = ModuleChecker(self.toolchain.swiftc)
        # Every cell's source, for history requests.
        self.history: list[str] = []
        # Environment for %system and builds; %env adds to it (and to the Swift process).
        self.environment: dict[str, str] = dict(os.environ)
        # Swift source of every cell that ran without error, in order (code intelligence reads it).
        self.successful_cells = CellHistory()
        # What a cell does once its reply is out, before its idle status (see _answering).
        self._after_reply: list[Callable[[], Awaitable[None] | None]] = []
        # Set by SwiftKernelApp: a cell's busy status and execute_input go out while LLDB compiles.
        self.iopub_wakes: IOPubWakes | None = None
        # Whether a cell has waited for its warnings while sourcekit-lsp was starting (once a kernel).
        self._start_wait_taken = False
        self._cells_launch = 1
        # Whether the output said that LLDB passed host_memory_warning (again after a %reset).
        self._host_memory_warned = False
        # Completion, Shift-Tab and the warnings pass. Imported and made in the background once the
        # kernel has started (start()), its sourcekit-lsp started then (its own thread and
        # process), so that neither the start nor the first Tab waits for it.
        self.code_intelligence = LazySourceKitLSP(
            self.toolchain.sourcekit_lsp, start=self.start_code_intelligence, log=self.log
        )
        # Every LLDB call happens on this one thread; the control thread only signals.
        early = EarlyStart.take()
        if early is None or early.toolchain != self.toolchain:
            early = EarlyStart.begin(self.toolchain)
        self.cells, self._lldb_thread, self._started = early.controller, early.thread, early.started
        self.cells.interrupt_grace = self.interrupt_grace
        self.cells.compile_grace = self.compile_grace
        self.cells.safe_points = self.safe_points
        # JupyterLab's debugger: it names each cell's file from the cell's code (debugInfo's hash
        # and prefix), which the cell is compiled as; its events go to the client of its last request.
        cell_files = Path(self._install_dir.name, "cells")
        cell_files.mkdir()
        # debugInfo's tmpFilePrefix: a cell's file is this, its code's hash and ".swift".
        self._cell_file_prefix = f"{cell_files}{os.sep}"
        self._debugger_started = False
        self._debug_parent: dict[str, Any] | None = None
        self._debug_seq = 0
        self._breakpoints: dict[str, list[dict[str, Any]]] = {}
        self._stopped_threads: set[int] = set()
        self.cells.on_debug_event = self._send_debug_event

    # ipykernel installs Python's SIGINT handler around each request; SIGINT is blocked in every
    # thread here and handled by the sigwait thread, so the hooks do nothing.
    def pre_handler_hook(self) -> None:
        """Leave SIGINT alone: the sigwait thread owns it."""

    def post_handler_hook(self) -> None:
        """Leave SIGINT alone: the sigwait thread owns it."""

    @property
    def kernel_info(self) -> dict[str, Any]:
        # Not ipykernel's, which imports debugpy (it edits sys.path while the LLDB thread may be
        # importing) and announces subshells; the same content the early replies had (startup).
        return kernelinfo.kernel_info(self.swift_version)

    def take_early_requests(self, ident: str, held: list[Held]) -> None:
        """Continue from the early replies (``SwiftKernelApp``): their iopub ident, and the requests they held."""
        self.ident = ident
        self._held_requests = held
        self._said_starting = True

    def start(self) -> None:
        """Start taking requests: first those held before ipykernel was up, in order, then the sockets'."""
        # Scheduled before the streams' handlers exist, on the loops those handlers run on and
        # through the same entry points, so each is handled as if ipykernel had read it, ahead
        # of anything still waiting in the sockets (the loops run callbacks in order).
        for held in self._held_requests:
            assert self.control_stream is not None and self.shell_stream is not None
            if held.channel == "control":
                self.control_stream.io_loop.add_callback(self.dispatch_control, held.frames)
            else:
                # The main thread reads the shell socket (SwiftKernelApp.init_control).
                self.shell_stream.io_loop.add_callback(self.shell_main, None, held.frames)
        self._held_requests = []
        super().start()
        log.debug("start-up: kernel ready (ipykernel reads the sockets)")
        # Now, so that sourcekit-lsp is warm for the first Tab (begun once the Swift process was up,
        # it missed the first completion's deadline: tests/test_conformance.py).
        self.code_intelligence.begin()

    def _publish_status(self, status: str, channel: str, parent: dict[str, Any] | None = None) -> None:
        """Publish a status; a shell request's busy status waits for ``_wake_iopub`` (``IOPubWakes``)."""
        # "starting" went out when the sockets were bound (startup); saying it again after the
        # early replies' idle would leave frontends showing a starting kernel until the next request.
        if status == "starting" and self._said_starting:
            return
        with self._iopub_deferred() if (status, channel) == ("busy", "shell") else contextlib.nullcontext():
            super()._publish_status(status, channel, parent)

    # ----- messages ---------------------------------------------------------------------------

    def _publish(self, msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None) -> None:
        """Send one iopub message for ``parent``; safe from any thread (the iopub socket is threaded)."""
        if self.session is None:
            return
        self.session.send(self.iopub_socket, msg_type, content, parent=parent, ident=self._topic(msg_type))

    def _publish_execute_input(self, code: str, parent: dict[str, Any], execution_count: int) -> None:
        """Publish the cell's code; it waits for ``_wake_iopub`` like the busy status before it."""
        with self._iopub_deferred():
            super()._publish_execute_input(code, parent, execution_count)

    def _iopub_deferred(self) -> contextlib.AbstractContextManager[None]:
        """Queue what is published in the block until ``_wake_iopub`` (``IOPubWakes``), if the app set that up."""
        return self.iopub_wakes.deferred() if self.iopub_wakes is not None else contextlib.nullcontext()

    def _wake_iopub(self) -> None:
        """Send the busy status and execute_input held back (``IOPubWakes``); safe from any thread."""
        if self.iopub_wakes is not None:
            self.iopub_wakes.wake()

    def _discard_output(self, name: str, event: OutputEvent) -> None:
        self.log.debug("output outside a cell on %s: %r", name, event)

    def _output_to(self, parent: dict[str, Any], silent: bool) -> Any:
        def send(name: str, event: OutputEvent) -> None:
            if silent:
                return
            if isinstance(event, Text):
                self._publish("stream", {"name": name, "text": event.text}, parent)
            elif isinstance(event, Clear):
                self._publish("clear_output", {"wait": False}, parent)
            elif isinstance(event, Display):
                try:
                    msg_type, content = display_message(event)
                except DisplayError as error:
                    self._publish("stream", {"name": "stderr", "text": f"Jupyter.display: {error}\n"}, parent)
                else:
                    self._publish(msg_type, content, parent)

        return send

    def _error_reply(self, error: CellError, parent: dict[str, Any], silent: bool) -> dict[str, Any]:
        content = _error_content(error)
        if not silent:
            self._publish("error", content, parent)
        return {"status": "error", "execution_count": self.execution_count, **content}

    def _ok_reply(self, payload: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {
            "status": "ok",
            "execution_count": self.execution_count,
            "payload": payload or [],
            "user_expressions": {},
        }

    def _exit_reply(self, typed: str, parent: dict[str, Any], silent: bool, console: bool) -> dict[str, Any]:
        """Ask the frontend to end the session, as IPython's ``exit`` does: an ``ask_exit`` payload.

        jupyter console ends its session on it and shuts the kernel down; JupyterLab (4.6) has no
        handler for the payload and ignores it, as nbclient does. ``console`` says the request looks
        like a terminal console's (it allows stdin and names no notebook cell): any other frontend
        is also told, in the output, what ends a kernel there.
        """
        if not console and not silent:
            self._publish("stream", {"name": "stdout", "text": _EXIT_EXPLAINED.format(typed=typed)}, parent)
        return self._ok_reply([{"source": "ask_exit", "keepkernel": False}])

    def _answering(self, msg_type: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ipykernel's handler of ``msg_type`` (shell or control) so that the request gets a reply.

        ipykernel reads a request's fields without checking them: a missing ``code`` is logged
        ("Got bad msg") and an exception in a handler is logged, and either way no reply is sent,
        so the frontend waits for ever. A request this kernel cannot read is refused with an error
        reply that names the field; an exception a handler lets escape becomes one too.
        """

        async def answer(stream: Any, ident: Any, parent: dict[str, Any]) -> None:
            if msg_type != "execute_request":
                self._wake_iopub()  # its busy status: nothing to overlap it with
            problem = malformed_request(msg_type, parent)
            if problem is not None:
                self._refuse_request(stream, ident, parent, msg_type, CellError("BadRequest", problem))
                return
            try:
                result = handler(stream, ident, parent)
                if inspect.isawaitable(result):
                    await result
            except Exception as error:
                self.log.exception("%s failed", msg_type)
                self._refuse_request(stream, ident, parent, msg_type, _kernel_error(msg_type, error))
            finally:
                self._wake_iopub()  # should the cell have ended before its code went to LLDB
                # Replied: what the cell left for after its reply (its warnings, the host's memory
                # note) is done before its idle status, off the reply's path.
                work: list[Callable[[], Awaitable[None] | None]] = []
                if msg_type == "execute_request":  # not a control request answered meanwhile
                    log.debug("execute_request answered")
                    work, self._after_reply = self._after_reply, []
                for step in work:
                    done = step()
                    if done is not None:
                        await done

        return answer

    def _warnings_wait_now(self) -> float:
        """Return how long a cell that has replied waits for its warnings (``warnings_start_wait``, above)."""
        if not self._start_wait_taken and self.code_intelligence.warming_up:
            self._start_wait_taken = True
            return max(self.warnings_wait, self.warnings_start_wait)
        return self.warnings_wait

    def _refuse_request(self, stream: Any, ident: Any, parent: dict[str, Any], msg_type: str, error: CellError) -> None:
        """Send the error reply to a request that could not be carried out (see _answering)."""
        if self.session is None:
            return
        if msg_type == "execute_request":
            # Published on iopub too: a frontend shows an execute request's error from there.
            content = self._error_reply(error, parent, silent=False)
        else:
            content = {"status": "error", **_error_content(error)}
        reply_type = msg_type.removesuffix("_request") + "_reply"
        self.session.send(stream, reply_type, content, parent, ident=ident)

    # ----- hooks ------------------------------------------------------------------------------

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        *,
        cell_meta: dict[str, Any] | None = None,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        """Run one cell, then, if it ran without error, evaluate its ``user_expressions`` (as ipykernel does)."""
        reply = await self._execute_cell(code, silent, store_history, allow_stdin, cell_id)
        if reply["status"] == "ok" and user_expressions:
            reply["user_expressions"] = await self._user_expressions(user_expressions)
        return reply

    async def _user_expressions(self, expressions: dict[str, Any]) -> dict[str, Any]:
        """Evaluate each Swift expression outside the REPL: no output, nothing declared, no new ``In[]`` number.

        They run as a cell of their own for the controller, so that an interrupt or the time limit
        stops them as it stops a cell.
        """
        parent = self.get_parent("shell")
        cell = self.cells.expect_cell(self._time_limit, _sent(parent))
        self.cells.set_output_callback(self._discard_output)
        results: dict[str, Any] = {}
        try:
            for key, code in expressions.items():
                if not isinstance(code, str):
                    error = CellError("TypeError", f"a user expression must be a string, not {type(code).__name__}")
                    results[key] = {"status": "error", **_error_content(error)}
                    continue
                try:
                    result: ExecutionResult = await self._on_lldb_thread(
                        self.cells.evaluate, code, f"<expression {key}>", cell
                    )
                except SwiftProcessEnded as ended:
                    result = ExecutionResult(error=CellError("SwiftProcessEnded", str(ended)))
                results[key] = _expression_result(result)
        finally:
            self.cells.end_cell(cell)
        return results

    async def _execute_cell(
        self, code: str, silent: bool, store_history: bool, allow_stdin: bool, cell_id: str | None
    ) -> dict[str, Any]:
        """Run one cell: directives first, in order, then its Swift code in the REPL process."""
        parent = self.get_parent("shell")
        if store_history:
            self.history.append(code)
        try:
            # Compilation runs inside the LLDB host, where no interrupt can stop it: hence the limit.
            check_source(code, "the cell", self.max_cell_lines)
            directives, swift_code = parse_cell(code)
        except (SourceError, DirectiveError) as error:
            ename = error.ename if isinstance(error, SourceError) else "DirectiveError"
            return self._error_reply(CellError(ename, str(error)), parent, silent)
        typed = None if directives else exit_request(swift_code, self.successful_cells)
        if typed is not None:
            # JupyterLab and Notebook 7 name the cell of every request (metadata cellId); jupyter
            # console names none.
            return self._exit_reply(typed, parent, silent, console=allow_stdin and cell_id is None)
        for directive in directives:
            if isinstance(directive, SetTimeout):
                self._time_limit = directive.seconds
        # From here on an interrupt (or the time limit) applies to this cell, whatever it is doing.
        cell = self.cells.expect_cell(self._time_limit, _sent(parent))
        output = self._output_to(parent, silent)
        self.cells.set_output_callback(output)
        self.cells.set_input_callback(self._input_callback(parent, allow_stdin))
        if directives:
            self._wake_iopub()  # a directive may take long: the frontend sees the cell busy meanwhile
        try:
            for directive in directives:
                failure = await self._run_directive_answering(directive, cell, output, parent, silent)
                if failure is not None:
                    return self._error_reply(failure, parent, silent)
            # An interrupt during a directive that cannot be stopped midway (loading a package,
            # restarting the Swift process) still ends the cell, as soon as the directive is done.
            interrupted = self.cells.interrupted_result(cell)
            if interrupted is not None and interrupted.error is not None:
                return self._error_reply(interrupted.error, parent, silent)
            if not swift_code.strip():
                return self._ok_reply()
            no_such_module = await self._check_imports(swift_code, f"<Cell {self.execution_count}>")
            if no_such_module is not None:
                return self._error_reply(no_such_module, parent, silent)
            result = await self._run_swift(swift_code, cell, output, code)
        except SwiftProcessEnded as error:
            return self._error_reply(CellError("SwiftProcessEnded", str(error)), parent, silent)
        finally:
            self.cells.end_cell(cell)
            if self._stopped_threads:
                # Ended while stopped in the debugger (an interrupt): the frontend must not wait on.
                for thread in list(self._stopped_threads):
                    self._send_debug_event(DebugEvent("continued", {"threadId": thread, "allThreadsContinued": True}))
            self.cells.set_output_callback(self._discard_output)
            self.cells.set_input_callback(None)
            await self._cancel_input_requests()
        if self.cells.launches != self._cells_launch:
            # A fresh Swift process knows none of the earlier cells: completion must not either.
            self.successful_cells.clear()
            self._cells_launch = self.cells.launches
        self._after_reply.append(lambda: self._warn_about_host_memory(parent, silent))
        if result.error is not None:
            return self._error_reply(result.error, parent, silent)
        self.successful_cells.append(swift_code)
        if result.value is not None and not silent:
            data, bad = result_bundle(result.value, result.data)
            if bad is not None:
                self._publish("stream", {"name": "stderr", "text": f"JupyterDisplayable: {bad}\n"}, parent)
            self._publish(
                "execute_result", {"execution_count": self.execution_count, "data": data, "metadata": {}}, parent
            )
        return self._ok_reply()

    async def _run_swift(self, code: str, cell: Cell, output: OutputCallback, source: str) -> ExecutionResult:
        """Run the cell's Swift code in LLDB, with its warnings asked from sourcekit-lsp alongside.

        ``source`` is the cell as the frontend has it: its file (see ``_cell_file``) is what the
        code is compiled as.
        """
        cell_name = f"<Cell {self.execution_count}>"
        source_path = self._cell_file(source)
        if self._debugger_started:
            # For the debugger's source request, should it show a frame of a cell it has no editor for.
            Path(source_path).write_text(source, encoding="utf-8")
        warnings = asked = None
        if self.show_warnings:
            # Only the earlier cells that declare something: the others change nothing of this one's.
            cells = list(self.successful_cells.declaring)
            asked = DelayedAsk(
                lambda beside: self.code_intelligence.diagnose(cells, code, beside),
                self.warnings_delay,
                asyncio.get_running_loop(),
                cell_name,
            )
            warnings = CellWarnings(asked, code, cell_name, lambda text: output("stderr", Text(text)))

        def sent() -> None:  # on the executing thread: the code is on its way to the LLDB host
            self._wake_iopub()
            if asked is not None:
                asked.begin()

        try:
            result: ExecutionResult = await self._on_lldb_thread(
                self.cells.execute, code, cell_name, cell, source_path, sent
            )
        except BaseException:  # the host ended, or the kernel's own failure: no check to ask
            if warnings is not None:
                await warnings.finish(compile_failed=True)
            raise
        if warnings is not None:
            compile_failed = result.error is not None and result.error.ename == "CompileError"
            await warnings.finish(compile_failed)
            # Not asked yet (a quick cell): asked once the reply is out (DelayedAsk).
            self._after_reply.append(lambda: warnings.settle(self._warnings_wait_now()))
        return result

    async def _check_imports(self, code: str, cell_name: str) -> CellError | None:
        """Refuse a cell that imports a module that does not exist (LLDB's REPL would accept it)."""
        imports = imported_modules(code)
        if not imports:
            return None
        missing = await asyncio.get_running_loop().run_in_executor(
            None,
            self.modules.missing,
            imports,
            [str(d) for d in self.packages.module_dirs()],
            [str(m) for m in self.packages.module_maps()],
        )
        return missing_import_error(code, cell_name, missing) if missing else None

    async def _install(
        self, directive: InstallPackage, cell: Cell, output: OutputCallback, parent: dict[str, Any], silent: bool
    ) -> CellError | None:
        """Build the installed packages with this one added and load the result (%install)."""
        before = self.packages.snapshot()
        failure = await self._install_added(directive, cell, output, parent, silent)
        if failure is not None:
            # A package that did not install stays out of later builds (and a replaced spec comes back).
            with contextlib.suppress(OSError):
                self.packages.restore(before)
        return failure

    async def _install_added(
        self, directive: InstallPackage, cell: Cell, output: OutputCallback, parent: dict[str, Any], silent: bool
    ) -> CellError | None:
        # SwiftPM and the Swift driver leave lock files and TemporaryDirectory.* folders in the
        # temp directory: this kernel's install folder, removed with it.
        temp = Path(self._install_dir.name, "tmp")
        temp.mkdir(exist_ok=True)
        environment = {**self.environment, "TMPDIR": str(temp)}
        swift_package = self.toolchain.swift_build.with_name("swift-package")
        try:
            self.packages.root = self.build_cache.package_root(self.packages.all_flags())
            self.packages.add(directive.spec, directive.products)
            await asyncio.get_running_loop().run_in_executor(
                None, self.packages.learn_modules, swift_package, environment
            )
            self.packages.write()
        except (InstallError, OSError) as error:
            return CellError("InstallError", f"%install: {error}")
        output("stdout", Text(f"Building {', '.join(directive.products)} with SwiftPM in {self.packages.root}...\n"))
        status, progress, build_output = await self._build(environment, cell, output, parent, silent)
        if status is None:
            return self.cells.interrupted_result(cell).error  # type: ignore[union-attr]
        if status != 0:
            unreachable = unreachable_urls(build_output)
            if unreachable:
                return CellError("InstallError", network_error(unreachable))
            evalue = f"%install: swift build failed ({describe_exit(status)}); see its output above"
            return CellError("InstallError", evalue)
        if not progress.compiled:
            output("stdout", Text(f"Cache hit: the build in {self.packages.root} was up to date, nothing compiled.\n"))
        try:
            library = str(self.packages.fresh_library())
            # A url package's manifest can be read now that SwiftPM fetched it (for the next build's imports).
            await asyncio.get_running_loop().run_in_executor(
                None, self.packages.learn_modules, swift_package, environment
            )
            self.packages.write()
        except (InstallError, OSError) as error:
            return CellError("InstallError", f"%install: {error}")
        changed = self.packages.changed_since_loaded()
        if changed:
            # Measured: LLDB keeps the declarations and code of a module it has loaded; a rebuilt
            # one is only seen by a fresh Swift process.
            await self._on_lldb_thread(self.cells.relaunch)
            # The earlier cells' imports are gone with the process: say which to run again.
            imported = self._earlier_imports()
            again = f" Run your imports again: {'; '.join(f'import {m}' for m in imported)}." if imported else ""
            output(
                "stderr",
                Text(
                    f"%install: {', '.join(changed)} changed since it was loaded, and LLDB cannot replace a loaded "
                    "module, so the Swift process was restarted: earlier variables, definitions and imports are "
                    f"gone; the installed packages are loaded again.{again}\n"
                ),
            )
        failure: CellError | None = await self._on_lldb_thread(
            self.cells.load_installed,
            [str(d) for d in self.packages.module_dirs()],
            [str(m) for m in self.packages.module_maps()],
            library,
            tuple(self.packages.include_dirs),
        )
        if failure is None:
            self.packages.mark_loaded()
            # Completion and inspection see the installed modules too.
            self.code_intelligence.set_compiler_arguments(
                lsp_arguments(self.packages.module_dirs(), self.packages.module_maps())
            )
            modules = dict.fromkeys(m for product in directive.products for m in self.packages.product_modules(product))
            imports = "; ".join(f"import {module}" for module in modules)
            names = ", ".join(directive.products)
            output("stdout", Text(f"Installed {names}: {imports} in the cells that follow.\n"))
        return failure

    async def _add_include_dirs(self, command: str, output: OutputCallback) -> CellError | None:
        """Run ``command`` and add the -I folders it prints to the builds of %install and to LLDB."""
        try:
            ran = await asyncio.to_thread(
                subprocess.run, command, shell=True, capture_output=True, text=True, timeout=60, env=self.environment
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return CellError("InstallError", f"%install-extra-include-command: {command!r} failed: {error}")
        if ran.returncode != 0:
            said = ran.stderr.strip().splitlines()[-1] if ran.stderr.strip() else "no error output"
            evalue = f"%install-extra-include-command: {command!r} failed ({describe_exit(ran.returncode)}): {said}"
            return CellError("InstallError", evalue)
        words = iter(shlex.split(ran.stdout))
        folders = [next(words, "") if word == "-I" else word[2:] for word in words if word.startswith("-I")]
        added = [f for f in dict.fromkeys(folders) if f and f not in self.packages.include_dirs]
        self.packages.include_dirs += added
        output("stdout", Text(f"%install-extra-include-command: include folders {', '.join(added) or 'none new'}\n"))
        return None

    def _earlier_imports(self) -> list[str]:
        """Return the modules the cells that ran in this Swift process imported, in the order first imported."""
        return list(dict.fromkeys(i.module for code in self.successful_cells for i in imported_modules(code)))

    async def _build(
        self, environment: dict[str, str], cell: Cell, output: OutputCallback, parent: dict[str, Any], silent: bool
    ) -> tuple[int | None, BuildProgress, str]:
        """Build the generated package with a progress bar; return SwiftPM's exit status (None: interrupted).

        With it, the progress (whether anything was compiled) and SwiftPM's output.
        """
        command = self.packages.build_command(self.toolchain.swift_build)
        progress = BuildProgress()
        shown = BuildCompleteFilter()
        everything: list[str] = []
        display_id = f"swift-install-{uuid.uuid4().hex}"

        def show_progress(msg_type: str) -> None:
            if not silent:
                bundle = progress_bundle(progress.percent, progress.step)
                content = {"data": bundle, "metadata": {}, "transient": {"display_id": display_id}}
                self._publish(msg_type, content, parent)

        def build_output(name: str, event: OutputEvent) -> None:
            # Lines as they come, and the bar that SwiftPM's "[done/total]" lines move.
            if isinstance(event, Text):
                everything.append(event.text)
                moved = progress.feed(event.text)
                event = Text(shown.feed(event.text))
                if event.text:
                    output(name, event)
                if moved:
                    show_progress("update_display_data")
            else:
                output(name, event)

        show_progress("display_data")
        started = time.monotonic()
        status = await asyncio.get_running_loop().run_in_executor(
            None, self.cells.run_subprocess, command, environment, build_output, cell
        )
        if held := shown.flush():
            output("stdout", Text(held))
        if status == 0:
            progress.finish(f"built in {time.monotonic() - started:.1f} s")
        else:
            progress.step = "interrupted" if status is None else f"failed ({describe_exit(status)})"
        show_progress("update_display_data")
        return status, progress, "".join(everything)

    def _input_callback(self, parent: dict[str, Any], allow_stdin: bool) -> InputCallback:
        """Return what the cell controller calls (on its watcher thread) when the Swift code reads stdin."""
        loop = asyncio.get_running_loop()
        ident = self._parent_ident["shell"]

        def ask(take_prompt: Callable[[], str]) -> Future[str | None]:
            if not allow_stdin:
                # The prompt stays in the output: nobody will be shown an input box.
                answered: Future[str | None] = Future()
                answered.set_result(None)
                return answered
            return asyncio.run_coroutine_threadsafe(self._ask_for_line(parent, ident, take_prompt()), loop)

        return ask

    async def _ask_for_line(self, parent: dict[str, Any], ident: Any, prompt: str) -> str | None:
        """Send input_request and wait for the reply; None means end of input (Ctrl-D).

        Runs on the kernel's event loop, the only thread that touches the stdin socket: zmq sockets
        are not thread-safe, and polling it from a watcher thread while another one still did
        aborted the kernel inside libzmq ("Bad address (src/fq.cpp:56)", measured).
        """
        if self.session is None or self.stdin_socket is None:
            return None
        task = asyncio.current_task()
        assert task is not None
        self._input_tasks.add(task)
        try:
            # Drop stale replies, such as one to a request whose cell was interrupted.
            while self.stdin_socket.poll(0):
                self.stdin_socket.recv_multipart()
            content = {"prompt": prompt, "password": False}
            self.session.send(self.stdin_socket, "input_request", content, parent, ident=ident)
            while True:
                while self.stdin_socket.poll(0):
                    _, reply = self.session.recv(self.stdin_socket)
                    if reply is not None and reply.get("msg_type") == "input_reply":
                        value = str(reply["content"].get("value", ""))
                        return None if value == "\x04" else value
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            # Interrupted while waiting: the prompt, taken out of stdout for the input box, goes
            # back where it was printed (it still comes before the cell's reply and error).
            if prompt:
                self._publish("stream", {"name": "stdout", "text": prompt}, parent)
            raise
        finally:
            self._input_tasks.discard(task)

    async def _cancel_input_requests(self) -> None:
        """Stop waiting for input the cell no longer needs, before the next request is handled."""
        tasks = list(self._input_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _on_lldb_thread(self, function: Any, *args: Any) -> Any:
        """Run ``function`` on the executing thread once the Swift process has started."""
        if self._started.done():  # wrapping a done future still costs a trip through the loop
            self._started.result()  # raises what the start raised, as the awaited future would
        else:
            await asyncio.wrap_future(self._started)
        return await asyncio.get_running_loop().run_in_executor(self._lldb_thread, function, *args)

    async def _run_directive_answering(
        self, directive: Directive, cell: Cell, output: OutputCallback, parent: dict[str, Any], silent: bool
    ) -> CellError | None:
        """Carry out one directive; an exception it raises becomes the error that ends the cell."""
        try:
            return await self._run_directive(directive, cell, output, parent, silent)
        except SwiftProcessEnded:
            raise
        except Exception as error:
            self.log.exception("%s failed inside the kernel", directive.directive)
            return _kernel_error(directive.directive, error)

    async def _run_directive(
        self, directive: Directive, cell: Cell, output: OutputCallback, parent: dict[str, Any], silent: bool
    ) -> CellError | None:
        """Carry out one directive; return the error that ends the cell, if any."""
        if isinstance(directive, ShowHelp) and not silent:
            self._publish("stream", {"name": "stdout", "text": help_text()}, parent)
        elif isinstance(directive, SetEnv):
            env_error: CellError | None = await self._on_lldb_thread(
                self.cells.set_environment, directive.name, directive.value
            )
            if env_error is None:
                self.environment[directive.name] = directive.value
            return env_error
        elif isinstance(directive, RunSystem):
            status = await asyncio.get_running_loop().run_in_executor(
                None, self.cells.run_subprocess, directive.command, dict(self.environment), output, cell
            )
            if status is None:
                return self.cells.interrupted_result(cell).error  # type: ignore[union-attr]
            if status != 0:
                output("stderr", Text(f"%system: {describe_exit(status)}\n"))
        elif isinstance(directive, (InstallFlags, ListInstalled, InstallMirror, InstallLocation)):
            return self._set_up_install(directive, output)
        elif isinstance(directive, SetDisplay):
            self.cells.tables = directive.tables
        elif isinstance(directive, (ListNames, ListGlobals)):
            found: tuple[Global, ...] = await self._on_lldb_thread(self.cells.globals)
            if not found:
                output("stdout", Text("No variables.\n"))
            elif isinstance(directive, ListNames):
                # As IPython's %who: the names, sorted, on one line.
                output("stdout", Text("\t".join(sorted(g.name for g in found)) + "\n"))
            elif not silent:
                bundle = variables_bundle([(g.name, g.type, g.value) for g in sorted(found, key=lambda g: g.name)])
                self._publish("display_data", {"data": bundle, "metadata": {}, "transient": {}}, parent)
        elif isinstance(directive, InstallPackage):
            return await self._install(directive, cell, output, parent, silent)
        elif isinstance(directive, InstallIncludeCommand):
            return await self._add_include_dirs(directive.command, output)
        elif isinstance(directive, ResetSession):
            return await self._reset(cell, output)
        elif isinstance(directive, Include):
            try:
                # Off the event loop: even a regular file can be slow to read.
                source = await asyncio.to_thread(read_source_file, directive.path, self.max_include_bytes)
                check_source(source, directive.path, self.max_cell_lines)
            except SourceError as error:
                return CellError(error.ename, f"%include: {error}")
            result = await self._on_lldb_thread(self.cells.execute, source, expand_user(directive.path), cell)
            included: ExecutionResult = result
            return included.error
        return None

    def _set_up_install(
        self, directive: InstallFlags | ListInstalled | InstallMirror | InstallLocation, output: OutputCallback
    ) -> CellError | None:
        """Carry out a directive that sets up (or shows) what %install builds with; nothing is built."""
        if isinstance(directive, InstallFlags):
            if directive.action == "clear":
                self.packages.flags = []
            elif directive.action == "add":
                self.packages.flags = [*self.packages.flags, *directive.flags]
            else:
                current = shlex.join(self.packages.flags) if self.packages.flags else "none ($clear removes them all)"
                output("stdout", Text(f"%install-swiftpm-flags: {current}\n"))
        elif isinstance(directive, ListInstalled):
            output("stdout", Text(self.packages.listing()))
        elif isinstance(directive, InstallMirror):
            try:
                self.packages.add_mirror(directive.url, directive.path)
            except InstallError as error:
                return CellError("InstallError", f"%install-mirror: {error}")
        else:
            location = Path(directive.path.replace("$cwd", os.getcwd())).expanduser().absolute()
            self.build_cache.release()
            self.build_cache = BuildCache(location, self.swift_version)
        return None

    async def _reset(self, cell: Cell, output: OutputCallback) -> CellError | None:
        """%reset: a fresh LLDB host and Swift process, with the earlier cells' imports again.

        LLDB keeps the code of every expression it compiled for as long as it runs (2.4-4.5 MiB per
        short cell, growing with the session: the README's long-session table): only a fresh host
        frees it. Installed
        packages and %env settings go to the fresh host anyway; the modules earlier cells
        imported are imported again, so that the cells after go on where they were.
        """
        before = self.cells.host_memory()
        modules = sorted(self._earlier_imports())
        await self._on_lldb_thread(self.cells.reset)
        self._host_memory_warned = False
        self.successful_cells.clear()
        if modules:
            imports = "\n".join(f"import {module}" for module in modules)
            result: ExecutionResult = await self._on_lldb_thread(self.cells.execute, imports, "<%reset>", cell)
            if result.error is not None:
                return result.error
            self.successful_cells.append(imports)
        self._cells_launch = self.cells.launches
        after = self.cells.host_memory()
        kept = f"imports ({', '.join(modules)})" if modules else "no imports (none were made)"
        output(
            "stdout",
            Text(
                f"%reset: a fresh LLDB host and Swift process ({before / MIB:,.0f} MiB -> {after / MIB:,.0f} MiB). "
                f"Kept: installed packages, %env settings, {kept}. Gone: the variables, functions and types "
                "of earlier cells.\n"
            ),
        )
        return None

    def _warn_about_host_memory(self, parent: dict[str, Any], silent: bool) -> None:
        """Say once when the LLDB host passes ``host_memory_warning`` MiB, and what frees it."""
        if self._host_memory_warned or self.host_memory_warning <= 0 or silent:
            return
        used = self.cells.host_memory()
        if used <= self.host_memory_warning * MIB:
            return
        self._host_memory_warned = True
        text = (
            f"Note: LLDB now uses {used / MIB:,.0f} MiB, past SwiftKernel.host_memory_warning "
            f"({self.host_memory_warning:,} MiB): it keeps the code of every cell it compiled. %reset frees it, "
            "keeping installed packages, %env settings and imports (the variables, functions and types of "
            "earlier cells are lost); a kernel restart does too.\n"
        )
        self._publish("stream", {"name": "stderr", "text": text}, parent)

    async def do_history(  # noqa: PLR0917 - ipykernel's signature
        self,
        hist_access_type: str,
        output: bool,
        raw: bool,
        session: int | None = None,
        start: int | None = None,
        stop: int | None = None,
        n: int | None = None,
        pattern: str | None = None,
        unique: bool = False,
    ) -> dict[str, Any]:
        """Answer history requests from this kernel's session (session 0 is the current one)."""
        entries = [(0, number, code) for number, code in enumerate(self.history, start=1)]
        if hist_access_type == "tail":
            entries = entries[-n:] if n else entries
        elif hist_access_type == "range":
            entries = [e for e in entries if (start or 0) <= e[1] and (stop is None or e[1] < stop)]
        elif hist_access_type == "search":
            entries = [e for e in entries if fnmatch.fnmatchcase(e[2], pattern or "*")]
            if unique:
                seen: set[str] = set()
                entries = [e for e in entries if not (e[2] in seen or seen.add(e[2]))]  # type: ignore[func-returns-value]
            entries = entries[-n:] if n else entries
        else:
            entries = []
        history: list[Any] = [(s_, line, (code, None)) if output else (s_, line, code) for s_, line, code in entries]
        return {"status": "ok", "history": history}

    async def do_is_complete(self, code: str) -> dict[str, Any]:
        """Say whether ``code`` is a complete cell, for jupyter console's multi-line input."""
        result = check_completeness(code)
        reply: dict[str, Any] = {"status": result.status}
        if result.status == "incomplete":
            reply["indent"] = result.indent
        return reply

    async def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        """Offer sourcekit-lsp's completions at the cursor, or none when it cannot answer in time."""
        completion = await self.code_intelligence.complete(self.successful_cells, code, cursor_pos)
        start, end = completion.cursor_start, completion.cursor_end
        types = [
            {"start": start, "end": end, "text": t.text, "type": t.type, "signature": t.signature}
            for t in completion.types
        ]
        return {
            "status": "ok",
            "matches": completion.matches,
            "cursor_start": start,
            "cursor_end": end,
            "metadata": {"_jupyter_types_experimental": types},
        }

    async def do_inspect(
        self, code: str, cursor_pos: int, detail_level: int = 0, omit_sections: Any = ()
    ) -> dict[str, Any]:
        """Show the declaration and doc comment of the symbol at the cursor (Shift-Tab)."""
        inspection = await self.code_intelligence.inspect(self.successful_cells, code, cursor_pos)
        data = {"text/plain": inspection.plain, "text/markdown": inspection.markdown} if inspection.found else {}
        return {"status": "ok", "found": inspection.found, "data": data, "metadata": {}}

    # ----- the debugger (JupyterLab's, over debug_request) -------------------------------------

    def _cell_file(self, code: str) -> str:
        """Return the file a cell's code is compiled as: the name JupyterLab's debugger gives it."""
        return f"{self._cell_file_prefix}{murmur2_x86(code, _CELL_HASH_SEED)}.swift"

    def _send_debug_event(self, event: DebugEvent) -> None:
        """Publish a DAP event of the LLDB host on IOPub (from the host-reader thread)."""
        if event.event == "stopped":
            self._stopped_threads.add(event.body.get("threadId", 0))
        elif event.event == "continued":
            self._stopped_threads.clear()
        self._debug_seq += 1
        content = {"type": "event", "seq": self._debug_seq, "event": event.event, "body": event.body}
        self._publish("debug_event", content, self._debug_parent)

    async def do_debug_request(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Answer one DAP request of JupyterLab's debugger (control channel)."""
        if not isinstance(msg, dict) or not isinstance(msg.get("command"), str):
            return dap.response({}, error="a debug request needs a command")
        self._debug_parent = self.get_parent("control")
        arguments: dict[str, Any] = msg["arguments"] if isinstance(msg.get("arguments"), dict) else {}
        # Answered without the debugger too (JupyterLab's Variables panel while idle).
        if msg["command"] == "inspectVariables":
            return await self._inspect_variables(msg)
        if msg["command"] == "richInspectVariables":
            return await self._rich_inspect_variables(msg)
        try:
            body = await self._debug(msg["command"], arguments)
        except DebugError as error:
            return dap.response(msg, error=str(error))
        return dap.response(msg, body)

    async def _inspect_variables(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer ``inspectVariables``: the cells' globals, each name once with its newest value (no debugger needed).

        Not while a cell runs: the LLDB thread is busy, and control requests (interrupts among
        them) are handled one at a time.
        """
        if self.cells.phase is not Phase.IDLE:
            return dap.response(request, error=_BUSY)
        try:
            found: tuple[Global, ...] = await asyncio.wait_for(
                self._on_lldb_thread(self.cells.globals), _INSPECT_SECONDS
            )
        except (SwiftProcessEnded, asyncio.TimeoutError) as error:
            return dap.response(request, error=f"the variables could not be read: {error or 'no answer in time'}")
        variables = [dap.shown(g.name, g.value, g.type, evaluate_name=g.name) for g in found]
        return dap.response(request, {"variables": variables})

    async def _rich_inspect_variables(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer ``richInspectVariables``: a global's MIME bundle, as its cell result would show it.

        The name is evaluated as a plain Swift expression (nothing is declared); only a name, no
        other code, is taken.
        """
        arguments = request.get("arguments") or {}
        name = arguments.get("variableName") if isinstance(arguments, dict) else None
        empty: dict[str, Any] = {"data": {}, "metadata": {}}
        if not isinstance(name, str) or not name.isidentifier():
            return dap.response(request, empty, error=f"not a variable name: {name!r}")
        if self.cells.phase is not Phase.IDLE:
            return dap.response(request, empty, error=_BUSY)

        def evaluate() -> ExecutionResult:
            cell = self.cells.expect_cell_if_idle()
            if cell is None:  # a cell came meanwhile: it is not to be taken for this one
                return ExecutionResult(error=CellError("Busy", _BUSY))
            try:
                return self.cells.evaluate(name, f"<inspect {name}>", cell)
            finally:
                self.cells.end_cell(cell)

        try:
            result: ExecutionResult = await asyncio.wait_for(self._on_lldb_thread(evaluate), _INSPECT_SECONDS)
        except (SwiftProcessEnded, asyncio.TimeoutError) as error:
            return dap.response(request, empty, error=f"{name} could not be read: {error or 'no answer in time'}")
        if result.error is not None:
            return dap.response(request, empty, error=f"{result.error.ename}: {result.error.evalue}")
        data, _ = result_bundle(result.value if result.value is not None else "()", result.data)
        return dap.response(request, {"data": data, "metadata": {}})

    async def _debug(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        if command == "initialize":
            return dict(dap.CAPABILITIES)
        if command == "debugInfo":
            return {
                "isStarted": self._debugger_started,
                "hashMethod": "Murmur2",
                "hashSeed": _CELL_HASH_SEED,
                "tmpFilePrefix": self._cell_file_prefix,
                "tmpFileSuffix": ".swift",
                "breakpoints": [{"source": path, "breakpoints": lines} for path, lines in self._breakpoints.items()],
                "stoppedThreads": sorted(self._stopped_threads),
                "richRendering": False,
                "exceptionPaths": [],
                "copyToGlobals": False,
            }
        if command == "configurationDone":
            return {}
        if command == "dumpCell":
            code = arguments.get("code")
            if not isinstance(code, str):
                raise DebugError("dumpCell needs the cell's code")
            path = self._cell_file(code)
            await asyncio.to_thread(Path(path).write_text, code, encoding="utf-8")
            return {"sourcePath": path}
        if command == "source":
            path = str((arguments.get("source") or {}).get("path") or "")
            if not path.startswith(self._cell_file_prefix) or not os.path.isfile(path):
                raise DebugError(f"no source for {path!r}")
            return {"content": await asyncio.to_thread(Path(path).read_text, encoding="utf-8")}
        body = await asyncio.to_thread(self.cells.debug, command, arguments)
        if command == "attach":
            self._debugger_started = True
            self._send_debug_event(DebugEvent("initialized", {}))
        elif command == "disconnect":
            self._debugger_started = False
            self._breakpoints.clear()
        elif command == "setBreakpoints":
            path = str((arguments.get("source") or {}).get("path") or "")
            lines = [{"line": item.get("line")} for item in body.get("breakpoints", [])]
            if lines:
                self._breakpoints[path] = lines
            else:
                self._breakpoints.pop(path, None)
        return body

    async def interrupt_request(self, stream: Any, ident: Any, parent: dict[str, Any]) -> None:
        """Interrupt the running cell through the executor and answer at once (control thread)."""
        if self.session is None:
            return
        content: dict[str, Any] = {"status": "ok"}
        try:
            outcome = self.cells.interrupt("message", _sent(parent))
            self.log.debug("interrupt_request: %s", outcome)
        except Exception as error:  # noqa: BLE001 - the reply must say what went wrong, not vanish
            content = {"status": "error", "ename": type(error).__name__, "evalue": str(error), "traceback": []}
        self.session.send(stream, "interrupt_reply", content, parent, ident=ident)

    def interrupt_from_signal(self) -> None:
        """Interrupt the running cell because the kernel process got SIGINT (sigwait thread)."""
        self.cells.interrupt("signal")

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """End the Swift process and LLDB, leaving no process behind."""
        # A cell may still be running on the LLDB thread: kill its process so the thread frees up.
        self.cells.kill_now()

        async def close_code_intelligence() -> None:
            await asyncio.to_thread(self.code_intelligence.close)
            log.debug("shutdown: code intelligence closed")

        async def end_lldb_host() -> None:
            future = self._lldb_thread.submit(self.cells.shutdown)
            try:
                await asyncio.wait_for(asyncio.wrap_future(future), timeout=10)
            except Exception:
                self.log.warning("executor shutdown did not finish cleanly", exc_info=True)
            log.debug("shutdown: LLDB host ended")

        # Side by side: sourcekit-lsp's exit and the host's take 30-50 ms each, and a restart waits
        # for this process to end in jupyter_client's 0.1 s steps. The language server does not
        # wait for the executor, which may take seconds: a kernel manager that loses patience
        # kills this process, and the language server should be gone by then.
        await asyncio.gather(close_code_intelligence(), end_lldb_host())
        self._lldb_thread.shutdown(wait=False)
        self.build_cache.release()
        # What the kernel's processes started and left running, even outside its process tree
        # (a setsid %system command, a fork of the Swift process), and a host that did not end.
        # Only with a mark of this process's own (``__main__.launch`` sets it): a kernel object
        # made inside another program (the tests) must not end what that program started.
        owner = os.environ.get(OWNER_VARIABLE, "")
        ended = await asyncio.to_thread(end_owned_processes, owner) if owner.startswith(f"{os.getpid()}:") else []
        if ended:
            self.log.info("shutdown ended %d processes this kernel had started: %s", len(ended), ended)
        return {"status": "ok", "restart": restart}

    async def _progressively_terminate_all_children(self) -> None:
        """ipykernel's ending of the kernel's child processes at shutdown, when there are any.

        ipykernel first lists them with psutil, which reads every process's stat on the machine:
        20-40 ms of each shutdown here, after ``do_shutdown`` had ended this kernel's processes,
        and a restart waits for this process to exit in jupyter_client's 0.1 s steps. The kernel's
        children lists say at once whether any are left; when they cannot be read, ipykernel looks.
        """
        if children(os.getpid()) == []:
            self.log.debug("Kernel has no children.")
            return
        await super()._progressively_terminate_all_children()


def send_at_once(stream: Any) -> None:
    """Make a ZMQStream send each message when it is given, on its socket, not when its loop next turns.

    ZMQStream queues a send until its loop polls again, so ipykernel's reply to a cell waited for
    the handler's end (the idle status and its return through the loop): 0.5-1 ms of every reply
    here. Only for a stream used on its loop's own thread (the shell stream, once
    ``drop_shell_channel_thread`` left it on the main thread), so that the order stays as sent.
    The message goes straight to the socket: a ROUTER socket's send never blocks (a reply to a
    client that is gone is dropped), so the stream's queue, and the poller state it updates for
    each message (0.07 ms of a cell in py-spy), would hold nothing.
    """
    socket = stream.socket

    def send_multipart(msg: Any, *args: Any, **kwargs: Any) -> None:
        socket.send_multipart(msg, *args, **kwargs)

    stream.send_multipart = send_multipart


class IOPubWakes:
    """Let the main thread queue an IOPub message without waking ipykernel's IOPub thread, and wake it later.

    Each message ipykernel publishes is handed to its IOPub thread, and each hand-over wakes that
    thread, which then takes the GIL from the main thread: a cell's busy status and
    ``execute_input`` cost its way to LLDB 0.2 ms this way (py-spy). Queued with ``deferred``, they
    are sent once the cell's code is on its way to the LLDB host (``wake``, from any thread), while
    LLDB compiles. The IOPub thread sends what is queued in order, so anything published after them
    (the cell's output, its idle status) still comes after them; and any publish that wakes the
    thread sends them too. Every deferred message is followed by a ``wake`` or such a publish.
    """

    def __init__(self, thread: Any) -> None:
        self._thread = thread
        self._local = threading.local()
        self._owed = False
        schedule_and_wake = thread.schedule

        def schedule(f: Callable[[], None]) -> None:
            if getattr(self._local, "deferring", False) and thread.thread.is_alive():
                thread._events.append(f)  # what ipykernel's schedule does, less the wake
                self._owed = True
            else:
                schedule_and_wake(f)

        thread.schedule = schedule

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Queue what this thread publishes in the block without waking the IOPub thread."""
        self._local.deferring = True
        try:
            yield
        finally:
            self._local.deferring = False

    def wake(self) -> None:
        """Have the IOPub thread send what was queued without a wake (safe from any thread)."""
        if self._owed:
            self._owed = False
            self._thread._event_pipe.send(b"")


class CellHistory(list[str]):
    """The Swift source of the cells that ran without error, in order, and those that declare something.

    A cell's warnings are checked beside the earlier cells that declare something (``declares``):
    picked out of the whole history at each cell, that took 0.08 ms a cell after 450 cells and grew
    with the session. Kept here as cells are added; ``append`` and ``clear`` are the only changes
    the kernel makes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.declaring: list[str] = []

    def append(self, code: str) -> None:
        super().append(code)
        if declares(code):
            self.declaring.append(code)

    def clear(self) -> None:
        super().clear()
        self.declaring.clear()


def log_only_what_is_shown(app: IPKernelApp) -> None:
    """Make the app's logger drop, at once, the records none of its handlers would show.

    traitlets sets an application's logger to DEBUG and leaves the chosen ``log_level`` to its
    handlers, so every one of ipykernel's ``log.debug`` calls (several a request: the message
    type, its content, the reply) built a log record for nothing: 0.18 ms of the main thread a
    trivial cell (py-spy). With ``--debug`` or a handler that shows everything, nothing changes.
    """
    levels = [handler.level for handler in app.log.handlers]
    if levels and all(level > logging.NOTSET for level in levels):
        app.log.setLevel(max(app.log.level, min(levels)))


def drop_shell_channel_thread(app: IPKernelApp) -> None:
    """Drop the shell channel thread ipykernel 7's ``init_control`` made and has not started yet.

    Shell requests are then read on the main thread, as before ipykernel 7 (``SwiftKernelApp.init_control``).
    """
    thread = getattr(app, "shell_channel_thread", None)
    if thread is not None and not thread.is_alive():
        thread.io_loop.close()
        app.shell_channel_thread = None


class SwiftKernelApp(IPKernelApp):
    """ipykernel's kernel application, taking over the sockets ``startup`` bound and answered on.

    ``python -m swift_kernel`` binds the kernel's sockets and answers kernel_info before importing
    ipykernel (``startup.EarlyKernelInfo``). This app then uses those very sockets and hands the
    requests read meanwhile to the kernel. Without them (another launcher, CurveZMQ, ports left
    to the kernel) it is ipykernel's app unchanged.
    """

    _early: EarlyKernelInfo | None = None
    # sys.stdout and sys.stderr whose flush does not wait on the IOPub thread when there is nothing
    # to send: ipykernel's waited up to 10 s at shutdown in 1 of 10 runs (its control thread
    # flushing after the shutdown request while the app's close had stopped the IOPub thread).
    outstream_class = DottedObjectName(f"{__name__}.OutStream", config=True, help=IPKernelApp.outstream_class.help)

    def init_sockets(self) -> None:
        """Create the context, the session and the sockets, or adopt those bound early (as ipykernel 7 sets them)."""
        early = EarlyKernelInfo.take()
        if early is not None and not self._agrees_with(early):
            self.log.warning("the early sockets do not match this kernel's connection settings: binding afresh")
            held = early.stop()
            if held:
                self.log.warning("%d requests read before the kernel was up are lost", len(held))
            early.close()
            early = None
        if early is None:
            super().init_sockets()
            return
        self._early = early
        self.log.info("Starting the kernel at pid: %i", os.getpid())
        assert self.context is None, "init_sockets cannot be called twice!"
        self.context = context = early.context
        atexit.register(self.close)
        if self.transport == "tcp":  # no CurveZMQ here (startup leaves that to ipykernel)
            self.log.warning(
                "Kernel is running over TCP without encryption."
                " All communication (including code and outputs) is sent in plain text"
                " and is susceptible to eavesdropping."
                " Use IPC transport or launch with kernel manager-provisioned"
                " CurveZMQ keys to enable transport encryption."
            )
        # The responder stops only now: until here it answered while ipykernel was imported.
        early.held = early.stop()
        # One session id for every message the kernel sends, early or not.
        self.session.session = early.session.session
        self.shell_socket, self.stdin_socket = early.sockets["shell"], early.sockets["stdin"]
        # init_control and init_iopub create and bind the control and iopub sockets themselves;
        # _handing_over and _bind_socket give them the early ones instead, and the rest of their
        # wiring (threads, streams, debug sockets) stays ipykernel's.
        self.init_control(context)
        self.init_iopub(context)
        taken = (self.control_socket, self.iopub_thread.socket)
        if taken != (early.sockets["control"], early.sockets["iopub"]):
            raise RuntimeError("ipykernel's socket set-up changed: the early sockets were not taken over")

    def _agrees_with(self, early: EarlyKernelInfo) -> bool:
        """Say whether the early sockets are the ones this app would bind (its settings may come from config too)."""
        connection = early.connection
        ports = {channel: getattr(self, f"{channel}_port") for channel in connection.ports}
        return (
            self.curve_secretkey is None
            and (self.transport, self.ip, ports) == (connection.transport, connection.ip, connection.ports)
            and (self.session.key, self.session.signature_scheme) == (connection.key, connection.signature_scheme)
        )

    def init_control(self, context: Any) -> None:
        """Make ipykernel's control channel, on the early control socket if there is one.

        ipykernel 7 makes its shell channel thread here too, and this kernel drops it: shell
        requests are read on the main thread, as before ipykernel 7. The thread is there for
        subshells, which this kernel does not offer (``kernelinfo``), and every request and reply
        crossed between it and the main thread over an inproc socket: two thread hops per request,
        0.4 ms of a trivial cell here.
        """
        with self._handing_over(context, "control"):
            super().init_control(context)
        drop_shell_channel_thread(self)

    def init_iopub(self, context: Any) -> None:
        """Make ipykernel's iopub channel, on the early iopub socket if there is one."""
        with self._handing_over(context, "iopub"):
            super().init_iopub(context)

    def _handing_over(self, context: Any, channel: str) -> contextlib.AbstractContextManager[None]:
        if self._early is None:
            return contextlib.nullcontext()
        return context.handing_over(self._early.sockets[channel])  # type: ignore[no-any-return]

    def _bind_socket(self, s: Any, port: int) -> int:
        # The early sockets are bound already, to the ports the connection file gives (_agrees_with).
        if self._early is not None and any(s is socket for socket in self._early.sockets.values()):
            return port
        return super()._bind_socket(s, port)  # type: ignore[no-any-return]

    def init_kernel(self) -> None:
        """Make the kernel; it continues from the early replies, if there were any."""
        log_only_what_is_shown(self)
        super().init_kernel()
        if isinstance(self.kernel, SwiftKernel):
            self.kernel.iopub_wakes = IOPubWakes(self.iopub_thread)
        if self.shell_channel_thread is None:
            send_at_once(self.kernel.shell_stream)
        if self._early is not None:
            self.kernel.take_early_requests(self._early.ident, self._early.held)
