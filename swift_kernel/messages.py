"""The typed messages between the kernel and its LLDB host, in one table; pure data, no I/O.

The kernel (``cells.py`` through ``host.HostProcess``) sends *requests*, each in a ``Call`` with an
id; the host (``host.HostServer``) answers each with a ``Reply`` carrying the value its table
entry names, or an error text. The host also sends *events* (in a ``Notice``), which need no
answer. Both directions are ordered: an event the host sends before a reply is handled first.

The first request is always ``Init``, whose ``version`` must equal the host's
``PROTOCOL_VERSION``: a kernel and a host from different checkouts refuse each other clearly
instead of misreading fields. Bump the version whenever a message changes shape.

Dependencies: imports only ``diagnostics`` (for ``CellError`` and ``Frame``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .diagnostics import CellError, Frame

PROTOCOL_VERSION = 8


class SwiftProcessEnded(Exception):
    """The Swift process (or the LLDB host running it) could not be started or kept alive."""


# ----- values inside replies ---------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    """The cell's code stopped on a signal (a trap, or the kernel's interrupt) and was unwound."""

    reason: str
    description: str
    frames: tuple[Frame, ...] = ()
    # The crashed thread went through the Swift runtime's fatal-error report, which the runtime
    # wrote to stderr just before (``diagnostics.reported_by_runtime``).
    reported_by_runtime: bool = False
    # Other threads that ran the cell's code (a concurrentPerform's workers), stopped for good,
    # and how many of them could only be stopped outside a safe point.
    threads_held: int = 0
    threads_held_unsafely: int = 0
    # Where the crash was when not in the thread running the cell: "thread" (one this cell or an
    # earlier one started) or "task" (a thread of Swift concurrency's pool, running a task). That
    # thread is held for good; the cell was stopped with it.
    in_other_thread: str = ""


@dataclass(frozen=True)
class Ended:
    """The Swift process ended before or during the cell; ``fresh`` says what was done about it."""

    why: str
    fresh: str
    exit_text: str = ""


@dataclass(frozen=True)
class Thrown:
    """The cell ended with an error it threw and did not catch (LLDB answers it as a value)."""

    type_name: str
    description: str


@dataclass(frozen=True)
class Outcome:
    """What the host's evaluation of one piece of a cell gave, for the kernel to turn into a reply.

    At most one of ``error``, ``stop``, ``thrown`` and ``ended`` is set; none means success, with ``value``
    the result's description (None for a Void result or a declaration) and ``data`` its MIME
    bundle when it has more than text (a ``JupyterDisplayable`` value, a table).
    """

    value: str | None = None
    data: dict[str, str] | None = None
    error: CellError | None = None
    stop: Stop | None = None
    thrown: Thrown | None = None
    ended: Ended | None = None


@dataclass(frozen=True)
class Streams:
    """The paths the Swift process opens as its stdin, stdout and stderr (the kernel's pipes)."""

    stdin: str
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Installed:
    """Built packages to load into a Swift process (and into every fresh one)."""

    module_dirs: tuple[str, ...]
    module_maps: tuple[str, ...]
    library: str
    # Header folders (%install-extra-include-command's -I flags) that LLDB's clang must search.
    include_dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Global:
    """One global a cell declared, newest declaration: its name, Swift type and value, as LLDB shows them.

    ``value`` is short (about 200 characters, cut with an ellipsis): a list of globals, not a dump.
    """

    name: str
    type: str
    value: str


# ----- requests: kernel -> host ------------------------------------------------------------------


@dataclass(frozen=True)
class Init:
    """Start LLDB and the Swift process; the first request of every host."""

    version: int
    toolchain: str
    streams: Streams
    environment: dict[str, str] = field(default_factory=dict)
    installed: Installed | None = None
    # The path of the kernel's stop flag page, which the cells' safe points read.
    stop_flag: str = ""


@dataclass(frozen=True)
class Execute:
    """Evaluate one piece of the kernel's cell ``generation`` (an included file, the cell's code)."""

    generation: int
    code: str
    cell_name: str
    safe_points: bool = True
    # A result that is a collection of rows is shown as a table (%display tables on).
    tables: bool = False
    # The file the code is compiled under, which the frontend's debugger names the cell by
    # (its breakpoints, its frames); diagnostics and tracebacks still say ``cell_name``.
    source_path: str = ""


@dataclass(frozen=True)
class Mark:
    """The kernel interrupts cell ``generation`` (from ``source``): end it as an interrupt.

    Sent before the kernel's first signal, so that the stop is reported as an interrupt and a
    library call runs on to cell code before unwinding. Handled on the host's reader thread,
    while an ``Execute`` may be running.
    """

    generation: int
    source: str


@dataclass(frozen=True)
class AsyncInterrupt:
    """Call ``SBProcess.SendAsyncInterrupt`` (on the host's reader thread); never answered."""


@dataclass(frozen=True)
class Relaunch:
    """Kill the Swift process and start a fresh one: all Swift state is lost."""


@dataclass(frozen=True)
class SetEnvironment:
    """``setenv`` inside the Swift process; fresh processes get it too."""

    name: str
    value: str


@dataclass(frozen=True)
class LoadInstalled:
    """Load built packages into the Swift process (and every fresh one after)."""

    installed: Installed


@dataclass(frozen=True)
class ReopenStdin:
    """Give the Swift process a fresh standard input, the pipe at ``path``."""

    path: str


@dataclass(frozen=True)
class Globals:
    """List the globals the cells declared (``Global`` records), each name once, with its newest value."""


@dataclass(frozen=True)
class Evaluate:
    """Evaluate a Swift expression of the kernel's cell ``generation`` outside the REPL: nothing is declared.

    For ``user_expressions`` and the Variables panel: a plain (non-REPL) expression registers no
    declaration even when it fails to compile, and leaves no ``$R`` result the cells could see.
    ``name`` stands for the expression in diagnostics and frames.
    """

    generation: int
    code: str
    name: str


@dataclass(frozen=True)
class Debug:
    """One Debug Adapter Protocol request of the frontend's debugger (``command``, ``arguments``).

    Answered with the DAP response's body. While a cell is stopped in the debugger the host's
    main thread answers these inside the cell's evaluation; ``pause`` is handled at once on the
    reader thread.
    """

    command: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Shutdown:
    """End the Swift process and LLDB; the host exits after its reply."""


# ----- events: host -> kernel --------------------------------------------------------------------


@dataclass(frozen=True)
class Launched:
    """A Swift process was launched (at start, on relaunch, after it ended)."""

    pid: int
    debug_server_pid: int


@dataclass(frozen=True)
class Emit:
    """Text for the cell's stream that did not come from the Swift process (compiler warnings)."""

    stream: str
    text: str


@dataclass(frozen=True)
class DebugEvent:
    """A DAP event for the frontend's debugger (``stopped``, ``continued``) and its body."""

    event: str
    body: dict[str, Any] = field(default_factory=dict)


# ----- envelopes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """A request with the id its reply will carry."""

    id: int
    request: Any


@dataclass(frozen=True)
class Reply:
    """The answer to ``Call`` ``id``: ``value``, or ``error`` (a text) when the request failed."""

    id: int
    value: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Notice:
    """An event, sent without an id."""

    event: Any


# The table: every request and the type of the value its reply carries (None: not answered).
REQUESTS: dict[type, Any] = {
    Init: type(None),
    Execute: Outcome,
    Mark: bool,
    AsyncInterrupt: None,
    Relaunch: type(None),
    SetEnvironment: CellError | None,
    LoadInstalled: CellError | None,
    ReopenStdin: CellError | None,
    Globals: tuple[Global, ...],
    Evaluate: Outcome,
    Debug: dict,
    Shutdown: type(None),
}
# Requests the host handles on its reader thread, at once, even while an Execute runs.
IMMEDIATE = (Mark, AsyncInterrupt)
EVENTS = (Launched, Emit, DebugEvent)
ENVELOPES = (Call, Reply, Notice)
