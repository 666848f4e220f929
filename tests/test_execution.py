"""Swift cells through the real kernel: state, output, results, errors, crashes, process loss, bad input.

Everything goes through jupyter_client to the installed ``swift`` kernelspec, with a real LLDB and
Swift process. Most tests share one module-scoped kernel and make their own variables, so they do
not depend on each other; the tests that end the Swift process come last in the file, and the
tests that need a clean process table start their own kernel.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from swift_kernel.toolchain import find_toolchain

from .conftest import KernelPair, descendants, kernel_pid, named
from .utils import (
    IN_A_TASK,
    OTHER_THREAD,
    Execution,
    collect,
    count_of,
    execute,
    flush_channels,
    gone,
    is_idle,
    ok,
    single_error,
    value,
)

pytestmark = [pytest.mark.lldb, pytest.mark.timeout(60)]

EMOJI = "\U0001f600"
# How a traceback line names a place in a cell, e.g. "top-level code at <Cell 12>:3".
CELL_FRAME = re.compile(r" at <Cell (\d+)>:(\d+)$")


def cell_frame_lines(error: dict[str, object]) -> list[str]:
    """Return the traceback lines of an error that name a place in a cell."""
    return [line for line in error["traceback"] if CELL_FRAME.search(line)]  # type: ignore[attr-defined]


def swift_processes(km: KernelManager) -> dict[str, psutil.Process]:
    """Return the kernel's ``lldb-server`` and ``repl_swift`` processes by name."""
    found = named(descendants(kernel_pid(km)), "lldb-server", "repl_swift")
    return {process.name(): process for process in found if process.is_running()}


# ----- state across cells -------------------------------------------------------------------------


def test_lets_vars_and_funcs_persist(kc: BlockingKernelClient) -> None:
    ok(execute(kc, "let base = 10\nvar counter = 1\nfunc twice(_ n: Int) -> Int { n * 2 }"))
    ok(execute(kc, "counter += base"))
    assert value(kc, "twice(counter)") == "22"
    assert value(kc, "base") == "10"


def test_imports_persist(kc: BlockingKernelClient) -> None:
    ok(execute(kc, "import Foundation"))
    assert value(kc, '"a,b,c".components(separatedBy: ",")') == '["a", "b", "c"]'


def test_regex_literals_work_and_division_still_does(kc: BlockingKernelClient) -> None:
    # Swift 6's bare /regex/ literals (LLDB needs target.experimental.swift-enable-bare-slash-regex).
    assert value(kc, 'let digits = /[0-9]+/\n"ab123cd".firstMatch(of: digits)!.output') == '"123"'
    assert value(kc, "let (p, q) = (100, 5)\np / q / 2") == "10"


def test_extensions_persist(kc: BlockingKernelClient) -> None:
    ok(execute(kc, "extension Int {\n    var doubled: Int { self * 2 }\n}"))
    assert value(kc, "21.doubled") == "42"


def test_types_persist_and_a_redefined_struct_replaces_the_old_one(kc: BlockingKernelClient) -> None:
    ok(execute(kc, "struct Shape { var sides: Int }"))
    assert value(kc, "Shape(sides: 3)") == "Shape(sides: 3)"
    ok(execute(kc, "struct Shape { var name: String }"))
    assert value(kc, 'Shape(name: "square")') == 'Shape(name: "square")'


def test_a_redefined_func_replaces_the_old_one(kc: BlockingKernelClient) -> None:
    ok(execute(kc, "func version() -> Int { 1 }"))
    assert value(kc, "version()") == "1"
    ok(execute(kc, "func version() -> Int { 2 }"))
    assert value(kc, "version()") == "2"


def test_classes_keep_their_identity_across_cells(kc: BlockingKernelClient) -> None:
    ok(execute(kc, "final class Box { var items: [Int] = [] }\nlet box = Box()"))
    ok(execute(kc, "box.items.append(1)"))
    ok(execute(kc, "box.items.append(2)"))
    assert value(kc, "box.items") == "[1, 2]"


# ----- cell names ---------------------------------------------------------------------------------


def test_diagnostics_name_the_cell_by_its_execution_count(kc: BlockingKernelClient) -> None:
    for _ in range(2):
        execution = execute(kc, 'let named: Int = "text"')
        error = single_error(execution)
        assert str(error["evalue"]).startswith(f"<Cell {count_of(execution)}>:1:"), error


def test_directive_lines_keep_the_cells_line_numbers(kc: BlockingKernelClient) -> None:
    execution = execute(kc, '%timeout off\n\nlet lined: Int = "text"')
    assert str(single_error(execution)["evalue"]).startswith(f"<Cell {count_of(execution)}>:3:18:")


def test_runtime_frames_name_the_cell_by_its_execution_count(kc: BlockingKernelClient) -> None:
    execution = execute(kc, '\n\nfatalError("third line")')
    traceback = [str(line) for line in single_error(execution)["traceback"]]  # type: ignore[attr-defined]
    assert f"  top-level code at <Cell {count_of(execution)}>:3" in traceback, traceback


# ----- output -------------------------------------------------------------------------------------


def test_stdout_and_stderr_are_separate_streams(kc: BlockingKernelClient) -> None:
    execution = ok(
        execute(
            kc, 'import Glibc\nprint("out 1")\nfputs("err 1\\n", stderr)\nprint("out 2")\nfputs("err 2\\n", stderr)'
        )
    )
    assert execution.stream("stdout") == "out 1\nout 2\n"
    assert execution.stream("stderr") == "err 1\nerr 2\n"


def test_many_lines_arrive_complete_and_in_order(kc: BlockingKernelClient) -> None:
    execution = ok(execute(kc, 'for i in 0..<5000 { print("line \\(i)") }'))
    assert execution.stream("stdout") == "".join(f"line {i}\n" for i in range(5000))
    # Coalesced: a burst is a few messages, not one per line.
    assert len(execution.of_type("stream")) < 100


