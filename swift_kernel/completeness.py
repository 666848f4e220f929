"""Classify Swift source as complete, incomplete or invalid for Jupyter.

This answers the Jupyter ``is_complete_request``: front ends such as
``jupyter console`` ask it after every Enter to decide whether to run the
cell or to show a continuation prompt (and with which indentation).

The check does not parse Swift.  It tracks only the lexical structure that
decides whether more input could still complete the cell: brackets, string
literals (with interpolation and raw delimiters), comments, ``#if`` blocks,
and what the code ends with (a binary operator, comma, colon, backslash or a
keyword that needs an operand).

It must answer a megabyte in well under 100 ms in pure Python, so the
per-character work happens in C and the running time is linear:

* one regular expression finds the next token that matters (a string, a
  comment or a ``#``) and the regex engine skips the code in between.  In
  every repeated group of every pattern the alternatives start with
  different characters, so a failed match backtracks at most linearly;
* common literals (plain strings, strings with simple interpolations, raw
  ``#"..."#`` strings, multi-line strings, unnested block comments) match that
  expression whole; only unusual ones go to a precise token-by-token scanner;
* brackets are pulled out of the code with one ``str.translate`` and balanced
  with ``str.replace`` rounds, finishing with a stack over runs of brackets
  when nesting is deep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from .swiftlex import BLOCK_COMMENT, LINE_COMMENT, MULTI_LINE_STRING, RAW_STRING, SINGLE_LINE_STRING, block_comment_end
from .swiftlex import StringEnd as _StringEnd
from .swiftlex import StringKind as _StringKind
from .swiftlex import scan_string_body as _scan_string_body

__all__ = ["Completeness", "Status", "check_completeness"]

Status = Literal["complete", "incomplete", "invalid"]


@dataclass(frozen=True)
class Completeness:
    """Hold the answer to one ``is_complete_request``.

    ``indent`` is only meaningful when ``status`` is ``"incomplete"``: it is
    the whitespace a front end should pre-fill on the next line.
    """

    status: Status
    indent: str = ""


_COMPLETE: Final = Completeness("complete")
_INVALID: Final = Completeness("invalid")

# One indentation level, as in common Swift style.
_INDENT_UNIT: Final = "    "

# A kernel directive line, as swift_kernel.directives.parse_cell sees it: "%"
# and a letter after optional blanks, on any line, whatever the Swift context.
# ("% 3" on its own line stays Swift code.)  "[^\S\n]" is "whitespace except
# newline", so a match never leaves its line.
_DIRECTIVE_LINE: Final = re.compile(r"^[^\S\n]*%[A-Za-z][^\n]*", re.MULTILINE)

# --- Fast path: whole tokens ---------------------------------------------------

# A character that can appear anywhere in a simple interpolation such as
# "\(a.b + 1)".  Brackets, quotes, backslashes, "/" and "#" are excluded and
# handled by _interpolation_pattern; anything more unusual sends the literal
# to the precise scanner instead.
# Every alternative starts with a literal '"', '#' or '/', which lets the
# regex engine jump between those characters in C.  The last three are the
# fallbacks for literals the fast alternatives could not match whole; their
# empty group makes ``match.lastindex`` non-None.
_TOKEN: Final = re.compile(
    "|".join(
        (
            MULTI_LINE_STRING,
            SINGLE_LINE_STRING,
            RAW_STRING,
            LINE_COMMENT,
            BLOCK_COMMENT,
            r'"()',
            r"#()",
            r"/\*()",
        )
    )
)

# --- Brackets ------------------------------------------------------------------

# Deletes every ASCII character except brackets.  Non-ASCII characters pass
# through the table and are dropped separately (see _flush).
_KEEP_BRACKETS: Final = {c: None for c in range(128) if chr(c) not in "()[]{}"}
# "#if" and "#endif" take part in the balancing as "<" and ">"; the table
# removes those characters from code, so they cannot clash.
_IF_MARKER: Final = "<"
_ENDIF_MARKER: Final = ">"
# "#else" closes one branch of an "#if" and opens the next.
_ELSE_MARKERS: Final = _ENDIF_MARKER + _IF_MARKER
_OPENERS: Final = "([{<"
_CLOSERS: Final = ")]}>"
_CLOSER_TUPLE: Final = tuple(_CLOSERS)
_CLOSER_OF: Final = str.maketrans(_OPENERS, _CLOSERS)
_PAIRS: Final = ("()", "[]", "{}", "<>")
_BRACKET_RUN: Final = re.compile(r"[(\[{<]+|[)\]}>]+")
# Pair-removal rounds run in C and settle typical code in a few rounds; once
# a round removes less than 1/_SLOW_PROGRESS of what is left, the run-based
# stack takes over.
_SLOW_PROGRESS: Final = 8

# --- Slow path -----------------------------------------------------------------

_CODE_TOKEN: Final = re.compile(r'[()\[\]{}"#]|/[/*]')
# Inside the interpolation of a single-line string a newline is an error.
_CODE_TOKEN_OR_NEWLINE: Final = re.compile(r'[()\[\]{}"#\n]|/[/*]')
_HASHES: Final = re.compile(r"#+")
_WORD: Final = re.compile(r"\w+")
_OPENER_OF: Final = {")": "(", "]": "[", "}": "{"}

# --- Trailing tokens -------------------------------------------------------------

# Swift operator characters (plus "." for member access and dot operators).
_OPERATOR_CHARS: Final = "/=-+!*%<>&|^~?."
# Operator characters that legitimately end an expression when they touch the
# preceding token: postfix "!" and "?" (``x!``, ``Int?``) and the ">" closing
# a generic argument list (``Array<Int>``).
_CLOSING_OPERATOR_CHARS: Final = "!?>"
# Punctuation after which a statement can never end.
_CONTINUATION_PUNCTUATION: Final = ",:\\"
# Keywords that always need something after them.  Only words that are never
# a complete statement alone are listed ("return" is deliberately absent).
_CONTINUATION_KEYWORDS: Final = ("try", "await", "as", "is", "in", "else", "throw")
# Keywords that turn a trailing "!" or "?" into an unfinished expression
# (``try!``, ``as?``) rather than a postfix operator.
_BANG_KEYWORDS: Final = ("try", "as")
# Directly before a keyword-looking word these show it is really a member
# name, escaped identifier, variable or attribute, not a keyword.  ("#else"
# never gets here: directives are tokens of their own.)
_NOT_KEYWORD_PREFIX: Final = ".`$@"


class _Invalid(Exception):
    """Signal that no continuation can make the cell valid."""


class _Incomplete(Exception):
    """Signal that the input ended inside a literal or comment.

    ``opens`` holds the positions of brackets opened inside that literal's
    interpolations (innermost last); they sit on top of the outer brackets.
    """

    def __init__(self, opens: list[int]) -> None:
        """Remember the brackets still open inside the unfinished literal."""
        super().__init__()
        self.opens = opens


def check_completeness(code: str) -> Completeness:
    """Classify ``code`` as complete, incomplete or invalid Swift input.

    ``incomplete`` means more lines could still make the cell valid (open
    bracket, unterminated multi-line string or block comment, trailing
    operator, ...); ``invalid`` means no continuation can help (unmatched
    closing bracket, unterminated single-line string); everything else is
    ``complete`` and should be executed.  Kernel directive lines (``%`` and a
    letter after optional blanks) are ignored.
    """
    # Swift treats CR and CRLF as line breaks too; normalizing first lets the
    # scanners look for "\n" only.
    text = code.replace("\r\n", "\n").replace("\r", "\n")
    if "%" in text:
        # Blank the lines rather than delete them: the answer is the same and
        # the remaining lines keep their places.
        text = _DIRECTIVE_LINE.sub("", text)
    return _Scan(text).run()


class _Scan:
    """Scan one cell from left to right and classify it."""

    def __init__(self, text: str) -> None:
        """Prepare to scan ``text`` (already free of directive lines)."""
        self.text = text
        # Start of the last non-blank line: a bracket opened from there on
        # gives the next line one more indentation level.
        self.last_line = text.rfind("\n", 0, len(text.rstrip())) + 1
        # Code before, and from, the last line.  Plain code waits in code_*
        # because translating one joined string is far cheaper than many
        # small ones; brackets_* hold bracket strings and #if markers.
        self.code_before: list[str] = []
        self.code_after: list[str] = []
        self.brackets_before: list[str] = []
        self.brackets_after: list[str] = []
        # How many brackets of earlier lines the last line closes (set by _bracket_state).
        self._closed_earlier = 0

    def run(self) -> Completeness:
        """Return the classification of the whole cell."""
        try:
            return self._classify()
        except _Invalid:
            return _INVALID
        except _Incomplete as unfinished:
            # Brackets that were already wrong make the cell invalid even
            # though it ended inside a literal or comment.
            state = self._bracket_state()
            if state is None:
                return _INVALID
            opened_on_last_line = state[1]
            if unfinished.opens:
                innermost = unfinished.opens[-1]
                opened_on_last_line = innermost >= self.last_line and self.text[innermost] != "#"
            return self._incomplete(opened_on_last_line)

    def _classify(self) -> Completeness:
        """Scan the cell, raising _Invalid or _Incomplete when it ends early."""
        text = self.text
        n = len(text)
        last_line = self.last_line
        search = _TOKEN.search
        before = self.code_before.append
        after = self.code_after.append
        # Index just past the last string or directive, which count as code
        # for the trailing-operator rule; comments do not.
        last_token_end = -1
        # The last stretch of plain code that is not all blank, and whether
        # it starts right at the end of a string or directive.
        gap_start = gap_end = -1
        gap_touches_token = False
        pos = 0
        while True:
            match = search(text, pos)
            start = n if match is None else match.start()
            if start > pos:
                gap = text[pos:start]
                if start <= last_line:
                    before(gap)
                elif pos >= last_line:
                    after(gap)
                else:
                    before(text[pos:last_line])
                    after(text[last_line:start])
                if not gap.isspace():
                    gap_start, gap_end = pos, start
                    gap_touches_token = pos == last_token_end
            if match is None:
                break
            if match.lastindex is None:
                pos = match.end()
                if text[start] != "/":
                    last_token_end = pos
            elif text[start] == "/":
                # A block comment the fast pattern could not take (nested).
                pos = _skip_block_comment(text, start + 2, [])
            else:
                pos = last_token_end = self._scan_special(start)

        state = self._bracket_state()
        if state is None:
            return _INVALID
        open_brackets, opened_on_last_line = state
        if open_brackets:
            return self._incomplete(opened_on_last_line, self._closed_earlier)
        if gap_end > last_token_end and _needs_continuation(text, gap_start, gap_end, gap_touches_token):
            return self._incomplete(False, self._closed_earlier)
        return _COMPLETE

    def _scan_special(self, start: int) -> int:
        """Scan the string literal or directive at ``start``; return its end."""
        text = self.text
        if text[start] == '"':
            multiline = text.startswith('"""', start)
            body = start + (3 if multiline else 1)
            return _LiteralScan(text, body, _StringKind(multiline, 0)).run()
        kind, word, end = _open_hash(text, start)
        if kind is not None:
            return _LiteralScan(text, end, kind).run()
        marker = _directive_marker(word)
        if marker:
            if start < self.last_line:
                _flush(self.code_before, self.brackets_before).append(marker)
            else:
                _flush(self.code_after, self.brackets_after).append(marker)
        return end

    def _bracket_state(self) -> tuple[str, bool] | None:
        """Return the open brackets and whether the innermost is on the last line.

        Return None when a closing bracket is unmatched or mismatched.
        """
        earlier = _reduce("".join(_flush(self.code_before, self.brackets_before)))
        later = _reduce("".join(_flush(self.code_after, self.brackets_after)))
        if earlier is None or later is None or earlier.startswith(_CLOSER_TUPLE):
            return None
        # Closers at the start of the last line's brackets must close the
        # innermost brackets of the earlier lines, in reverse order.
        opening = later.lstrip(_CLOSERS)
        closing = later[: len(later) - len(opening)]
        kept = len(earlier) - len(closing)
        if kept < 0 or earlier[kept:][::-1].translate(_CLOSER_OF) != closing:
            return None
        # #endif closes no indentation level: only real brackets make the next line dedent.
        self._closed_earlier = 0 if _ENDIF_MARKER in closing else len(closing)
        opened_on_last_line = bool(opening) and opening[-1] != _IF_MARKER
        return earlier[:kept] + opening, opened_on_last_line

    def _incomplete(self, opened_on_last_line: bool, closed_earlier: int = 0) -> Completeness:
        """Build an ``incomplete`` answer with the indent for the next line.

        ``closed_earlier`` counts the brackets of earlier lines that the last line closes.
        """
        # Start from the last non-blank line's indentation, one level deeper
        # when that line opened a bracket that is still open.  A line that
        # closes brackets of earlier lines (`}`, `} else {`, `})`) belongs at
        # the indentation of the line that opened the outermost of them, and
        # so does the line after it: in jupyter console a `}` typed after the
        # offered indent keeps it, so copying the `}` line would never dedent.
        text = self.text
        line = text[self.last_line : len(text.rstrip())]
        indent = line[: len(line) - len(line.lstrip())]
        if closed_earlier:
            anchor = _opening_line_indent(text, self.last_line, closed_earlier)
            if anchor is not None:
                indent = anchor
        if opened_on_last_line:
            indent += _INDENT_UNIT
        return Completeness("incomplete", indent)


