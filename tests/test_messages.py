"""The kernel-host protocol: every message kind round-trips, unknown ones are refused, versions are checked."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

import pytest

from swift_kernel import messages
from swift_kernel.diagnostics import CellError, Frame
from swift_kernel.host import Channel, ProtocolError, check_message

STREAMS = messages.Streams("/proc/1/fd/9", "/proc/1/fd/5", "/proc/1/fd/7")
INSTALLED = messages.Installed(
    ("/tmp/build/Modules",), ("/tmp/pkg/include/module.modulemap",), "/tmp/build/libjupyter.so"
)
REQUEST_EXAMPLES: list[Any] = [
    messages.Init(messages.PROTOCOL_VERSION, "/opt/swift", STREAMS, {"A": "é"}, INSTALLED),
    messages.Execute(3, 'print("héllo")\n', "<Cell 3>", safe_points=False),
    messages.Mark(3, "time limit"),
    messages.AsyncInterrupt(),
    messages.Relaunch(),
    messages.SetEnvironment("NAME", "value with spaces"),
    messages.LoadInstalled(INSTALLED),
    messages.ReopenStdin("/proc/1/fd/11"),
    messages.Globals(),
    messages.Evaluate(4, "origin.x + 1", "<expression x>"),
    messages.Debug("setBreakpoints", {"source": {"path": "/tmp/cells/1.swift"}, "breakpoints": [{"line": 2}]}),
    messages.Shutdown(),
]
EVENT_EXAMPLES: list[Any] = [
    messages.Launched(100, 99),
    messages.Emit("stderr", "<Cell 1>:1:5: warning: never used\n"),
    messages.DebugEvent("stopped", {"reason": "breakpoint", "threadId": 7, "allThreadsStopped": True}),
]
# One reply value of each kind the table names.
REPLY_VALUES: list[Any] = [
    None,
    True,
    CellError("InstallError", "loading failed", ["InstallError: loading failed"]),
    messages.Outcome(value='"text"'),
    (messages.Global("origin", "Point", "Point(x: 1, y: 2)"), messages.Global("π", "Double", "3.14")),
    messages.Outcome(error=CellError("CompileError", "<Cell 1>:1:1: cannot find 'x' in scope", ["..."])),
    messages.Outcome(stop=messages.Stop("signal SIGINT", "signal SIGINT", (Frame("top-level code", "<Cell 2>", 3),))),
    messages.Outcome(stop=messages.Stop("signal SIGILL: illegal operand", "", reported_by_runtime=True)),
    messages.Outcome(thrown=messages.Thrown("E", "bad(5)")),
    messages.Outcome(ended=messages.Ended("The Swift process ended", "A fresh Swift process...", " (exit status 1)")),
    {"stackFrames": [{"id": 1, "name": "f(_:)", "line": 3}], "totalFrames": 1},
]


def examples() -> list[Any]:
    return [
        *(messages.Call(number, request) for number, request in enumerate(REQUEST_EXAMPLES, 1)),
        *(messages.Notice(event) for event in EVENT_EXAMPLES),
        *(messages.Reply(number, value) for number, value in enumerate(REPLY_VALUES, 1)),
        messages.Reply(9, None, "the Swift process could not be started"),
    ]


def test_the_examples_cover_every_message_kind_in_the_table() -> None:
    assert {type(request) for request in REQUEST_EXAMPLES} == set(messages.REQUESTS)
    assert {type(event) for event in EVENT_EXAMPLES} == set(messages.EVENTS)
    assert {type(message) for message in examples()} == set(messages.ENVELOPES)
    # Every dataclass in the module is in the table (or a value carried inside a message).
    values = {
        messages.Outcome,
        messages.Stop,
        messages.Thrown,
        messages.Ended,
        messages.Installed,
        messages.Streams,
        messages.Global,
    }
    declared = {
        obj
        for obj in vars(messages).values()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == messages.__name__
    }
    assert declared == set(messages.REQUESTS) | set(messages.EVENTS) | set(messages.ENVELOPES) | values


def kind(message: Any) -> str:
    return type(getattr(message, "request", getattr(message, "event", message))).__name__


@pytest.mark.parametrize("message", examples(), ids=kind)
def test_every_message_round_trips_through_the_connection(message: Any) -> None:
    kernel_end, host_end = Pipe()
    sender, receiver = Channel(kernel_end), Channel(host_end)
    sender.send(message)
    assert receiver.recv() == message
    sender.close(EOFError())
    receiver.close(EOFError())


@pytest.mark.parametrize(
    "message",
    [
        ("call", 1, "execute", ()),
        messages.Call(1, "execute"),
        messages.Notice(messages.Relaunch()),
        messages.Call(1, messages.Launched(1, 2)),
        {"kind": "reply"},
    ],
    ids=["old tuple", "string request", "request as event", "event as request", "dict"],
)
def test_anything_else_is_refused(message: Any) -> None:
    with pytest.raises(ProtocolError):
        check_message(message)


def test_a_failed_request_raises_with_the_hosts_words() -> None:
    kernel_end, host_end = Pipe()
    kernel, host = Channel(kernel_end), Channel(host_end)
    future = kernel.request(messages.Relaunch())
    call = host.recv()
    host.reply(call.id, None, "could not launch repl_swift")
    kernel.resolve(kernel.recv())
    with pytest.raises(messages.SwiftProcessEnded, match="could not launch repl_swift"):
        future.result(5)
    kernel.close(EOFError())
    host.close(EOFError())


def test_a_reply_that_cannot_be_pickled_fails_its_request_and_the_channel_goes_on() -> None:
    kernel_end, host_end = Pipe()
    kernel, host = Channel(kernel_end), Channel(host_end)
    unpicklable, fine = kernel.request(messages.Globals()), kernel.request(messages.Globals())
    first, second = host.recv(), host.recv()
    host.reply(first.id, lambda: None)  # nothing half-sent: the next reply still reads
    host.reply(second.id, ())
    kernel.resolve(kernel.recv())
    kernel.resolve(kernel.recv())
    with pytest.raises(messages.SwiftProcessEnded, match="unpicklable reply <function"):
        unpicklable.result(5)
    assert fine.result(5) == ()
    kernel.close(EOFError())
    host.close(EOFError())


def test_a_host_of_another_protocol_version_refuses_the_kernel_clearly() -> None:
    kernel_end, host_end = socket.socketpair()
    with host_end:
        host = subprocess.Popen(
            [sys.executable, "-m", "swift_kernel.host", str(host_end.fileno())], pass_fds=(host_end.fileno(),)
        )
    channel = Channel(Connection(kernel_end.detach()))
    future = channel.request(messages.Init(messages.PROTOCOL_VERSION + 1, "/opt/swift", STREAMS))
    reply = channel.recv()
    channel.resolve(reply)
    expected = rf"host speaks protocol version {messages.PROTOCOL_VERSION}, the kernel"
    with pytest.raises(messages.SwiftProcessEnded, match=expected):
        future.result(5)
    assert host.wait(timeout=30) == 2
    channel.close(EOFError())