def test_output_arrives_while_the_cell_runs(kc: BlockingKernelClient) -> None:
    ok(execute(kc, "import Glibc"))
    sent = time.monotonic()
    msg_id = kc.execute('print("first")\nsleep(3)\nprint("second")')
    streams: list[tuple[float, str]] = []
    while True:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            streams.append((time.monotonic() - sent, msg["content"]["text"]))
        if is_idle(msg):
            idle_at = time.monotonic() - sent
            break
    reply = kc.get_shell_msg(timeout=10)
    assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok"
    assert "".join(text for _, text in streams) == "first\nsecond\n"
    first_at = streams[0][0]
    assert streams[0][1] == "first\n", streams
    # The first line came while the cell slept, long before the reply, not with it at the end.
    assert first_at < 1.5, streams
    assert idle_at >= 3.0 and idle_at - first_at > 2.0, (first_at, idle_at)


def test_output_without_newline_stays_in_its_cell(kc: BlockingKernelClient) -> None:
    import_glibc = ok(execute(kc, "import Glibc"))
    assert import_glibc.stream("stdout") == ""
    first = ok(execute(kc, 'print("x", terminator: "")\nfputs("e", stderr)'))
    second = ok(execute(kc, 'print("y")'))
    assert (first.stream("stdout"), first.stream("stderr")) == ("x", "e")
    assert (second.stream("stdout"), second.stream("stderr")) == ("y\n", "")


def test_output_before_a_crash_belongs_to_the_crashing_cell(kc: BlockingKernelClient) -> None:
    crashed = execute(kc, 'print("before the crash", terminator: "")\nfatalError("down")')
    assert crashed.status == "error"
    assert crashed.stream("stdout") == "before the crash"
    after = ok(execute(kc, 'print("after")'))
    assert after.stream("stdout") == "after\n"
    assert after.stream("stderr") == ""


def test_character_split_across_writes_survives(kc: BlockingKernelClient) -> None:
    code = (
        "import Glibc\n"
        'for byte in Array("' + EMOJI + '".utf8) {\n'
        "    var one = byte\n"
        "    write(1, &one, 1)\n"
        "    usleep(60_000)\n"
        "}\n"
        'print("")'
    )
    execution = ok(execute(kc, code))
    assert execution.stream("stdout") == EMOJI + "\n"


def test_invalid_utf8_becomes_replacement_characters(kc: BlockingKernelClient) -> None:
    execution = ok(
        execute(kc, "import Glibc\nvar raw: [UInt8] = [0x61, 0xFF, 0xFE, 0x62, 0x0A]\n_ = write(1, &raw, raw.count)")
    )
    assert execution.stream("stdout") == "a\ufffd\ufffdb\n"


def test_truncated_character_at_the_end_of_a_cell(kc: BlockingKernelClient) -> None:
    partial = "[" + ", ".join(f"0x{b:02X}" for b in EMOJI.encode()[:2]) + "]"
    first = ok(execute(kc, f"import Glibc\nvar half: [UInt8] = {partial}\n_ = write(2, &half, half.count)"))
    second = ok(execute(kc, 'fputs("next\\n", stderr)'))
    assert first.stream("stderr") == "\ufffd"
    assert second.stream("stderr") == "next\n"


def test_nul_bytes_become_replacement_characters(kc: BlockingKernelClient) -> None:
    execution = ok(execute(kc, 'print("nul\\0byte")'))
    assert execution.stream("stdout") == "nul\ufffdbyte\n"


def test_clear_screen_becomes_clear_output(kc: BlockingKernelClient) -> None:
    execution = ok(execute(kc, 'print("old")\nprint("\\u{1B}[2J", terminator: "")\nprint("new")'))
    # Text may come in several stream messages; what matters is which side of the clear it is on.
    sequence: list[tuple[str, str]] = []
    for message in execution.messages:
        kind = message["msg_type"]
        if kind == "stream" and sequence and sequence[-1][0] == "stream":
            sequence[-1] = ("stream", sequence[-1][1] + message["content"]["text"])
        elif kind in ("stream", "clear_output"):
            sequence.append((kind, message["content"].get("text", "")))
    assert sequence == [("stream", "old\n"), ("clear_output", ""), ("stream", "new\n")]
    assert execution.of_type("clear_output")[0]["content"] == {"wait": False}


def iopub_of(kc: BlockingKernelClient, msg_id: str) -> list[str]:
    """Return the types of the iopub messages ``msg_id`` caused, statuses included, up to its idle."""
    types: list[str] = []
    while types[-1:] != ["idle"]:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id:
            types.append(msg["content"]["execution_state"] if msg["msg_type"] == "status" else msg["msg_type"])
    return types


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('print("out")\n40 + 2', ["busy", "execute_input", "stream", "execute_result", "idle"]),
        ("let quietly = 1", ["busy", "execute_input", "idle"]),
        ('%env IOPUB_ORDER=1\nprint("after the directive")', ["busy", "execute_input", "stream", "idle"]),
        ('let wrongType: Int = "s"', ["busy", "execute_input", "error", "idle"]),
        ("%frobnicate", ["busy", "execute_input", "error", "idle"]),
    ],
    ids=["output", "nothing", "directive", "compile error", "bad directive"],
)
def test_busy_and_execute_input_come_first_and_idle_last(
    kc: BlockingKernelClient, code: str, expected: list[str]
) -> None:
    """The busy status and execute_input are held until the cell is on its way to LLDB
    (``kernel.IOPubWakes``); they must still come first, in order, and always come."""
    flush_channels(kc)
    msg_id = kc.execute(code)
    assert iopub_of(kc, msg_id) == expected
    assert iopub_of(kc, kc.kernel_info()) == ["busy", "idle"]
    assert iopub_of(kc, kc.execute("1", silent=True)) == ["busy", "idle"]


