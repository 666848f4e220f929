"""Compiler warnings of cells, from sourcekit-lsp, through the real kernel (jupyter_client, LLDB).

Most tests share a kernel whose cells stay busy up to 30 s after their reply for the warnings
(``warnings_wait``): with the default bound a loaded machine may deliver them after the idle
status, which these tests do not read; the tests of the default's timing start kernels of their
own. The K1 reproducers of issue 15 run on a kernel with default settings: the warnings pass
once compiled every cell twice in LLDB, which registered its declarations twice.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import queue
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from .conftest import KernelPair, kernel_pid, sourcekit_lsp, start_kernel, stop_kernel
from .test_startup import gated_kernel
from .utils import count_of, execute, flush_channels, is_idle, ok, single_error, until, value

pytestmark = [pytest.mark.lldb, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def patient_kernel() -> Iterator[KernelPair]:
    """A kernel whose replies wait for the cells' warnings (up to 30 s)."""
    km, kc = start_kernel("swift", extra_arguments=["--SwiftKernel.warnings_wait=30"])
    yield km, kc
    stop_kernel(km, kc)


@pytest.fixture
def kc(patient_kernel: KernelPair) -> BlockingKernelClient:
    flush_channels(patient_kernel[1])
    return patient_kernel[1]


@pytest.fixture(scope="module")
def default_kernel() -> Iterator[KernelPair]:
    """A kernel with the default settings."""
    km, kc = start_kernel("swift")
    yield km, kc
    stop_kernel(km, kc)


def late_stream(kc: BlockingKernelClient, msg_id: str, timeout: float) -> str:
    """Return the first stream text for ``msg_id`` that iopub carries within ``timeout`` s ("" if none)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            return str(msg["content"]["text"])
    return ""


# ----- issue 15, K1: no compile of a cell registers its declarations twice ----------------------


@pytest.mark.parametrize(
    ("cells", "last", "output"),
    [
        (["struct S {}", "protocol P {}", "extension S: P {}"], "print(S() is P)", "true\n"),
        (
            [
                "extension Int { enum Kind { case negative, zero, positive }; var kind: Kind "
                "{ self == 0 ? .zero : self > 0 ? .positive : .negative } }"
            ],
            "print(3.kind, (-2).kind)",
            "positive negative\n",
        ),
        (["struct Box {}\nfunc make() -> Box { Box() }", "let b = make()"], "print(b)", "Box()\n"),
    ],
    ids=["redundant-conformance", "ambiguous-nested-type", "ambiguous-function"],
)
def test_declarations_are_registered_once(default_kernel: KernelPair, cells: list[str], last: str, output: str) -> None:
    _, kc = default_kernel
    flush_channels(kc)
    for cell in cells:
        ok(execute(kc, cell))
    assert ok(execute(kc, last)).stream("stdout") == output


# ----- the default timing: the reply does not wait for sourcekit-lsp ----------------------------


@contextlib.contextmanager
def sourcekit_lsp_stopped(km: KernelManager, kc: BlockingKernelClient) -> Iterator[None]:
    """Warm sourcekit-lsp (its first warning has come), then keep it stopped (SIGSTOP) for the block."""
    # Warm: the first warning has come, so sourcekit-lsp runs and knows the standard library.
    msg_id = kc.execute('#warning("warm")')
    assert "warning: warm" in late_stream(kc, msg_id, 60)
    servers = sourcekit_lsp(kernel_pid(km))
    assert servers
    flush_channels(kc)
    for server in servers:
        os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for server in servers:
            os.kill(server.pid, signal.SIGCONT)


def test_a_quick_cell_does_not_wait_for_its_warnings(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel()
    with sourcekit_lsp_stopped(km, kc):
        execution = ok(execute(kc, '#warning("late")\n40 + 2'))
        # The reply came (with the result) while sourcekit-lsp could not answer: nothing waited for it.
        assert execution.result == "42"
        assert execution.stream("stderr") == ""
        msg_id = execution.reply["parent_header"]["msg_id"]
    # Once sourcekit-lsp answers, the warning still goes to that cell's stderr, after its reply.
    assert "warning: late" in late_stream(kc, msg_id, 30)


def test_the_reply_does_not_wait_for_warnings_the_idle_status_does(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel(extra_arguments=["--SwiftKernel.warnings_wait=30"])
    with sourcekit_lsp_stopped(km, kc):
        msg_id = kc.execute('#warning("after the reply")\n40 + 2')
        # The reply comes while sourcekit-lsp cannot answer (before, it waited up to warnings_wait).
        reply = kc.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok"
        # The cell is still busy: its idle status waits for the warnings.
        seen = []
        with contextlib.suppress(queue.Empty):
            while True:
                seen.append(kc.get_iopub_msg(timeout=1))
        mine = [m for m in seen if m["parent_header"].get("msg_id") == msg_id]
        assert any(m["msg_type"] == "execute_result" for m in mine), mine
        assert not any(is_idle(m) for m in mine)
    # Once sourcekit-lsp answers: the warning on the cell's stderr, then its idle status.
    rest = []
    while not any(is_idle(m) for m in rest):
        msg = kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id:
            rest.append(msg)
    assert [m["msg_type"] for m in rest] == ["stream", "status"], rest
    assert "warning: after the reply" in rest[0]["content"]["text"]


def logged_since(log: Path, start: int) -> tuple[int, list[str]]:
    """Return the debug log's length in lines, and its lines from ``start`` on."""
    lines = log.read_text().splitlines()
    return len(lines), lines[start:]


