"""Where safe points go in a cell, and how LLDB's diagnostics are mapped back to the user's code."""

from __future__ import annotations

import pytest

from swift_kernel.diagnostics import compile_error
from swift_kernel.lldb_session import compiled_source
from swift_kernel.safepoints import SAFE_POINT, insert_safe_points

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("while true { n += 1 }", f"while true {{{SAFE_POINT} n += 1 }}"),
        ("for i in 0..<3 {\n    print(i)\n}", f"for i in 0..<3 {{{SAFE_POINT}\n    print(i)\n}}"),
        ("repeat { x += 1 } while x < 10", f"repeat {{{SAFE_POINT} x += 1 }} while x < 10"),
        (
            "while let y = queue.first(where: { $0 > 1 }) { queue.removeFirst() }",
            f"while let y = queue.first(where: {{ $0 > 1 }}) {{{SAFE_POINT} queue.removeFirst() }}",
        ),
        (
            "outer: for a in xs { for b in ys { print(a, b) } }",
            f"outer: for a in xs {{{SAFE_POINT} for b in ys {{{SAFE_POINT} print(a, b) }} }}",
        ),
        ("for await line in lines {}", f"for await line in lines {{{SAFE_POINT}}}"),
        # A loop word in a bare /regex/ (not masked) finds the next loop's body: one safe point there.
        ("let r = /for (x)/\nwhile true {}", f"let r = /for (x)/\nwhile true {{{SAFE_POINT}}}"),
        (
            "func spin(times: Int) {\n    for _ in 0..<times { work() }\n}",
            f"func spin(times: Int) {{\n    for _ in 0..<times {{{SAFE_POINT} work() }}\n}}",
        ),
    ],
    ids=[
        "one-line while",
        "multi-line for",
        "repeat-while",
        "closure in condition",
        "nested",
        "for await",
        "bare regex",
        "in func",
    ],
)
def test_every_loop_body_starts_with_a_safe_point(code: str, expected: str) -> None:
    assert insert_safe_points(code).code == expected


@pytest.mark.parametrize(
    "code",
    [
        'let s = "for i in x { while true {"',
        "// while true { }\n/* for x in y { */ let a = 1",
        "func f(for x: Int) { send(for: x, while: 2) }",
        "let r = #/for x in y {/#",
        "let t = items.for\nlet u = `while`",
        "x = a.while { 1 }",
    ],
    ids=["string", "comments", "argument labels", "regex", "members and backticks", "member call"],
)
def test_loop_words_that_are_no_loops_get_none(code: str) -> None:
    points = insert_safe_points(code)
    assert points.code == code and points.insertions == ()


def test_lines_never_move_and_a_brace_at_the_end_of_its_line_moves_no_column() -> None:
    code = "var total = 0\nfor i in 0..<10 {\n    total += i\n}\ntotal"
    points = insert_safe_points(code)
    assert points.code.count("\n") == code.count("\n")
    for original, rewritten in zip(code.split("\n"), points.code.split("\n"), strict=True):
        assert rewritten.startswith(original)


def test_columns_map_back_across_several_insertions_on_a_line() -> None:
    points = insert_safe_points("for a in x { for b in y { f(a, b) } }")
    rewritten, original = points.code, points.original
    # The `f` of the call, in rewritten and in original columns.
    assert points.original_column(1, rewritten.index("f(a") + 1) == original.index("f(a") + 1
    assert points.inside_insertion(1, rewritten.index("__swift") + 1)
    assert not points.inside_insertion(1, rewritten.index("f(a") + 1)


def test_diagnostics_read_as_if_nothing_was_inserted() -> None:
    original = "var n = 0\nwhile true { n += undefined }"
    points = insert_safe_points(original)
    line = points.code.split("\n")[1]
    column = line.index("undefined") + 1
    lldb_says = (
        f"error: <Cell 7>:2:{column}: cannot find 'undefined' in scope\n"
        f"{line}\n"
        f"{' ' * (column - 1)}^~~~~~~~~\n"
        "\n"
    )
    error = compile_error(points.restore(lldb_says, "<Cell 7>"), "<Cell 7>", original)
    assert error is not None
    assert error.evalue == "<Cell 7>:2:19: cannot find 'undefined' in scope"
    assert error.traceback == [
        "<Cell 7>:2:19: error: cannot find 'undefined' in scope\n"
        "while true { n += undefined }\n"
        "                  ^~~~~~~~~"
    ]


def test_other_cells_and_files_are_left_alone() -> None:
    points = insert_safe_points("while true { g() }")
    text = "error: <Cell 2>:1:14: something\nfunc g() { while true { x } }\n             ^\n"
    assert points.restore(text, "<Cell 9>") == text


def test_a_cell_starts_with_a_safe_point_only_where_lldb_cannot_cancel_it() -> None:
    # The LLDB host cancels a cell interrupted before it runs; the safe point in front is the fallback.
    located = '#sourceLocation(file: "<Cell 1>", line: 1)\n'
    assert compiled_source("x + 1", "<Cell 1>")[0] == f"{located}x + 1\n"
    assert compiled_source("x + 1", "<Cell 1>", cell_safe_point=True)[0] == f"{SAFE_POINT}\n{located}x + 1\n"
    assert compiled_source("x + 1", "<Cell 1>", safe_points=False, cell_safe_point=True)[0] == f"{located}x + 1\n"