# ----- results ------------------------------------------------------------------------------------

RESULTS = {
    "int arithmetic": ("let ten = 10\nten + 5", "15"),
    "negative int": ("-7", "-7"),
    "uint8": ("UInt8(200)", "200"),
    "string": ('"abc"', '"abc"'),
    "string with escapes": ('"say \\"hi\\"\\n"', '"say \\"hi\\"\\n"'),
    "character": ('Character("z")', '"z"'),
    "struct": ("struct Point { var x: Int; var y: Int }\nPoint(x: 1, y: 2)", "Point(x: 1, y: 2)"),
    "double": ("3.14", "3.14"),
    "double arithmetic": ("0.1 + 0.2", "0.30000000000000004"),
    "float": ("Float(1.5)", "1.5"),
    "array": ("[1, 2, 3]", "[1, 2, 3]"),
    "array of strings": ('["a", "b"]', '["a", "b"]'),
    "dictionary": ('["k": 1]', '["k": 1]'),
    "tuple": ('(1, "one")', '(1, "one")'),
    "optional some": ("let some: Int? = 5\nsome", "Optional(5)"),
    "optional none": ("let none: Int? = nil\nnone", "nil"),
    "bool true": ("1 < 2", "true"),
    "bool false": ("1 > 2", "false"),
    "enum": ("enum Suit { case hearts, spades }\nSuit.spades", "Suit.spades"),
    "range": ("1..<4", "Range(1..<4)"),
}


@pytest.mark.parametrize(("code", "expected"), list(RESULTS.values()), ids=list(RESULTS))
def test_final_expression_is_the_result(kc: BlockingKernelClient, code: str, expected: str) -> None:
    execution = ok(execute(kc, code))
    results = execution.of_type("execute_result")
    assert len(results) == 1, execution.messages
    assert results[0]["content"]["data"] == {"text/plain": expected}
    assert results[0]["content"]["execution_count"] == count_of(execution)


NO_RESULTS = {
    "let": "let declared = 1",
    "var": "var declaredVar = [1, 2]",
    "func": "func noResult() -> Int { 1 }",
    "struct": "struct Empty {}",
    "void call": 'print("side effect")',
    "assignment": "var assigned = 1\nassigned += 1",
    "if": "if true { _ = 1 }",
    "for": "for _ in 0..<3 {}",
    "discarded": "_ = 5",
}


@pytest.mark.parametrize("code", list(NO_RESULTS.values()), ids=list(NO_RESULTS))
def test_declarations_and_statements_give_no_result(kc: BlockingKernelClient, code: str) -> None:
    execution = ok(execute(kc, code))
    assert execution.of_type("execute_result") == []


# ----- compile errors -----------------------------------------------------------------------------


def test_compile_error_lists_every_diagnostic(kc: BlockingKernelClient) -> None:
    execution = execute(kc, 'let fine = 1\nlet bad: Int = "s"\nundefinedName + fine')
    error = single_error(execution)
    n = count_of(execution)
    assert error["ename"] == "CompileError"
    assert error["evalue"] == f"<Cell {n}>:2:16: cannot convert value of type 'String' to specified type 'Int'"
    traceback = error["traceback"]
    assert isinstance(traceback, list) and len(traceback) == 2, traceback
    first, second = (entry.split("\n") for entry in traceback)
    assert first == [
        f"<Cell {n}>:2:16: error: cannot convert value of type 'String' to specified type 'Int'",
        'let bad: Int = "s"',
        "               ^~~",
    ]
    assert second[0] == f"<Cell {n}>:3:1: error: cannot find 'undefinedName' in scope"
    assert second[1:] == ["undefinedName + fine", "^~~~~~~~~~~~~"]


def test_compile_error_runs_nothing_and_keeps_state(kc: BlockingKernelClient) -> None:
    ok(execute(kc, "var untouched = 5"))
    execution = execute(kc, 'untouched = 6\nprint("ran")\nlet broken: Int = "s"')
    assert single_error(execution)["ename"] == "CompileError"
    assert execution.stream("stdout") == ""
    assert value(kc, "untouched") == "5"


def test_compile_error_at_the_end_of_the_cell_names_the_cell(kc: BlockingKernelClient) -> None:
    # The parser reports a missing operand or brace at the end of input.
    for code in ("let dangling = 1 +", "func unclosed() {"):
        execution = execute(kc, code)
        error = single_error(execution)
        assert error["ename"] == "CompileError"
        assert str(error["evalue"]).startswith(f"<Cell {count_of(execution)}>:"), error
        for entry in error["traceback"]:  # type: ignore[attr-defined]
            assert entry.startswith(f"<Cell {count_of(execution)}>:"), error


# ----- runtime traps ------------------------------------------------------------------------------


class Trap(NamedTuple):
    setup: str  # a cell run first
    crash: str  # the crashing cell
    ename: str
    evalue: str  # text the evalue must contain
    innermost: str  # which cell holds the innermost Swift frame: "crash" or "setup"