def _code_lines(text: str, end: int) -> list[str] | None:
    """Return the lines of ``text[:end]`` with strings and comments blanked; None if one runs past ``end``.

    Newlines inside a blanked literal or comment are kept, so line numbers stay right.
    """
    pieces: list[str] = []
    pos = 0
    try:
        while pos < end:
            match = _TOKEN.search(text, pos)
            if match is None or match.start() >= end:
                pieces.append(text[pos:end])
                break
            start = match.start()
            pieces.append(text[pos:start])
            if match.lastindex is None:
                token_end = match.end()
            elif text[start] == "/":
                token_end = _skip_block_comment(text, start + 2, [])
            elif text[start] == '"':
                multiline = text.startswith('"""', start)
                token_end = _LiteralScan(text, start + (3 if multiline else 1), _StringKind(multiline, 0)).run()
            else:
                kind, _, word_end = _open_hash(text, start)
                if kind is None:  # a directive such as #if: code, without brackets of its own
                    pieces.append(text[start:word_end])
                    pos = word_end
                    continue
                token_end = _LiteralScan(text, word_end, kind).run()
            if token_end > end:
                return None
            pieces.append("\n" * text.count("\n", start, token_end))
            pos = token_end
    except (_Incomplete, _Invalid):
        return None
    return "".join(pieces).split("\n")[:-1]


