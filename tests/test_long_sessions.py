"""Long sessions (issue 14 item 14): LLDB keeps the code of every cell it compiled, so its memory
grows with the session (bench/long_session.py measures it beside LLDB alone). The kernel says so
once past ``SwiftKernel.host_memory_warning`` and ``%reset`` frees it, keeping installed packages,
``%env`` settings and imports.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import KernelPair, lldb_host
from .utils import execute, value

pytestmark = [pytest.mark.lldb, pytest.mark.timeout(300)]

NOTE = "Note: LLDB now uses"


def test_past_the_memory_warning_a_cell_says_so_once_until_a_reset(fresh_kernel: Callable[..., KernelPair]) -> None:
    # 1 MiB: past it from the first cell on (the fixture's warm-up cell got the note).
    _, kc = fresh_kernel(extra_arguments=["--SwiftKernel.host_memory_warning=1"])
    assert NOTE not in execute(kc, "let a = 1").stream("stderr")  # once
    assert execute(kc, "%reset").status == "ok"
    note = execute(kc, "let c = 3").stream("stderr")  # the fresh host is past it too: said again
    assert note.startswith(NOTE) and "SwiftKernel.host_memory_warning (1 MiB)" in note and "%reset frees it" in note
    assert NOTE not in execute(kc, "let d = 4").stream("stderr")


def test_no_memory_note_below_the_warning(kernel: KernelPair) -> None:
    _, kc = kernel  # the default: 4096 MiB
    assert NOTE not in execute(kc, "let below = 1").stream("stderr")


def test_reset_starts_a_fresh_lldb_keeping_imports_and_environment(kernel: KernelPair) -> None:
    km, kc = kernel
    assert execute(kc, "import Foundation\n%env SWIFT_KERNEL_TEST_GREETING=hello").status == "ok"
    assert value(kc, "var counter = 41\ncounter + 1") == "42"
    old_host = lldb_host(km).pid
    reset = execute(kc, "%reset")
    assert reset.status == "ok", reset.content
    said = reset.stream("stdout")
    assert said.startswith("%reset: a fresh LLDB host and Swift process (") and " MiB -> " in said
    assert "Kept: installed packages, %env settings, imports (Foundation)." in said
    assert "Gone: the variables, functions and types of earlier cells." in said
    assert lldb_host(km).pid != old_host
    gone = execute(kc, "counter")
    assert gone.status == "error" and "counter" in str(gone.content["evalue"])
    # Foundation without importing it again, and the %env setting in the fresh Swift process.
    greeting = 'ProcessInfo.processInfo.environment["SWIFT_KERNEL_TEST_GREETING"] ?? "none"'
    assert value(kc, greeting) == '"hello"'
    assert value(kc, "var counter = 1\ncounter") == "1"  # declared afresh, no conflict


def test_reset_takes_no_arguments(kernel: KernelPair) -> None:
    _, kc = kernel
    refused = execute(kc, "%reset now")
    assert refused.status == "error" and refused.content["evalue"] == "%reset takes no arguments"
