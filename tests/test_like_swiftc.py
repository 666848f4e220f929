"""Where LLDB's REPL and swiftc part ways, cells behave as swiftc's program would (issue 15).

A cell that ends with an error it threw and did not catch fails like a Swift program, with the
error: LLDB's REPL hands such an error back as a value (``$E0``); swiftc's program would trap with
"Fatal error: Error raised at top level". The kernel answers status error, ename the error's type,
evalue its description.

An editor placeholder (``<#value#>``) is refused before anything runs, as swiftc refuses it; LLDB
would compile it with a warning and trap when the code gets there.
"""

from __future__ import annotations

import pytest

from .conftest import KernelPair
from .utils import execute, value

pytestmark = pytest.mark.lldb

ERRORS = (
    "enum E: Error { case bad(Int) }\n"
    'struct Described: Error, CustomStringConvertible { var description: String { "described here" } }'
)
THROWING = (
    "func inner() throws -> Int {\n    throw E.bad(7)\n}\n"
    "func outer() throws -> Int {\n    let v = try inner()\n    return v\n}"
)


@pytest.fixture(scope="module")
def errors(kernel: KernelPair) -> KernelPair:
    _, kc = kernel
    assert execute(kc, ERRORS).status == "ok"
    assert execute(kc, THROWING).status == "ok"
    return kernel


def test_a_top_level_throw_fails_the_cell_with_the_error(errors: KernelPair) -> None:
    _, kc = errors
    thrown = execute(kc, "throw E.bad(5)")
    assert thrown.status == "error", thrown.content
    assert (thrown.content["ename"], thrown.content["evalue"]) == ("E", "bad(5)")
    assert thrown.content["traceback"][0] == "E: bad(5)"
    assert thrown.result is None


def test_an_uncaught_try_through_functions_of_an_earlier_cell(errors: KernelPair) -> None:
    _, kc = errors
    assert execute(kc, "var before = 1").status == "ok"
    thrown = execute(kc, 'print("ran")\nbefore = 2\nlet v = try outer()\nbefore = 3')
    assert thrown.status == "error", thrown.content
    assert (thrown.content["ename"], thrown.content["evalue"]) == ("E", "bad(7)")
    assert thrown.stream("stdout") == "ran\n"
    # What ran before the throw stays done; what came after did not run; the next cell runs.
    assert value(kc, "before") == "2"


def test_the_description_is_the_errors_own(errors: KernelPair) -> None:
    _, kc = errors
    thrown = execute(kc, "throw Described()")
    assert (thrown.content["ename"], thrown.content["evalue"]) == ("Described", "described here")


def test_caught_errors_and_error_values_are_not_failures(errors: KernelPair) -> None:
    _, kc = errors
    caught = execute(kc, 'do { _ = try outer() } catch { print("caught", error) }\n1 + 1')
    assert caught.status == "ok", caught.content
    assert caught.stream("stdout") == "caught bad(7)\n" and caught.result == "2"
    many = execute(
        kc, "var failures = 0\nfor _ in 0..<10_000 { do { _ = try outer() } catch { failures += 1 } }\nfailures"
    )
    assert many.status == "ok" and many.result == "10000", many.content
    # An error that is a cell's value, not thrown, is shown as a value.
    shown = execute(kc, "let asValue: Error = E.bad(1)\nasValue")
    assert shown.status == "ok", shown.content
    # A throw caught in an earlier cell is not this cell's error.
    assert execute(kc, "let plain = 4\nplain").result == "4"


def test_an_editor_placeholder_is_a_compile_error_and_nothing_runs(kernel: KernelPair) -> None:
    _, kc = kernel
    refused = execute(kc, 'print("first")\nvar placed = 1\nplaced = <#value#>')
    assert refused.status == "error", refused.content
    assert refused.content["ename"] == "CompileError"
    assert refused.content["evalue"].endswith(":3:10: editor placeholder in source file (replace <#value#> with code)")
    assert "placed = <#value#>" in refused.content["traceback"][0]
    assert refused.stream("stdout") == ""
    assert execute(kc, "placed").status == "error"  # never declared
    # In a string or a comment it is text, as for swiftc.
    text = execute(kc, 'let template = "<#name#>" // <#not code#>\ntemplate')
    assert text.status == "ok" and text.result == '"<#name#>"', text.content
