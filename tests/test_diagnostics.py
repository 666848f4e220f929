"""Test turning LLDB's error text and frames into Jupyter errors; pure, no LLDB.

The error texts are verbatim what Swift 6.3.1's LLDB returned from ``EvaluateExpression`` with the
kernel's options (captured by running the cells through ``LLDBExecutor``), so a change in LLDB's
wording shows up here first.
"""

from __future__ import annotations

import pytest

from swift_kernel.diagnostics import (
    CellError,
    FixIt,
    Frame,
    SourceDiagnostic,
    cell_frames,
    compile_error,
    compiler_message,
    frame_lines,
    interruption_reason,
    is_no_result,
    is_process_gone,
    process_left_stopped,
    render_warnings,
    repl_limit,
    reported_by_runtime,
    runtime_error,
    runtime_report_start,
)
from swift_kernel.lsp import cell_diagnostics

pytestmark = pytest.mark.timeout(10)

# `let y: Int = "s"` / `undefined_thing` in <Cell 1>.
TWO_ERRORS = (
    "error: <Cell 1>:1:14: cannot convert value of type 'String' to specified type 'Int'\n"
    'let y: Int = "s"\n'
    "             ^~~\n"
    "\n"
    "error: <Cell 1>:2:1: cannot find 'undefined_thing' in scope\n"
    "undefined_thing\n"
    "^~~~~~~~~~~~~~~\n"
    "\n"
)
# `func g(_ a: Int, _ b: Int) {}` / `g(1)`: an error followed by a note without a severity word.
WITH_NOTE = (
    "error: <Cell 3>:2:4: missing argument for parameter #2 in call\n"
    "g(1)\n"
    "   ^\n"
    "   , <#Int#>\n"
    "\n"
    "<Cell 3>:1:6: 'g' declared here\n"
    "func g(_ a: Int, _ b: Int) {}\n"
    "     ^\n"
    "\n"
)
# `let q = 1 +` at the end of a cell: LLDB reports it in its own wrapper source.
AT_END_OF_CELL = "error: /tmp/repl7-558f28..cpp:5:1: expected expression after operator\n\n^\n\n"
# A declaration, or a cell with only `#warning(...)` and a declaration: LLDB drops the warning.
NO_RESULT = "unknown error"
LEFT_STOPPED = (
    'The process has been left at the point where it was interrupted, use "thread return -x" to return to the '
    "state before expression evaluation.\n"
)
FATAL_ERROR = "error: Expression execution was interrupted: signal SIGILL: illegal operand.\n" + LEFT_STOPPED
SEGV = (
    "error: Expression execution was interrupted: signal SIGSEGV: address not mapped to object "
    "(fault address=0x8).\n" + LEFT_STOPPED
)
ABORT = "error: Expression execution was interrupted: signal SIGABRT.\n" + LEFT_STOPPED
# Older LLDBs (Swift 6.0.3's, from LLDB-NOTES.md) with unwind-on-error on.
OLD_INTERRUPT = (
    "error: Execution was interrupted, reason: signal SIGINT.\n"
    "The process has been returned to the state before expression evaluation.\n"
)
# What the Swift runtime writes to stderr for fatalError("boom") in <Cell 2>.
FATAL_STDERR = (
    "__lldb_expr_6/<Cell 2>:1: Fatal error: boom\n"
    "Current stack trace:\n"
    "0    libswiftCore.so                    0x00007ffff775f130 swift_reportError + 33\n"
    "3    libswiftCore.so                    0x00007ffff78f9280 _assertionFailure(_:_:file:line:flags:) + 221\n"
)
INDEX_STDERR = "Swift/ContiguousArrayBuffer.swift:692: Fatal error: Index out of range\nCurrent stack trace:\n"


# ----- classification ----------------------------------------------------------------------------