TRAPS = {
    "fatalError": Trap("", 'fatalError("boom")', "Fatal error", "boom", "crash"),
    "index out of range": Trap(
        "let small = [1, 2, 3]\nvar at = 5", "small[at]", "Fatal error", "Index out of range", "crash"
    ),
    "nil unwrap": Trap(
        "let missing: Int? = nil",
        "missing!",
        "Fatal error",
        "Unexpectedly found nil while unwrapping an Optional value",
        "crash",
    ),
    # Through a function and a variable, so the compiler cannot see the zero.
    "division by zero": Trap(
        "var zero = 0\nfunc divide(_ a: Int, _ b: Int) -> Int { a / b }",
        "divide(10, zero)",
        "Fatal error",
        "Division by zero",
        "setup",
    ),
    "overflow": Trap("var biggest = Int.max", "biggest + 1", "Fatal error", "overflow", "crash"),
    "infinite recursion": Trap(
        "func forever(_ n: Int) -> Int { forever(n + 1) + 1 }", "forever(0)", "SIGSEGV", "stack overflow", "setup"
    ),
    "abort": Trap("import Glibc", "abort()", "SIGABRT", "abort", "crash"),
    "bad pointer": Trap(
        "let wild = UnsafeMutablePointer<Int>(bitPattern: 8)!",
        "wild.pointee = 1",
        "SIGSEGV",
        "fault address=0x8",
        "crash",
    ),
}


@pytest.mark.parametrize("trap", list(TRAPS.values()), ids=list(TRAPS))
def test_runtime_trap_is_an_error_and_state_survives(kc: BlockingKernelClient, trap: Trap) -> None:
    ok(execute(kc, 'var survivor = 1234\nlet survivorName = "kept"'))
    setup_count = count_of(ok(execute(kc, trap.setup))) if trap.setup else 0
    execution = execute(kc, f'print("crashing")\n{trap.crash}')
    error = single_error(execution)
    assert execution.stream("stdout") == "crashing\n"
    assert error["ename"] == trap.ename, error
    assert trap.evalue in str(error["evalue"]), error
    traceback = [str(line) for line in error["traceback"]]  # type: ignore[attr-defined]
    assert traceback[0] == f"{trap.ename}: {error['evalue']}"
    frames = [match for match in (CELL_FRAME.search(line) for line in traceback[1:]) if match]
    assert frames, traceback
    expected_cell = count_of(execution) if trap.innermost == "crash" else setup_count
    assert int(frames[0].group(1)) == expected_cell, traceback
    # Returned to the state before the cell: earlier variables intact, the next cell runs normally.
    assert value(kc, "survivor") == "1234"
    assert value(kc, "survivorName") == '"kept"'
    ok(execute(kc, "survivor += 1"))
    assert value(kc, "survivor") == "1235"


def test_a_runtime_crash_is_one_clean_error_with_the_cells_line(kc: BlockingKernelClient) -> None:
    # The Swift runtime reports it on stderr, with its own raw stack dump: the cell shows neither,
    # only the error, with the message once and the line that crashed (issue 17).
    execution = execute(kc, 'import Glibc\nfputs("mine\\n", stderr)\nlet a = [1]; a[5]')
    error = single_error(execution)
    assert execution.stream("stderr") == "mine\n"
    assert error["traceback"] == [
        "Fatal error: Index out of range",
        f"  top-level code at <Cell {count_of(execution)}>:3",
        "  ----> 3 let a = [1]; a[5]",
    ]


def test_a_users_fatal_error_message_is_shown_once(kc: BlockingKernelClient) -> None:
    execution = execute(kc, 'print("working")\nfatalError("visible")')
    error = single_error(execution)
    assert (error["ename"], error["evalue"]) == ("Fatal error", "visible")
    assert execution.stream("stdout") == "working\n"
    assert execution.stream("stderr") == ""
    assert [str(line) for line in error["traceback"]].count("Fatal error: visible") == 1  # type: ignore[attr-defined]


def test_a_crash_the_runtime_did_not_report_keeps_a_look_alike_line(kc: BlockingKernelClient) -> None:
    # The program's own line in the runtime's format stays output, and does not name the crash.
    look_alike = "Main.swift:1: Fatal error: printed by the program\n"
    code = 'import Glibc\nfputs("Main.swift:1: Fatal error: printed by the program\\n", stderr)\n'
    execution = execute(kc, code + "var big = Int.max\nbig += 1")
    error = single_error(execution)
    assert (error["ename"], error["evalue"]) == ("Fatal error", "arithmetic overflow")
    assert execution.stream("stderr") == look_alike


def test_crash_in_a_function_from_an_earlier_cell_shows_both_cells(kc: BlockingKernelClient) -> None:
    # The frame of the calling cell tells the user which of their lines led to the crash.
    defined = ok(
        execute(kc, 'func explode(_ n: Int) -> Int {\n    precondition(n > 0, "n must be positive")\n    return n\n}')
    )
    execution = execute(kc, "let exploded = explode(-1)")
    error = single_error(execution)
    assert (error["ename"], error["evalue"]) == ("Precondition failed", "n must be positive")
    # Each frame is followed by its own cell's line, as IPython shows a traceback.
    assert error["traceback"] == [
        "Precondition failed: n must be positive",
        f"  explode(_:) at <Cell {count_of(defined)}>:2",
        '  ----> 2     precondition(n > 0, "n must be positive")',
        f"  top-level code at <Cell {count_of(execution)}>:1",
        "  ----> 1 let exploded = explode(-1)",
    ]


def test_crash_two_calls_deep_in_earlier_cells_shows_every_cell(kc: BlockingKernelClient) -> None:
    # LLDB's unwinder stops at the first earlier cell's frame; the rest is found on the stack.
    inner = ok(execute(kc, 'func innerTrap(_ n: Int) -> Int {\n    precondition(n > 0, "inner")\n    return n\n}'))
    outer = ok(execute(kc, "func outerCall(_ n: Int) -> Int {\n    let r = innerTrap(n)\n    return r + 1\n}"))
    execution = execute(kc, 'print("before")\nlet trapped = outerCall(-5)')
    error = single_error(execution)
    assert (error["ename"], error["evalue"]) == ("Precondition failed", "inner")
    frames = cell_frame_lines(error)
    assert frames == [
        f"  innerTrap(_:) at <Cell {count_of(inner)}>:2",
        f"  outerCall(_:) at <Cell {count_of(outer)}>:2",
        f"  top-level code at <Cell {count_of(execution)}>:2",
    ], error["traceback"]
    assert value(kc, "outerCall(1)") == "2"


