"""The shell channel never strands a request (ipykernel 7's raw reply send, ipykernel#1554).

The installed ipykernel's own classes are used as the kernel app wires them; the strand is made
deterministic with raw zmq calls on the loop thread, as ipykernel#1529's regression test does:
a request is queued on the ROUTER and its read edge consumed before the stream saw it, then a
reply goes out through the shell channel's real send path. The request must still be delivered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import zmq
from ipykernel.shellchannel import ShellChannelThread
from zmq.eventloop.zmqstream import ZMQStream

from swift_kernel.kernel import send_shell_replies_through_stream

TIMEOUT = 10.0


def on_loop(loop: Any, work: Callable[[], Any]) -> Any:
    """Run ``work`` on ``loop``'s thread and return its result (or raise its exception)."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["result"] = work()
        except Exception as error:  # noqa: BLE001 (raised again in the caller)
            box["error"] = error
        finally:
            done.set()

    loop.add_callback(run)
    assert done.wait(TIMEOUT), "the shell channel loop did not run the callback"
    if "error" in box:
        raise box["error"]
    return box.get("result")


def test_a_request_arriving_during_a_reply_is_delivered() -> None:
    context: zmq.Context[Any] = zmq.Context()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    client = context.socket(zmq.DEALER)
    client.setsockopt(zmq.IDENTITY, b"client")
    client.connect(f"tcp://127.0.0.1:{port}")
    # As IPKernelApp.init_sockets and init_kernel do, and then the kernel's __init__.
    thread = ShellChannelThread(context, router, daemon=True)
    stream = ZMQStream(router, thread.io_loop)
    send_shell_replies_through_stream(thread, stream)
    manager = thread.manager
    thread.start()
    received: list[list[bytes]] = []
    arrived = threading.Event()

    def on_recv(frames: list[bytes]) -> None:
        received.append(frames)
        arrived.set()

    try:
        on_loop(thread.io_loop, lambda: stream.on_recv(on_recv, copy=True))
        client.send_multipart([b"first"])  # teaches the ROUTER the client's route
        assert arrived.wait(TIMEOUT)
        route = received[0][0]
        received.clear()
        arrived.clear()

        def strand_then_reply() -> None:
            client.send_multipart([b"second"])
            deadline = time.monotonic() + TIMEOUT
            while not router.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # consumes the read edge
                assert time.monotonic() < deadline, "the request never reached the ROUTER"
            assert not arrived.is_set()
            manager._send_on_shell_channel([route, b"reply"])

        on_loop(thread.io_loop, strand_then_reply)
        assert arrived.wait(TIMEOUT), "the request that arrived during the reply was never read"
        assert received[-1][-1] == b"second"
        assert client.poll(int(TIMEOUT * 1000)) and client.recv_multipart() == [b"reply"]
    finally:
        on_loop(thread.io_loop, stream.close)
        thread.stop()
        thread.join(TIMEOUT)
        client.close(linger=0)
        router.close(linger=0)
        context.term()


def test_needed_only_where_replies_go_raw() -> None:
    class Fixed:  # an ipykernel with ipykernel#1529: no raw socket kept on the thread
        _manager = None

    assert send_shell_replies_through_stream(Fixed(), object()) is False
    assert send_shell_replies_through_stream(None, object()) is False


if __name__ == "__main__":
    pytest.main([__file__])