def test_no_result_is_only_unknown_error() -> None:
    assert is_no_result(NO_RESULT)
    assert is_no_result("unknown error\n")
    for text in (TWO_ERRORS, FATAL_ERROR, "error: unknown error in something"):
        assert not is_no_result(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (FATAL_ERROR, "signal SIGILL: illegal operand"),
        (SEGV, "signal SIGSEGV: address not mapped to object (fault address=0x8)"),
        (ABORT, "signal SIGABRT"),
        (OLD_INTERRUPT, "signal SIGINT"),
        ("error: Execution was interrupted, reason: breakpoint 1.1.\n", "breakpoint 1.1"),
        ("Expression execution was interrupted: signal SIGSTOP", "signal SIGSTOP"),
    ],
)
def test_interruption_reason(text: str, reason: str) -> None:
    assert interruption_reason(text) == reason


@pytest.mark.parametrize("text", [TWO_ERRORS, WITH_NOTE, AT_END_OF_CELL, NO_RESULT, ""])
def test_no_interruption_reason_for_other_errors(text: str) -> None:
    assert interruption_reason(text) is None


def test_process_left_stopped() -> None:
    assert process_left_stopped(FATAL_ERROR)
    assert process_left_stopped(ABORT)
    assert not process_left_stopped(OLD_INTERRUPT)
    assert not process_left_stopped(TWO_ERRORS)


@pytest.mark.parametrize(
    "text",
    [
        "error: Expression can't be run, because there is no JIT compiled function",
        "error: unable to evaluate expression while the process is exited",
        "error: execution stopped with unexpected state.",
        "error: invalid process",
    ],
)
def test_process_gone(text: str) -> None:
    assert is_process_gone(text)


@pytest.mark.parametrize("text", [TWO_ERRORS, FATAL_ERROR, NO_RESULT, AT_END_OF_CELL])
def test_process_not_gone(text: str) -> None:
    assert not is_process_gone(text)


# ----- compile errors -----------------------------------------------------------------------------


def test_every_diagnostic_in_compiler_order_with_source_and_caret() -> None:
    error = compile_error(TWO_ERRORS)
    assert error == CellError(
        "CompileError",
        "<Cell 1>:1:14: cannot convert value of type 'String' to specified type 'Int'",
        [
            "<Cell 1>:1:14: error: cannot convert value of type 'String' to specified type 'Int'\n"
            'let y: Int = "s"\n'
            "             ^~~",
            "<Cell 1>:2:1: error: cannot find 'undefined_thing' in scope\nundefined_thing\n^~~~~~~~~~~~~~~",
        ],
    )


def test_note_stays_with_its_error() -> None:
    error = compile_error(WITH_NOTE)
    assert error is not None
    assert error.evalue == "<Cell 3>:2:4: missing argument for parameter #2 in call"
    assert len(error.traceback) == 1
    block = error.traceback[0].split("\n")
    assert block[0] == "<Cell 3>:2:4: error: missing argument for parameter #2 in call"
    assert block[1:3] == ["g(1)", "   ^"]
    assert "<Cell 3>:1:6: 'g' declared here" in block
    assert "func g(_ a: Int, _ b: Int) {}" in block


def test_severities_are_kept_and_evalue_is_the_first_error() -> None:
    text = (
        "warning: <Cell 4>:1:5: variable 'v' was never mutated\nvar v = 1\n    ^\n\n"
        "error: <Cell 4>:2:1: cannot find 'w' in scope\nw\n^\n\n"
        "note: <Cell 4>:1:5: did you mean 'v'?\n"
        "error: <Cell 4>:3:1: cannot find 'z' in scope\nz\n^\n"
    )
    error = compile_error(text)
    assert error is not None
    assert error.evalue == "<Cell 4>:2:1: cannot find 'w' in scope"
    heads = [block.split("\n")[0] for block in error.traceback]
    assert heads == [
        "<Cell 4>:1:5: warning: variable 'v' was never mutated",
        "<Cell 4>:2:1: error: cannot find 'w' in scope",
        "<Cell 4>:1:5: note: did you mean 'v'?",
        "<Cell 4>:3:1: error: cannot find 'z' in scope",
    ]


