"""The kernel's ``SourceKitLSP``, imported and made on a thread of its own once the kernel is up.

``lsp`` imports lsprotocol, about a third of a second of the kernel's start-up for a module
that neither the first kernel_info nor the first cell's code needs. ``LazySourceKitLSP`` has the
methods the kernel calls; ``begin`` (the kernel's ``start``) imports and creates the real one in
the background and starts sourcekit-lsp there, so the first Tab and the first cell's warnings
still find it started. A call that comes before it is ready waits for it without holding the
kernel's loop: ``diagnose`` returns a future at once, as the real one does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .diagnostics import SourceDiagnostic

if TYPE_CHECKING:
    from .lsp import Completion, Inspection, SourceKitLSP

Found = concurrent.futures.Future[list[SourceDiagnostic] | None]
# Python's thread switch interval while the client is imported and made (see ``_make``).
_SWITCH_INTERVAL_WHILE_MADE = 0.0002
# The same once the client is closed while still being made: for the shutdown's threads.
_SWITCH_INTERVAL_WHILE_CLOSED = 0.00001


class LazySourceKitLSP:
    """Stand in for ``lsp.SourceKitLSP`` until it is imported and made (see the module's docstring)."""

    def __init__(self, executable: str | os.PathLike[str], *, start: bool, log: logging.Logger) -> None:
        """Remember how to make it: ``start`` says whether to start sourcekit-lsp as soon as it is made."""
        self.executable = executable
        self.start_at_once = start
        self.log = log
        self._ready: concurrent.futures.Future[SourceKitLSP] = concurrent.futures.Future()
        self._lock = threading.Lock()
        self._begun = False
        self._closed = False
        # Python's thread switch interval as it was before the import (read again when ``begin``
        # starts it), put back when it is done.
        self._switch_interval = sys.getswitchinterval()

    def begin(self) -> None:
        """Import and make the real client on a background thread (once; later calls do nothing)."""
        with self._lock:
            if self._begun:
                return
            self._begun = True
            self._switch_interval = sys.getswitchinterval()
        threading.Thread(target=self._make, name="swift-lsp-import", daemon=True).start()

    def _make(self) -> None:
        # Importing lsprotocol holds the GIL for 0.3 s of Python; by default another thread of the
        # kernel gets it only every 5 ms, and the first cell (which starts meanwhile, as the Swift
        # process comes up) needs it dozens of times: 40-90 ms later to its result, measured.
        # Meanwhile this thread gives the GIL up every 0.2 ms instead.
        sys.setswitchinterval(_SWITCH_INTERVAL_WHILE_MADE)
        try:
            from .lsp import SourceKitLSP  # noqa: PLC0415 - the point of this module

            # Made and started under the lock: ``close`` either finds it made, or marks it closed
            # and returns at once, and then nothing is made (see ``close``).
            with self._lock:
                if self._closed:  # ``close`` has said so to the waiting requests
                    return
                client = SourceKitLSP(self.executable, log=self.log)
                if self.start_at_once:
                    client.start()
                self._ready.set_result(client)
        except BaseException as error:
            if not self._ready.done():
                self._ready.set_exception(error)
            raise
        finally:
            sys.setswitchinterval(self._switch_interval)

    def _client(self) -> SourceKitLSP:
        self.begin()
        return self._ready.result()

    def diagnose(self, cells: Sequence[str], code: str, beside: bool = True) -> Found:
        """As ``SourceKitLSP.diagnose``: returns at once; the future holds None if the client cannot be made."""
        self.begin()
        if self._ready.done() and self._ready.exception() is None:
            return self._ready.result().diagnose(cells, code, beside)
        found: Found = concurrent.futures.Future()
        cells = list(cells)  # the kernel's list grows meanwhile

        def ask(ready: concurrent.futures.Future[SourceKitLSP]) -> None:
            if ready.exception() is not None:
                found.set_result(None)
                return
            ready.result().diagnose(cells, code, beside).add_done_callback(
                lambda answer: found.set_result(answer.result())
            )

        self._ready.add_done_callback(ask)
        return found

    async def complete(self, cells: Sequence[str], code: str, cursor_pos: int) -> Completion:
        """As ``SourceKitLSP.complete``."""
        self.begin()
        client = await asyncio.wrap_future(self._ready)
        return await client.complete(cells, code, cursor_pos)

    async def inspect(self, cells: Sequence[str], code: str, cursor_pos: int) -> Inspection:
        """As ``SourceKitLSP.inspect``."""
        self.begin()
        client = await asyncio.wrap_future(self._ready)
        return await client.inspect(cells, code, cursor_pos)

    def set_compiler_arguments(self, arguments: Sequence[str]) -> None:
        """As ``SourceKitLSP.set_compiler_arguments`` (waits for the client to be made)."""
        self._client().set_compiler_arguments(arguments)

    def close(self) -> None:
        """As ``SourceKitLSP.close``, without waiting for a client still being imported or made.

        A shutdown (a restart) that comes while lsprotocol is still being imported used to wait
        for the import and for sourcekit-lsp to start, only to end it: 0.35-0.45 s of a restart
        right after a first cell, measured. Now the client is not made at all.

        The import cannot be stopped, though, and goes on holding the GIL 0.2 ms at a time against
        the shutdown's threads, which need it dozens of times. Until the import is done (``_make``
        then puts the interval back), a thread that waits for the GIL gets it within 10 us. (Its
        effect on a restart did not show when measured with each kernel on its own build: the
        restart call returned at 0.12-0.14 s with and without it; README, eighth look.)
        """
        with self._lock:
            made = self._ready.done()
            importing = self._begun and not made
            self._begun = self._closed = True
            if not made:  # a later request gets no client rather than a fresh sourcekit-lsp
                self._ready.set_exception(RuntimeError("code intelligence was closed"))
            if importing:
                sys.setswitchinterval(_SWITCH_INTERVAL_WHILE_CLOSED)
        if made and self._ready.exception() is None:
            self._ready.result().close()

    @property
    def warming_up(self) -> bool:
        """As ``SourceKitLSP.warming_up``; also true while a client made to start at once is still being made."""
        if not self._ready.done():
            return self.start_at_once and self._begun and not self._closed
        return self._ready.exception() is None and self._ready.result().warming_up

    @property
    def pid(self) -> int | None:
        """As ``SourceKitLSP.pid``: None until the client is made."""
        if self._ready.done() and self._ready.exception() is None:
            return self._ready.result().pid
        return None