def _opening_line_indent(text: str, last_line: int, closed: int) -> str | None:
    """Return the indentation of the line that opened the ``closed``-th open bracket before ``last_line``.

    Counting back from the end of the earlier lines, that is the opener the last line's
    ``closed`` leading closers reach last: the outermost one they close.  Only called for a
    last line that closes brackets, so the cost of a second pass is rarely paid.
    """
    lines = _code_lines(text, last_line)
    if lines is None:
        return None
    needed = closed
    for number in range(len(lines) - 1, -1, -1):
        brackets = lines[number].translate(_KEEP_BRACKETS)
        if not brackets.isascii():
            brackets = brackets.encode("ascii", "ignore").decode("ascii")
        reduced = _reduce(brackets)
        if reduced is None:
            return None
        openers = reduced.lstrip(_CLOSERS)
        if len(openers) >= needed:
            original = text[: last_line - 1].split("\n")[number]
            return original[: len(original) - len(original.lstrip())]
        needed += len(reduced) - 2 * len(openers)
    return None


def _flush(code: list[str], brackets: list[str]) -> list[str]:
    """Move the brackets of the pending ``code`` onto ``brackets``; return it."""
    if code:
        kept = "".join(code).translate(_KEEP_BRACKETS)
        # Non-ASCII characters survive the table; none of them is a bracket.
        if not kept.isascii():
            kept = kept.encode("ascii", "ignore").decode("ascii")
        brackets.append(kept)
        code.clear()
    return brackets