def line_of(lines: list[str], text: str) -> int:
    """Return the index of the only line that holds ``text``."""
    found = [index for index, line in enumerate(lines) if text in line]
    assert len(found) == 1, (text, lines)
    return found[0]


def test_a_quick_cell_is_checked_after_its_reply_a_longer_one_while_it_runs(
    logged_kernel: tuple[KernelManager, BlockingKernelClient, Path],
) -> None:
    """``warnings_delay`` (0.05 s): asked beside LLDB's compile, a quick cell's check took the CPU its
    reply needed, so a cell done sooner is checked once its reply is out; a cell that runs longer
    is checked while it runs, and a cell LLDB refuses not at all (its error lists the warnings)."""
    _, kc, log = logged_kernel
    ok(execute(kc, "import Glibc"))
    seen, _ = logged_since(log, 0)
    cells = {
        "quick": '#warning("quick")\n40 + 2',
        "longer": '#warning("longer")\nusleep(400_000)',
        "refused": 'func refusedWarns() { var r = 1; print(r) }\nlet refused: Int = "no"',
    }
    logged = {}
    for name, code in cells.items():
        execution = execute(kc, code)
        assert execution.status == ("error" if name == "refused" else "ok"), execution.messages
        if name == "refused":
            assert execution.stream("stderr") == "", execution.messages
        else:  # before the idle status, or (a busy machine) later
            stderr = execution.stream("stderr") or late_stream(kc, execution.reply["parent_header"]["msg_id"], 30)
            assert f"warning: {name}" in stderr, (name, execution.messages)
        seen, lines = logged_since(log, seen)
        logged[name] = (count_of(execution), lines)

    number, lines = logged["quick"]
    assert line_of(lines, "execute_request answered") < line_of(lines, f"<Cell {number}> asked after its reply")
    number, lines = logged["longer"]
    assert line_of(lines, f"<Cell {number}> asked while it runs") < line_of(lines, "execute_request answered")
    number, lines = logged["refused"]
    line_of(lines, f"<Cell {number}> not asked: LLDB refused the cell")
    assert not any(f"<Cell {number}> asked" in line for line in lines), lines