def test_warnings_alone_are_not_a_compile_error() -> None:
    assert compile_error("warning: <Cell 2>:1:5: variable 'v' was never mutated\nvar v = 1\n    ^\n") is None


def test_error_without_location() -> None:
    error = compile_error("error: could not find the module 'Nope'\n")
    assert error is not None
    assert error.ename == "CompileError"
    assert error.evalue == "could not find the module 'Nope'"
    assert error.traceback == ["error: could not find the module 'Nope'"]


@pytest.mark.parametrize(
    "text",
    ["error: Unknown error\n", "error: Expression execution was interrupted.\n", "error: Couldn't allocate space\n"],
)
def test_lldbs_own_failures_are_not_called_compile_errors(text: str) -> None:
    error = compile_error(text)
    assert error is not None and error.ename == "LLDBError"
    assert error.evalue.startswith(f"LLDB could not run the cell: {text[7:].strip()}")
    assert "not an error in the code" in error.evalue


def test_error_at_the_end_of_a_cell_keeps_its_message() -> None:
    # LLDB names its wrapper file here; the executor is what could map it back to the cell.
    error = compile_error(AT_END_OF_CELL)
    assert error is not None
    assert error.ename == "CompileError"
    assert error.evalue.endswith("expected expression after operator")
    assert len(error.traceback) == 1


def test_no_error_text_is_no_compile_error() -> None:
    assert compile_error("") is None
    assert compile_error(NO_RESULT) is None


# ----- warnings of a cell that compiles (from sourcekit-lsp) ------------------------------------

FUNC = "func f() { var neverMutated = 1; print(neverMutated) }"
# What sourcekit-lsp 6.3.1 answered to a textDocument/diagnostic for FUNC, placed in the cell.
NEVER_MUTATED = SourceDiagnostic(
    "warning",
    0,
    15,
    0,
    15,
    "variable 'neverMutated' was never mutated; consider changing to 'let' constant",
    (FixIt(0, 11, 0, 14, "let"),),
)


def test_a_warning_is_rendered_like_a_compile_error() -> None:
    assert render_warnings([NEVER_MUTATED], FUNC, "<Cell 4>") == (
        "<Cell 4>:1:16: warning: variable 'neverMutated' was never mutated; consider changing to 'let' constant\n"
        "func f() { var neverMutated = 1; print(neverMutated) }\n"
        "           ~~~ ^\n"
        "           let\n"
    )


def test_no_warning_gives_no_text() -> None:
    assert render_warnings([], FUNC, "<Cell 4>") == ""


def test_only_warnings_are_rendered() -> None:
    error = SourceDiagnostic("error", 0, 0, 0, 4, "cannot find 'nope' in scope")
    note = SourceDiagnostic("note", 0, 0, 0, 0, "declared here")
    assert render_warnings([error, note], "nope", "<Cell 4>") == ""


def test_every_warning_of_the_cell_in_order_with_a_range_underlined() -> None:
    code = FUNC + "\n\n" + FUNC
    second = SourceDiagnostic("warning", 2, 15, 0, 15, NEVER_MUTATED.message, (FixIt(2, 11, 2, 14, "let"),))
    text = render_warnings([NEVER_MUTATED, second], code, "<Cell 4>")
    heads = [line for line in text.split("\n") if ": warning: " in line]
    assert [head.split(": warning: ")[0] for head in heads] == ["<Cell 4>:1:16", "<Cell 4>:3:16"]
    literal = SourceDiagnostic("warning", 0, 9, 0, 23, "mind the gap")
    assert render_warnings([literal], '#warning("mind the gap")', "<Cell 2>").split("\n")[2] == " " * 9 + "^" + "~" * 13


