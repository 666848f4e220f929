"""Spawn the LLDB host process (``host.py``), importing nothing but the standard library and the package's ``__init__``.

The host's start (Python, its modules, LLDB, ``repl_swift``, the Swift set-up) is what a kernel's
first result waits for (README: Start-up and restart). ``python -m swift_kernel`` therefore spawns
it first, before it imports the kernel's own modules (0.1 s), with ``EarlyHost.begin``;
``host.HostProcess`` takes that process for its first host and talks to it as to any other.

Dependencies: the package's ``launch_arguments`` (the host starts through ``swift_kernel_launcher``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import ClassVar

from . import launch_arguments

# The host's command line; the connection's file descriptor is appended.
HOST_COMMAND = [sys.executable, *launch_arguments("swift_kernel.host")]

# Each kernel's LLDB host (and its Swift process) writes temporary files, LLDB one source file per
# expression that it never removes, into a folder of that kernel's own: removed at shutdown, and,
# for a kernel that was killed, by the next kernel that starts (``host._private_temp_dir``).
TEMP_PREFIX = "swift-kernel-tmp-"


def make_temp_dir() -> str:
    """Make this kernel's temporary folder for its hosts."""
    return tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")


@dataclass
class Spawned:
    """A host process just spawned: the process, the kernel's end of its socket, its TMPDIR."""

    process: subprocess.Popen[bytes]
    kernel_end: socket.socket
    temp_dir: str
    command: list[str]


def spawn(command: list[str], temp_dir: str) -> Spawned:
    """Start ``command`` with one end of a new socket pair (its number appended to the command)."""
    kernel_end, host_end = socket.socketpair()
    with host_end:
        # SIGINT stays blocked in the host (it inherits this thread's mask across exec): a SIGINT
        # to the kernel's process group must not reach LLDB.
        process = subprocess.Popen(
            [*command, str(host_end.fileno())],
            pass_fds=(host_end.fileno(),),
            stdin=subprocess.DEVNULL,
            # liblldb loads the Swift runtime, whose crash handler prints a report and, for a
            # SIGSEGV sent by kill(), returns: the host lived on (measured). A real segfault ended
            # it either way; without the handler both end it, at once and quietly.
            env={**os.environ, "SWIFT_BACKTRACE": "enable=no", "TMPDIR": temp_dir},
        )
    return Spawned(process, kernel_end, temp_dir, list(command))


class EarlyHost:
    """The host ``python -m swift_kernel`` spawned before anything else, until a HostProcess takes it."""

    _spawned: ClassVar[Spawned | None] = None

    @classmethod
    def begin(cls) -> None:
        """Spawn the host now (once)."""
        if cls._spawned is None:
            cls._spawned = spawn(HOST_COMMAND, make_temp_dir())

    @classmethod
    def take(cls, command: list[str]) -> Spawned | None:
        """Hand over the early host, once, to a HostProcess that runs the same ``command``."""
        spawned = cls._spawned
        if spawned is None or spawned.command != command:
            return None
        cls._spawned = None
        return spawned