def test_the_first_cell_while_sourcekit_lsp_starts_can_wait_for_its_warnings(tmp_path: Path) -> None:
    """``warnings_start_wait``: the first cell that replies while sourcekit-lsp is still starting
    waits that long for its warnings (Restart Kernel and Run All Cells: its check comes after that
    start, and would come after the cell's idle status). Here sourcekit-lsp cannot start until the
    test lets the code intelligence's import (lsprotocol) go on."""
    with gated_kernel(tmp_path, "lsprotocol", ("--SwiftKernel.warnings_start_wait=60",)) as (kc, gate):
        msg_id = kc.execute('#warning("first")\n40 + 2')
        reply = kc.get_shell_msg(timeout=60)  # the reply waits for nothing
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok", reply
        waiting = []
        with contextlib.suppress(queue.Empty):
            while True:
                waiting.append(kc.get_iopub_msg(timeout=1))
        mine = [m for m in waiting if m["parent_header"].get("msg_id") == msg_id]
        assert not any(is_idle(m) for m in mine), "the cell ended before sourcekit-lsp could start"
        gate.touch()
        after: list[dict[str, Any]] = []
        while not any(is_idle(m) for m in after):
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id:
                after.append(msg)
        streams = [m["content"]["text"] for m in after if m["msg_type"] == "stream"]
        assert any("warning: first" in text for text in streams), after