def test_a_crash_in_a_thread_the_cell_started_is_its_error_and_the_process_lives_on(kc: BlockingKernelClient) -> None:
    # LLDB names no reason when another thread stops the process; the kernel took that for its
    # own failure ("running it again may work"), left the cell's thread inside it, and the crashed
    # thread trapped again in later cells (SIGSEGV, SIGUSR1 in cells that had nothing to do with it).
    ok(execute(kc, "import Foundation\nvar threadSurvivor = [1, 2, 3]"))
    code = (
        "Thread.detachNewThread {\n    let empty: [Int] = []\n    print(empty[1])\n}\n"
        'Thread.sleep(forTimeInterval: 30)\nprint("not reached")'
    )
    execution = execute(kc, code)
    error = single_error(execution)
    assert (error["ename"], error["evalue"]) == ("Fatal error", f"Index out of range ({OTHER_THREAD})")
    frames = cell_frame_lines(error)
    assert frames[:1] == [f"  closure #1 in top-level code at <Cell {count_of(execution)}>:3"], error["traceback"]
    assert execution.stream("stdout") == ""
    assert execution.stream("stderr") == ""  # the runtime's report is the message
    assert value(kc, "threadSurvivor") == "[1, 2, 3]"
    for _ in range(3):
        assert value(kc, "Array(0..<100_000).count") == "100000"
    ok(execute(kc, "threadSurvivor.append(4)"))
    assert value(kc, "threadSurvivor") == "[1, 2, 3, 4]"
    still = 'Thread.detachNewThread { print("a thread still works") }\nThread.sleep(forTimeInterval: 0.2)'
    worked = ok(execute(kc, still))
    assert worked.stream("stdout") == "a thread still works\n"


def test_a_crash_in_a_thread_an_earlier_cell_started_stops_the_running_cell(kc: BlockingKernelClient) -> None:
    defined = ok(
        execute(
            kc,
            "import Foundation\nfunc startFailing() {\n    Thread.detachNewThread {\n"
            '        Thread.sleep(forTimeInterval: 0.2)\n        fatalError("from the thread")\n    }\n}',
        )
    )
    execution = execute(kc, 'startFailing()\nThread.sleep(forTimeInterval: 30)\nprint("not reached")')
    error = single_error(execution)
    assert (error["ename"], error["evalue"]) == ("Fatal error", f"from the thread ({OTHER_THREAD})")
    frames = cell_frame_lines(error)
    assert frames and frames[0].endswith(f"<Cell {count_of(defined)}>:5"), error["traceback"]
    assert execution.stream("stdout") == ""
    for _ in range(3):
        assert value(kc, "Array(0..<100_000).count") == "100000"
    looped = ok(execute(kc, 'for i in 0..<3 { print("line", i) }'))
    assert looped.stream("stdout") == "line 0\nline 1\nline 2\n"


def test_a_crash_in_a_task_says_that_async_code_lost_a_thread(fresh_kernel: Callable[..., KernelPair]) -> None:
    # A kernel of its own: the thread is held for good, and Swift concurrency's pool has one fewer.
    _, kc = fresh_kernel()
    execution = execute(kc, 'Task { fatalError("in the task") }\ntry await Task.sleep(nanoseconds: 30_000_000_000)')
    error = single_error(execution)
    assert (error["ename"], error["evalue"]) == ("Fatal error", f"in the task ({IN_A_TASK})")
    frames = cell_frame_lines(error)
    assert frames[:1] == [f"  closure #1 in top-level code at <Cell {count_of(execution)}>:1"], error["traceback"]
    assert value(kc, "[1, 2].count") == "2"


@pytest.mark.parametrize(
    ("setup", "work", "counted", "expected"),
    [
        # A sort has no safe point, so the cell ends first, stopped at its last instruction. Run on
        # past it, the cell could not be unwound and the kernel had to start a fresh Swift process.
        (
            "let unsorted = (0..<30_000).map { ($0 * 7919) % 30_011 }\nvar sortedCount = 0",
            "var signalled = false\n"
            "sortedCount = unsorted.sorted { a, b in\n"
            "    if !signalled { signalled = true; trigger.signal() }\n"
            "    return a < b\n"
            "}.count",
            "sortedCount",
            "30000",
        ),
        # The run on is bounded by the thread's CPU time (0.3 s) and by a block with no progress
        # (0.3 s), not by the wall clock: seven naps of 50 ms take 0.35 s, and a 0.3 s timer stopped
        # the cell among them (napsTaken stayed 0), as it stopped the sort above on a busy machine.
        (
            "var napsTaken = 0",
            "napsTaken = (0..<8).map { nap -> Int in\n"
            "    if nap == 0 { trigger.signal(); return (0..<200_000).reduce(0, &+) & 0 }\n"
            "    usleep(50_000)\n"
            "    return nap\n"
            "}.count",
            "napsTaken",
            "8",
        ),
    ],
    ids=["a-sort-ends-before-a-safe-point", "naps-run-on-by-progress"],
)
def test_after_another_threads_crash_the_cells_thread_runs_on_to_its_end(
    kc: BlockingKernelClient, setup: str, work: str, counted: str, expected: str
) -> None:
    # The cell's thread runs on after the crash until its next safe point, or the cell's end.
    ok(execute(kc, "import Foundation\n" + setup))
    code = (
        "let trigger = DispatchSemaphore(value: 0)\n"
        'Thread.detachNewThread { trigger.wait(); fatalError("while the cell runs") }\n' + work
    )
    error = single_error(execute(kc, code))
    assert (error["ename"], error["evalue"]) == ("Fatal error", f"while the cell runs ({OTHER_THREAD})")
    assert value(kc, counted) == expected  # it ran to its end, in the same Swift process