def _directive_marker(word: str) -> str:
    """Return the bracket markers standing for a ``#`` directive word."""
    if word == "if":
        return _IF_MARKER
    if word in ("else", "elseif"):
        return _ELSE_MARKERS
    if word == "endif":
        return _ENDIF_MARKER
    return ""


def _reduce(brackets: str) -> str | None:
    """Cancel matching bracket pairs; return None on a mismatched pair.

    The result is the unmatched closers followed by the unmatched openers.
    """
    while True:
        reduced = brackets
        for pair in _PAIRS:
            reduced = reduced.replace(pair, "")
        removed = len(brackets) - len(reduced)
        brackets = reduced
        if not removed:
            break
        # Each round removes at least one pair per innermost group, so a
        # round that removes little means few, deep groups: few runs for the
        # stack, while more rounds would each cost a full pass.
        if removed * _SLOW_PROGRESS < len(brackets) + removed:
            return _reduce_runs(brackets)
    # No adjacent pair is left, so an opener followed by a closer can only be
    # a mismatch such as "(]".
    openers = brackets.lstrip(_CLOSERS)
    if any(closer in openers for closer in _CLOSERS):
        return None
    return brackets


def _reduce_runs(brackets: str) -> str | None:
    """Cancel matching pairs with a stack, one run of openers or closers at a time."""
    stack: list[str] = []
    unmatched: list[str] = []
    for run in _BRACKET_RUN.findall(brackets):
        if run[0] in _OPENERS:
            stack.extend(run)
            continue
        matched = min(len(run), len(stack))
        if matched:
            expected = "".join(stack[-matched:])[::-1].translate(_CLOSER_OF)
            if expected != run[:matched]:
                return None
            del stack[-matched:]
        if matched < len(run):
            # The stack is empty now, so these closers precede every opener
            # that remains: they belong to the unmatched prefix.
            unmatched.append(run[matched:])
    return "".join(unmatched) + "".join(stack)