def test_an_unused_value_is_the_cells_result_only_in_its_last_statement() -> None:
    code = "x + 1\nlet y = 2\nx +\n  y"
    first = SourceDiagnostic("warning", 0, 2, 0, 2, "result of operator '+' is unused")
    last = SourceDiagnostic("warning", 2, 2, 2, 2, "result of operator '+' is unused")
    text = render_warnings([first, last], code, "<Cell 3>")
    assert text.startswith("<Cell 3>:1:3: warning: result of operator '+' is unused\n") and "<Cell 3>:3:" not in text
    assert (
        render_warnings([SourceDiagnostic("warning", 0, 0, 0, 5, "expression of type 'Int' is unused")], "quiet", "c")
        == ""
    )
    literal = SourceDiagnostic("warning", 0, 0, 0, 7, "string literal is unused")
    assert render_warnings([literal], '"quiet"', "c") == ""


def test_the_compilers_wording_comes_back() -> None:
    assert compiler_message("Variable 'x' was never mutated", "x") == "variable 'x' was never mutated"
    assert compiler_message("Mind the gap", '"mind the gap"') == "mind the gap"
    assert compiler_message("Mind", '"Mind"') == "Mind"
    assert compiler_message("'is' test is always true", "is") == "'is' test is always true"
    assert compiler_message("URL is odd", "") == "URL is odd"


# What sourcekit-lsp sent (pygls's JSON, here as dicts) for a document of one earlier cell and the cell "é; " + FUNC.
URI = "_0"  # pygls's name for the key file:///.../main.swift
RAW_ITEMS = [
    {
        "message": "Invalid redeclaration of 'a'",
        "severity": 1,
        "range": {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 5}},
    },
    {
        "message": "Variable 'neverMutated' was never mutated; consider changing to 'let' constant",
        "severity": 2,
        "codeActions": [
            {
                "edit": {
                    "changes": {
                        URI: [
                            {
                                "newText": "let",
                                "range": {"start": {"line": 1, "character": 14}, "end": {"line": 1, "character": 17}},
                            }
                        ]
                    }
                },
                "kind": "quickfix",
            }
        ],
        "range": {"start": {"line": 1, "character": 18}, "end": {"line": 1, "character": 18}},
    },
    {"message": "no range"},
]


def test_lsp_diagnostics_are_placed_in_the_cell_in_characters() -> None:
    code = "é; " + FUNC  # é: one character, one UTF-16 unit; columns move by the 3 characters before FUNC
    found = cell_diagnostics(RAW_ITEMS, code, 1)
    # The earlier cell's error (line 0) and the item without a range are left out.
    assert found == [
        SourceDiagnostic(
            "warning",
            0,
            18,
            0,
            18,
            "variable 'neverMutated' was never mutated; consider changing to 'let' constant",
            (FixIt(0, 14, 0, 17, "let"),),
        )
    ]
    astral = "😀" + FUNC[1:]  # two UTF-16 units, one character
    (moved,) = cell_diagnostics(RAW_ITEMS[1:2], astral, 1)
    assert (moved.column, moved.fixits[0].column) == (17, 13)


# ----- runtime errors -----------------------------------------------------------------------------

CELL_FRAME = Frame("top-level code", "<Cell 2>", 1)


def test_fatal_error_takes_the_runtimes_message_from_stderr() -> None:
    reason = "signal SIGILL: illegal operand"
    error = runtime_error(reason, reason, FATAL_STDERR, [CELL_FRAME])
    assert error == CellError("Fatal error", "boom", ["Fatal error: boom", "  top-level code at <Cell 2>:1"])


def test_library_fatal_error() -> None:
    error = runtime_error("signal SIGILL: illegal operand", "", INDEX_STDERR, [])
    assert (error.ename, error.evalue) == ("Fatal error", "Index out of range")


def test_last_fatal_message_wins() -> None:
    stderr = "Fatal error: an old one from user output\n" + INDEX_STDERR
    assert runtime_error("signal SIGILL", "", stderr, []).evalue == "Index out of range"


@pytest.mark.parametrize("kind", ["Precondition failed", "Assertion failed"])
def test_precondition_and_assertion(kind: str) -> None:
    error = runtime_error("signal SIGILL", "", f"<Cell 3>:1: {kind}: x must be positive\n", [])
    assert (error.ename, error.evalue) == (kind, "x must be positive")


