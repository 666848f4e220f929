"""Answer completion, inspection and warnings requests for Swift cells from the toolchain's sourcekit-lsp.

The notebook is shown to sourcekit-lsp as real files in a private temporary directory. For
completion, ``complete/main.swift`` holds the Swift source of every cell that ran without error,
in order, followed by the cell being edited. For hover, ``inspect/main.swift`` holds the edited
cell alone (under the earlier cells' imports) and ``inspect/cells.swift`` the earlier cells, which
is faster for hover and slower for completion. For a running cell's warnings, likewise
``diagnose/main.swift`` holds the cell and ``diagnose/cells.swift`` what the earlier cells declare
(``declarations``), so that the check does not grow with the notebook. A
``compile_commands.json`` compiles each as a program whose main file is ``main.swift``, so
top-level statements type-check the way the REPL runs them. Declarations that a later cell makes
again are blanked out, as the REPL shadows them.

One sourcekit-lsp process serves one kernel. The kernel starts it in the background when it
starts (``start``), and it loads the standard library with one completion then, so that the
first Tab finds it ready; otherwise it starts on the first request. It runs in its own
process group, and all its I/O happens on one thread with its own asyncio loop, so the kernel's
shell loop only ever waits on a future with a deadline. A request that misses its deadline gets
an empty answer; a server that is missing, exits or stops answering is restarted in the
background. Nothing here runs code or touches LLDB.

The JSON-RPC framing and the message types come from pygls and lsprotocol.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import zlib
from collections import deque
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.protocol import default_converter
from pygls.protocol.json_rpc import JsonRPCResponseMessage

from .declarations import declarations_only
from .diagnostics import FixIt, SourceDiagnostic, compiler_message
from .procfs import remove_stale_temp_dirs

__all__ = [
    "Completion",
    "CompletionType",
    "Inspection",
    "NotebookDocument",
    "SourceKitLSP",
    "SplitDocuments",
    "build_document",
    "build_split_documents",
    "build_warnings_documents",
    "cell_diagnostics",
    "completion_from_items",
    "from_lsp_position",
    "inspect_offset",
    "inspection_from_hover",
    "inspection_from_items",
    "shadow_redeclarations",
    "to_lsp_position",
]

_T = TypeVar("_T")

# ----- the document and positions (pure) ------------------------------------------------------

# The line breaks LSP counts; str.splitlines() knows more (\x0c, \u2028, ...) and would disagree.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_DIRECTIVE_LINE = re.compile(r"^[ \t]*%[^\r\n]*", re.MULTILINE)


def blank_directives(code: str) -> str:
    """Replace each ``%`` directive line with spaces of its length, so offsets and columns stay put."""
    return _DIRECTIVE_LINE.sub(lambda match: " " * len(match.group(0)), code)


@dataclass(frozen=True)
class NotebookDocument:
    """The text sourcekit-lsp sees, and the line on which the edited cell starts."""

    text: str
    cell_line: int


_DECLARATION = re.compile(
    r"^[ \t]*(?:@\w+(?:\([^)]*\))?[ \t]+)*"
    r"(?:(?:public|private|fileprivate|internal|open|final|static|lazy|nonisolated|indirect)[ \t]+)*"
    r"(let|var|struct|class|enum|protocol|typealias|actor|func)[ \t]+([A-Za-z_]\w*|`[^`]+`)"
)
_ATTRIBUTES_LINE = re.compile(r"^[ \t]*(?:@\w+(?:\([^)]*\))?[ \t]*)+$")
_STRING_OR_COMMENT = re.compile(r'"(?:\\.|[^"\\])*"|//.*$')


def _top_level_declarations(code: str) -> list[tuple[str, int, int]]:
    """Return (key, first line, last line) of each declaration at bracket depth 0 in ``code``.

    A rough scan (strings and line comments skipped, nothing else parsed): enough to find what
    a later cell declares again. A function's key is its whole header, so overloads differ. The
    attribute lines right above a declaration are part of it: blanked without it, one would
    attach itself to whatever declaration came next.
    """
    found: list[tuple[str, int, int]] = []
    depth = 0
    pending: tuple[str, int] | None = None
    attributes: int | None = None  # the first of the attribute lines right above, if any
    for number, line in enumerate(code.split("\n")):
        if depth == 0 and pending is None:
            if match := _DECLARATION.match(line):
                keyword, name = match.groups()
                key = " ".join(line.split("{")[0].split()) if keyword == "func" else name
                pending = (key, number if attributes is None else attributes)
            elif _ATTRIBUTES_LINE.match(line):
                attributes = number if attributes is None else attributes
            else:
                attributes = None
        if pending is not None:
            attributes = None
        bare = _STRING_OR_COMMENT.sub("", line)
        opened = bare.count("{") + bare.count("(") + bare.count("[")
        depth = max(0, depth + opened - bare.count("}") - bare.count(")") - bare.count("]"))
        if pending is not None and depth == 0:
            found.append((pending[0], pending[1], number))
            pending = None
    if pending is not None:
        found.append((pending[0], pending[1], code.count("\n")))
    return found


def shadow_redeclarations(cells: Sequence[str], current: str) -> list[str]:
    """Blank out what later cells declare again, as the REPL's shadowing hides it.

    A cell run twice, or a `let`, type or function declared again (the edited cell counts as
    the latest), leaves two declarations in one file, and sourcekit-lsp then offers nothing
    for either (measured: `p.` after a cell run twice). The older copy's lines become empty,
    so line numbers stay the same.
    """
    sources = [*cells, current]
    last_copy = {text: index for index, text in enumerate(sources)}
    declarations = [_top_level_declarations(text) for text in sources]
    last_declared: dict[str, int] = {}
    for index, found in enumerate(declarations):
        for key, _, _ in found:
            last_declared[key] = index
    result: list[str] = []
    for index, text in enumerate(cells):
        if last_copy[text] != index:
            result.append("\n" * text.count("\n"))
            continue
        lines = text.split("\n")
        for key, first, last in declarations[index]:
            if last_declared[key] != index:
                lines[first : last + 1] = [""] * (last + 1 - first)
        result.append("\n".join(lines))
    return result


def _joined(cells: Sequence[str]) -> str:
    """Join cells, each ending with a newline."""
    # Each earlier cell gets its own final newline so the edited cell always starts a fresh line.
    return "".join(cell if cell.endswith("\n") else cell + "\n" for cell in cells)


def build_document(cells: Sequence[str], current: str) -> NotebookDocument:
    """Join the earlier cells and the edited cell into one document (the one completion reads)."""
    prefix = _joined(cells)
    return NotebookDocument(prefix + _with_final_newline(blank_directives(current)), len(_LINE_BREAK.findall(prefix)))


def _with_final_newline(text: str) -> str:
    """Return ``text`` ending with a newline."""
    # sourcekit-lsp 6.3.1 crashes ('String index is out of bounds' in CodeCompletionSession) on
    # a completion right after `(` at the very end of a document, as in `print(`; a final
    # newline after the cursor avoids it and changes nothing else.
    return text if text.endswith("\n") else text + "\n"


_IMPORT_LINE = re.compile(
    r"^[ \t]*(?:@\w+[ \t]+)*import[ \t]+(?:(?:typealias|struct|class|enum|protocol|let|var|func)[ \t]+)?[\w.]+[ \t]*$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class SplitDocuments:
    """The notebook split for hover and warnings: the edited cell in the main file, the earlier cells beside it."""

    main: NotebookDocument
    cells: str


def build_split_documents(cells: Sequence[str], current: str) -> SplitDocuments:
    """Split the notebook into a main file with the edited cell and a second file with the rest.

    Hover and a cell's warnings need the main file fully type-checked: with 50 cells of top-level
    code in it hover took about 450 ms here, with the edited cell alone about 60 ms, because
    declarations in a second file are checked only as far as the main file uses them. The
    warnings of a cell of 100 functions took 0.5 s after no such cell and 4.2 s after eleven in
    one file; split, 0.5 s after eleven as well. (Completion does not type-check the whole main
    file, and is faster with one file: about 90 ms against 200 ms.) Imports hold per file, so the
    earlier cells' imports are repeated above the edited cell.
    """
    prefix = _joined(cells)
    imports = "".join(dict.fromkeys(match.group(0).strip() + "\n" for match in _IMPORT_LINE.finditer(prefix)))
    # sourcekit-lsp keeps its answer for an unchanged main file when only the second file changed
    # (measured: a deprecation that an earlier cell no longer had was still reported), so the main
    # file names the second file's version.
    imports = f"// earlier cells: {zlib.crc32(prefix.encode()):08x}\n" + imports
    main = NotebookDocument(imports + _with_final_newline(blank_directives(current)), len(_LINE_BREAK.findall(imports)))
    return SplitDocuments(main, prefix)


def build_warnings_documents(cells: Sequence[str], current: str) -> SplitDocuments:
    """Return the files whose check gives the running cell's warnings: the cell, the earlier declarations beside it.

    The second file holds what the earlier cells declare (``declarations``). Should one of them
    have no such form (tree-sitter cannot parse it), all the cells go into the main file, checked
    whole, as before the split.
    """
    shadowed = shadow_redeclarations(cells, current)
    declared = [declarations_only(cell) for cell in shadowed]
    if any(cell is None for cell in declared):
        return SplitDocuments(build_document(shadowed, current), "")
    return build_split_documents([cell or "" for cell in declared], current)


_SEVERITIES = {1: "error", 2: "warning", 3: "note", 4: "remark"}


def cell_diagnostics(items: Sequence[Any], code: str, cell_line: int) -> list[SourceDiagnostic]:
    """Return the diagnostics (LSP JSON: dicts and lists) that start in the cell, placed in the cell.

    The cell is the document's lines from ``cell_line`` on. Lines become the cell's own, and
    columns count ``code``'s characters instead of UTF-16 units. A diagnostic's fix-its are the
    edits of its code actions (sourcekit-lsp's ``codeActions``, not in the LSP specification);
    the document is one file, so every edit is in it. What the earlier cells get (a redeclaration
    the REPL allows) is left out.
    """
    starts = _line_starts(code)

    def place(position: Any) -> tuple[int, int]:
        line = min(max(int(position["line"]) - cell_line, 0), len(starts) - 1)
        return line, from_lsp_position(code, line, int(position["character"])) - starts[line]

    found = []
    for item in items:
        try:
            start, end = item["range"]["start"], item["range"]["end"]
            if not cell_line <= int(start["line"]) < cell_line + len(starts):
                continue
            (line, column), (end_line, end_column) = place(start), place(end)
            fixits = []
            for action in item.get("codeActions") or ():
                changes = (action.get("edit") or {}).get("changes") or {}
                for edit in (edit for edits in changes.values() for edit in edits):
                    (fix_line, fix_column), (fix_end_line, fix_end) = (
                        place(edit["range"]["start"]),
                        place(edit["range"]["end"]),
                    )
                    fixits.append(FixIt(fix_line, fix_column, fix_end_line, fix_end, str(edit["newText"])))
            quoted = code[starts[line] + column : starts[end_line] + end_column]
            message = compiler_message(str(item["message"]), quoted)
            severity = _SEVERITIES.get(int(item.get("severity") or 1), "error")
            found.append(SourceDiagnostic(severity, line, column, end_line, end_column, message, tuple(fixits)))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a diagnostic in a shape this code does not know: no warning beats a crash
    return found


def _utf16_length(text: str) -> int:
    """Return how many UTF-16 code units ``text`` takes."""
    return len(text.encode("utf-16-le")) // 2


def _line_starts(code: str) -> list[int]:
    """Return the offset at which each line of ``code`` starts."""
    return [0, *(match.end() for match in _LINE_BREAK.finditer(code))]


def to_lsp_position(code: str, offset: int) -> tuple[int, int]:
    """Return the (line, UTF-16 column) of the code-point ``offset`` in ``code``.

    Jupyter counts cursor positions in code points; LSP counts columns in UTF-16 units unless
    both sides agree on another encoding, and sourcekit-lsp offers none.
    """
    offset = max(0, min(offset, len(code)))
    starts = _line_starts(code)
    line = 0
    for index, start in enumerate(starts):
        if start > offset:
            break
        line = index
    return line, _utf16_length(code[starts[line] : offset])


def from_lsp_position(code: str, line: int, character: int) -> int:
    """Return the code-point offset in ``code`` of an LSP (line, UTF-16 column), clamped to the text."""
    starts = _line_starts(code)
    if line < 0:
        return 0
    if line >= len(starts):
        return len(code)
    start = starts[line]
    end = starts[line + 1] if line + 1 < len(starts) else len(code)
    text = _LINE_BREAK.sub("", code[start:end])
    units = 0
    for index, char in enumerate(text):
        if units >= character:
            return start + index
        units += 2 if ord(char) > 0xFFFF else 1
    return start + len(text)


def _is_identifier_char(char: str) -> bool:
    """Say whether ``char`` can be part of a Swift identifier."""
    return char.isalnum() or char in "_$"


def identifier_start(code: str, cursor: int) -> int:
    """Return where the identifier that ends at ``cursor`` starts (``cursor`` when there is none)."""
    start = cursor
    while start > 0 and _is_identifier_char(code[start - 1]):
        start -= 1
    return start


def identifier_end(code: str, offset: int) -> int:
    """Return where the identifier that starts at or contains ``offset`` ends."""
    end = offset
    while end < len(code) and _is_identifier_char(code[end]):
        end += 1
    return end


def inspect_offset(code: str, cursor: int) -> int | None:
    """Return the offset of the name Shift-Tab at ``cursor`` asks about, or None.

    That is the identifier under or just before the cursor, or else the callee of the innermost
    open parenthesis before it (``print(x, |`` asks about ``print``), as IPython does.
    """
    cursor = max(0, min(cursor, len(code)))
    if cursor < len(code) and _is_identifier_char(code[cursor]):
        return identifier_start(code, cursor)
    if cursor > 0 and _is_identifier_char(code[cursor - 1]):
        return identifier_start(code, cursor)
    depth = 0
    for index in range(cursor - 1, -1, -1):
        char = code[index]
        if char == ")":
            depth += 1
        elif char == "(":
            if depth == 0:
                end = index
                while end > 0 and code[end - 1] in " \t":
                    end -= 1
                if end > 0 and _is_identifier_char(code[end - 1]):
                    return identifier_start(code, end)
                return None
            depth -= 1
    return None


# ----- results (pure) --------------------------------------------------------------------------

# Swift's words for LSP's kinds where they differ (Interface is a protocol, Constructor an init).
_KIND_NAMES: dict[int, str] = {
    lsp.CompletionItemKind.Text: "text",
    lsp.CompletionItemKind.Method: "method",
    lsp.CompletionItemKind.Function: "function",
    lsp.CompletionItemKind.Constructor: "initializer",
    lsp.CompletionItemKind.Field: "field",
    lsp.CompletionItemKind.Variable: "variable",
    lsp.CompletionItemKind.Class: "class",
    lsp.CompletionItemKind.Interface: "protocol",
    lsp.CompletionItemKind.Module: "module",
    lsp.CompletionItemKind.Property: "property",
    lsp.CompletionItemKind.Unit: "unit",
    lsp.CompletionItemKind.Value: "value",
    lsp.CompletionItemKind.Enum: "enum",
    lsp.CompletionItemKind.Keyword: "keyword",
    lsp.CompletionItemKind.Snippet: "snippet",
    lsp.CompletionItemKind.Color: "color",
    lsp.CompletionItemKind.File: "file",
    lsp.CompletionItemKind.Reference: "reference",
    lsp.CompletionItemKind.Folder: "folder",
    lsp.CompletionItemKind.EnumMember: "enum case",
    lsp.CompletionItemKind.Constant: "constant",
    lsp.CompletionItemKind.Struct: "struct",
    lsp.CompletionItemKind.Event: "event",
    lsp.CompletionItemKind.Operator: "operator",
    lsp.CompletionItemKind.TypeParameter: "typealias",  # sourcekit-lsp uses this kind for typealiases
}
_CALLABLE_KINDS = {lsp.CompletionItemKind.Method, lsp.CompletionItemKind.Function, lsp.CompletionItemKind.Constructor}


@dataclass(frozen=True)
class CompletionType:
    """What JupyterLab shows beside one match (an entry of ``_jupyter_types_experimental``)."""

    text: str
    type: str
    signature: str


@dataclass(frozen=True)
class Completion:
    """Matches that replace ``code[cursor_start:cursor_end]``."""

    matches: list[str]
    cursor_start: int
    cursor_end: int
    types: list[CompletionType] = field(default_factory=list)

    @classmethod
    def empty(cls, cursor_pos: int) -> Completion:
        """Return the answer for 'nothing to offer'."""
        return cls([], cursor_pos, cursor_pos)


@dataclass(frozen=True)
class Inspection:
    """The declaration and documentation of one symbol, or ``found=False``."""

    found: bool
    plain: str = ""
    markdown: str = ""


# A call's name and opening parenthesis at the start of an insert text: `greet(`, `Box<Int>(`.
_CALL_START = re.compile(r"[A-Za-z_$`][\w$`]*(?:<[^()]*>)?\(")
# An argument slot that starts with its label: `contentsOf: `, `after: &`.
_LABELLED_SLOT = re.compile(r"\s*(?:[A-Za-z_$][\w$]*|`[^`]+`):")


def _parameter_list(text: str) -> tuple[int, int] | None:
    """Return where the outermost parenthesised list after the name in ``text`` starts and ends."""
    match = _CALL_START.match(text)
    if match is None:
        return None
    depth = 0
    for index in range(match.end() - 1, len(text)):
        if text[index] in "([<":
            depth += 1
        elif text[index] in ")]>" and not (text[index] == ">" and text[index - 1] == "-"):
            depth -= 1
            if depth == 0:
                return match.end(), index
    return None


def _split_parameters(text: str) -> list[str]:
    """Split a parameter list at its top-level commas (types such as `(Int, Int) -> Bool` hold commas)."""
    parts: list[str] = []
    depth = start = 0
    for index, char in enumerate(text):
        if char in "([<":
            depth += 1
        elif char in ")]>" and not (char == ">" and text[index - 1] == "-"):
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _argument_labels(item: lsp.CompletionItem) -> list[str] | None:
    """Return a callable item's argument labels ('' for an unlabelled one), from its filter text `f(_:b:)`."""
    filter_text = item.filter_text or ""
    span = _parameter_list(filter_text)
    if span is None:
        return None
    inner = filter_text[span[0] : span[1]]
    return [label.strip() for label in inner.split(":")[:-1]]


def _call_text(item: lsp.CompletionItem, text: str) -> str:
    """Return what a call completion should insert: the name, `(`, and the first argument's label if it has one.

    Without snippet support sourcekit-lsp inserts every argument slot empty: `greet(, loudly: )`
    for `greet(_ name: String, loudly: Bool)`, `precondition(, )`, `triple()` for `triple(_:)`,
    none of which is Swift, and Jupyter leaves the cursor after the `)`. Stopping where the first
    argument goes is valid so far and puts the cursor there; the signature still shows every
    parameter. Calls without parameters (`norm()`) are inserted whole.
    """
    if item.kind not in _CALLABLE_KINDS:
        return text
    span = _parameter_list(text)
    if span is None or span[1] != len(text.rstrip()) - 1:
        return text
    labels = _argument_labels(item)
    if labels is None:  # no filter text: the label's parameter list says it
        label_span = _parameter_list(item.label)
        labels = [""] if label_span and item.label[label_span[0] : label_span[1]].strip() else []
    if not labels:
        return text
    first_slot = _split_parameters(text[span[0] : span[1]])[0]
    if _LABELLED_SLOT.match(first_slot):
        first_slot = first_slot.strip()
        return text[: span[0]] + first_slot + (" " if first_slot.endswith(":") else "")
    return text[: span[0]]


def _swift_label(item: lsp.CompletionItem) -> str:
    """Return a callable item's label as a Swift declaration would spell it: `greet(_ name: String, loudly: Bool)`.

    sourcekit-lsp's label drops the `_` of unlabelled parameters (`greet(name: String, ...)`), which
    reads as if `name:` were the argument label; the filter text (`greet(:loudly:)`) says which are.
    """
    label = item.label
    labels = _argument_labels(item)
    span = _parameter_list(label)
    if item.kind not in _CALLABLE_KINDS or labels is None or span is None or not labels:
        return label
    parameters = _split_parameters(label[span[0] : span[1]])
    if len(parameters) != len(labels):
        return label
    spelled = []
    for argument_label, parameter in zip(labels, (p.strip() for p in parameters), strict=True):
        name = parameter.split(":", 1)[0].strip()
        if argument_label == "" and name != "_":
            spelled.append(f"_ {parameter}")
        elif argument_label not in ("", name):
            spelled.append(f"{argument_label} {parameter}")
        else:
            spelled.append(parameter)
    return f"{label[: span[0]]}{', '.join(spelled)}{label[span[1] :]}"


def _signature(item: lsp.CompletionItem) -> str:
    """Render a completion item as a one-line Swift signature."""
    label = _swift_label(item)
    if not item.detail:
        return label
    if item.kind in _CALLABLE_KINDS:
        return f"{label} -> {item.detail}"
    if item.kind == lsp.CompletionItemKind.Keyword or item.detail == item.label:
        return label
    return f"{label}: {item.detail}"


def _item_text_and_start(item: lsp.CompletionItem) -> tuple[str, lsp.Position | None]:
    """Return the text an item inserts and where its replaced range starts, if it says."""
    edit = item.text_edit
    if isinstance(edit, lsp.TextEdit):
        return edit.new_text, edit.range.start
    if isinstance(edit, lsp.InsertReplaceEdit):
        return edit.new_text, edit.insert.start
    return item.insert_text or item.label, None


def completion_from_items(
    items: Sequence[lsp.CompletionItem], code: str, cursor_pos: int, cell_line: int
) -> Completion:
    """Turn sourcekit-lsp's completion items into matches for the cell ``code``.

    ``cell_line`` is the document line on which the cell starts; the text each item replaces
    comes from its text edit, so ``cursor_start`` is where sourcekit-lsp says the name begins.
    """
    fallback_start = identifier_start(code, cursor_pos)
    placed: list[tuple[lsp.CompletionItem, str, int]] = []
    for item in sorted(items, key=lambda item: item.sort_text or item.label):
        text, position = _item_text_and_start(item)
        text = _call_text(item, text)
        start = fallback_start
        if position is not None and position.line >= cell_line:
            start = from_lsp_position(code, position.line - cell_line, position.character)
        placed.append((item, text, min(start, cursor_pos)))
    if not placed:
        return Completion.empty(cursor_pos)
    cursor_start = min(start for _, _, start in placed)
    matches: list[str] = []
    types: list[CompletionType] = []
    seen: set[str] = set()
    for item, text, start in placed:
        # Jupyter has one replaced range per reply: widen each match to the common start.
        full = code[cursor_start:start] + text
        if full in seen:  # overloads insert the same text; one line each is enough
            continue
        seen.add(full)
        matches.append(full)
        kind = _KIND_NAMES.get(item.kind, "<unknown>") if item.kind is not None else "<unknown>"
        types.append(CompletionType(full, kind, _signature(item)))
    return Completion(matches, cursor_start, cursor_pos, types)


_FENCE = re.compile(r"^```[\w+-]*[ \t]*$")


def _markdown_to_plain(markdown: str) -> str:
    """Drop the code fences from sourcekit-lsp's markdown."""
    lines = [line for line in markdown.splitlines() if not _FENCE.match(line.strip())]
    return "\n".join(lines).strip()


def _documentation(item: lsp.CompletionItem) -> str:
    """Return an item's documentation as markdown."""
    documentation = item.documentation
    if isinstance(documentation, lsp.MarkupContent):
        return documentation.value.strip()
    return (documentation or "").strip()


def inspection_from_items(items: Sequence[lsp.CompletionItem], name: str) -> Inspection:
    """Describe the completion items called ``name``: the overloads a hover could not choose between."""
    markdown: list[str] = []
    plain: list[str] = []
    for item in sorted(items, key=lambda item: item.sort_text or item.label):
        if re.split(r"[(<\s]", item.label, maxsplit=1)[0] != name:
            continue
        signature, documentation = _signature(item), _documentation(item)
        markdown.append(f"```swift\n{signature}\n```" + (f"\n\n{documentation}" if documentation else ""))
        plain.append(signature + (f"\n\n{_markdown_to_plain(documentation)}" if documentation else ""))
    if not markdown:
        return Inspection(False)
    return Inspection(True, "\n\n".join(plain), "\n\n---\n\n".join(markdown))


def inspection_from_hover(hover: lsp.Hover | None) -> Inspection:
    """Turn a hover answer into markdown and plain text (``found=False`` when it is empty)."""
    if hover is None:
        return Inspection(False)
    contents = hover.contents
    parts: list[str] = []
    for part in contents if isinstance(contents, list) else [contents]:
        if isinstance(part, lsp.MarkupContent):
            parts.append(part.value)
        elif isinstance(part, lsp.MarkedStringWithLanguage):
            parts.append(f"```{part.language}\n{part.value}\n```")
        else:
            parts.append(str(part))
    markdown = "\n\n".join(p.strip() for p in parts if p.strip())
    if not markdown:
        return Inspection(False)
    return Inspection(True, _markdown_to_plain(markdown), markdown)


# ----- the client -----------------------------------------------------------------------------

# What _request returns when the server did not answer in time or answered with an error.
_NO_ANSWER: Any = object()

# The private document directory's name: this prefix, the kernel's pid, a random part.
_DIRECTORY_PREFIX = "swift-kernel-lsp-"

# How much nicer than the kernel sourcekit-lsp runs (nice -n).
_NICENESS = 10

# sourcekit-lsp rereads a changed compile command in the background; this request (an extension
# it enables through the experimental feature below) answers once that is done. A server without
# the feature ignores the option and answers the request with an error, which waits for nothing.
_SYNCHRONIZE = "workspace/synchronize"
_INITIALIZATION_OPTIONS = {"experimentalFeatures": ["synchronize-for-build-system-updates"]}


def _server_environment(temp: Path) -> dict[str, str]:
    """Return sourcekit-lsp's environment: the kernel's, with ``temp`` as its temp directory and a quiet log.

    At its default level sourcekit-lsp logs every request and answer, pretty-printed, to
    ``~/.sourcekit-lsp/logs``: 250 KB for a session of 300 cells, in a file of its own for each
    process, and 4.1 ms of its CPU for each cell's warnings check, against 2.9 ms at level
    ``error`` (300 checks of one line, measured by process CPU). Beside a cell's compile on
    two cores, that CPU is the cell's. A user who set ``SOURCEKIT_LSP_LOG_LEVEL`` keeps it.
    """
    environment = {**os.environ, "TMPDIR": str(temp)}
    environment.setdefault("SOURCEKIT_LSP_LOG_LEVEL", "error")
    return environment


def _nice_session(pid: int, niceness: int) -> None:
    """Give the session ``pid`` leads the nice value ``niceness`` (nothing without autogroup scheduling).

    Linux's autogroup scheduling (on by default in most distributions) shares the CPU among
    sessions first, and a process's nice value counts only inside its own session. sourcekit-lsp
    leads a session of its own, so `nice` alone left it an equal share beside the kernel's session.
    The session's nice value, in /proc/PID/autogroup, is what counts between sessions; going back
    to 0 needs no privilege.
    """
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(f"{niceness}\n")


# Enough of sourcekit-lsp's stderr to hold a whole crash report of Swift's backtracer.
_STDERR_LINES_KEPT = 1000

_QUIET_NOTIFICATIONS = (
    lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
    lsp.WINDOW_LOG_MESSAGE,
    lsp.WINDOW_SHOW_MESSAGE,
    lsp.PROGRESS,
    lsp.LOG_TRACE,
)


def _converter() -> Any:
    """pygls's converter, except that a result pygls has no type for stays JSON: dicts and lists.

    pygls makes such a result's every JSON object a namedtuple of a class made for it, with
    ``json.loads`` on the LSP thread: 0.85 ms of the kernel's GIL for a diagnostics report of one
    warning with a fix-it, taken while the cell's request went to LLDB (0.06 ms as JSON).
    """
    converter = default_converter()  # type: ignore[no-untyped-call]  # pygls leaves it unannotated
    converter.register_structure_hook(JsonRPCResponseMessage, lambda message, cls: cls(**message))
    return converter


class _Client(LanguageClient):
    """pygls's client, telling its owner when the server process exits."""

    def __init__(self, on_exit: Any) -> None:
        super().__init__("swift_kernel", "0", converter_factory=_converter)
        self._on_exit = on_exit
        for method in _QUIET_NOTIFICATIONS:
            # Diagnostics and logs arrive unasked; without a handler pygls warns about each one.
            self.feature(method)(_ignore)

    async def server_exit(self, server: asyncio.subprocess.Process) -> None:
        """Report the exit (pygls calls this once the process has ended)."""
        self._on_exit(self, server.returncode)


def _ignore(*_: Any) -> None:
    """Drop a notification nobody needs."""


@dataclass(frozen=True)
class _Completed:
    """sourcekit-lsp's completion items, and the document line the cell starts on."""

    items: Sequence[lsp.CompletionItem]
    cell_line: int


@dataclass
class _Session:
    """One running sourcekit-lsp process and what it has been told."""

    client: _Client
    process: asyncio.subprocess.Process
    texts: dict[str, str] = field(default_factory=dict)
    version: int = 0
    warm: set[str] = field(default_factory=set)
    ended: bool = False
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    stdin_closed: asyncio.Task[None] | None = None
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=_STDERR_LINES_KEPT))
    checks: int = 0

    @contextlib.contextmanager
    def beside_a_cell(self) -> Iterator[None]:
        """Make the server's whole session nicer for the block: a cell's check, beside its compile.

        On this 2-core machine with one other busy process, the warnings' check of a 1,000-line
        cell took 1.2 s of CPU while the cell compiled, which took 1.5 times as long as without
        warnings (``_nice_session``). Only then: completion and hover keep an equal share, for a
        Tab on a busy machine.
        """
        self.checks += 1
        if self.checks == 1:
            _nice_session(self.process.pid, _NICENESS)
        try:
            yield
        finally:
            self.checks -= 1
            if self.checks == 0:
                _nice_session(self.process.pid, 0)