def _open_hash(text: str, start: int) -> tuple[_StringKind | None, str, int]:
    """Classify the ``#`` at ``start`` as a raw string opener or a directive.

    Return the raw string's kind (or None), the directive word (or ""), and
    the index just past the opener or word.
    """
    match = _HASHES.match(text, start)
    hashes_end = start + 1 if match is None else match.end()
    hashes = hashes_end - start
    if text.startswith('"""', hashes_end):
        return _StringKind(True, hashes), "", hashes_end + 3
    if text.startswith('"', hashes_end):
        return _StringKind(False, hashes), "", hashes_end + 1
    if hashes == 1:
        word = _WORD.match(text, hashes_end)
        if word is not None:
            return None, word.group(), word.end()
    return None, "", hashes_end


class _LiteralScan:
    """Follow one string literal, interpolations included, to its end.

    This is the precise path: an interpolation may contain any code,
    including nested literals, comments and directives, so it is scanned
    token by token.
    """

    def __init__(self, text: str, pos: int, kind: _StringKind) -> None:
        """Prepare to scan the literal of ``kind`` whose body starts at ``pos``."""
        self.text = text
        self.pos = pos
        # The literal being scanned, or None while inside an interpolation.
        self.string: _StringKind | None = kind
        # Positions of brackets opened inside interpolations: the "(" of
        # "\(", other brackets, and the "#" of "#if".
        self.opens: list[int] = []
        # Literals suspended by "\(", each with len(opens) before its "(".
        self.suspended: list[tuple[_StringKind, int]] = []
        # How many suspended literals are single-line: inside those a
        # newline is an error even within the interpolated code.
        self.single_line = 0

    def run(self) -> int:
        """Return the index just past the literal's closing delimiter."""
        while True:
            if self.string is None:
                self._code_token()
            elif self._string_body(self.string):
                return self.pos

    def _string_body(self, string: _StringKind) -> bool:
        """Scan literal text; tell whether the outermost literal has closed."""
        end, self.pos = _scan_string_body(self.text, self.pos, string)
        if end is _StringEnd.CLOSED:
            if not self.suspended:
                return True
            self.string = None
        elif end is _StringEnd.INTERPOLATION:
            self.suspended.append((string, len(self.opens)))
            self.single_line += not string.multiline
            self.opens.append(self.pos - 1)
            self.string = None
        elif end is _StringEnd.END_OF_INPUT and string.multiline and not self.single_line:
            raise _Incomplete(self.opens)
        else:
            # A single-line literal (or one enclosing this one) reached a
            # newline or the end: Swift never continues those.
            raise _Invalid
        return False

    def _code_token(self) -> None:
        """Handle the next token of interpolated code."""
        text = self.text
        opens = self.opens
        pattern = _CODE_TOKEN_OR_NEWLINE if self.single_line else _CODE_TOKEN
        match = pattern.search(text, self.pos)
        if match is None:
            if self.single_line:
                raise _Invalid
            raise _Incomplete(opens)
        tok = match.start()
        ch = text[tok]
        self.pos = tok + 1
        if ch in "([{":
            opens.append(tok)
        elif ch in ")]}":
            if not opens or text[opens[-1]] != _OPENER_OF[ch]:
                raise _Invalid
            opens.pop()
            if len(opens) == self.suspended[-1][1]:
                # This ")" closed the "\(" of a suspended literal: resume it.
                self.string = self.suspended.pop()[0]
                self.single_line -= not self.string.multiline
        elif ch == '"':
            multiline = text.startswith('"""', tok)
            self.string = _StringKind(multiline, 0)
            self.pos = tok + (3 if multiline else 1)
        elif ch == "#":
            self.string, word, self.pos = _open_hash(text, tok)
            if word == "if":
                opens.append(tok)
            elif _directive_marker(word):
                if not opens or text[opens[-1]] != "#":
                    raise _Invalid
                if word == "endif":
                    opens.pop()
        elif ch == "\n":
            # Only searched for inside a single-line literal's interpolation.
            raise _Invalid
        elif text.startswith("//", tok):
            newline = text.find("\n", tok)
            # Stop before the newline: inside a single-line literal's
            # interpolation it is an error that the next search must see.
            self.pos = len(text) if newline < 0 else newline
        else:
            self.pos = _skip_block_comment(text, tok + 2, opens)


