"""The kernel's own LLDB session, alone in this process: the "raw LLDB" side of the benchmarks.

Same ``repl_swift`` launch, prelude and expression options as the kernel's LLDB host
(``swift_kernel.lldb_session.LLDBSession``), with no kernel, host process or cell controller
around it. Its output pipes are read (and dropped) by the kernel's own pump.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from swift_kernel.lldb_session import LLDBSession
from swift_kernel.messages import Streams
from swift_kernel.output import OutputEvent, OutputPump
from swift_kernel.toolchain import Toolchain


def _discard(name: str, event: OutputEvent) -> None:
    pass


@contextmanager
def raw_session(toolchain: Toolchain, stdout_path: str | None = None) -> Iterator[LLDBSession]:
    """Start an LLDB session in this process, optionally with the Swift process's stdout into a file."""
    # LLDB writes one source file per expression into TMPDIR and never removes it: give it a
    # folder of this benchmark's own, removed with the session.
    temp_dir = tempfile.TemporaryDirectory(prefix="swift-kernel-bench-")
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = temp_dir.name
    tempfile.tempdir = None
    pump = OutputPump(_discard)
    streams = Streams("/dev/null", stdout_path or pump.path("stdout"), pump.path("stderr"))
    session = LLDBSession(toolchain, streams)
    try:
        session.start()
        yield session
    finally:
        session.shutdown()
        pump.close()
        temp_dir.cleanup()
        # Back as it was: later subprocesses (register.py, kernels) need a temp directory that exists.
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before
        tempfile.tempdir = None