def test_fatal_error_without_message() -> None:
    error = runtime_error("signal SIGILL", "", "<Cell 3>:1: Fatal error\n", [])
    assert (error.ename, error.evalue) == ("Fatal error", "Fatal error")


def test_overflow_from_the_stop_description() -> None:
    # Arithmetic overflow traps with no stderr text; the thread's stop description names it.
    stop = "Swift runtime failure: arithmetic overflow"
    error = runtime_error("signal SIGILL: illegal operand", stop, "", [Frame("main", "<Cell 7>", 2)])
    assert (error.ename, error.evalue) == ("Fatal error", "arithmetic overflow")
    assert error.traceback == ["Fatal error: arithmetic overflow", "  main at <Cell 7>:2"]


def test_segfault_names_the_signal_and_address() -> None:
    reason = "signal SIGSEGV: address not mapped to object (fault address=0x8)"
    error = runtime_error(reason, reason, "", [CELL_FRAME])
    assert error.ename == "SIGSEGV"
    assert error.evalue == "address not mapped to object (fault address=0x8)"


def test_signal_without_detail_gets_a_plain_name() -> None:
    error = runtime_error("signal SIGABRT", "signal SIGABRT", "", [])
    assert (error.ename, error.evalue) == ("SIGABRT", "abort")
    assert runtime_error("signal SIGBUS", "", "", []).evalue == "bus error"


def test_stack_overflow_is_named() -> None:
    frames = [Frame("rec(_:)", "<Cell 8>", 1)] * 2
    error = runtime_error("signal SIGSEGV: address not mapped to object (fault address=0x7fff)", "", "", frames)
    assert error.ename == "SIGSEGV"
    assert "stack overflow" in error.evalue
    assert "rec(_:)" in error.evalue


def test_stack_overflow_is_named_after_the_frames_are_folded() -> None:
    # The executor folds the frames (cell_frames) before it describes the crash (runtime_error):
    # 64 frames of one recursive function become one frame and a "... 63 more" marker.
    frames = cell_frames([Frame("forever(_:)", "<Cell 8>", 1)] * 64)
    error = runtime_error("signal SIGSEGV: address not mapped to object (fault address=0x7fffff7feff8)", "", "", frames)
    assert error.ename == "SIGSEGV"
    assert "stack overflow" in error.evalue, error


def test_unknown_stop_reason() -> None:
    error = runtime_error("breakpoint 1.1", "breakpoint 1.1", "", [])
    assert error.ename == "RuntimeError"
    assert error.evalue == "breakpoint 1.1"


def test_the_traceback_shows_each_frames_source_line() -> None:
    frames = [Frame("f(_:)", "<Cell 3>", 3, 11), Frame("top-level code", "<Cell 4>", 2)]
    sources = {"<Cell 3>": "func f(_ n: Int) -> Int {\n  let b = [n]\n  return b[n]  \n}", "<Cell 4>": "print(1)\nf(3)"}
    error = runtime_error("signal SIGILL", "", "<Cell 3>:3: Fatal error: Index out of range\n", frames, sources)
    assert error.traceback == [
        "Fatal error: Index out of range",
        "  f(_:) at <Cell 3>:3",
        "  ----> 3   return b[n]",
        "  top-level code at <Cell 4>:2",
        "  ----> 2 f(3)",
    ]


def test_frames_without_known_source_have_no_source_line() -> None:
    frames = [
        Frame("Swift runtime failure: arithmetic overflow", "<Cell 5>", 0),
        Frame("g()", "<Cell 9>", 1),  # a cell the kernel does not know
        Frame("h()", "<Cell 5>", 7),  # past the end of the code it knows
        Frame("... 3 more identical frames", None, 0),
    ]
    assert frame_lines(frames, {"<Cell 5>": "let x = 1", "<Cell 9>": None}) == [f"  {f.render()}" for f in frames]