# ----- kernel_info --------------------------------------------------------------------------------


def test_kernel_info(kc: BlockingKernelClient) -> None:
    msg_id = kc.kernel_info()
    reply = kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    content = reply["content"]
    version = find_toolchain().short_version()
    assert content["status"] == "ok"
    assert content["language_info"] == {
        "name": "swift",
        "version": version,
        "mimetype": "text/x-swift",
        "file_extension": ".swift",
        "pygments_lexer": "swift",
        "codemirror_mode": "swift",
    }
    assert version in content["banner"]
    assert content["implementation"] == "swift_kernel"
    # JupyterLab's debugger (tests/test_debugger.py); no subshells.
    assert content["supported_features"] == ["debugger"]
    assert content["debugger"] is True


@pytest.mark.timeout(180)
def test_fresh_kernels_answer_the_first_kernel_info_and_run_the_first_cell() -> None:
    # Frontends (JupyterLab, nbclient) send kernel_info once when they connect; it must not be lost
    # while the kernel is still loading LLDB. And every start must give a working Swift process.
    for attempt in range(3):
        km = KernelManager(kernel_name="swift")
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            msg_id = kc.kernel_info()
            try:
                reply = kc.get_shell_msg(timeout=30)
            except Exception as error:  # noqa: BLE001 - queue.Empty: no reply at all
                pytest.fail(f"start {attempt}: no reply to the first kernel_info_request in 30 s ({error!r})")
            assert reply["parent_header"]["msg_id"] == msg_id
            assert reply["content"]["status"] == "ok"
            first = execute(kc, "1 + 1")
            assert (first.status, first.result) == ("ok", "2"), (attempt, first.content)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)


# ----- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["", "   ", "\n\n\t\n", "// only a comment"], ids=["empty", "spaces", "blank lines", "comment"]
)
def test_empty_cells_are_fine(kc: BlockingKernelClient, code: str) -> None:
    started = time.monotonic()
    execution = ok(execute(kc, code))
    assert [m["msg_type"] for m in execution.messages] == ["execute_input"]
    assert time.monotonic() - started < 2
    assert value(kc, "40 + 2") == "42"


def test_unknown_directive_is_an_error_naming_it(kc: BlockingKernelClient) -> None:
    execution = execute(kc, '%frobnicate now\nprint("must not run")')
    error = single_error(execution)
    assert "%frobnicate" in str(error["evalue"])
    assert any("%frobnicate" in line for line in error["traceback"])  # type: ignore[attr-defined]
    assert execution.stream("stdout") == ""
    assert value(kc, "1 + 1") == "2"


@pytest.mark.timeout(120)
def test_one_megabyte_cells_run(kc: BlockingKernelClient) -> None:
    comments = "let afterComments = 7\n" + "".join(f"// filler line {i:07d} {'x' * 40}\n" for i in range(17000))
    literal = 'let huge = "' + "a" * 1_000_000 + '"\nhuge.count'
    assert len(comments) > 1_000_000
    started = time.monotonic()
    ok(execute(kc, comments, timeout=60))
    assert value(kc, "afterComments") == "7"
    execution = ok(execute(kc, literal, timeout=60))
    assert execution.result == "1000000"
    assert time.monotonic() - started < 60


@pytest.mark.timeout(120)
def test_one_megabyte_of_statements_does_not_hang(fresh_kernel: Callable[..., KernelPair]) -> None:
    # 1 MB of ordinary statements: it must run, or fail with a clear error, within a minute.
    _, kc = fresh_kernel()
    code = "var total = 0\n" + "".join(f"total += {i}\n" for i in range(90_000)) + "total"
    assert len(code) > 1_000_000
    msg_id = kc.execute(code)
    try:
        execution = collect(kc, msg_id, timeout=60)
    except Exception as error:  # noqa: BLE001 - queue.Empty or TimeoutError: no reply
        pytest.fail(f"no reply to a 1 MB cell of statements within 60 s ({type(error).__name__})")
    if execution.status == "ok":
        assert execution.result == str(sum(range(90_000)))
    else:
        assert execution.errors and execution.errors[0]["evalue"], execution.content


# ----- the Swift process ends ---------------------------------------------------------------------


def assert_process_ended(execution: Execution) -> None:
    error = single_error(execution)
    text = f"{error['evalue']} {' '.join(map(str, error['traceback']))}"  # type: ignore[call-overload]
    assert error["ename"] == "SwiftProcessEnded", error
    assert "Swift process ended" in text and "state is gone" in text, error
    assert "fresh Swift process" in text, error


def settle(kc: BlockingKernelClient) -> None:
    """Let a Swift process loss left over from an earlier test be reported before this test starts."""
    for _ in range(3):
        if execute(kc, "0").status == "ok":
            return
    pytest.fail("the kernel does not run cells any more")


def test_exit_ends_the_process_and_the_next_cell_works(kernel: KernelPair, kc: BlockingKernelClient) -> None:
    km, _ = kernel
    settle(kc)
    before = swift_processes(km)
    ok(execute(kc, "var beforeExit = 1"))
    execution = execute(kc, 'import Glibc\nprint("bye")\nexit(3)')
    assert_process_ended(execution)
    assert execution.stream("stdout") == "bye\n"
    assert "exit status 3" in str(execution.errors[0]["evalue"])
    gone_variable = execute(kc, "beforeExit")
    assert "cannot find 'beforeExit' in scope" in str(single_error(gone_variable)["evalue"])
    assert value(kc, "1 + 1") == "2"
    assert gone(before["repl_swift"])
    assert swift_processes(km)["repl_swift"].pid != before["repl_swift"].pid