class SourceKitLSP:
    """Complete and inspect Swift cells with one lazily started sourcekit-lsp process.

    The kernel calls ``complete`` and ``inspect`` from its shell loop and ``close`` at shutdown;
    everything else runs on the ``swift-lsp`` thread.
    """

    def __init__(
        self,
        executable: str | os.PathLike[str],
        *,
        first_deadline: float = 0.9,
        warm_deadline: float = 1.0,
        warm_up_wait: float = 5.0,
        hang_after: float = 10.0,
        max_restart_delay: float = 30.0,
        compiler_arguments: Sequence[str] = (),
        arguments: Sequence[str] = (),
        log: logging.Logger | None = None,
    ) -> None:
        """Remember the settings; no process or thread starts until ``start`` or the first request.

        ``first_deadline`` bounds a request to a server that has not answered a completion yet
        (it includes waiting for the start), ``warm_deadline`` every later one. JupyterLab drops a
        completion provider's answer after 1 s (its ``providerTimeout``), so the first request
        waits at most 0.9 s by default. A completion that comes while the warm-up ``start`` began
        is still under way waits for it first, up to ``warm_up_wait`` seconds: until then
        sourcekit-lsp could only have answered nothing (the first Tab of a kernel that started
        in a second, on a loaded machine, used to be empty). A request still
        unanswered ``hang_after`` seconds after it was sent means the server hangs: it is killed
        and restarted. ``compiler_arguments`` go into the document's compile command (for
        example ``-I`` for modules built by ``%install``); ``arguments`` go to sourcekit-lsp.
        """
        self.executable = str(executable)
        self.first_deadline = first_deadline
        self.warm_deadline = warm_deadline
        self.warm_up_wait = warm_up_wait
        self.hang_after = hang_after
        self.max_restart_delay = max_restart_delay
        self.arguments = list(arguments)
        self.log = log or logging.getLogger(__name__)
        self._compiler_arguments = list(compiler_arguments)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._directory: Path | None = None
        self._session: _Session | None = None
        self._starting: asyncio.Task[_Session | None] | None = None
        self._restart_delay = 0.0
        self._next_start = 0.0
        self._closed = False
        self._ids = itertools.count(1)
        self._pids: set[int] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._warming: asyncio.Task[None] | None = None
        self._warm_up_asked = False
        # The reread of a changed compile command (``set_compiler_arguments``), which requests wait for.
        self._reloading: asyncio.Task[None] | None = None

    # ----- called from the kernel's loop --------------------------------------------------

    def start(self) -> None:
        """Start sourcekit-lsp in the background and warm it up (the kernel's ``__init__``); returns at once.

        Started on the first Tab instead, sourcekit-lsp needs about 0.5 s to start and load the
        standard library, and a Swift module such as Foundation as much again: the first
        request missed its deadline and answered nothing.
        """
        loop = self._ensure_thread()
        if loop is not None:
            self._warm_up_asked = True
            loop.call_soon_threadsafe(self._begin_warm_up)

    async def complete(self, cells: Sequence[str], code: str, cursor_pos: int) -> Completion:
        """Return completions for ``code`` at ``cursor_pos`` after ``cells``; empty past the deadline."""
        cursor_pos = max(0, min(cursor_pos, len(code)))
        if _on_directive_line(code, cursor_pos):
            return Completion.empty(cursor_pos)
        answer = await self._ask(self._complete_after_warm_up(list(cells), code, cursor_pos), self.warming_up)
        if answer is None:
            return Completion.empty(cursor_pos)
        return completion_from_items(answer.items, code, cursor_pos, answer.cell_line)

    def diagnose(
        self, cells: Sequence[str], code: str, beside: bool = True
    ) -> concurrent.futures.Future[list[SourceDiagnostic] | None]:
        """Start finding the compiler's diagnostics of ``code`` run after ``cells``; returns at once.

        The kernel calls this while a cell runs (``beside``: the check then runs at a lower
        priority, see ``_Session.beside_a_cell``) or once it has replied. The future holds the diagnostics that
        lie in ``code``, with lines and columns of ``code`` itself (LSP's UTF-16 columns turned
        into ``code``'s characters), or None when sourcekit-lsp is missing, slow (``hang_after``)
        or failed. It never raises.
        """
        loop = self._ensure_thread()
        if loop is None:
            done: concurrent.futures.Future[list[SourceDiagnostic] | None] = concurrent.futures.Future()
            done.set_result(None)
            return done
        return asyncio.run_coroutine_threadsafe(self._diagnose(list(cells), code, beside), loop)

    async def inspect(self, cells: Sequence[str], code: str, cursor_pos: int) -> Inspection:
        """Return the declaration and documentation at ``cursor_pos``; not found past the deadline."""
        offset = inspect_offset(code, cursor_pos)
        if offset is None or _on_directive_line(code, offset):
            return Inspection(False)
        answer = await self._ask(self._inspect(list(cells), code, offset))
        return answer if answer is not None else Inspection(False)

    def close(self) -> None:
        """Stop sourcekit-lsp and the thread, and delete the document (the kernel's do_shutdown)."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._stop_all(), loop).result(timeout=3)
            except Exception:  # the loop is stuck or gone: the killpg below still runs
                self.log.warning("sourcekit-lsp did not stop cleanly", exc_info=True)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=2)
        for pid in list(self._pids):
            _kill_group(pid)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        """Return the running sourcekit-lsp's pid (None before the first request or while restarting)."""
        session = self._session
        return session.process.pid if session is not None and not session.ended else None

    def set_compiler_arguments(self, arguments: Sequence[str]) -> None:
        """Compile the document with ``arguments`` from now on (``%install`` adds its ``-I`` paths)."""
        with self._lock:
            self._compiler_arguments = list(arguments)
            if self._loop is None or self._closed:
                return  # the first request writes the compile command with them
            self._loop.call_soon_threadsafe(self._begin_reload)

    @property
    def warming_up(self) -> bool:
        """Whether the warm-up ``start`` began is still under way, or not yet created on the LSP
        thread (read from the kernel's loop: a flag, then the task's state)."""
        warming = self._warming
        return self._warm_up_asked and (warming is None or not warming.done())

    async def _ask(self, work: Coroutine[Any, Any, _T], after_warm_up: bool = False) -> _T | None:
        """Run ``work`` on the LSP thread and await it from the kernel's loop, None on any failure."""
        loop = self._ensure_thread()
        if loop is None:
            work.close()
            return None
        future = asyncio.run_coroutine_threadsafe(work, loop)
        # The LSP thread keeps its own deadlines; this one only guards against that loop being
        # stuck, so the shell loop is never held longer than the first deadline (after the
        # warm-up's wait, for a completion that waits for it).
        guard = self.first_deadline + 0.5 + (self.warm_up_wait if after_warm_up else 0.0)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), guard)
        except Exception:  # an empty answer beats an error reply for Tab
            self.log.debug("code intelligence request failed", exc_info=True)
            return None

    def _ensure_thread(self) -> asyncio.AbstractEventLoop | None:
        """Start the LSP thread and create the document directory on first use; None once closed."""
        with self._lock:
            if self._closed:
                return None
            if self._loop is None:
                remove_stale_temp_dirs(_DIRECTORY_PREFIX)
                self._directory = Path(tempfile.mkdtemp(prefix=f"{_DIRECTORY_PREFIX}{os.getpid()}-"))
                self._write_compile_command()
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=_run_loop, args=(loop,), name="swift-lsp", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    # ----- on the LSP thread --------------------------------------------------------------

    @property
    def _completion_source(self) -> Path:
        """Return the completion document's path."""
        assert self._directory is not None
        return self._directory / "complete" / "main.swift"

    @property
    def _diagnose_source(self) -> Path:
        """Return the path of the document whose diagnostics become a running cell's warnings."""
        assert self._directory is not None
        return self._directory / "diagnose" / "main.swift"

    @property
    def _diagnose_cells(self) -> Path:
        """Return the path of the earlier cells beside the diagnostics' document."""
        assert self._directory is not None
        return self._directory / "diagnose" / "cells.swift"

    @property
    def _inspect_source(self) -> Path:
        """Return the hover document's path (the edited cell)."""
        assert self._directory is not None
        return self._directory / "inspect" / "main.swift"

    @property
    def _inspect_cells(self) -> Path:
        """Return the path of the earlier cells beside the hover document."""
        assert self._directory is not None
        return self._directory / "inspect" / "cells.swift"

    def _write_compile_command(self) -> None:
        """Write compile_commands.json for both documents, creating their folders."""
        assert self._directory is not None
        for folder in ("complete", "inspect", "diagnose"):
            (self._directory / folder).mkdir(exist_ok=True)
        for second in (self._inspect_cells, self._diagnose_cells):
            if not second.exists():
                second.write_text("")
        # A file named main.swift is the program's main file: top-level code is allowed in it.
        swiftc = ["swiftc", "-module-name", "Notebook", *self._compiler_arguments]
        pairs = [
            [str(self._inspect_source), str(self._inspect_cells)],
            [str(self._diagnose_source), str(self._diagnose_cells)],
        ]
        command = [
            {
                "directory": str(self._directory),
                "file": str(self._completion_source),
                "arguments": [*swiftc, str(self._completion_source)],
            },
            *(
                {"directory": str(self._directory), "file": file, "arguments": [*swiftc, *files]}
                for files in pairs
                for file in files
            ),
        ]
        (self._directory / "compile_commands.json").write_text(json.dumps(command, indent=1))

    def _begin_reload(self) -> None:
        """Start ``_reload_compile_command`` (on the LSP loop, before any request asked after it)."""
        if not self._closed:
            self._reloading = self._spawn(self._reload_compile_command())

    async def _reload_compile_command(self) -> None:
        """Rewrite the compile command, make the running server use it, and wait until it does."""
        self._write_compile_command()
        session = self._session
        if session is not None and not session.ended:
            assert self._directory is not None
            uri = (self._directory / "compile_commands.json").as_uri()
            change = lsp.FileEvent(uri=uri, type=lsp.FileChangeType.Changed)
            # Both are needed (measured): the notification makes sourcekit-lsp reread the file, and
            # documents it has open keep their old arguments until they are opened again.
            session.client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(changes=[change]))
            for source in (self._completion_source, self._inspect_source, self._diagnose_source):
                if session.texts.pop(source.as_uri(), None) is not None:
                    document = lsp.TextDocumentIdentifier(uri=source.as_uri())
                    session.client.text_document_did_close(lsp.DidCloseTextDocumentParams(text_document=document))
            # The reread happens in the background: a request sent before it is done is answered
            # with the old arguments (a module on a new -I folder not found).
            deadline = asyncio.get_running_loop().time() + self.first_deadline
            await self._request(session, _SYNCHRONIZE, {"buildServerUpdates": True}, deadline, raw=True)

    def _begin_warm_up(self) -> None:
        """Create the warm-up task on the LSP loop (before any request: call_soon keeps the order)."""
        if self._warming is None and not self._closed:
            self._warming = asyncio.get_running_loop().create_task(self._warm_up())

    async def _warm_up(self) -> None:
        """Start sourcekit-lsp and have it complete once, which loads the standard library and Foundation."""
        deadline = asyncio.get_running_loop().time() + self.hang_after
        session = await self._session_by(deadline)
        if session is None:
            return
        # Measured here: start and the first completion in an empty file 0.42 s, then the first
        # one in a notebook that imports Foundation 0.44 s more; warmed with Foundation (0.61 s in
        # all) both kinds of notebook answer in 0.05-0.1 s, as sourcekitd keeps modules loaded.
        self._sync(session, self._completion_source, "import Foundation\n\n")
        params = lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=self._completion_source.as_uri()),
            position=lsp.Position(line=1, character=0),
        )
        if await self._request(session, lsp.TEXT_DOCUMENT_COMPLETION, params, deadline) is not _NO_ANSWER:
            session.warm.add(lsp.TEXT_DOCUMENT_COMPLETION)

    async def _await_warm_up(self, deadline: float) -> None:
        """Let a request wait, until ``deadline`` at most, for the warm-up ``start`` began."""
        warming = self._warming
        if warming is not None and not warming.done():
            remaining = deadline - asyncio.get_running_loop().time()
            # asyncio.wait, not wait_for: the warm-up goes on past this request's deadline.
            await asyncio.wait({warming}, timeout=max(0.0, remaining))

    async def _complete_after_warm_up(self, cells: list[str], code: str, cursor_pos: int) -> _Completed | None:
        """``_complete``, once the warm-up is done (``warm_up_wait`` at most): the first Tab gets an answer."""
        await self._await_warm_up(asyncio.get_running_loop().time() + self.warm_up_wait)
        return await self._complete(cells, code, cursor_pos)

    async def _complete(
        self, cells: list[str], code: str, cursor_pos: int, deadline: float | None = None
    ) -> _Completed | None:
        """Ask for completion items at ``cursor_pos`` of the edited cell; None without an answer."""
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self._current_deadline()
        synced = await self._notebook_synced(cells, code, self._completion_source, deadline)
        if synced is None:
            return None
        session, document = synced
        line, character = to_lsp_position(code, cursor_pos)
        params = lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=self._completion_source.as_uri()),
            position=lsp.Position(line=document.cell_line + line, character=character),
        )
        result = await self._request(session, lsp.TEXT_DOCUMENT_COMPLETION, params, deadline)
        if result is _NO_ANSWER:
            return None
        session.warm.add(lsp.TEXT_DOCUMENT_COMPLETION)
        self._restart_delay = 0.0
        items = result.items if isinstance(result, lsp.CompletionList) else (result or [])
        return _Completed(items, document.cell_line)

    async def _inspect(self, cells: list[str], code: str, offset: int) -> Inspection | None:
        """Ask for the hover at ``offset`` of the edited cell, falling back to overloads; None without an answer."""
        deadline = asyncio.get_running_loop().time() + self._current_deadline(lsp.TEXT_DOCUMENT_HOVER)
        await self._await_warm_up(deadline)
        session = await self._session_by(deadline)
        if session is None:
            return None
        documents = build_split_documents(shadow_redeclarations(cells, code), code)
        self._sync_split(session, self._inspect_source, self._inspect_cells, documents)
        line, character = to_lsp_position(code, offset)
        params = lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=self._inspect_source.as_uri()),
            position=lsp.Position(line=documents.main.cell_line + line, character=character),
        )
        hover = await self._request(session, lsp.TEXT_DOCUMENT_HOVER, params, deadline)
        if hover is _NO_ANSWER:
            return None
        session.warm.add(lsp.TEXT_DOCUMENT_HOVER)
        inspection = inspection_from_hover(hover if isinstance(hover, lsp.Hover) else None)
        if inspection.found:
            return inspection
        # Hover gives up on a name it cannot resolve to one declaration, such as an overloaded
        # method before its arguments are written (`formatter.string(`); completion of that name
        # lists every overload with its documentation. Only for calls and members: a global
        # completion of an unknown name costs up to a second and finds nothing anyway.
        end = identifier_end(code, offset)
        if not (code[end:].lstrip(" \t").startswith("(") or code[:offset].rstrip().endswith(".")):
            return inspection
        completed = await self._complete(cells, code, end, deadline)
        if completed is None or not completed.items:
            return inspection
        return inspection_from_items(completed.items, code[offset:end])

    async def _notebook_synced(
        self, cells: list[str], code: str, source: Path, deadline: float
    ) -> tuple[_Session, NotebookDocument] | None:
        """Give the server, by ``deadline``, ``source`` holding ``cells`` then ``code``; None without a server."""
        await self._await_warm_up(deadline)
        session = await self._session_by(deadline)
        if session is None:
            return None
        document = build_document(shadow_redeclarations(cells, code), code)
        self._sync(session, source, document.text)
        return session, document

    async def _diagnose(self, cells: list[str], code: str, beside: bool) -> list[SourceDiagnostic] | None:
        """Pull the diagnostics of ``code`` run after ``cells``; keep those in ``code``."""
        # Documents of their own: a Tab while the cell runs changes the completion document, and a
        # pull answers for whatever text the server has when it gets to the request.
        # Not after the warm-up: asked beside it, the first cells' checks end 0.5-0.6 s sooner.
        deadline = asyncio.get_running_loop().time() + self.hang_after
        session = await self._session_by(deadline)
        if session is None:
            return None
        documents = build_warnings_documents(cells, code)
        params = lsp.DocumentDiagnosticParams(
            text_document=lsp.TextDocumentIdentifier(uri=self._diagnose_source.as_uri())
        )
        # After a cell's reply nothing of it runs: at a lower priority, the check lost every time to
        # three busy processes, and the warnings to the cell's idle status (README: Warnings).
        with session.beside_a_cell() if beside else contextlib.nullcontext():
            self._sync_split(session, self._diagnose_source, self._diagnose_cells, documents)
            # Raw JSON: lsprotocol's types would drop the fix-its (sourcekit-lsp's own codeActions field).
            report = await self._request(session, lsp.TEXT_DOCUMENT_DIAGNOSTIC, params, deadline, raw=True)
        if report is _NO_ANSWER or not isinstance(report, dict) or report.get("kind") != "full":
            # An "unchanged" report cannot come: no previous result id is ever sent.
            return None
        return cell_diagnostics(report.get("items") or [], code, documents.main.cell_line)

    def _current_deadline(self, method: str = lsp.TEXT_DOCUMENT_COMPLETION) -> float:
        """Return the deadline for ``method``: longer until the server has answered one."""
        session = self._session
        warm = session is not None and method in session.warm and not session.ended
        return self.warm_deadline if warm else self.first_deadline

    async def _session_by(self, deadline: float) -> _Session | None:
        """Return the running session, starting one if needed, or None if none is ready by ``deadline``.

        A reread of the compile command under way (``set_compiler_arguments``) is waited for first.
        """
        reloading = self._reloading
        if reloading is not None and not reloading.done():
            remaining = deadline - asyncio.get_running_loop().time()
            await asyncio.wait({reloading}, timeout=max(0.0, remaining))
        session = self._session
        if session is not None and not session.ended:
            return session
        starting = self._start_soon(0.0)
        if starting is None:
            return None
        remaining = deadline - asyncio.get_running_loop().time()
        # asyncio.wait leaves the start running past our deadline: the next request profits.
        done, _ = await asyncio.wait({starting}, timeout=max(0.0, remaining))
        if not done or starting.cancelled() or starting.exception() is not None:
            return None
        return starting.result()

    def _start_soon(self, delay: float) -> asyncio.Task[_Session | None] | None:
        """Return the task that starts sourcekit-lsp, creating it unless one runs or backoff forbids."""
        if self._closed:
            return None
        if self._starting is not None and not self._starting.done():
            return self._starting
        loop = asyncio.get_running_loop()
        if delay <= 0 and loop.time() < self._next_start:
            return None
        self._starting = loop.create_task(self._start(delay))
        return self._starting

    async def _start(self, delay: float) -> _Session | None:
        """Start sourcekit-lsp and initialize it; None (with a backoff) if that fails."""
        if delay > 0:
            await asyncio.sleep(delay)
        loop = asyncio.get_running_loop()
        client = _Client(self._on_exit)
        try:
            # A process group of its own: a SIGINT for the kernel's group must not reach it, and
            # shutdown can kill whatever it started with one killpg.
            # Its own temp directory, removed with the documents: sourcekitd leaves files there
            # (a crash report's symbolizer-input-*, the Swift driver's TemporaryDirectory.*).
            assert self._directory is not None
            temp = self._directory / "tmp"
            temp.mkdir(exist_ok=True)
            if shutil.which(self.executable) is None:
                raise FileNotFoundError(f"no executable {self.executable}")
            # At a lower CPU priority: it type-checks the notebook for each cell's warnings while
            # the cell compiles and runs, and on a busy machine the cell must win.
            nice = shutil.which("nice")
            priority = [nice, "-n", str(_NICENESS)] if nice else []
            await client.start_io(
                *priority,
                self.executable,
                *self.arguments,
                start_new_session=True,
                cwd=str(self._directory),
                env=_server_environment(temp),
            )
        except OSError as error:
            self._back_off(f"cannot start {self.executable}: {error}")
            return None
        process = client._server  # pygls keeps the process there and nowhere public
        assert process is not None and process.stderr is not None
        self._pids.add(process.pid)
        session = _Session(client, process)
        session.tasks.add(loop.create_task(_drain(process.stderr, self.log, session.stderr_tail)))
        if process.stdin is not None:
            # CPython 3.10 logs 'Future exception was never retrieved' when the stdin of a server
            # that died breaks; awaiting wait_closed() takes that error. Never cancel this task:
            # that would cancel the future the pipe later resolves.
            session.stdin_closed = loop.create_task(_stdin_closed(process.stdin))
        try:
            await asyncio.wait_for(client.initialize_async(self._initialize_params()), self.hang_after)
            client.initialized(lsp.InitializedParams())
        except asyncio.CancelledError:  # close() while starting
            await self._end(session)
            raise
        except Exception as error:  # noqa: BLE001 - any failure to start means try again later
            self._back_off(f"sourcekit-lsp did not initialize: {error!r}")
            await self._end(session)
            return None
        if self._closed:
            await self._end(session)
            return None
        self._session = session
        self.log.info("sourcekit-lsp %s started", process.pid)
        return session

    def _initialize_params(self) -> lsp.InitializeParams:
        """Return the initialize request: plain-text completions, markdown hovers."""
        assert self._directory is not None
        capabilities = lsp.ClientCapabilities(
            text_document=lsp.TextDocumentClientCapabilities(
                # Plain insert texts: Jupyter cannot expand ${1:placeholder} snippets.
                completion=lsp.CompletionClientCapabilities(
                    completion_item=lsp.ClientCompletionItemOptions(snippet_support=False)
                ),
                hover=lsp.HoverClientCapabilities(content_format=[lsp.MarkupKind.Markdown, lsp.MarkupKind.PlainText]),
            ),
        )
        return lsp.InitializeParams(
            capabilities=capabilities,
            initialization_options=_INITIALIZATION_OPTIONS,
            process_id=os.getpid(),
            root_uri=self._directory.as_uri(),
            workspace_folders=[lsp.WorkspaceFolder(uri=self._directory.as_uri(), name="notebook")],
        )

    def _back_off(self, reason: str) -> None:
        """Log why starting failed and wait longer before the next start."""
        self._restart_delay = min(max(0.5, self._restart_delay * 2), self.max_restart_delay)
        self._next_start = asyncio.get_running_loop().time() + self._restart_delay
        self.log.warning("%s; code intelligence retries in %.1f s", reason, self._restart_delay)

    def _sync_split(self, session: _Session, main: Path, second: Path, documents: SplitDocuments) -> None:
        """Give the server ``documents``: the main file as an open document, the second one on disk."""
        # The second file is read from disk: sourcekitd notices its new modification time.
        if session.texts.get(second.as_uri()) != documents.cells:
            second.write_text(documents.cells)
            session.texts[second.as_uri()] = documents.cells
        self._sync(session, main, documents.main.text)

    def _sync(self, session: _Session, source: Path, text: str) -> None:
        """Tell sourcekit-lsp the text of the open document ``source``, and write it to disk too."""
        uri = source.as_uri()
        if session.texts.get(uri) == text:
            return
        source.write_text(text)
        session.version += 1
        if uri not in session.texts:
            item = lsp.TextDocumentItem(uri=uri, language_id="swift", version=session.version, text=text)
            session.client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=item))
        else:
            change = lsp.TextDocumentContentChangeWholeDocument(text=text)
            session.client.text_document_did_change(
                lsp.DidChangeTextDocumentParams(
                    text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=session.version),
                    content_changes=[change],
                )
            )
        session.texts[uri] = text

    async def _request(self, session: _Session, method: str, params: Any, deadline: float, raw: bool = False) -> Any:
        """Send one request; return its result, or _NO_ANSWER if it fails or misses ``deadline``.

        With ``raw`` the result is the JSON as sent (dicts and lists), not lsprotocol's types.
        """
        msg_id = next(self._ids)
        # Never cancel pygls's future: it sets a result on it when the answer arrives anyway.
        sent = session.client.protocol.send_request(method, params, msg_id=msg_id)
        if raw:
            # pygls structures a response by the type it noted for the id; without one the result
            # stays JSON. The answer is read on this same thread, so it cannot come in between.
            session.client.protocol._result_types.pop(msg_id, None)
        answer = asyncio.wrap_future(sent)
        answer.add_done_callback(_retrieve)
        remaining = deadline - asyncio.get_running_loop().time()
        done, _ = await asyncio.wait({answer}, timeout=max(0.0, remaining))
        if not done:
            # A cold server is loading modules (Foundation: 1-2 s here); cancelling would throw that
            # work away and make the next Tab slow too (measured 0.4 s instead of 0.06 s).
            if method in session.warm:
                session.client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))
            self._watch_for_hang(session, answer, method)
            self.log.debug("%s missed its deadline", method)
            return _NO_ANSWER
        if answer.exception() is not None:
            self.log.debug("%s failed: %r", method, answer.exception())
            return _NO_ANSWER
        return answer.result()

    def _watch_for_hang(self, session: _Session, answer: asyncio.Future[Any], method: str) -> None:
        """Kill the server if ``answer`` is still missing ``hang_after`` seconds from now."""

        async def watch() -> None:
            """Wait for the answer; kill the session if it does not come."""
            # A cancelled request still gets an answer (an error) from a healthy server.
            done, _ = await asyncio.wait({answer}, timeout=self.hang_after)
            if not done and not session.ended and self._session is session:
                self.log.warning("sourcekit-lsp gave no answer to %s in %.0f s; restarting it", method, self.hang_after)
                self._kill(session)

        self._spawn(watch())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` in the background, keeping a reference until it ends; return its task."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _on_exit(self, client: _Client, returncode: int | None) -> None:
        """Restart sourcekit-lsp in the background after it exits (pygls calls this on the LSP loop)."""
        session = self._session
        if session is None or session.client is not client:
            return
        session.ended = True
        self._pids.discard(session.process.pid)
        if not self._closed:
            self._spawn(self._restart(session, returncode))

    async def _restart(self, ended: _Session, returncode: int | None) -> None:
        """Report an exit, then start a new server and warm it up with the last document."""
        # Let the stderr reader reach the end first: a crash's reason is in the last lines.
        if ended.tasks:
            await asyncio.wait(ended.tasks, timeout=1.0)
        for task in ended.tasks:
            task.cancel()
        self._back_off(f"sourcekit-lsp exited with status {returncode}{_crash_report(ended.stderr_tail)}")
        text = ended.texts.get(self._completion_source.as_uri())
        starting = self._start_soon(self._restart_delay)
        if starting is None:
            return
        try:
            session = await starting
        except Exception:  # _start reports its own failures; this is the last net for a bug
            self.log.exception("restarting sourcekit-lsp failed")
            return
        if session is None or text is None:
            return
        # Build the document's AST now, so the user's next Tab is answered within the deadline.
        self._sync(session, self._completion_source, text)
        line = len(_LINE_BREAK.findall(text))
        params = lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=self._completion_source.as_uri()),
            position=lsp.Position(line=line, character=0),
        )
        deadline = asyncio.get_running_loop().time() + self.hang_after
        if await self._request(session, lsp.TEXT_DOCUMENT_COMPLETION, params, deadline) is not _NO_ANSWER:
            session.warm.add(lsp.TEXT_DOCUMENT_COMPLETION)

    def _kill(self, session: _Session) -> None:
        """SIGKILL a session's process group and forget its pid."""
        session.ended = True
        _kill_group(session.process.pid)
        self._pids.discard(session.process.pid)

    async def _end(self, session: _Session) -> None:
        """Kill a session's process and wait for it, so no exit is reported to a closed loop."""
        self._kill(session)
        try:
            await asyncio.wait_for(session.process.wait(), 1.0)
        except asyncio.TimeoutError:
            self.log.warning("sourcekit-lsp %s did not exit after SIGKILL", session.process.pid)

    async def _stop_all(self) -> None:
        """Stop starting, background work and the running server (close() runs this)."""
        session = self._session
        if self._warming is not None:
            self._warming.cancel()
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        if session is None or session.ended:
            return
        session.ended = True
        # sourcekit-lsp exits by itself when its stdin closes; the killpg is for when it does not.
        if session.process.stdin is not None:
            session.process.stdin.close()
        try:
            await asyncio.wait_for(session.process.wait(), 1.0)
        except asyncio.TimeoutError:
            _kill_group(session.process.pid)
            await asyncio.wait_for(session.process.wait(), 1.0)
        self._pids.discard(session.process.pid)
        try:
            # Lets pygls's reader task see the end of stdout and finish instead of being destroyed.
            await asyncio.wait_for(session.client.stop(), 1.0)  # type: ignore[no-untyped-call]  # pygls leaves it unannotated
        except Exception:  # the process is gone either way
            self.log.debug("pygls client did not stop cleanly", exc_info=True)
        for task in session.tasks:
            task.cancel()


def _on_directive_line(code: str, offset: int) -> bool:
    """Say whether ``offset`` is on a ``%`` directive line."""
    line_start = code.rfind("\n", 0, offset) + 1
    return code[line_start:offset].lstrip(" \t").startswith("%")


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Run the LSP thread's loop until close() stops it, then finish its tasks and close it."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def _crash_report(stderr: Sequence[str]) -> str:
    """Return the crash message and first frames from the end of sourcekit-lsp's stderr, if any."""
    lines = list(stderr)
    # Swift's backtracer prints '*** Program crashed: ...' then the crashed thread's frames, then
    # registers and images; the first part says why.
    start = next((i for i, line in enumerate(lines) if "Program crashed" in line or "Fatal error" in line), None)
    if start is None:
        return ""
    return ":\n" + "\n".join(lines[start : start + 30]) + "\n"


def _retrieve(answer: asyncio.Future[Any]) -> None:
    """Mark an answer's error as seen: a late 'request cancelled' is expected, not worth a log line."""
    if not answer.cancelled():
        answer.exception()


def _kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads, if it still exists."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def _stdin_closed(stdin: asyncio.StreamWriter) -> None:
    """Wait until the server's stdin is closed, taking the error a dead server leaves there."""
    try:
        await stdin.wait_closed()
    except OSError:
        pass


async def _drain(stream: asyncio.StreamReader, log: logging.Logger, tail: deque[str]) -> None:
    """Read sourcekit-lsp's stderr to the end (a full pipe would block the server), keeping its tail."""
    while line := await stream.readline():
        text = line.decode("utf-8", "replace").rstrip()
        tail.append(text)
        log.debug("sourcekit-lsp: %s", text)