def test_the_arrow_keeps_the_line_numbers_last_digit_in_one_column() -> None:
    source = "\n".join(f"line {n}" for n in range(1, 1001))
    lines = [frame_lines([Frame("f()", "<Cell 1>", n)], {"<Cell 1>": source})[1] for n in (3, 12, 123, 1000)]
    assert lines == ["  ----> 3 line 3", "  ---> 12 line 12", "  --> 123 line 123", "  -> 1000 line 1000"]


# The frames LLDB reads at the trap of `a[5]` and at the abort of a dead unowned reference.
INDEX_TRAP_FRAMES = [
    Frame("closure #1 in closure #1 in _assertionFailure(_:_:file:line:flags:)", None, 0),
    Frame("_assertionFailure(_:_:file:line:flags:)", None, 0),
    Frame("Array.subscript.getter", None, 0),
    Frame("main", "<Cell 1>", 1),
]
UNOWNED_ABORT_FRAMES = [
    Frame("__pthread_kill_implementation", None, 0),
    Frame("__GI_abort", None, 0),
    Frame("swift::fatalErrorv(unsigned int, char const*, __va_list_tag*)", None, 0),
    Frame("swift::swift_abortRetainUnowned(void const*)", None, 0),
    Frame("main", "<Cell 6>", 5),
]


def test_crashes_through_the_runtimes_report_are_told_apart() -> None:
    assert reported_by_runtime(INDEX_TRAP_FRAMES)
    assert reported_by_runtime(UNOWNED_ABORT_FRAMES)
    assert not reported_by_runtime([Frame("Swift runtime failure: arithmetic overflow", "<Cell 4>", 0)])
    assert not reported_by_runtime([Frame("__GI_abort", None, 0), Frame("main", "<Cell 5>", 2)])
    # A cell's own function of that name is not the runtime.
    assert not reported_by_runtime([Frame("_assertionFailure(_:)", "<Cell 2>", 3)])


@pytest.mark.parametrize(
    "report",
    [
        FATAL_STDERR,
        "Swift/ContiguousArrayBuffer.swift:692: Fatal error: Index out of range\n",
        "__lldb_expr_5/<Cell 3>:2: Precondition failed: n must be positive\n",
        "<Cell 3>:1: Fatal error\n",
        "Fatal error: Attempted to read an unowned reference but object 0x5555 was already destroyed\n",
        "Fatal error: x\nCurrent stack trace:\n0    0x00007ffff775f130\n",
        "Fatal error: x\nCurrent stack trace:\n<backtrace unavailable>\n",
    ],
)
def test_a_report_at_the_end_of_stderr_is_found(report: str) -> None:
    assert runtime_report_start(report) == 0
    assert runtime_report_start("the cell's output\n" + report) == len("the cell's output\n")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Fatal error: boom",  # no end of line yet
        "Fatal error: boom\nand the program went on\n",
        "Current stack trace:\n0    libswiftCore.so  0x00007ffff775f130 swift_reportError + 33\n",  # no message
        "My Fatal error: boom\n",
        "__lldb_expr_6/<Cell 2>:1: Fatal error: two\nlines\n",  # a message over two lines is not taken
    ],
)
def test_other_text_is_no_report(text: str) -> None:
    assert runtime_report_start(text) is None


def test_a_report_is_looked_for_in_the_last_lines_only() -> None:
    rows = "".join(f"{n}    libswiftCore.so  0x00007ffff775f130 f + 1\n" for n in range(200))
    assert runtime_report_start("Fatal error: x\nCurrent stack trace:\n" + rows) is None
    assert runtime_report_start("x\n" * 10_000 + FATAL_STDERR) == 20_000


# ----- frames -------------------------------------------------------------------------------------


