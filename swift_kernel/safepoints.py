"""Put safe points into a cell's loops, where an interrupt can stop the code with every value whole.

An interrupt that stops Swift code between two machine instructions can land inside a mutation
(an Array moved out of its global to stay unique, a Dictionary half-way through a resize), and
LLDB's unwinding restores registers and stack, not memory: the global stays torn. So the kernel
asks the code to stop itself at a *safe point*, a call at the start of every loop body (the loop's
back-edge, between two statements, where no mutation is under way)::

    for i in 0..<n {
    for i in 0..<n {__swiftKernelSafePoint();

The call (in the kernel's Swift prelude) costs one load and compare while no interrupt is
pending; when the kernel has asked for a stop, it raises SIGINT on the REPL's thread, which LLDB
stops and the kernel unwinds. Code that never reaches a safe point (a blocking call, a long
library routine) is stopped by the kernel's usual ladder.

The call goes right after the body's ``{``: no line moves, and when the ``{`` ends its line (the
usual layout) no column moves either. Where one does, ``SafePoints.restore`` turns LLDB's
diagnostics back into the user's columns and lines. Like the top-level ``await`` rewrite this is
not a parser: literals and comments are masked, then ``for``, ``while`` and ``repeat`` are
followed to the ``{`` of their body at their own bracket depth. Pure functions, no I/O.

A cell interrupted before its code starts is not started at all (``lldb_session``: LLDB's cancel
callback); only an LLDB without one gets a safe point in front of the cell too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .asyncwrap import mask_literals
from .swiftlex import closing_match

SAFE_POINT_FUNCTION = "__swiftKernelSafePoint"
SAFE_POINT = f"{SAFE_POINT_FUNCTION}();"
# A loop keyword used as a keyword: not a member (.for), not a label or argument label (for:).
_LOOP = re.compile(r"(?<![\w.`$#@])(for|while|repeat)\b(?!\s*:)")
_REPEAT_WHILE = re.compile(r"\s*while\b")
_BRACKETS = re.compile(r"[()\[\]{}]")


@dataclass(frozen=True)
class Insertion:
    """Safe-point text added at ``column`` (1-based, in the rewritten line) of cell line ``line``."""

    line: int
    column: int
    length: int


@dataclass(frozen=True)
class SafePoints:
    """A cell's code with safe points added, and what it takes to map diagnostics back."""

    original: str
    code: str
    insertions: tuple[Insertion, ...]

    def original_column(self, line: int, column: int) -> int:
        """Map a column of the rewritten ``line`` to the user's (an inserted character to the insertion)."""
        shift = 0
        for insertion in self.insertions:
            if insertion.line != line or insertion.column >= column:
                continue
            shift += min(insertion.length, column - insertion.column)
        return column - shift

    def inside_insertion(self, line: int, column: int) -> bool:
        """Say whether a column of the rewritten code falls on inserted text."""
        return any(i.line == line and i.column <= column < i.column + i.length for i in self.insertions)

    def restore(self, error_text: str, source_name: str) -> str:
        """Return LLDB's diagnostics as they would read for the user's own code.

        A diagnostic ``<Cell 3>:2:30: ...`` gets the user's column; the source line LLDB prints
        under it becomes the user's line, and the caret and fix-it lines under that lose the
        columns of the inserted text.
        """
        if not self.insertions:
            return error_text
        header = re.compile(r"^((?:error|warning|note): )?" + re.escape(source_name) + r":(\d+):(\d+):(.*)$")
        rewritten_lines = self.code.split("\n")
        original_lines = self.original.split("\n")
        out: list[str] = []
        row: int | None = None
        expect_source = False
        for given in error_text.split("\n"):
            text = given
            match = header.match(text)
            if match:
                severity, line, column, rest = match.groups()
                row = int(line)
                mapped = self.original_column(row, int(column))
                out.append(f"{severity or ''}{source_name}:{row}:{mapped}:{rest}")
                expect_source = True
                continue
            if not text.strip():
                row, expect_source = None, False
            elif row is not None and 1 <= row <= len(rewritten_lines):
                if expect_source and text == rewritten_lines[row - 1]:
                    text = original_lines[row - 1]
                else:
                    text = self._drop_inserted_columns(text, row)
                expect_source = False
            out.append(text)
        return "\n".join(out)

    def _drop_inserted_columns(self, marker: str, line: int) -> str:
        """Remove, from a caret or fix-it line, the columns that stand under inserted text."""
        for insertion in sorted((i for i in self.insertions if i.line == line), key=lambda i: -i.column):
            start = insertion.column - 1
            marker = marker[:start] + marker[start + insertion.length :]
        return marker


def insert_safe_points(code: str) -> SafePoints:
    """Return ``code`` with a safe point at the start of every loop body."""
    masked = mask_literals(code)
    offsets: set[int] = set()
    trailing_whiles: set[int] = set()
    for match in _LOOP.finditer(masked):
        keyword = match.group(1)
        if keyword == "while" and match.start() in trailing_whiles:
            continue  # the condition of a repeat-while: no body of its own
        brace = _body_brace(masked, match.end(), keyword)
        if brace is None:
            continue
        offsets.add(brace + 1)
        if keyword == "repeat":
            close = _matching(masked, brace)
            after = _REPEAT_WHILE.match(masked, close + 1) if close is not None else None
            if after is not None:
                trailing_whiles.add(after.end() - len("while"))
    if not offsets:
        return SafePoints(code, code, ())
    pieces: list[str] = []
    insertions: list[Insertion] = []
    last = 0
    for offset in sorted(offsets):
        pieces.append(code[last:offset])
        last = offset
        line = code.count("\n", 0, offset) + 1
        line_start = code.rfind("\n", 0, offset) + 1
        # Columns in the rewritten line: earlier insertions on the same line push this one right.
        column = offset - line_start + 1 + sum(i.length for i in insertions if i.line == line)
        insertions.append(Insertion(line, column, len(SAFE_POINT)))
        pieces.append(SAFE_POINT)
    pieces.append(code[last:])
    return SafePoints(code, "".join(pieces), tuple(insertions))


def _body_brace(masked: str, start: int, keyword: str) -> int | None:
    """Return the offset of the ``{`` that opens the loop's body, or None if it has none here."""
    depth = 0
    for match in _BRACKETS.finditer(masked, start):
        bracket = match.group()
        if keyword == "repeat" and depth == 0 and bracket != "{":
            return None
        if bracket in "([":
            depth += 1
        elif bracket in ")]":
            depth -= 1
            if depth < 0:
                return None  # an argument label, as in f(for: x)
        elif bracket == "{":
            if depth == 0:
                if keyword == "repeat" and masked[start : match.start()].strip():
                    return None
                return match.start()
            depth += 1
        elif depth == 0:
            return None  # a `}` before any body: not a loop statement
        else:
            depth -= 1
    return None


def _matching(masked: str, brace: int) -> int | None:
    """Return the offset of the ``}`` that closes the ``{`` at ``brace``."""
    match = closing_match(_BRACKETS, masked, brace, "([{")
    return match.start() if match is not None else None
