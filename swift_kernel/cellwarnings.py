"""Show a running cell's compiler warnings on its stderr, from sourcekit-lsp, off the cell's path.

LLDB drops the warnings of an expression that compiles, and compiling a cell a second time to
get them is not free of side effects inside LLDB (the declarations are registered twice: issue
15's "redundant conformance", "ambiguous use"). So the warnings come from sourcekit-lsp's
diagnostics of the document of the earlier cells that declare something (``declares``) plus
this one, asked for once the cell has run ``SwiftKernel.warnings_delay`` seconds (0.05 by
default), or once its reply is out if it is done sooner (``DelayedAsk``). The policy:

- Warnings that arrive while the cell runs go to its stderr at once.
- The cell's reply never waits for them. After the reply, the cell stays busy for warnings
  still missing, up to ``SwiftKernel.warnings_wait`` seconds: they go out before its idle status,
  which is when a frontend (JupyterLab's output area) stops listening to the cell. Warnings that
  come later still go out on the cell's stderr (same parent header): jupyter_client clients see
  them, a frontend that stopped listening drops them.
- A cell LLDB refuses is not checked (if not asked yet): its compile error lists the warnings.
- sourcekit-lsp also reports errors. A cell it finds errors in shows its warnings only once it
  has run without a compile error: when LLDB refuses the cell, its compile error already holds
  the warnings, and when sourcekit-lsp's error is one the REPL allows, the warnings still come.
- Only warnings, only those inside the cell: what the earlier cells get is not this cell's.
  A missing or stuck sourcekit-lsp means no warnings, never a slower cell.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import re
import threading
from collections.abc import Callable

from .asyncwrap import mask_literals
from .diagnostics import SourceDiagnostic, render_warnings

__all__ = ["CellWarnings", "DelayedAsk", "declares"]

log = logging.getLogger(__name__)

Found = concurrent.futures.Future[list[SourceDiagnostic] | None]


# What a later cell can see of an earlier one is what it declares at its top level: a let, var,
# func, type, extension, import, operator... and a top-level guard, which binds for the rest of the
# file. Attributes and #if are counted as declaring, to be sure. Brackets track the depth.
_TOP_LEVEL = re.compile(
    r"(?P<open>[(\[{])|(?P<close>[)\]}])|(?<![\w.$])(?P<word>let|var|func|struct|class|enum|protocol|extension"
    r"|import|typealias|actor|operator|precedencegroup|guard|macro|subscript|init|deinit)(?![\w$])|#if\b|@\w"
)


@functools.lru_cache(maxsize=4096)
def declares(code: str) -> bool:
    """Say whether a cell declares something at its top level that later cells could use.

    A cell that does not (an expression, a print, a loop) is left out of the document that later
    cells' warnings are found in: it changes none of their types or warnings, and every such cell
    kept there made sourcekit-lsp's check of each later cell slower (a session of quick cells
    grew the check past the cell itself).
    """
    depth = 0
    for match in _TOP_LEVEL.finditer(mask_literals(code)):
        if match.group("open"):
            depth += 1
        elif match.group("close"):
            depth = max(0, depth - 1)
        elif depth == 0:
            return True
    return False


class DelayedAsk:
    """Ask for a cell's diagnostics once its code has gone to LLDB and run ``delay`` seconds, or after its reply.

    A quick cell (a trivial expression, a declaration) is done before the delay: its check is asked
    once its reply has gone out (``now``, from the kernel's ``_answering``), in the time the cell
    stays busy for its warnings. Asked during its compile, sourcekit-lsp's type check ran on the
    other core beside LLDB's debug server and the Swift process, which LLDB's compile waits on,
    and cost the reply 0.7-0.85 ms; asked when its code was done, before the reply, the request's
    encoding on the LSP thread took the GIL and the CPU the reply needed (README: "The trivial
    cell, tenth round"). A cell that runs longer than the delay (a large cell's compile, a loop)
    gets its check while it runs, so its warnings come before its end. Nothing is asked before
    ``begin``: the encoding held the GIL while the cell's code was sent to the LLDB host.
    Used on one event loop; ``begin`` may come from any thread.
    """

    def __init__(
        self, ask: Callable[[bool], Found], delay: float, loop: asyncio.AbstractEventLoop, name: str = ""
    ) -> None:
        self.found: Found = concurrent.futures.Future()
        self.name = name
        self._ask: Callable[[bool], Found] | None = ask
        self._delay = delay
        self._loop = loop
        self._timer: asyncio.Handle | None = None

    def begin(self) -> None:
        """Start the delay: the cell's code is on its way to LLDB (safe from any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: the kernel is ending
            self._loop.call_soon_threadsafe(self._start_timer)

    def _start_timer(self) -> None:
        if self._ask is not None and self._timer is None:
            self._timer = self._loop.call_later(self._delay, self.now, True)

    def now(self, beside: bool = False) -> None:
        """Ask now, if not asked yet: ``beside`` the running cell, or after its reply."""
        ask = self.cancel()
        if ask is not None:
            log.debug("the warnings of %s asked %s", self.name, "while it runs" if beside else "after its reply")
            ask(beside).add_done_callback(self._copy)

    def cancel(self) -> Callable[[bool], Found] | None:
        """Never ask (LLDB refused the cell: its error shows the warnings); return the ask if not made."""
        ask, self._ask = self._ask, None
        if self._timer is not None:
            self._timer.cancel()
        return ask

    def _copy(self, asked: Found) -> None:
        error = asked.exception()
        if error is not None:
            self.found.set_exception(error)
        else:
            self.found.set_result(asked.result())


class CellWarnings:
    """The warnings of one cell: sent to ``emit`` as soon as they may be, at most once."""

    def __init__(self, asked: DelayedAsk, code: str, cell_name: str, emit: Callable[[str], None]) -> None:
        """Watch ``asked``'s answer; ``emit`` takes the rendered text, from any thread."""
        self._asked = asked
        self._code = code
        self._cell_name = cell_name
        self._emit = emit
        self._lock = threading.Lock()
        self._running = True
        self._failed = False
        self._held = ""
        asked.found.add_done_callback(self._arrived)

    def _arrived(self, found: Found) -> None:
        """Render the answer; send it now, or hold it until the cell is known to have compiled."""
        try:
            diagnostics = found.result()
        except Exception:
            log.debug("no warnings for %s", self._cell_name, exc_info=True)
            return
        if not diagnostics:
            return
        text = render_warnings(diagnostics, self._code, self._cell_name)
        if not text:
            return
        with self._lock:
            if self._failed:
                return
            if self._running and any(d.severity == "error" for d in diagnostics):
                self._held = text
                return
        self._emit(text)

    async def finish(self, compile_failed: bool) -> None:
        """End the cell (its code is done): send held warnings; later ones are sent as they come.

        ``compile_failed`` says LLDB refused the cell: its error shows the warnings, so none go
        to stderr from now on.
        """
        with self._lock:
            self._running = False
            self._failed = compile_failed
            held, self._held = self._held, ""
        if compile_failed and self._asked.cancel() is not None:
            log.debug("the warnings of %s not asked: LLDB refused the cell", self._cell_name)
        elif held:
            self._emit(held)

    async def settle(self, wait: float) -> None:
        """Ask now if not asked yet (the cell has replied), and wait up to ``wait`` s for warnings not yet
        known: its idle status waits for them."""
        if self._failed:
            return
        self._asked.now()
        if not self._asked.found.done() and wait > 0:
            # asyncio.wait, not wait_for: the request goes on after this, and late warnings still count.
            await asyncio.wait({asyncio.wrap_future(self._asked.found)}, timeout=wait)