def test_frames_keep_swift_code_and_rename_the_cells_main() -> None:
    frames = [
        Frame("swift_reportError", None, 0),
        Frame("_assertionFailure(_:_:file:line:flags:)", None, 0),
        Frame("Swift runtime failure: arithmetic overflow", None, 0),
        Frame("closure #1", "<compiler-generated>", 0),
        Frame("memcpy", "memcpy.c", 12),  # C code with a line table is not shown
        Frame("helper()", "<Cell 5>", 3, 7),
        Frame("Lib.f()", "Lib.swift", 10),
        Frame("main", "<Cell 6>", 2),
        Frame("repl_main", None, 0),
    ]
    assert cell_frames(frames) == [
        Frame("Swift runtime failure: arithmetic overflow", None, 0),
        Frame("helper()", "<Cell 5>", 3, 7),
        Frame("Lib.f()", "Lib.swift", 10),
        Frame("top-level code", "<Cell 6>", 2),
    ]


def test_a_closure_of_a_cells_top_level_code_says_so() -> None:
    # LLDB's name for it ends in "in " (a thread's body, a task's, a callback's).
    frames = [Frame("closure #1 in ", "<Cell 4>", 2, 5), Frame("closure #2 in f()", "<Cell 4>", 7)]
    assert cell_frames(frames) == [
        Frame("closure #1 in top-level code", "<Cell 4>", 2, 5),
        Frame("closure #2 in f()", "<Cell 4>", 7),
    ]


def test_repeated_frames_are_folded() -> None:
    frames = [Frame("rec(_:)", "<Cell 8>", 1)] * 64 + [Frame("main", "<Cell 9>", 1)]
    kept = cell_frames(frames)
    assert kept[0] == Frame("rec(_:)", "<Cell 8>", 1)
    assert kept[1] == Frame("top-level code", "<Cell 9>", 1)
    assert kept[-1].function == "... 63 more identical frames"
    assert len(kept) == 3


def test_frames_are_capped() -> None:
    frames = [Frame(f"f{i}()", "<Cell 1>", i + 1) for i in range(50)]
    assert len(cell_frames(frames)) == 20
    assert len(cell_frames(frames, limit=5)) == 5


def test_frame_render() -> None:
    assert Frame("f()", "<Cell 3>", 4, 2).render() == "f() at <Cell 3>:4"
    assert Frame("swift_reportError", None, 0).render() == "swift_reportError"
    assert Frame("g()", "<Cell 3>", 0).render() == "g()"


# Verbatim from Swift 6.3.1's LLDB: a witness in a later cell for a protocol of an earlier cell.
_NOT_PUBLIC = (
    "error: <Cell 3>:1:35: method 'describe()' must be declared public because it matches a requirement"
    " in public protocol 'Describable'\n"
    'extension Int: Describable { func describe() -> String { "int \\(self)" } }\n'
    "                                  ^\n"
)


def test_a_repl_limit_is_named_after_the_compilers_message() -> None:
    error = compile_error(_NOT_PUBLIC)
    assert error is not None
    assert error.evalue.startswith("<Cell 3>:1:35: method 'describe()' must be declared public")
    assert "(REPL limit L2: " in error.evalue and "write `public` before the member" in error.evalue
    assert error.traceback[-1].startswith("REPL limit L2: ")


def test_no_further_compiler_diagnostics_becomes_the_limits_note() -> None:
    error = compile_error("expression failed to parse (no further compiler diagnostics)")
    assert error is not None and error.ename == "CompileError"
    assert error.evalue.startswith("REPL limit L6/L7: ")
    assert "no further compiler diagnostics" not in error.evalue
    assert error.traceback == [error.evalue]