@pytest.mark.parametrize("victim", ["repl_swift", "lldb-server"])
def test_killed_from_outside_while_idle(kernel: KernelPair, kc: BlockingKernelClient, victim: str) -> None:
    km, _ = kernel
    settle(kc)
    # Several rounds, the next cell sent right after the kill: the kernel must not run it on a
    # debugger that has not yet noticed its process is gone.
    for round_number in range(3):
        ok(execute(kc, f"var beforeKill{round_number} = 1"))
        before = swift_processes(km)
        assert set(before) == {"repl_swift", "lldb-server"}, before
        before[victim].kill()
        assert_process_ended(execute(kc, f"beforeKill{round_number}"))
        assert value(kc, "2 + 2") == "4"
        missing = single_error(execute(kc, f"beforeKill{round_number}"))
        assert f"cannot find 'beforeKill{round_number}'" in str(missing["evalue"])
        after = swift_processes(km)
        # The old pair is gone, not orphaned; a new pair runs the cells.
        assert all(gone(process) for process in before.values()), before
        assert set(after) == {"repl_swift", "lldb-server"}
        assert {p.pid for p in after.values()}.isdisjoint({p.pid for p in before.values()})
    assert psutil.Process(kernel_pid(km)).is_running()


@pytest.mark.parametrize("victim", ["repl_swift", "lldb-server"])
def test_killed_from_outside_while_a_cell_runs(kernel: KernelPair, kc: BlockingKernelClient, victim: str) -> None:
    km, _ = kernel
    settle(kc)
    before = swift_processes(km)
    # A spinning loop, not a sleep: a Swift process left behind would keep running and be seen.
    msg_id = kc.execute('print("started")\nvar spins = 0\nwhile spins >= 0 { spins &+= 1 }')
    try:
        time.sleep(1.5)
        before[victim].kill()
        killed = time.monotonic()
        execution = collect(kc, msg_id, timeout=20)
        assert time.monotonic() - killed < 10
        assert_process_ended(execution)
        assert execution.stream("stdout") == "started\n"
        assert value(kc, "3 + 3") == "6"
        _, left = psutil.wait_procs(list(before.values()), timeout=5)
        assert [p for p in left if not gone(p)] == [], [(p.pid, p.name(), p.status()) for p in left]
    finally:
        for process in before.values():  # never leave a spinning Swift process on the machine
            if not gone(process):
                process.kill()


# ----- shutdown and restart -----------------------------------------------------------------------


def assert_shutdown_leaves_nothing(
    km: KernelManager, kc: BlockingKernelClient, everything: list[psutil.Process]
) -> None:
    """Shut the kernel down and check that it was quick and that none of ``everything`` lives on."""
    started = time.monotonic()
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    took = time.monotonic() - started
    _, alive = psutil.wait_procs(everything, timeout=5)
    assert alive == [], [(p.pid, p.name()) for p in alive]
    assert took < 10, took


