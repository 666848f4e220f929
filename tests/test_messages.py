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
from swift_kernel.messages import (
    ENVELOPES,
    EVENTS,
    PROTOCOL_VERSION,
    REQUESTS,
    AsyncInterrupt,
    Call,
    Emit,
    Ended,
    Execute,
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
    Stop,
    SwiftProcessEnded,
)

INSTALLED = Installed(("/tmp/build/Modules",), ("/tmp/pkg/include/module.modulemap",), "/tmp/build/libjupyter.so")
REQUEST_EXAMPLES: list[Any] = [
    Init(PROTOCOL_VERSION, "/opt/swift", "/proc/1/fd/5", "/proc/1/fd/7", "/proc/1/fd/9", {"A": "é"}, INSTALLED),
    Execute(3, 'print("héllo")\n', "<Cell 3>", check_warnings=False),
    Mark(3, "time limit"),
    AsyncInterrupt(),
    Relaunch(),
    SetEnvironment("NAME", "value with spaces"),
    LoadInstalled(INSTALLED),
    ReopenStdin("/proc/1/fd/11"),
    Shutdown(),
]
EVENT_EXAMPLES: list[Any] = [Launched(100, 99), Emit("stderr", "<Cell 1>:1:5: warning: never used\n")]
# One reply value of each kind the table names.
REPLY_VALUES: list[Any] = [
    None,
    True,
    CellError("InstallError", "loading failed", ["InstallError: loading failed"]),
    Outcome(value='"text"'),
    Outcome(error=CellError("CompileError", "<Cell 1>:1:1: cannot find 'x' in scope", ["..."])),
    Outcome(stop=Stop("signal SIGINT", "signal SIGINT", (Frame("top-level code", "<Cell 2>", 3, 1),))),
    Outcome(ended=Ended("The Swift process ended while the cell ran", "A fresh Swift process...", " (exit status 1)")),
]


def examples() -> list[Any]:
    return [
        *(Call(number, request) for number, request in enumerate(REQUEST_EXAMPLES, 1)),
        *(Notice(event) for event in EVENT_EXAMPLES),
        *(Reply(number, value) for number, value in enumerate(REPLY_VALUES, 1)),
        Reply(9, None, "the Swift process could not be started"),
    ]


def test_the_examples_cover_every_message_kind_in_the_table() -> None:
    assert {type(request) for request in REQUEST_EXAMPLES} == set(REQUESTS)
    assert {type(event) for event in EVENT_EXAMPLES} == set(EVENTS)
    assert {type(message) for message in examples()} == set(ENVELOPES)
    # Every dataclass in the module is in the table (or a value carried inside a message).
    values = {Outcome, Stop, Ended, Installed}
    declared = {
        obj
        for obj in vars(messages).values()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == messages.__name__
    }
    assert declared == set(REQUESTS) | set(EVENTS) | set(ENVELOPES) | values


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
    [("call", 1, "execute", ()), Call(1, "execute"), Notice(Relaunch()), Call(1, Launched(1, 2)), {"kind": "reply"}],
    ids=["old tuple", "string request", "request as event", "event as request", "dict"],
)
def test_anything_else_is_refused(message: Any) -> None:
    with pytest.raises(ProtocolError):
        check_message(message)


def test_a_failed_request_raises_with_the_hosts_words() -> None:
    kernel_end, host_end = Pipe()
    kernel, host = Channel(kernel_end), Channel(host_end)
    future = kernel.request(Relaunch())
    call = host.recv()
    host.reply(call.id, None, "could not launch repl_swift")
    kernel.resolve(kernel.recv())
    with pytest.raises(SwiftProcessEnded, match="could not launch repl_swift"):
        future.result(5)
    kernel.close(EOFError())
    host.close(EOFError())


def test_a_host_of_another_protocol_version_refuses_the_kernel_clearly() -> None:
    kernel_end, host_end = socket.socketpair()
    with host_end:
        host = subprocess.Popen(
            [sys.executable, "-m", "swift_kernel.host", str(host_end.fileno())], pass_fds=(host_end.fileno(),)
        )
    channel = Channel(Connection(kernel_end.detach()))
    future = channel.request(Init(PROTOCOL_VERSION + 1, "/opt/swift", "/dev/null", "/dev/null", "/dev/null"))
    reply = channel.recv()
    channel.resolve(reply)
    with pytest.raises(SwiftProcessEnded, match=rf"host speaks protocol version {PROTOCOL_VERSION}, the kernel"):
        future.result(5)
    assert host.wait(timeout=30) == 2
    channel.close(EOFError())