def test_an_ordinary_compile_error_names_no_limit() -> None:
    error = compile_error("error: <Cell 1>:1:1: cannot find 'x' in scope\nx\n^\n")
    assert error is not None and "REPL limit" not in error.evalue
    assert repl_limit("error: <Cell 1>:1:1: cannot find 'x' in scope") is None


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("error: <Cell 4>:1:7: cannot find operator '+++' in scope\nprint(+++n)\n      ^~~\n", "L3"),
        (
            "error: <Cell 9>:1:9: ambiguous use of 'download()'\nlet d = download()\n        ^\n"
            "/tmp/k/cells/41.swift:1:6: found this candidate in module '__lldb_expr_12'\n"
            "func download() -> Data { Data() }\n     ^\n"
            "/tmp/k/cells/41.swift:1:6: found this candidate in module '__lldb_expr_16'\n"
            "func download() -> Data { Data() }\n     ^\n",
            "L4/L9",
        ),
        (
            "error: <Cell 11>:1:13: 'RandomNumberGenerator' is ambiguous for type lookup in this context\n"
            "struct Gen: RandomNumberGenerator {}\n            ^~~~~~~~~~~~~~~~~~~~~\n"
            "Swift.RandomNumberGenerator:1:17: found this candidate\npublic protocol RandomNumberGenerator {\n"
            "/tmp/k/cells/17.swift:1:10: found this candidate\nprotocol RandomNumberGenerator {}\n",
            "L5",
        ),
        (
            "error: <Cell 5>:1:8: 'Data' is ambiguous for type lookup in this context\nlet x: Data\n"
            "/tmp/k/cells/1.swift:1:8: found this candidate\nstruct Data {}\n"
            "/tmp/k/cells/3.swift:1:8: found this candidate\nstruct Data {}\n",
            "L4",
        ),
        (
            "error: Couldn't look up symbols:\n  __lldb_expr_39.Square.draw() -> Swift.String\n",
            "L8",
        ),
        (
            "error: <Cell 3>:1:23: referencing operator function '+' on 'FloatingPoint' requires that 'Vec'"
            " conform to 'FloatingPoint'\n",
            "L3",
        ),
        (
            "error: <Cell 4>:1:1: extension outside of file declaring struct 'Vec' prevents automatic synthesis"
            " of '==' for protocol 'Equatable'\n",
            "L10",
        ),
        ("error: <Cell 4>:1:16: redundant conformance of 'Int' to protocol 'Describable'\n", "L8"),
        (
            "error: <Cell 2>:1:4: call to main actor-isolated instance method 'inc()' in a synchronous"
            " nonisolated context\n",
            "L11",
        ),
        (
            "error: <Cell 3>:1:4: main actor-isolated property 'n' can not be referenced from a nonisolated context",
            "L11",
        ),
        ("error: <Cell 5>:1:1: main actor-isolated var 'tally' can not be mutated from a nonisolated context", "L11"),
    ],
)
def test_each_repl_limit_is_recognised(text: str, limit: str) -> None:
    note = repl_limit(text)
    assert note is not None and note.startswith(f"REPL limit {limit}: "), note


def test_an_ambiguity_within_one_cell_is_not_a_repl_limit() -> None:
    text = (
        "error: <Cell 2>:3:1: ambiguous use of 'f()'\nf()\n^\n"
        "<Cell 2>:1:6: found this candidate\n<Cell 2>:2:6: found this candidate\n"
    )
    assert repl_limit(text) is None


_ISOLATION = "call to main actor-isolated initializer 'init()' in a synchronous nonisolated context"


@pytest.mark.parametrize(
    ("cell", "row", "column", "named"),
    [
        ("let model = Model()", 1, 13, True),  # top-level code: a program runs it on the main actor
        ("Task {\n    Model()\n}", 2, 5, True),  # a closure in top-level code: so would its Task
        ("func make() -> Model {\n    Model()\n}", 2, 5, False),  # a program refuses this too
        ("struct Box {\n    func open() { _ = Model() }\n}", 2, 24, False),
        ("struct Box {\n    let model = Model()\n}", 2, 17, False),
        ("var made: Int {\n    Model().n\n}", 2, 5, False),
        ("struct Box {\n    init() { _ = Model() }\n}", 2, 18, False),
    ],
)
def test_l11_is_named_for_top_level_code_only(cell: str, row: int, column: int, named: bool) -> None:
    error = compile_error(f"error: <Cell 2>:{row}:{column}: {_ISOLATION}\n", "<Cell 2>", cell)
    assert error is not None and error.evalue.startswith(f"<Cell 2>:{row}:{column}: {_ISOLATION}")
    assert ("REPL limit L11" in error.evalue) is named, error.evalue
