"""The least an ipykernel-based kernel can do: answer every cell with ``2`` at once.

bench/latency.py times its round trip as the floor that ipykernel's message handling puts under
any kernel built on it, the Swift kernel included.

With ``NULL_KERNEL_HOP=1`` in its environment it first takes each cell the way the Swift kernel
takes a cell to its LLDB host, with nothing done at the other end: from the event loop to a worker
thread, over a socket pair (``multiprocessing.connection``, pickled) to a child process's reader
thread, which hands it to the child's main thread, whose answer comes back through the kernel's
reader thread to the worker and the loop. That is the floor of a kernel whose code runs in a
process of its own.

It runs ipykernel as the Swift kernel runs it, so that the floor is the one the Swift kernel stands
on: shell requests read on the main thread (ipykernel 7's shell channel thread, there for
subshells, dropped as in ``SwiftKernelApp.init_control``: 0.2-0.4 ms a cell), no 0.5 ms sleep
before each reply (``_execute_sleep``) and the kernel's ``OutStream``, whose flush returns at once
when nothing waits (ipykernel flushes stdout and stderr twice a cell, each a round trip to its
IOPub thread: about 1 ms a cell here), and a logger that drops the debug records nobody sees
(``log_only_what_is_shown``).

    python bench/null_kernel.py -f CONNECTION_FILE
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel
from traitlets import DottedObjectName, Float

# swift_kernel, for its OutStream: this script runs from the checkout, not as a package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _child(connection: Connection) -> None:
    """Answer every message: read on a thread, answered from the main thread (the LLDB host's shape)."""
    calls: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        while True:
            try:
                calls.put(connection.recv())
            except EOFError:
                os._exit(0)

    threading.Thread(target=read, daemon=True).start()
    while True:
        connection.send(("reply", calls.get()[1]))


class Hop:
    """The kernel's end: requests from a worker thread, replies resolved by a reader thread."""

    def __init__(self) -> None:
        self._connection, child_end = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(target=_child, args=(child_end,), daemon=True)
        self.process.start()
        self._waiting: dict[int, Future[Any]] = {}
        self._ids = 0
        self._lock = threading.Lock()
        self.worker = ThreadPoolExecutor(max_workers=1)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            _, request_id = self._connection.recv()
            with self._lock:
                future = self._waiting.pop(request_id)
            future.set_result(request_id)

    def round_trip(self) -> Any:
        future: Future[Any] = Future()
        with self._lock:
            self._ids += 1
            self._waiting[self._ids] = future
            self._connection.send(("call", self._ids))
        return future.result()


class NullKernel(Kernel):
    """Reply to execute_request with a constant result and nothing else."""

    implementation = "null"
    implementation_version = "1"
    banner = "null kernel"
    language_info = {"name": "text", "mimetype": "text/plain", "file_extension": ".txt"}  # noqa: RUF012 - ipykernel's shape
    _execute_sleep = Float(0.0)  # as SwiftKernel's

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hop = Hop() if os.environ.get("NULL_KERNEL_HOP") == "1" else None

    async def do_execute(  # type: ignore[override]
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        *,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        if self._hop is not None:
            await asyncio.get_running_loop().run_in_executor(self._hop.worker, self._hop.round_trip)
        if not silent:
            content = {"execution_count": self.execution_count, "data": {"text/plain": "2"}, "metadata": {}}
            self.send_response(self.iopub_socket, "execute_result", content)
        return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}


class NullKernelApp(IPKernelApp):
    """ipykernel's application as the Swift kernel's runs it: the kernel's OutStream, no shell channel thread."""

    outstream_class = DottedObjectName("swift_kernel.kernel.OutStream")

    def init_control(self, context: Any) -> None:
        super().init_control(context)
        from swift_kernel.kernel import drop_shell_channel_thread

        drop_shell_channel_thread(self)

    def init_kernel(self) -> None:
        from swift_kernel.kernel import log_only_what_is_shown, send_at_once

        log_only_what_is_shown(self)
        super().init_kernel()
        send_at_once(self.kernel.shell_stream)


if __name__ == "__main__":
    NullKernelApp.launch_instance(kernel_class=NullKernel)
