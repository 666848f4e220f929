"""Tests of swift_kernel.lsp without sourcekit-lsp: pure document/position code, then the client
against tests/fake_sourcekit_lsp.py (real pipes, real JSON-RPC framing, a fake server)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types as lsp

from swift_kernel.lsp import (
    Completion,
    Inspection,
    NotebookDocument,
    SourceKitLSP,
    SplitDocuments,
    _Client,
    blank_directives,
    build_document,
    build_split_documents,
    build_warnings_documents,
    completion_from_items,
    from_lsp_position,
    identifier_end,
    identifier_start,
    inspect_offset,
    inspection_from_hover,
    inspection_from_items,
    shadow_redeclarations,
    to_lsp_position,
)

from .utils import gone, until

FAKE_SERVER = str(Path(__file__).with_name("fake_sourcekit_lsp.py"))

pytestmark = pytest.mark.timeout(60)


# ----- positions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "offset", "position"),
    [
        ("", 0, (0, 0)),
        ("abc", 2, (0, 2)),
        ("abc\ndef", 4, (1, 0)),
        ("abc\ndef", 7, (1, 3)),
        ("a\r\nb", 3, (1, 0)),  # \r\n is one line break
        ("a\rb", 2, (1, 0)),  # so is a lone \r in LSP
        ("😀x", 1, (0, 2)),  # an astral character is two UTF-16 units
        ("é😀\nx😀y", 6, (1, 4)),
        ("é😀\nx😀y", 5, (1, 3)),
        ("abc", 99, (0, 3)),  # clamped
        ("a\x0cb", 2, (0, 2)),  # form feed is not a line break in LSP
    ],
)
def test_to_lsp_position(code: str, offset: int, position: tuple[int, int]) -> None:
    assert to_lsp_position(code, offset) == position


@pytest.mark.parametrize(
    ("code", "line", "character", "offset"),
    [
        ("😀x", 0, 2, 1),
        ("😀x", 0, 3, 2),
        ("é😀\nx😀y", 1, 4, 6),
        ("é😀\nx😀y", 1, 3, 5),
        ("abc\ndef", 5, 0, 7),  # past the last line: end of text
        ("abc\ndef", 0, 99, 3),  # past the end of a line: end of that line, not the next one
        ("a\r\nb", 0, 5, 1),
        ("abc", -1, 0, 0),
    ],
)
def test_from_lsp_position(code: str, line: int, character: int, offset: int) -> None:
    assert from_lsp_position(code, line, character) == offset


@pytest.mark.parametrize("code", ["", "let x = 1\nx.", "é😀\r\n\tz👍🏽w\n\n", "a\rb\r\nc\nd"])
def test_positions_round_trip(code: str) -> None:
    for offset in range(len(code) + 1):
        # An offset inside a \r\n pair has no LSP position of its own.
        if 0 < offset < len(code) and code[offset - 1 : offset + 1] == "\r\n":
            continue
        assert from_lsp_position(code, *to_lsp_position(code, offset)) == offset


def test_document_puts_the_cell_after_the_earlier_cells() -> None:
    document = build_document(["let a = 1", "let b = 2\n", "struct P {\n  var x: Int\n}"], "P(x: a).")
    # The final newline keeps sourcekit-lsp 6.3.1 from crashing on a Tab after `print(`.
    assert document.text == "let a = 1\nlet b = 2\nstruct P {\n  var x: Int\n}\nP(x: a).\n"
    assert document.cell_line == 5
    assert document.text.splitlines()[document.cell_line] == "P(x: a)."


def test_document_without_earlier_cells() -> None:
    assert build_document([], "x") == NotebookDocument("x\n", 0)
    assert build_document([], "x\n") == NotebookDocument("x\n", 0)


def test_inspect_documents_put_the_cell_alone_under_the_imports() -> None:
    cells = [
        "import Foundation\nlet a = 1",
        "@testable import Glibc",
        "  import struct Foundation.Date",
        "import Foundation",
    ]
    documents = build_split_documents(cells, "%help\na.")
    version, main = documents.main.text.split("\n", 1)
    assert version.startswith("// earlier cells: ")
    assert main == "import Foundation\n@testable import Glibc\nimport struct Foundation.Date\n     \na.\n"
    assert documents.main.cell_line == 4
    assert documents.cells == "".join(cell + "\n" for cell in cells)
    # Not an import: a name that starts with one, a comment, a string.
    assert build_split_documents(['let important = 1 // import X\nprint("import Y")'], "").main.cell_line == 1


def test_the_main_file_changes_with_the_earlier_cells() -> None:
    # sourcekit-lsp answers an unchanged main file from its cache, whatever the second file says.
    before = build_split_documents(["func g() -> Int { 1 }"], "g()").main.text
    after = build_split_documents(["@available(*, deprecated)\nfunc g() -> Int { 1 }"], "g()").main.text
    assert before != after
    assert build_split_documents(["func g() -> Int { 1 }"], "g()").main.text == before


def test_a_cell_run_twice_keeps_only_its_last_copy() -> None:
    point = "struct P {\n  var x: Int\n}"
    assert shadow_redeclarations([point, "let a = 1", point], "a") == ["\n\n", "let a = 1", point]


def test_redeclared_names_keep_only_the_latest_declaration() -> None:
    cells = [
        "let v = 1\nlet keep = 2",
        'struct P {\n  var x: Int\n  func f() { if true { } }\n}\nprint("{")',
        'let v = "text" // }',
        "struct P {\n  var y: Int\n}",
        "func g(_ x: Int) -> Int { x }\nfunc g(_ x: String) -> Int { 0 }",
    ]
    current = "@discardableResult func g(_ x: Int) -> Int { x + 1 }\nlet w = 1"
    assert shadow_redeclarations(cells, current) == [
        "\nlet keep = 2",
        '\n\n\n\nprint("{")',  # the whole struct, braces in a string not counted
        'let v = "text" // }',
        "struct P {\n  var y: Int\n}",
        "func g(_ x: Int) -> Int { x }\nfunc g(_ x: String) -> Int { 0 }",  # other headers: overloads
    ]


def test_the_warnings_check_has_the_cell_alone_and_the_earlier_declarations_beside_it() -> None:
    cells = ["var total = 1\ntotal += 1\nprint(total)", "func twice(_ n: Int) -> Int { 2 * n }\ntwice(3)"]
    documents = build_warnings_documents(cells, "twice(total)")
    assert documents.main.text.endswith("\ntwice(total)\n")
    assert documents.main.text.count("\n") == 2  # the version line, the cell
    # The statements' lines are blank: "total += 1", "print(total)", "twice(3)".
    assert documents.cells == "var total = 1\n\nfunc twice(_ n: Int) -> Int { 2 * n }\n"


def test_a_cell_tree_sitter_cannot_parse_keeps_the_warnings_check_in_one_file() -> None:
    cells = ["let fine = 1", "let odd = (1,"]
    documents = build_warnings_documents(cells, "fine")
    assert documents == SplitDocuments(build_document(cells, "fine"), "")


def test_a_redeclaration_takes_the_attribute_lines_above_it_along() -> None:
    # Left behind, the attribute would apply to the next declaration in the document.
    old = '@available(*, deprecated, message: "retired")\n@discardableResult\nfunc retiring() -> Int { 1 }\nlet k = 1'
    assert shadow_redeclarations([old, "@inlinable func kept() {}"], "func retiring() -> Int { 2 }") == [
        "\n\n\nlet k = 1",
        "@inlinable func kept() {}",
    ]
    # An attribute line above something that is not redeclared stays.
    assert shadow_redeclarations(["@MainActor\nfunc stays() {}"], "stays()") == ["@MainActor\nfunc stays() {}"]


def test_shadowing_keeps_line_counts_and_ignores_nested_declarations() -> None:
    cells = ["func outer() {\n  let v = 1\n}", "if true {\n  var v = 2\n}", "let z = 0"]
    assert shadow_redeclarations(cells, "let v = 3") == cells
    shadowed = shadow_redeclarations(["let z = [\n  1,\n]\nz"], "let z = 2")
    assert shadowed == ["\n\n\nz"]


def test_directives_are_blanked_keeping_columns() -> None:
    code = "%timeout 5\nlet x = 1\n  %help\nx"
    blanked = blank_directives(code)
    assert blanked == "          \nlet x = 1\n       \nx"
    assert len(blanked) == len(code)
    assert build_document([], code).text == blanked + "\n"


@pytest.mark.parametrize(
    ("code", "cursor", "start"),
    [("p.no", 4, 2), ("foo", 3, 0), ("a.b(", 4, 4), ("x + héllo", 9, 4), ("$0.co", 5, 3), ("", 0, 0)],
)
def test_identifier_start(code: str, cursor: int, start: int) -> None:
    assert identifier_start(code, cursor) == start


@pytest.mark.parametrize(
    ("code", "offset", "end"), [("p.norm()", 2, 6), ("p.norm()", 4, 6), ("abc", 3, 3), ("x", 0, 1)]
)
def test_identifier_end(code: str, offset: int, end: int) -> None:
    assert identifier_end(code, offset) == end


@pytest.mark.parametrize(
    ("code", "cursor", "offset"),
    [
        ("p.norm()", 4, 2),  # inside the name
        ("p.norm()", 6, 2),  # just after it
        ("p.norm", 2, 2),  # at its start
        ("print(x, ", 9, 0),  # in a call: the callee
        ("f(g(1), ", 8, 0),  # closed inner calls are skipped
        ("f (", 3, 0),
        ("1 + 2", 2, None),
        ("(1, ", 4, None),
        ("", 0, None),
    ],
)
def test_inspect_offset(code: str, cursor: int, offset: int | None) -> None:
    assert inspect_offset(code, cursor) == offset


# ----- results --------------------------------------------------------------------------------


def _item(
    label: str, start: int | None, *, line: int = 3, sort: str | None = None, **kwargs: object
) -> lsp.CompletionItem:
    edit = None
    if start is not None:
        where = lsp.Range(start=lsp.Position(line=line, character=start), end=lsp.Position(line=line, character=99))
        edit = lsp.TextEdit(range=where, new_text=str(kwargs.pop("new_text", label)))
    return lsp.CompletionItem(label=label, sort_text=sort, text_edit=edit, **kwargs)  # type: ignore[arg-type]


def test_completion_uses_the_text_edit_range_and_sort_order() -> None:
    items = [
        _item("norm()", 2, sort="2", kind=lsp.CompletionItemKind.Method, detail="Double"),
        _item("x", 2, sort="1", kind=lsp.CompletionItemKind.Property, detail="Int"),
    ]
    completion = completion_from_items(items, "p.", 2, cell_line=3)
    assert completion.matches == ["x", "norm()"]
    assert (completion.cursor_start, completion.cursor_end) == (2, 2)
    assert [(t.text, t.type, t.signature) for t in completion.types] == [
        ("x", "property", "x: Int"),
        ("norm()", "method", "norm() -> Double"),
    ]


def test_completion_converts_utf16_columns() -> None:
    code = 'print("😀", emo'
    # sourcekit-lsp says the name starts at UTF-16 column 12: the emoji counts twice.
    completion = completion_from_items([_item("emojiVar", 12)], code, len(code), cell_line=3)
    assert completion.cursor_start == code.index("emo")
    assert code[: completion.cursor_start] + completion.matches[0] == 'print("😀", emojiVar'


def test_completion_widens_matches_to_a_common_start() -> None:
    completion = completion_from_items([_item("alpha", 2), _item("beta", 4, new_text="ta")], "x.be", 4, cell_line=3)
    assert completion.cursor_start == 2
    assert completion.matches == ["alpha", "beta"]


def test_completion_drops_duplicate_overloads_and_falls_back_without_edits() -> None:
    items = [
        lsp.CompletionItem(label="max(a: Int, b: Int)", insert_text="max()", kind=lsp.CompletionItemKind.Function),
        lsp.CompletionItem(
            label="max(a: Double, b: Double)", insert_text="max()", kind=lsp.CompletionItemKind.Function
        ),
    ]
    completion = completion_from_items(items, "let m = ma", 10, cell_line=0)
    assert completion.matches == ["max("]
    assert completion.cursor_start == 8
    assert completion.types[0].type == "function"


def test_completion_of_nothing_is_empty() -> None:
    assert completion_from_items([], "zz", 2, cell_line=0) == Completion([], 2, 2)


def test_completion_ignores_ranges_outside_the_cell() -> None:
    # A start on an earlier line than the cell cannot be expressed in the cell: use the name.
    completion = completion_from_items([_item("count", 0, line=1)], "s.co", 4, cell_line=3)
    assert completion.cursor_start == 2


def test_inspection_from_markdown_hover() -> None:
    hover = lsp.Hover(
        contents=lsp.MarkupContent(
            kind=lsp.MarkupKind.Markdown, value="```swift\nfunc norm() -> Double\n```\n\nDistance."
        )
    )
    assert inspection_from_hover(hover) == Inspection(
        True, "func norm() -> Double\n\nDistance.", "```swift\nfunc norm() -> Double\n```\n\nDistance."
    )


def test_inspection_from_overloads_lists_each_with_its_documentation() -> None:
    documented = lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value="Formats `date`.")
    items = [
        lsp.CompletionItem(
            label="string(for: Any?)", kind=lsp.CompletionItemKind.Method, detail="String?", sort_text="2"
        ),
        lsp.CompletionItem(label="strings", kind=lsp.CompletionItemKind.Property, detail="[String]", sort_text="0"),
        lsp.CompletionItem(
            label="string(from: Date)",
            kind=lsp.CompletionItemKind.Method,
            detail="String",
            documentation=documented,
            sort_text="1",
        ),
    ]
    inspection = inspection_from_items(items, "string")
    assert inspection.found
    assert inspection.plain == "string(from: Date) -> String\n\nFormats `date`.\n\nstring(for: Any?) -> String?"
    assert inspection.markdown == (
        "```swift\nstring(from: Date) -> String\n```\n\nFormats `date`."
        "\n\n---\n\n```swift\nstring(for: Any?) -> String?\n```"
    )
    assert inspection_from_items(items, "str") == Inspection(False)


def test_inspection_from_marked_strings() -> None:
    hover = lsp.Hover(contents=[lsp.MarkedStringWithLanguage(language="swift", value="let x: Int"), "The x."])
    inspection = inspection_from_hover(hover)
    assert inspection.found
    assert inspection.plain == "let x: Int\n\nThe x."


@pytest.mark.parametrize(
    "hover", [None, lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=" "))]
)
def test_inspection_not_found(hover: lsp.Hover | None) -> None:
    assert inspection_from_hover(hover) == Inspection(False)


# ----- the client against the fake server -----------------------------------------------------


def _client(mode: str = "normal", *extra: str, **settings: float) -> SourceKitLSP:
    settings.setdefault("first_deadline", 15.0)  # the fake is a Python process: slow to start on 2 cores
    return SourceKitLSP(sys.executable, arguments=[FAKE_SERVER, mode, *extra], **settings)  # type: ignore[arg-type]


@pytest.fixture
def clients() -> Iterator[list[SourceKitLSP]]:
    """Close every client a test made, even when it fails."""
    made: list[SourceKitLSP] = []
    yield made
    for client in made:
        client.close()


def test_client_completes_and_inspects_through_real_pipes(clients: list[SourceKitLSP]) -> None:
    client = _client()
    clients.append(client)
    assert client.pid is None, "nothing starts before the first request"

    async def run() -> tuple[Completion, Completion, Inspection, Inspection]:
        cells = ["let alpha = 1", "%timeout 5\nlet alpine = 2"]
        first = await client.complete(cells, "x = al", 6)
        # Unicode in the document travels through the framing (Content-Length counts bytes).
        second = await client.complete([*cells, 'let s = "😀 ünïcode"'], "ünï + alp", 9)
        found = await client.inspect(cells, "alpha", 3)
        missing = await client.inspect(cells, "1 + ", 3)
        return first, second, found, missing

    first, second, found, missing = asyncio.run(run())
    assert first.matches == ["alpha", "alpine"]
    assert (first.cursor_start, first.cursor_end) == (4, 6)
    assert [t.signature for t in first.types] == ["alpha: line 0", "alpine: line 2"]  # the directive kept its line
    assert second.matches == ["alpha", "alpine"]
    # Line 1 of the hover document: under the line naming the earlier cells' version.
    assert found == Inspection(
        True, "let alpha\n\nThe word at line 1.", "```swift\nlet alpha\n```\n\nThe word at line 1."
    )
    assert missing == Inspection(False)


def test_a_completion_during_the_warm_up_waits_for_it_and_is_answered(clients: list[SourceKitLSP]) -> None:
    """The first Tab of a kernel that started fast came while sourcekit-lsp was still loading modules
    for the warm-up, and got nothing within its deadline; it now waits for the warm-up."""
    client = _client("slow-first", first_deadline=0.5, warm_up_wait=60.0)
    clients.append(client)
    client.start()

    async def run() -> Completion:
        return await client.complete(["let alpha = 1"], "x = al", 6)

    assert asyncio.run(run()).matches == ["alpha"]


def test_a_request_right_after_new_compiler_arguments_is_answered_with_them(
    clients: list[SourceKitLSP], tmp_path: Path
) -> None:
    """%install's -I folders: sourcekit-lsp rereads the compile command in the background, so the
    client waits for that (``workspace/synchronize``) before its next request."""
    client = _client("slow-reload")
    clients.append(client)

    async def run() -> tuple[list[str], list[str]]:
        before = (await client.complete([], "Marker", 6)).matches
        client.set_compiler_arguments(["-I", str(tmp_path / "MarkerModules")])
        return before, (await client.complete([], "Marker", 6)).matches

    assert asyncio.run(run()) == ([], ["MarkerModules"])


def test_the_client_is_warming_up_from_its_start_until_the_warm_up_is_answered(clients: list[SourceKitLSP]) -> None:
    client = _client("slow-first")  # 2 s over the warm-up's completion
    clients.append(client)
    assert not client.warming_up, "nothing started yet"
    client.start()
    assert client.warming_up
    until(lambda: not client.warming_up, 60, "the warm-up never ended")


def test_client_process_is_in_its_own_group_and_close_cleans_up(clients: list[SourceKitLSP]) -> None:
    client = _client()
    clients.append(client)
    asyncio.run(client.complete([], "x", 1))
    pid = client.pid
    assert pid is not None
    assert os.getpgid(pid) == pid != os.getpgid(0)
    directory = client._directory  # private: the test checks the temp dir goes away
    assert directory is not None and (directory / "complete" / "main.swift").read_text() == "x\n"
    assert (directory / "compile_commands.json").exists()
    client.close()
    assert gone(pid)
    assert not directory.exists()
    assert not any(t.name == "swift-lsp" for t in threading.enumerate())
    assert asyncio.run(client.complete([], "x", 1)) == Completion([], 1, 1), "a closed client answers empty"


def test_missing_server_answers_empty_at_once(clients: list[SourceKitLSP]) -> None:
    client = SourceKitLSP("/nonexistent/sourcekit-lsp")
    clients.append(client)

    async def run() -> list[float]:
        took = []
        for _ in range(3):
            started = time.monotonic()
            assert await client.complete(["let a = 1"], "a", 1) == Completion([], 1, 1)
            assert await client.inspect([], "a", 1) == Inspection(False)
            took.append(time.monotonic() - started)
        return took

    assert max(asyncio.run(run())) < 0.5


def test_crashed_server_is_restarted_in_the_background(clients: list[SourceKitLSP], tmp_path: Path) -> None:
    client = _client("crash-once", str(tmp_path / "crashed"))
    clients.append(client)

    async def first() -> Completion:
        return await client.complete(["let alpha = 1"], "al", 2)

    started = time.monotonic()
    assert asyncio.run(first()).matches == []  # the server died answering
    assert time.monotonic() - started < 5, "a crash is noticed at once, not at the deadline"
    assert (tmp_path / "crashed").exists()
    # Restarted without any request asking for it.
    until(lambda: client.pid is not None, timeout=20)
    assert asyncio.run(first()).matches == ["alpha"]


def test_hung_server_misses_deadlines_then_is_killed_and_restarted(clients: list[SourceKitLSP]) -> None:
    client = _client("hang", warm_deadline=0.5, hang_after=2.0)
    clients.append(client)
    assert asyncio.run(client.complete([], "x = 1; x", 8)).matches == []  # answered (the fake hangs from then on)
    hung = client.pid
    assert hung is not None
    started = time.monotonic()
    assert asyncio.run(client.complete([], "x", 1)) == Completion([], 1, 1)
    assert time.monotonic() - started < 1.2, "a warm server gets the warm deadline"
    until(lambda: gone(hung), timeout=10)
    until(lambda: client.pid not in (None, hung), timeout=20)


def test_server_that_never_initializes_answers_empty_within_the_deadline(clients: list[SourceKitLSP]) -> None:
    client = _client("hang-init", first_deadline=1.0, hang_after=30.0)
    clients.append(client)
    started = time.monotonic()
    assert asyncio.run(client.complete([], "x", 1)) == Completion([], 1, 1)
    assert time.monotonic() - started < 2.0


def test_directive_lines_are_not_completed(clients: list[SourceKitLSP]) -> None:
    client = SourceKitLSP("/nonexistent/sourcekit-lsp")
    clients.append(client)
    assert asyncio.run(client.complete([], "%time", 5)) == Completion([], 5, 5)
    assert client._loop is None, "a directive line never starts the server"  # private, on purpose


def _call(label: str, text: str, filter_text: str, detail: str) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        label=label, insert_text=text, filter_text=filter_text, detail=detail, kind=lsp.CompletionItemKind.Function
    )


@pytest.mark.parametrize(
    ("item", "inserted", "signature"),
    [
        # sourcekit-lsp 6.3.1's items for `func greet(_ name: String, loudly: Bool = false) -> String`.
        (
            _call("greet(name: String, loudly: Bool)", "greet(, loudly: )", "greet(:loudly:)", "String"),
            "greet(",
            "greet(_ name: String, loudly: Bool) -> String",
        ),
        (_call("greet(name: String)", "greet()", "greet(:)", "String"), "greet(", "greet(_ name: String) -> String"),
        (
            _call("precondition(condition: Bool, message: String)", "precondition(, )", "precondition(::)", "Void"),
            "precondition(",
            "precondition(_ condition: Bool, _ message: String) -> Void",
        ),
        (
            _call("append(contentsOf: Sequence)", "append(contentsOf: )", "append(contentsOf:)", "Void"),
            "append(contentsOf: ",
            "append(contentsOf: Sequence) -> Void",
        ),
        (
            _call("sorted(by: (Int, Int) throws -> Bool) rethrows", "sorted(by: )", "sorted(by:)", "[Int]"),
            "sorted(by: ",
            "sorted(by: (Int, Int) throws -> Bool) rethrows -> [Int]",
        ),
        (_call("norm()", "norm()", "norm()", "Double"), "norm()", "norm() -> Double"),
    ],
)
def test_call_completions_insert_valid_swift_up_to_the_first_argument(
    item: lsp.CompletionItem, inserted: str, signature: str
) -> None:
    completion = completion_from_items([item], "x", 1, cell_line=0)
    assert completion.matches == [inserted]
    assert completion.types[0].signature == signature


def test_a_result_pygls_has_no_type_for_stays_json() -> None:
    """The diagnostics report is read as JSON: pygls's own converter makes namedtuples (and renames
    the URI keys of a fix-it's ``changes``), 0.85 ms per warning of the kernel's GIL."""
    edit = {"range": {"start": {"line": 0, "character": 4}}, "newText": "_"}
    report = {"kind": "full", "items": [{"codeActions": [{"edit": {"changes": {"file:///a.swift": [edit]}}}]}]}
    message = {"jsonrpc": "2.0", "id": 7, "result": report}
    read = _Client(lambda *_: None).protocol.structure_message(json.loads(json.dumps(message)))
    assert read.result == report
    assert type(read.result["items"][0]) is dict
