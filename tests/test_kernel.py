"""The kernel object in-process, with a fake LLDB host: races of ipykernel's start-up; its IOPub wakes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import zmq
from ipykernel.iostream import IOPubThread
from jupyter_client.session import Session
from traitlets import TraitError

from swift_kernel.cells import EarlyStart
from swift_kernel.kernel import CellHistory, IOPubWakes, SwiftKernel, SwiftKernelApp, log_only_what_is_shown
from swift_kernel.toolchain import find_toolchain

from .test_cells import Rig, rig

# The fake-host rig of the cell controller tests, used here as a fixture by name.
__all__ = ["rig"]


@pytest.fixture
def kernel(rig: Rig) -> Iterator[SwiftKernel]:
    """A SwiftKernel whose cells run on the fake host of test_cells, never started by ipykernel."""
    started: Future[None] = Future()
    started.set_result(None)
    thread = ThreadPoolExecutor(max_workers=1)
    toolchain = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
    EarlyStart._pending = EarlyStart(rig.controller, toolchain, thread, started)
    sigint = signal.getsignal(signal.SIGINT)
    log = logging.getLogger("test-kernel")
    kernel = SwiftKernel(session=Session(key=b"secret"), log=log, start_code_intelligence=False)
    try:
        yield kernel
    finally:
        signal.signal(signal.SIGINT, sigint)  # the kernel sets it for its own process
        kernel._install_dir.cleanup()
        thread.shutdown(wait=False)


def sent_by(kernel: SwiftKernel) -> list[dict[str, Any]]:
    """Record every message the kernel sends from now on (no sockets here: they are only built)."""
    sent: list[dict[str, Any]] = []
    send = kernel.session.send

    def record(stream: Any, msg_or_type: Any, *args: Any, **kwargs: Any) -> Any:
        message = send(stream, msg_or_type, *args, **kwargs)
        sent.append(message)
        return message

    kernel.session.send = record  # type: ignore[method-assign]
    return sent


def test_an_interrupt_during_start_up_is_answered(kernel: SwiftKernel) -> None:
    """ipykernel takes control messages before its start() creates their lock: one then got no reply."""
    sent = sent_by(kernel)
    request = kernel.session.msg("interrupt_request", {})
    frames = [zmq.Frame(part) for part in kernel.session.serialize(request)]
    asyncio.run(kernel.dispatch_control(frames))
    replies = [m for m in sent if m["msg_type"] == "interrupt_reply"]
    assert [r["parent_header"]["msg_id"] for r in replies] == [request["header"]["msg_id"]]
    assert replies[0]["content"]["status"] == "ok"


def test_only_the_first_cell_after_a_start_waits_longer_for_its_warnings(kernel: SwiftKernel) -> None:
    """While sourcekit-lsp starts, one cell waits for its warnings (``warnings_start_wait``); the others as usual."""

    class Starting:  # a stand-in for the code intelligence, as it is while sourcekit-lsp warms up
        warming_up = True

    kernel.code_intelligence = Starting()  # type: ignore[assignment]
    kernel.warnings_wait, kernel.warnings_start_wait = 0.05, 2.0
    assert [kernel._warnings_wait_now() for _ in range(3)] == [2.0, 0.05, 0.05]


def test_no_cell_waits_longer_for_its_warnings_once_sourcekit_lsp_has_started(kernel: SwiftKernel) -> None:
    class Started:
        warming_up = False

    kernel.code_intelligence = Started()  # type: ignore[assignment]
    kernel.warnings_wait, kernel.warnings_start_wait = 0.05, 2.0
    assert [kernel._warnings_wait_now() for _ in range(2)] == [0.05, 0.05]


def test_a_cell_timeout_past_thirty_days_is_refused_at_start() -> None:
    # Python's timers cannot wait that long: the limit used to be silently no limit at all.
    with pytest.raises(TraitError, match="30 days"):
        SwiftKernel(cell_timeout=1e10)


def test_the_app_logger_drops_at_once_what_no_handler_shows() -> None:
    # traitlets leaves the level to the handlers: each of ipykernel's debug calls built a record.
    app = SwiftKernelApp()
    assert app.log.isEnabledFor(logging.DEBUG)
    log_only_what_is_shown(app)
    assert not app.log.isEnabledFor(logging.DEBUG)
    assert app.log.isEnabledFor(logging.WARNING)
    verbose = SwiftKernelApp(log_level=logging.DEBUG)  # --debug: everything still shows
    log_only_what_is_shown(verbose)
    assert verbose.log.isEnabledFor(logging.DEBUG)


def test_the_cell_history_keeps_the_cells_that_declare_as_they_come() -> None:
    history = CellHistory()
    for code in ("let x = 41", "x + 1", "print(x)", "func twice(_ n: Int) -> Int { 2 * n }"):
        history.append(code)
    assert history == ["let x = 41", "x + 1", "print(x)", "func twice(_ n: Int) -> Int { 2 * n }"]
    assert history.declaring == ["let x = 41", "func twice(_ n: Int) -> Int { 2 * n }"]
    history.clear()
    history.append("import Foundation")
    assert history == history.declaring == ["import Foundation"]


@pytest.fixture
def iopub() -> Iterator[tuple[IOPubThread, zmq.Socket[bytes]]]:
    """ipykernel's IOPub thread on an inproc XPUB socket, and a subscriber reading it."""
    context = zmq.Context()
    publisher = context.socket(zmq.XPUB)
    publisher.bind("inproc://iopub-wakes")
    subscriber = context.socket(zmq.SUB)
    subscriber.connect("inproc://iopub-wakes")
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    thread = IOPubThread(publisher)
    thread.start()
    try:
        yield thread, subscriber
    finally:
        thread.stop()
        thread.close()
        subscriber.close()
        context.term()


def received(subscriber: zmq.Socket[bytes], wait: float) -> list[bytes]:
    """Return what the subscriber gets within ``wait`` seconds of quiet."""
    got = []
    while subscriber.poll(int(wait * 1000)):
        got.append(subscriber.recv())
    return got


def test_a_deferred_message_waits_for_the_wake_and_keeps_its_place(iopub: tuple[IOPubThread, Any]) -> None:
    thread, subscriber = iopub
    wakes = IOPubWakes(thread)
    socket = thread.background_socket
    with wakes.deferred():
        socket.send(b"busy")
        socket.send(b"execute_input")
    assert received(subscriber, 0.3) == []  # queued, the IOPub thread not woken
    # The executing thread wakes it once the cell is on its way to LLDB.
    executing = threading.Thread(target=wakes.wake)
    executing.start()
    executing.join(5)
    assert received(subscriber, 0.3) == [b"busy", b"execute_input"]
    with wakes.deferred():
        socket.send(b"busy again")
    socket.send(b"output")  # any publish that wakes the thread sends what waits first
    assert received(subscriber, 0.3) == [b"busy again", b"output"]
    wakes.wake()  # owed no more: nothing is sent twice
    assert received(subscriber, 0.3) == []