@pytest.mark.timeout(90)
def test_shutdown_leaves_no_process_behind(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel()
    ok(execute(kc, "var alive = 1"))
    pid = kernel_pid(km)
    processes = swift_processes(km)
    assert set(processes) == {"repl_swift", "lldb-server"}, processes
    assert_shutdown_leaves_nothing(km, kc, [psutil.Process(pid), *descendants(pid)])


@pytest.mark.timeout(90)
def test_shutdown_while_a_cell_runs_leaves_no_process_behind(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel()
    pid = kernel_pid(km)
    kc.execute("import Glibc\nsleep(1000)")
    time.sleep(2)
    everything = [psutil.Process(pid), *descendants(pid)]
    assert {p.name() for p in everything} >= {"repl_swift", "lldb-server"}
    assert_shutdown_leaves_nothing(km, kc, everything)


@pytest.mark.timeout(120)
def test_restart_gives_a_fresh_working_kernel(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel()
    ok(execute(kc, "var fromBefore = 1"))
    old = [psutil.Process(kernel_pid(km)), *descendants(kernel_pid(km))]
    assert {p.name() for p in old} >= {"repl_swift", "lldb-server"}
    started = time.monotonic()
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=60)
    ready = time.monotonic() - started
    _, alive = psutil.wait_procs(old, timeout=5)
    assert alive == [], [(p.pid, p.name()) for p in alive]
    assert value(kc, "20 + 22") == "42"
    assert "cannot find 'fromBefore'" in str(single_error(execute(kc, "fromBefore"))["evalue"])
    assert set(swift_processes(km)) == {"repl_swift", "lldb-server"}
    assert ready < 20, ready


# Numbers and Strings are read from LLDB without a second evaluation (lldb_session._read_directly):
# what the cell shows must still be exactly Swift's String(reflecting:).
READ_DIRECTLY = [
    "0.1",
    "3.14",
    "1e15",
    "1e16",
    "1e-5",
    "-0.0",
    "0.1 + 0.2",
    "12345678901234567.0",
    "5e-324",
    "Double.greatestFiniteMagnitude",
    "Double.infinity",
    "-Double.infinity",
    "Double.nan",
    '"plain text"',
    '""',
    '"tab\\there"',
    '"quote \\" and backslash \\\\"',
    '"é and 🙂"',
    '"bell \\u{07}"',
    'String(repeating: "ab", count: 700)',
    "Float(0.1)",
    "9.5e15",
    "Float(16777218)",
    "Float(1) / 3",
    "Float.greatestFiniteMagnitude",
    "-Float.leastNonzeroMagnitude",
    "Float.nan",
    "[1, 2, 3]",
    "[Int]()",
    "[0.5, 1e16, -0.0]",
    '["a", "b c"]',
    '["needs \\n escaping"]',
    "[true, false]",
    "[[1], [2, 3]]",
    "Array(0..<150)",
    "[UInt8(7), 255]",
    "[Float(0.1)]",
    "[1, nil] as [Int?]",
    # Arrays and Strings are read from their bytes (swift_kernel/layouts.py): each form of String,
    # each element type, nesting, and what is left to Swift.
    '["a literal longer than fifteen bytes", "short"]',
    '(0..<3).map { "made at run time, number \\($0)" }',
    '["é"]',
    '["fine", "tab\\t"]',
    "[Int8(-1), 127]",
    "[Int16(-300)]",
    "[Int32.min, Int32.max]",
    "[UInt16(65535), 0]",
    "[UInt32.max]",
    "[UInt64.max]",
    "[Int.min]",
    "[Float(1) / 3, -Float.infinity]",
    "[1.0, .nan]",
    "[[0.5], [], [1e-7, 2]]",
    '[["a"], ["b", "c"]]',
    "Array(repeating: true, count: 1000)",
    "(0..<1001).map { $0 }",
    "[String]()",
    '"a String made" + " at run time, long enough to be stored apart"',
]


def swifts_own_text(kc: BlockingKernelClient, literal: str) -> str:
    """Bind ``literal`` to ``shownValue`` and return what Swift's ``String(reflecting:)`` prints of it."""
    shown = ok(execute(kc, f"let shownValue = {literal}\nprint(String(reflecting: shownValue))"))
    return shown.stream().removesuffix("\n")


@pytest.mark.parametrize("literal", READ_DIRECTLY)
def test_values_read_without_running_code_match_swifts_description(kc: BlockingKernelClient, literal: str) -> None:
    described = swifts_own_text(kc, literal)
    assert value(kc, "shownValue") == described


# Arrays (nested too, up to 1,000 elements in all) and Strings up to 64 KiB are read from their
# bytes in the Swift process (swift_kernel/layouts.py), not described by a second evaluation.
FROM_MEMORY = {
    '(0..<1000).map { "item \\($0)" }': "Swift.Array<Swift.String>",
    "(0..<1000).map { Double($0) / 3 }": "Swift.Array<Swift.Double>",
    "[[1, 2], [3]]": "Swift.Array<Swift.Array<Swift.Int>>",
    'String(repeating: "ab", count: 700)': "Swift.String",
}


def test_arrays_and_strings_are_read_from_memory_as_swift_describes_them(
    logged_kernel: tuple[KernelManager, BlockingKernelClient, Path],
) -> None:
    _, kc, log = logged_kernel
    for literal, type_name in FROM_MEMORY.items():
        swift = swifts_own_text(kc, literal)
        assert value(kc, "shownValue") == swift, literal
        assert f"{type_name} read without running code" in log.read_text(), literal


# A struct's value is described by Swift the first time; when Swift says its description is just
# its stored properties, later values of it are read from LLDB (lldb_session._read_directly).
STRUCTS = """
struct Point { var x: Int; var y: Int }
struct Person { var name: String; var age: Int; var score: Double; var ok: Bool; var tags: [String] }
struct Line { var from: Point; var to: Point }
struct Box<T> { var value: T }
struct Empty {}
struct Maybe { var n: Int? }
struct Later { var n: Int }
struct Named: CustomStringConvertible { var n: Int; var description: String { "named \\(n)" } }
struct Packed { var a: Int8; var b: Int16; var c: Float; var d: Bool; var e: Double; var f: [UInt8] }
"""
PLAIN = {
    "Point(x: 1, y: -2)": "Point",
    'Person(name: "Ann", age: 3, score: 1.5, ok: true, tags: ["a", "b c"])': "Person",
    "Line(from: Point(x: 1, y: 2), to: Point(x: 3, y: 4))": "Line",
    "Box(value: 0.1)": "Box<Swift.Double>",
    "Empty()": "Empty",
    "Packed(a: -1, b: 300, c: 0.5, d: true, e: 0.25, f: [1, 2])": "Packed",
}
NOT_PLAIN = ["Maybe(n: 3)", "Named(n: 1)", 'Person(name: "é", age: 1, score: 0, ok: false, tags: [])']


def test_plain_structs_are_read_from_lldb_as_swift_describes_them(
    logged_kernel: tuple[KernelManager, BlockingKernelClient, Path],
) -> None:
    _, kc, log = logged_kernel
    ok(execute(kc, STRUCTS))
    for literal in [*PLAIN, *NOT_PLAIN]:
        expected = re.sub(r"__lldb_expr_\d+\.", "", swifts_own_text(kc, literal))
        assert value(kc, "shownValue") == expected, literal
        assert value(kc, "shownValue") == expected, literal  # read from LLDB, if it can be
    read = log.read_text()
    for literal, type_name in PLAIN.items():
        assert re.search(rf"__lldb_expr_\d+\.{re.escape(type_name)} read without running code", read), literal
    for name in ("Maybe", "Named"):
        assert not re.search(rf"__lldb_expr_\d+\.{name} read without running code", read), name
    # A later extension may give a type a description of its own: then Swift describes it again.
    ok(execute(kc, "let later = Later(n: 1)"))
    assert value(kc, "later") == value(kc, "later") == "Later(n: 1)"
    ok(execute(kc, 'extension Later: CustomStringConvertible { var description: String { "later \\(n)" } }'))
    assert value(kc, "later") == "later 1"
    # A collection of rows is still a table with %display tables on.
    ok(execute(kc, "%display tables on"))
    table = ok(execute(kc, "[Point(x: 1, y: 2), Point(x: 3, y: 4)]")).of_type("execute_result")
    assert "<table" in table[0]["content"]["data"].get("text/html", ""), table