def _skip_block_comment(text: str, pos: int, opens: list[int]) -> int:
    """Return the index past a (nested) block comment starting at ``pos``.

    A comment that never ends raises _Incomplete with the interpolation brackets ``opens``.
    """
    end = block_comment_end(text, pos)
    if end is None:
        raise _Incomplete(opens)
    return end


def _needs_continuation(text: str, start: int, end: int, touches_token: bool) -> bool:
    """Tell whether the plain code in ``text[start:end]`` cannot end a statement.

    The span holds no strings or comments; ``touches_token`` says whether a
    string or directive ends right at ``start``.
    """
    end = start + len(text[start:end].rstrip())
    last = text[end - 1]
    if last in _CONTINUATION_PUNCTUATION:
        return True
    if last in _OPERATOR_CHARS:
        op_start = start + len(text[start:end].rstrip(_OPERATOR_CHARS))
        operator = text[op_start:end]
        # Swift's own rule: an operator touching the token before it and
        # followed by whitespace is postfix, so ``x!``, ``Int?``, ``x??``,
        # ``Array<Int>`` and the one-sided range ``1...`` are finished, while
        # ``a ??`` or ``a >`` (space before) are binary and need an operand.
        # A comment right before counts as whitespace, as it does for Swift.
        touching = not text[op_start - 1].isspace() if op_start > start else touches_token
        if not touching:
            return True
        if operator == "...":
            return False
        if operator.strip(_CLOSING_OPERATOR_CHARS):
            return True
        # ``try!`` / ``as?`` still need their operand.
        return any(_ends_with_keyword(text, start, op_start, word) for word in _BANG_KEYWORDS)
    return any(_ends_with_keyword(text, start, end, word) for word in _CONTINUATION_KEYWORDS)


def _ends_with_keyword(text: str, floor: int, end: int, keyword: str) -> bool:
    """Tell whether ``text[floor:end]`` ends with ``keyword`` as a whole word."""
    start = end - len(keyword)
    if start < floor or not text.startswith(keyword, start):
        return False
    if start == 0:
        return True
    # The character before may belong to the preceding comment or token; a
    # comment's "*/" or a string's quote still leave a whole word.
    before = text[start - 1]
    # "x.is", "`in`", "$try" or "retry" are not the keyword itself.
    return not (before.isalnum() or before == "_" or before in _NOT_KEYWORD_PREFIX)
