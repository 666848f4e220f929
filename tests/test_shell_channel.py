"""Shell requests are read on the kernel's main thread, and none is ever stranded.

ipykernel 7 reads the shell socket on a thread of its own, for subshells, and hands each request
to the main thread and each reply back over inproc sockets. This kernel offers no subshells and
drops that thread (``SwiftKernelApp.init_control``): two thread hops less per request. Replies
then go out through the shell ZMQStream, as before ipykernel 7; ipykernel 7.0-7.3's thread sent
them raw on the socket the stream reads, which could leave a request unread (ipykernel#1554).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq
from tornado.ioloop import IOLoop
from zmq.eventloop.zmqstream import ZMQStream

from swift_kernel.kernel import SwiftKernelApp, send_at_once

TIMEOUT = 10.0


def test_the_app_has_no_shell_channel_thread(tmp_path: Path) -> None:
    app = SwiftKernelApp(connection_file=str(tmp_path / "kernel.json"))
    context: zmq.Context[Any] = zmq.Context()
    app.shell_socket = context.socket(zmq.ROUTER)
    app.shell_socket.bind_to_random_port("tcp://127.0.0.1")
    try:
        app.init_control(context)  # where ipykernel 7 makes the thread, sockets bound early or not
        assert app.shell_channel_thread is None
        assert app.control_thread is not None  # interrupts keep their own thread
    finally:
        for socket in (app.shell_socket, app.control_socket, app.debugpy_socket, app.debug_shell_socket):
            socket.close(linger=0)
        context.term()


class LoopThread:
    """A tornado IOLoop on a thread of its own, standing in for the kernel's main loop."""

    def __init__(self) -> None:
        ready = threading.Event()
        self._box: dict[str, Any] = {}

        def run() -> None:
            self.loop = IOLoop(make_current=False)
            ready.set()
            self.loop.start()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(TIMEOUT)

    def call(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` on the loop's thread and return its result."""
        done = threading.Event()

        def run() -> None:
            try:
                self._box["result"] = work()
            finally:
                done.set()

        self.loop.add_callback(run)
        assert done.wait(TIMEOUT), "the loop did not run the callback"
        return self._box.pop("result", None)

    def stop(self) -> None:
        self.loop.add_callback(self.loop.stop)
        self._thread.join(TIMEOUT)


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@dataclass
class Routed:
    """A ROUTER socket read through a ZMQStream on the loop, and a DEALER client of it."""

    router: zmq.Socket[Any]
    client: zmq.Socket[Any]
    stream: ZMQStream
    # Every message the stream delivered, and an event set at each.
    received: list[list[bytes]]
    arrived: threading.Event


@contextmanager
def routed(loop: LoopThread) -> Iterator[Routed]:
    """A shell socket as the kernel reads it: a ROUTER's stream on the loop, with one client."""
    context: zmq.Context[Any] = zmq.Context()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    client = context.socket(zmq.DEALER)
    client.setsockopt(zmq.IDENTITY, b"client")
    client.connect(f"tcp://127.0.0.1:{port}")
    received: list[list[bytes]] = []
    arrived = threading.Event()

    def on_recv(frames: list[bytes]) -> None:
        received.append(frames)
        arrived.set()

    stream: ZMQStream = loop.call(lambda: ZMQStream(router, loop.loop))
    try:
        loop.call(lambda: stream.on_recv(on_recv, copy=True))
        yield Routed(router, client, stream, received, arrived)
    finally:
        loop.call(stream.close)
        client.close(linger=0)
        router.close(linger=0)
        context.term()


def test_a_request_arriving_during_a_reply_is_delivered(loop: LoopThread) -> None:
    """The race of ipykernel#1554, on the path this kernel's replies take: the shell stream."""
    with routed(loop) as shell:
        shell.client.send_multipart([b"first"])  # teaches the ROUTER the client's route
        assert shell.arrived.wait(TIMEOUT)
        route = shell.received[0][0]
        shell.received.clear()
        shell.arrived.clear()

        def strand_then_reply() -> None:
            shell.client.send_multipart([b"second"])
            deadline = time.monotonic() + TIMEOUT
            while not shell.router.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # consumes the read edge
                assert time.monotonic() < deadline, "the request never reached the ROUTER"
            assert not shell.arrived.is_set()
            # ipykernel's reply without a shell channel thread: through the stream, then a flush.
            shell.stream.send_multipart([route, b"reply"])
            shell.stream.flush(zmq.POLLOUT)

        loop.call(strand_then_reply)
        assert shell.arrived.wait(TIMEOUT), "the request that arrived during the reply was never read"
        assert shell.received[-1][-1] == b"second"
        assert shell.client.poll(int(TIMEOUT * 1000)) and shell.client.recv_multipart() == [b"reply"]


def test_a_reply_goes_out_before_the_loop_turns(loop: LoopThread) -> None:
    """``send_at_once``: a reply leaves while its handler still runs, not when the loop next polls."""
    with routed(loop) as shell:
        send_at_once(shell.stream)
        shell.client.send_multipart([b"request"])
        assert shell.arrived.wait(TIMEOUT)

        def reply_then_keep_working() -> bool:
            # A handler that replied and goes on (ipykernel's idle status, the debug log) without
            # giving the loop a turn: the client has the reply meanwhile.
            shell.stream.send_multipart([shell.received[0][0], b"reply"])
            return bool(shell.client.poll(int(TIMEOUT * 1000)))

        assert loop.call(reply_then_keep_working), "the reply waited for the loop's next turn"
        assert shell.client.recv_multipart() == [b"reply"]