def test_without_sourcekit_lsp_cells_run_without_warnings(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel()
    for server in sourcekit_lsp(kernel_pid(km)):
        os.kill(server.pid, signal.SIGSTOP)
    try:
        execution = ok(execute(kc, '#warning("nobody answers")\n"still runs"'))
        assert execution.result == '"still runs"'
        assert execution.stream("stderr") == ""
    finally:
        for server in sourcekit_lsp(kernel_pid(km)):
            os.kill(server.pid, signal.SIGCONT)


def test_show_warnings_false_shows_none(fresh_kernel: Callable[..., KernelPair]) -> None:
    _, kc = fresh_kernel(extra_arguments=["--SwiftKernel.show_warnings=False", "--SwiftKernel.warnings_wait=30"])
    msg_id = kc.execute('#warning("hidden")')
    assert late_stream(kc, msg_id, 3) == ""


# ----- which warnings ------------------------------------------------------------------------


def test_warnings_alone_do_not_fail_a_cell(kc: BlockingKernelClient) -> None:
    execution = ok(execute(kc, '#warning("mind the gap")\nvar neverMutated = 1\nprint(neverMutated)'))
    assert execution.stream("stdout") == "1\n"


def test_warnings_go_to_stderr(kc: BlockingKernelClient) -> None:
    execution = ok(execute(kc, '#warning("mind the gap")\nlet afterWarning = 1'))
    stderr = execution.stream("stderr")
    assert f"<Cell {count_of(execution)}>:1:" in stderr and "warning: mind the gap" in stderr, execution.messages


def test_a_typical_warning_has_its_place_source_line_and_caret(kc: BlockingKernelClient) -> None:
    execution = ok(execute(kc, "func warnsOnce() { var neverMutated = 1; print(neverMutated) }"))
    n = count_of(execution)
    assert execution.stream("stderr").split("\n") == [
        f"<Cell {n}>:1:24: warning: variable 'neverMutated' was never mutated; consider changing to 'let' constant",
        "func warnsOnce() { var neverMutated = 1; print(neverMutated) }",
        "                   ~~~ ^",
        "                   let",
        "",
    ]
    # Declared, not run: nothing printed.
    assert execution.stream("stdout") == ""


def test_warnings_arrive_before_the_cells_idle_status_every_time(kc: BlockingKernelClient) -> None:
    for _ in range(5):
        execution = ok(execute(kc, '#warning("each time")'))
        streams = [m for m in execution.messages if m["msg_type"] == "stream"]
        assert [m["content"]["name"] for m in streams] == ["stderr"], execution.messages
        assert "warning: each time" in streams[0]["content"]["text"]


def test_no_warning_no_stderr(kc: BlockingKernelClient) -> None:
    for code in ("1 + 1", "let quiet = 2\nquiet", "func quietly() -> Int { 3 }", 'print("out")'):
        execution = ok(execute(kc, code))
        assert execution.stream("stderr") == "", (code, execution.messages)


def test_a_cell_with_a_warning_runs_once_and_keeps_its_values(kc: BlockingKernelClient) -> None:
    execution = ok(
        execute(
            kc,
            "var warnedTotal = 0\n"
            'func addTwice(_ n: Int) { var step = n; print("adding", step); warnedTotal += step + n }\n'
            "addTwice(20)\n"
            "warnedTotal",
        )
    )
    assert "warning: variable 'step' was never mutated" in execution.stream("stderr")
    assert execution.stream("stdout") == "adding 20\n"
    assert execution.result == "40"
    ok(execute(kc, "addTwice(1)"))
    assert value(kc, "warnedTotal") == "42"


def test_warnings_and_the_cells_output_both_arrive(kc: BlockingKernelClient) -> None:
    # They used to come first (a compile before the run); now they come when sourcekit-lsp has
    # them, in parallel with the cell: before, among or after its output.
    execution = ok(execute(kc, 'print("ran")\nfunc afterReturn() -> Int { return 1; print(2) }'))
    assert "will never be executed" in execution.stream("stderr"), execution.messages
    assert execution.stream("stdout") == "ran\n"


def test_a_cell_with_an_error_shows_its_warnings_once_in_the_error(kc: BlockingKernelClient) -> None:
    execution = execute(kc, 'func stillWarns() { var w = 1; print(w) }\nlet wrong: Int = "s"')
    error = single_error(execution)
    assert error["ename"] == "CompileError"
    assert any("warning: variable 'w' was never mutated" in entry for entry in error["traceback"])  # type: ignore[attr-defined]
    assert execution.stream("stderr") == ""


def test_warnings_of_earlier_cells_are_not_the_current_cells(kc: BlockingKernelClient) -> None:
    ok(execute(kc, '#warning("earlier")\nfunc earlierWarns() { var e = 1; print(e) }'))
    execution = ok(execute(kc, "let afterEarlier = 3"))
    assert execution.stream("stderr") == ""


def test_redeclarations_of_earlier_cells_leak_no_errors(kc: BlockingKernelClient) -> None:
    # Fine in the REPL, an error in one file: sourcekit-lsp's errors are never shown.
    for code in ("let twice = 1", "let twice = 2", "var twice = 3", "struct Again {}", "struct Again { let a = 1 }"):
        ok(execute(kc, code))
    execution = ok(execute(kc, "print(twice, Again().a)"))
    assert execution.stream("stderr") == "" and execution.stream("stdout") == "3 1\n"


def test_a_warning_while_the_cell_runs_comes_before_its_end(kc: BlockingKernelClient) -> None:
    ok(execute(kc, "import Foundation"))
    msg_id = kc.execute('#warning("during")\nThread.sleep(forTimeInterval: 3)\nprint("after")')
    streams = []
    while len(streams) < 2:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            streams.append((msg["content"]["name"], msg["content"]["text"]))
    assert streams[0][0] == "stderr" and "warning: during" in streams[0][1], streams
    assert streams[1] == ("stdout", "after\n")


def test_an_unused_result_is_the_cells_value_not_a_warning(kc: BlockingKernelClient) -> None:
    execution = ok(execute(kc, "let unusedBase = 2\nunusedBase + 1\nunusedBase * 10"))
    assert execution.result == "20"
    stderr = execution.stream("stderr")
    n = count_of(execution)
    # The middle line's value is dropped, as swiftc says; the last one is the cell's result.
    assert stderr.startswith(f"<Cell {n}>:2:12: warning: result of operator '+' is unused"), stderr
    assert f"<Cell {n}>:3:" not in stderr


def test_statements_of_earlier_cells_cost_no_later_warning(kc: BlockingKernelClient) -> None:
    # The earlier cells sit in a second file, where Swift allows no top-level statement: left in,
    # one made the program fail before the compiler found code that will never be executed.
    ok(execute(kc, "var tally = 0\ntally += 1\nprint(tally)\nfor step in 1...2 { tally += step }"))
    execution = ok(execute(kc, "func unreachableAfter() -> Int { return tally; print(2) }"))
    assert "will never be executed" in execution.stream("stderr"), execution.messages


def test_a_changed_earlier_cell_changes_a_repeated_cells_warnings(kc: BlockingKernelClient) -> None:
    # The same cell after a different earlier one: sourcekit-lsp must not answer from its cache.
    ok(execute(kc, '@available(*, deprecated, message: "retired")\nfunc retiring() -> Int { 1 }'))
    assert "'retiring()' is deprecated: retired" in ok(execute(kc, "retiring()")).stream("stderr")
    ok(execute(kc, "func retiring() -> Int { 2 }"))
    again = ok(execute(kc, "retiring()"))
    assert again.result == "2"
    assert again.stream("stderr") == "", again.messages


def autogroup(pid: int) -> list[str]:
    """Return /proc/PID/autogroup's words: the session's group, "nice", its nice value."""
    return Path(f"/proc/{pid}/autogroup").read_text().split()


def test_sourcekit_lsp_is_nicer_among_sessions_while_it_checks_a_running_cell(default_kernel: KernelPair) -> None:
    # It leads a session of its own, and under autogroup scheduling a nice value counts only inside
    # its session: a busy machine gave a cell's check an equal share beside the cell's compile.
    # Fail, never skip: this project's machines schedule by autogroup, as most distributions do.
    assert Path("/proc/sys/kernel/sched_autogroup_enabled").exists(), "no autogroup scheduling here"
    km, kc = default_kernel
    ok(execute(kc, "import Glibc"))
    with sourcekit_lsp_stopped(km, kc):
        [server] = sourcekit_lsp(kernel_pid(km))
        assert server.nice() == 10
        assert autogroup(server.pid)[0] != autogroup(kernel_pid(km))[0], "a session of its own"
        assert autogroup(server.pid)[1:] == ["nice", "0"], "between cells: completion and hover"
        # Longer than warnings_delay: checked while it runs.
        msg_id = kc.execute('#warning("checked late")\nusleep(300_000)')
        # The check is pending (within the 10 s after which the kernel restarts a server that hangs).
        until(lambda: autogroup(server.pid)[1:] == ["nice", "10"], 8)
    assert "warning: checked late" in late_stream(kc, msg_id, 30)
    until(lambda: autogroup(server.pid)[1:] == ["nice", "0"], 30)


def test_a_quick_cells_check_after_its_reply_is_not_nicer(
    logged_kernel: tuple[KernelManager, BlockingKernelClient, Path],
) -> None:
    # Nothing of the cell runs then. At the lower priority, three busy processes on this machine's
    # two cores kept the check from ending before the cell's idle status in 60 cells of 60.
    km, kc, log = logged_kernel
    with sourcekit_lsp_stopped(km, kc):
        [server] = sourcekit_lsp(kernel_pid(km))
        execution = ok(execute(kc, '#warning("after the reply")\nlet quickly = 1'))
        until(lambda: f"<Cell {count_of(execution)}> asked after its reply" in log.read_text(), 30)
        time.sleep(1)  # the LSP thread has sent the request by now (the server is stopped)
        assert autogroup(server.pid)[1:] == ["nice", "0"]
    assert "warning: after the reply" in late_stream(kc, execution.reply["parent_header"]["msg_id"], 30)


def test_sourcekit_lsp_logs_no_check(kc: BlockingKernelClient, patient_kernel: KernelPair) -> None:
    # At its default level it writes every request and answer to ~/.sourcekit-lsp/logs (the
    # passwd entry's home, not $HOME): a file per process that grows with every cell, and CPU
    # that competes with the cell's compile. The kernel starts it at level error.
    assert "warning: logged" in ok(execute(kc, '#warning("logged")\nlet loggedOnce = 1')).stream("stderr")
    [server] = sourcekit_lsp(kernel_pid(patient_kernel[0]))
    logs = Path(pwd.getpwuid(os.getuid()).pw_dir, ".sourcekit-lsp", "logs")
    written = "".join(log.read_text(errors="replace") for log in logs.glob(f"sourcekit-lsp-{server.pid}.*.log"))
    assert "textDocument/diagnostic" not in written, written[:2000]
    assert "Received request" not in written, written[:2000]
