"""Rewrite top-level ``await`` in a cell into calls that block until done.

LLDB in Swift 6.3.1 crashes (a segfault in ``swift::ModuleDecl::getMainTypeDecl``)
when it evaluates a REPL expression whose top-level code uses ``await``, and
the crash takes the kernel down with it.  So before a cell reaches LLDB, every
``await`` in its top-level code becomes a synchronous call into the kernel's
Swift prelude::

    let page = await fetchPage()
    let page = (__SwiftKernel.blockOn { await fetchPage() })

    let n = try await count()
    let n = try (__SwiftKernel.blockOnThrowing { try await count() })

The awaited expression moves into an async closure that the prelude runs in a
``Task`` while the cell waits, so the cell's own code stays synchronous and
its declarations persist to later cells as usual.  ``await`` inside function,
accessor, closure and type bodies is left alone: those bodies are async
contexts of their own (or the compiler says they are not).

"Top-level code" is the cell's statements and the bodies of top-level
``if``/``else``/``guard``/``for``/``while``/``repeat``/``do``/``catch``/
``switch``/``defer`` statements.  The rewrite never adds a line, so compiler
diagnostics still point at the user's lines.

This is not a Swift parser.  It masks string literals and comments, then
follows braces, bracket depth and a handful of keywords.  An awaited
expression ends where Swift's would: at ``,``, ``;``, ``:``, ``else``,
``where`` or a closing bracket at its own depth, at the ``{`` of a statement
body, or at a line break that neither a trailing binary operator nor a
leading ``.member`` or binary operator on the next line continues.

Speed: a cell without ``await`` or ``async`` costs two substring tests.
Otherwise the work is linear and mostly in C: one regular expression takes
common literals whole, the scan stops only at top-level braces and at
``await``/``try``, statement keywords and bracket depth are read between
stops with ``findall`` and ``str.count``, a function, type or closure body
(or a statement body without an ``await``) is skipped by one balanced-brace
match, and the scan ends at the last ``await``.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final

from .swiftlex import (
    BLOCK_COMMENT,
    LINE_COMMENT,
    MULTI_LINE_STRING,
    RAW_STRING,
    SINGLE_LINE_STRING,
    StringEnd,
    block_comment_end,
    scan_string_body,
)
from .swiftlex import StringKind as _StringKind

__all__ = ["AwaitRewriteError", "mask_literals", "rewrite_top_level_await"]

# What the rewrite inserts around an awaited expression; the prelude defines
# both functions.  The parentheses keep the closure from ever being read as a
# trailing closure or as a statement body (``if (blockOn { ... }) {``).
_BLOCK_ON: Final = "(__SwiftKernel.blockOn { "
_BLOCK_ON_THROWING: Final = "(__SwiftKernel.blockOnThrowing { "
_CLOSE: Final = " })"

# --- Masking strings and comments ----------------------------------------------------

# Stands for string, raw string and regex literal text in the masked copy: no
# bracket, operator, letter or space, so a literal reads as one opaque
# operand.  Comments become spaces (line breaks kept), as they are for Swift.
_LITERAL_FILL: Final = '"'

# Every alternative starts with a literal '"', '#' or '/', which lets the
# regex engine jump between those characters in C.  The last three catch
# what the whole-token patterns could not take (complex interpolations,
# "##" raw strings, "#/regex/#" literals, nested comments); their empty
# groups make ``match.lastindex`` non-None.
_LITERAL: Final = re.compile(
    "|".join(
        (
            MULTI_LINE_STRING,
            SINGLE_LINE_STRING,
            RAW_STRING,
            LINE_COMMENT,
            BLOCK_COMMENT,
            r'"()',
            r'##*(?=["/])()',
            r"/\*()",
        )
    )
)
# Interpolated code matters only when a top-level literal interpolates an
# await, or a try that makes an await throw; other literals are filled whole.
_INTERPOLATED_WORD: Final = re.compile(r"(?<![\w.`$])(?:await|try)(?![\w`])")
_NOT_NEWLINE: Final = re.compile(r"[^\n]")
_HASHES: Final = re.compile(r"#*")
# A string body up to its end, next interpolation or (single-line) line
# break; an escaped character, quote included, is taken with its backslash.
_SINGLE_LINE_BODY: Final = re.compile(r'[^"\\\n]*(?:\\[^(\n][^"\\\n]*)*')
# In a multi-line body a quote ends it only as the start of """.
_MULTI_LINE_BODY: Final = re.compile(r'[^"\\]*(?:(?:\\[^(]|"(?!""))[^"\\]*)*')
# Raw strings go a quote or backslash at a time: their delimiters and
# escapes carry "#".
# Inside an interpolation only parentheses (to find the closing ")"), nested
# literals and comments matter.
_INTERPOLATION_TOKEN: Final = re.compile(r'[()"#]|/[/*]')

# --- Words and tokens in masked code ---------------------------------------------------

# Not a keyword after "." (member), "`" (escaped identifier), "$", "#" (#if,
# #else), "@" or "\" (key path), or inside a longer identifier.
_NOT_BEFORE_KEYWORD: Final = r"[\w.$`#@\\]"
# ... nor as an argument label: ``f(for: x)``, ``g(await: 1)``.
_KEYWORD_END: Final = r"(?![\w`])(?!\s*:)"


def _keywords(*words: str) -> str:
    """Build alternatives matching each of ``words`` only where it is a keyword.

    Each alternative starts with the word's first letter and checks the
    character before it afterwards, in a lookbehind: a pattern whose every
    alternative starts with a literal lets the regex engine skip in C to the
    next candidate letter, where a leading lookbehind would be tried at every
    position.  A word may be a pattern that starts with a plain letter.
    """
    return "|".join(f"{word[0]}(?<!{_NOT_BEFORE_KEYWORD}{word[0]}){word[1:]}{_KEYWORD_END}" for word in words)


# The keywords whose statement body is the next "{" at the same depth.
# "guard" is not one: its body follows "else", which is.
_BODY_KEYWORDS: Final = frozenset({"if", "for", "while", "switch", "do", "repeat", "defer", "else", "catch"})
# Pending state after a repeat body closes: the "while" that follows is the
# loop's condition, not a loop of its own.
_AFTER_REPEAT: Final = "repeat }"
_FOR_AWAIT: Final = r"for\s+(?:try\s+)?await"
_ASYNC_LET: Final = r"async\s+let"
# An await, or an unsupported form (which wins over the "await" in it).
# Swift 5 still accepts ``let await = 1``: an "=" after it names a variable.
_ASYNC_WORD: Final = re.compile(_keywords(_FOR_AWAIT, _ASYNC_LET, r"await(?!\s*=(?!=))"))
# What else the scan of top-level code stops at.
_TOP_TOKEN: Final = re.compile(r"\{|\}|" + _keywords("try"))
# What decides which "{" opens a statement body: the last of these before it.
_PENDING_WORD: Final = re.compile(";|" + _keywords("guard", *sorted(_BODY_KEYWORDS)))
# What can end an awaited expression at its own depth.  A ternary "?" has
# whitespace on both sides, unlike "x?.y", "try?" and "??".
_EXTENT_TOKEN: Final = re.compile(r"\(|\)|\[|\]|\{|\}|,|;|:|\n|\?(?<=\s\?)(?=\s)|" + _keywords("else", "where"))
_PLAIN_TRY: Final = re.compile(_keywords(r"try(?![?!])"))
_NON_SPACE: Final = re.compile(r"\S")
_TRY_SUFFIX: Final = re.compile(r"[?!]?")
_LINE_BREAK: Final = re.compile(r"\r\n?|\n")
_OPERATOR_CHARS: Final = frozenset("/=-+!*%<>&|^~?.")
# Characters that, right before a word, make it part of an identifier,
# member, escaped name or directive rather than a keyword.
_IDENTIFIER_EDGE: Final = frozenset("_.`$@#")
# Words an expression cannot end with (``x as``, ``try``); "as" and "try"
# also take a "?" or "!" that would otherwise look like a postfix operator.
_CONTINUING_WORDS: Final = ("as", "is", "try", "await")
_BANG_WORDS: Final = ("as", "try")


def _nested_braces(depth: int) -> str:
    """Build a pattern for a ``{...}`` group with braces nested up to ``depth`` deep."""
    other = r"[^{}]*"
    pattern = r"\{" + other + r"\}"
    for _ in range(depth):
        pattern = r"\{" + other + "(?:" + pattern + other + r")*\}"
    return pattern


# A function, type or closure body in one C-level match; deeper nesting falls
# back to _skip_group.  Each level adds a few characters to the pattern.
_BRACE_GROUP: Final = re.compile(_nested_braces(12))


class AwaitRewriteError(ValueError):
    """Report a top-level asynchronous form the kernel cannot run by blocking.

    ``form`` is the construct as written in messages (``"for await"``) and
    ``line`` its 1-based line in the cell.
    """

    def __init__(self, form: str, line: int, reason: str) -> None:
        """Build the user-facing message for ``form`` found on ``line``."""
        self.form = form
        self.line = line
        super().__init__(
            f"`{form}` is not supported in top-level cell code (line {line}): {reason} "
            "Move the code into an async function and call it with `await`, "
            "or run it in the background with `Task { ... }`."
        )


def rewrite_top_level_await(code: str) -> str:
    """Replace every top-level ``await`` in ``code`` with a blocking prelude call.

    Return ``code`` itself when nothing needs rewriting.  Raise
    AwaitRewriteError for top-level ``for await``, ``for try await`` and
    ``async let``, which cannot be run one expression at a time.
    """
    # Most cells mention neither word: one C-level scan for each.
    if "await" not in code and "async" not in code:
        return code
    # Swift also breaks lines at a lone CR.  Mapping every CR to LF keeps all
    # offsets, so edits planned on the copy apply to ``code`` as they are.
    text = code.replace("\r", "\n") if "\r" in code else code
    masked, deferred = _mask(text)
    if not deferred and _ASYNC_WORD.search(masked) is None:
        return code
    scan = _TopLevelScan(code, masked)
    edits = scan.run()
    # Deferred literals in skipped groups are not top-level code.  The
    # others (in statement bodies, or past the last await) may be.
    exposed = _outside(deferred, scan.skipped)
    if exposed:
        # Show their code and plan again; nothing outside them changes.
        edits = _TopLevelScan(code, _expose(text, masked, exposed)).run()
    if not edits:
        return code
    pieces: list[str] = []
    last = 0
    for position, inserted in edits:
        pieces.append(code[last:position])
        pieces.append(inserted)
        last = position
    pieces.append(code[last:])
    return "".join(pieces)


# --- Masking ----------------------------------------------------------------------------


def mask_literals(text: str) -> str:
    """Return ``text`` with string and regex literals filled and comments blanked, offsets kept.

    Code in an interpolation stays visible only where the precise scanner took the literal;
    other rewrites (safe points) use this to find code that is code.
    """
    return _mask(text)[0]


def _mask(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Return ``text`` with literal text filled and comments blanked, offsets kept.

    Code interpolated into a string stays, with the ``(`` of its ``\\(``, so
    it reads as a parenthesized expression.  Except: a literal that the fast
    patterns take whole is filled whole, interpolations and all, and when
    one of those interpolates something like an ``await`` or ``try`` its
    span is returned too, for _expose to show if it turns out to be in
    top-level code.  Most such literals sit in function bodies, and scanning
    them precisely would double the masking time.
    """
    out: list[str] = []
    deferred: list[tuple[int, int]] = []
    pos = 0
    search = _LITERAL.search
    while True:
        match = search(text, pos)
        if match is None:
            out.append(text[pos:])
            break
        start = match.start()
        out.append(text[pos:start])
        if match.lastindex is not None:
            pos = _mask_literal(text, start, out)
            continue
        token = match.group()
        pos = match.end()
        if token[0] == "/":
            out.append(_blank(token))
            continue
        # ("try" in prose costs a look, never a wrong answer.)
        if "\\(" in token and _INTERPOLATED_WORD.search(token):
            deferred.append((start, pos))
        out.append(_LITERAL_FILL * len(token))
    masked = "".join(out)
    # Every offset found in the masked copy is used on the original.
    assert len(masked) == len(text)
    return masked, deferred


def _outside(literals: list[tuple[int, int]], groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return the ``literals`` that lie in none of the ``groups``; both are sorted spans."""
    kept: list[tuple[int, int]] = []
    index = 0
    for literal in literals:
        while index < len(groups) and groups[index][1] <= literal[0]:
            index += 1
        if index == len(groups) or groups[index][0] > literal[0]:
            kept.append(literal)
    return kept


def _expose(text: str, masked: str, literals: list[tuple[int, int]]) -> str:
    """Return ``masked`` with the interpolated code of ``literals`` shown again."""
    out: list[str] = []
    last = 0
    for start, end in literals:
        out.append(masked[last:start])
        shown: list[str] = []
        # The precise scan ends where the fast pattern did; should it ever
        # not, the literal stays filled rather than shift every offset.
        if _mask_literal(text, start, shown) == end:
            out += shown
        else:
            out.append(masked[start:end])
        last = end
    out.append(masked[last:])
    return "".join(out)


def _blank(comment: str) -> str:
    """Return spaces in place of ``comment``, keeping its line breaks."""
    if "\n" in comment:
        return _NOT_NEWLINE.sub(" ", comment)
    return " " * len(comment)


class _StringEnd(Enum):
    """Name the ways a scan of a string literal's body can stop."""

    CLOSED = "closed"
    INTERPOLATION = "interpolation"
    UNTERMINATED = "unterminated"


def _mask_literal(text: str, start: int, out: list[str]) -> int:
    """Append the masked form of the literal or comment at ``start``; return its end.

    This is the precise path: nested block comments, ``#/regex/#`` literals,
    strings with any number of ``#``, and interpolations holding any code,
    including further literals and comments.
    """
    if text.startswith("/*", start):
        end = _block_comment_end(text, start + 2)
        out.append(_blank(text[start:end]))
        return end
    hashes_end = _hashes_end(text, start)
    if text.startswith("/", hashes_end):
        end = _regex_end(text, start, hashes_end)
        out.append(_LITERAL_FILL * (end - start))
        return end
    return _StringMask(text, start, hashes_end, out).run()


class _StringMask:
    """Mask one string literal, interpolations included, into ``out``.

    Literal text is filled; interpolated code is copied, except for the
    literals and comments inside it, which are masked in turn.
    """

    def __init__(self, text: str, start: int, hashes_end: int, out: list[str]) -> None:
        """Prepare to mask the string whose opening delimiter starts at ``start``."""
        self.text = text
        self.out = out
        # The literal being scanned, or None while in interpolated code.
        self.string: _StringKind | None
        self.string, self.pos = _open_string(text, start, hashes_end)
        # Literals whose interpolation is open, each with the parenthesis
        # depth at its "\(": the ")" back at that depth closes it.
        self.suspended: list[tuple[_StringKind, int]] = []
        self.parens = 0
        # Start of the text not appended yet: literal text while ``string``
        # is set, interpolated code while it is None.
        self.segment = start

    def run(self) -> int:
        """Return the index just past the literal's closing delimiter."""
        done = False
        while not done:
            done = self._code_token() if self.string is None else self._string_body(self.string)
        return self.pos

    def _string_body(self, string: _StringKind) -> bool:
        """Mask literal text up to where it stops; tell whether the scan is over."""
        end_kind, self.pos = _scan_string_body(self.text, self.pos, string)
        if end_kind is _StringEnd.INTERPOLATION:
            self.out.append(_LITERAL_FILL * (self.pos - 1 - self.segment) + "(")
            self.suspended.append((string, self.parens))
            self.string = None
        else:
            self.out.append(_LITERAL_FILL * (self.pos - self.segment))
            # An unterminated literal ends the whole scan: Swift reports it,
            # and the masked copy only has to keep the offsets.
            if end_kind is _StringEnd.UNTERMINATED or not self.suspended:
                return True
            # A literal nested in interpolated code closed.
            self.string = None
        self.segment = self.pos
        return False

    def _code_token(self) -> bool:
        """Handle the next token of interpolated code; tell whether the scan is over."""
        text = self.text
        out = self.out
        match = _INTERPOLATION_TOKEN.search(text, self.pos)
        if match is None:
            # Unterminated: the rest is code.
            out.append(text[self.segment :])
            self.pos = len(text)
            return True
        token = match.start()
        char = text[token]
        self.pos = token + 1
        if char == "(":
            self.parens += 1
        elif char == ")":
            if self.parens == self.suspended[-1][1]:
                out.append(text[self.segment : self.pos])
                self.segment = self.pos
                self.string = self.suspended.pop()[0]
            else:
                self.parens -= 1
        elif char == "/":
            out.append(text[self.segment : token])
            if text.startswith("//", token):
                newline = text.find("\n", token)
                self.pos = len(text) if newline < 0 else newline
            else:
                self.pos = _block_comment_end(text, token + 2)
            out.append(_blank(text[token : self.pos]))
            self.segment = self.pos
        else:
            hashes_end = _hashes_end(text, token)
            if text.startswith('"', hashes_end):
                out.append(text[self.segment : token])
                self.segment = token
                self.string, self.pos = _open_string(text, token, hashes_end)
            elif char == "#" and text.startswith("/", hashes_end):
                out.append(text[self.segment : token])
                self.pos = _regex_end(text, token, hashes_end)
                out.append(_LITERAL_FILL * (self.pos - token))
                self.segment = self.pos
            else:
                # "#if", "#available(...)": code.
                self.pos = hashes_end
        return False


def _hashes_end(text: str, start: int) -> int:
    """Return the index past the run of ``#`` starting at ``start``."""
    match = _HASHES.match(text, start)
    assert match is not None  # "#*" matches everywhere
    return match.end()


def _open_string(text: str, start: int, hashes_end: int) -> tuple[_StringKind, int]:
    """Return the kind of the string opened at ``start`` and where its body begins."""
    hashes = hashes_end - start
    if text.startswith('"""', hashes_end):
        return _StringKind(True, hashes), hashes_end + 3
    return _StringKind(False, hashes), hashes_end + 1


def _regex_end(text: str, start: int, hashes_end: int) -> int:
    """Return the index past the ``#/.../#`` regex literal opened at ``start``."""
    closer = "/" + "#" * (hashes_end - start)
    close = text.find(closer, hashes_end + 1)
    return len(text) if close < 0 else close + len(closer)


def _block_comment_end(text: str, pos: int) -> int:
    """Return the index past a (nested) block comment starting at ``pos``; an open one runs to the end."""
    end = block_comment_end(text, pos)
    return len(text) if end is None else end


def _scan_string_body(text: str, pos: int, kind: _StringKind) -> tuple[_StringEnd, int]:
    """Scan a string literal's body from ``pos``; report how and where it stopped.

    The position is past the closing delimiter for CLOSED, past the ``(``
    for INTERPOLATION, and at the line break or end for UNTERMINATED.
    """
    if kind.hashes:
        return _scan_raw_string_body(text, pos, kind)
    # One C-level match takes the text up to the next interpolation, closing
    # quote or (single-line) line break.
    body = _MULTI_LINE_BODY if kind.multiline else _SINGLE_LINE_BODY
    match = body.match(text, pos)
    assert match is not None  # every part of the pattern is optional
    end = match.end()
    if end >= len(text):
        return _StringEnd.UNTERMINATED, end
    char = text[end]
    if char == '"':
        return _StringEnd.CLOSED, end + (3 if kind.multiline else 1)
    if char == "\\" and text.startswith("(", end + 1):
        return _StringEnd.INTERPOLATION, end + 2
    # A line break, or a backslash at the end or before one.
    return _StringEnd.UNTERMINATED, end + (char == "\\")


def _scan_raw_string_body(text: str, pos: int, kind: _StringKind) -> tuple[_StringEnd, int]:
    """Scan the body of a raw string, whose delimiters and escapes carry ``#`` (shared scanner)."""
    end, position = scan_string_body(text, pos, kind)
    if end is StringEnd.CLOSED:
        return _StringEnd.CLOSED, position
    if end is StringEnd.INTERPOLATION:
        return _StringEnd.INTERPOLATION, position
    return _StringEnd.UNTERMINATED, position


# --- Top-level structure -----------------------------------------------------------------


class _TopLevelScan:
    """Walk the top-level code of one masked cell and plan the insertions.

    The walk stops at top-level braces, at ``try`` and at each await (or
    unsupported form), and ends after the last await.  A ``{`` opens either
    the body of a top-level statement, walked into when an await is inside,
    or some other group (a function, accessor, type or closure body),
    skipped whole.  Which one depends on the last statement keyword before
    it and on the brackets open there; both are read lazily, in C, when a
    brace or await asks.
    """

    def __init__(self, code: str, masked: str) -> None:
        """Prepare to scan ``masked``, the masked copy of ``code``."""
        self.code = code
        self.masked = masked
        # (offset, text) insertions, in increasing offset order.
        self.edits: list[tuple[int, str]] = []
        # The brace groups skipped as not top-level, in order.
        self.skipped: list[tuple[int, int]] = []
        # Each top-level ``try``: where its operand starts, and whether a
        # statement body follows it.  An await inside the expression of one
        # must throw; their extents are only measured when an await asks.
        self.trys: list[tuple[int, bool]] = []
        self.next_try = 0
        self.try_end = -1

    def run(self) -> list[tuple[int, str]]:
        """Return the insertions that make every top-level ``await`` blocking."""
        # This loop runs once per top-level brace, so it keeps its state in
        # locals and calls out only for awaits and trys.
        masked = self.masked
        search = _TOP_TOKEN.search
        group_match = _BRACE_GROUP.match
        pending_words = _PENDING_WORD.findall
        # The keywords of the statements whose bodies are open, innermost last.
        bodies: list[str] = []
        # The body keyword whose "{" has not come yet (or _AFTER_REPEAT, or
        # ""), as of offset ``head``: later keywords are not read yet.
        pending, head = "", 0
        # How many "(" and "[" are open at offset ``counted``, read the same
        # lazy way.  Skipped groups in between are balanced.
        brackets, counted = 0, 0
        # Where the scan is, and the next await (or unsupported form) from there.
        pos, candidate = 0, None
        while True:
            if candidate is None or candidate.start() < pos:
                candidate = _ASYNC_WORD.search(masked, pos)
                if candidate is None:
                    # No await ahead, top-level or not: nothing left to plan.
                    break
            # Braces and trys before the await; the await itself when none.
            match = search(masked, pos, candidate.start()) or candidate
            start, pos = match.span()
            if masked[start] == "}":
                pending = _AFTER_REPEAT if bodies and bodies.pop() == "repeat" else ""
                # A body opens only outside brackets, and any left open in it
                # are Swift's to report.
                head, counted, brackets = pos, pos, 0
                continue
            if start > head:
                words = pending_words(masked, head, start)
                if words:
                    pending = _pending_after(words, pending)
                head = start
            # The keyword whose body a "{" here would open, if any.
            keyword = ""
            if pending in _BODY_KEYWORDS:
                if start > counted:
                    # A stray closer is Swift's to report; it must not hide later openers.
                    brackets = max(brackets + _net_brackets(masked, counted, start), 0)
                    counted = start
                if brackets == 0:
                    keyword = pending
            if masked[start] != "{":
                pos = head = self._word(match.group(), start, pos, keyword != "")
            elif keyword:
                # A statement body.  Bounding the match by the next await
                # keeps it short, even where braces nest deeply or never close.
                group = group_match(masked, start, candidate.start())
                if group is None:
                    # The await is inside: walk in.
                    bodies.append(keyword)
                    pending = ""
                    head = counted = pos
                else:
                    pos = head = counted = group.end()
                    pending = _AFTER_REPEAT if keyword == "repeat" else ""
            else:
                # Not top-level code: nothing inside matters.
                group = group_match(masked, start)
                pos = head = group.end() if group else _skip_group(masked, pos, "{", "}")
                self.skipped.append((start, pos))
        return self.edits

    def _word(self, word: str, start: int, end: int, body_follows: bool) -> int:
        """Follow ``await``, ``try`` or an unsupported form at ``start``; return where to go on.

        ``body_follows`` says that a ``{`` at this depth would open the body
        of the statement the word is in.
        """
        if word == "await":
            return self._await(start, end, body_follows)
        if word == "try":
            operand = _TRY_SUFFIX.match(self.masked, end)
            assert operand is not None  # an optional pattern always matches
            self.trys.append((operand.end(), body_follows))
            return end
        line = len(_LINE_BREAK.findall(self.code, 0, start)) + 1
        if word.startswith("async"):
            raise AwaitRewriteError("async let", line, "a child task needs an enclosing async function.")
        raise AwaitRewriteError(
            " ".join(word.split()), line, "each step of the loop awaits, so it cannot run as one blocking call."
        )

    def _await(self, start: int, end: int, body_follows: bool) -> int:
        """Plan the rewrite of the ``await`` at ``start``; return where to go on."""
        masked = self.masked
        stop = _expression_end(masked, end, body_follows)
        if stop == end:
            # Nothing to await: the compiler reports that better.
            return end
        if self._covered_by_try(start):
            # The user's ``try`` stays outside and covers the throwing call;
            # the closure needs its own for what it awaits.
            prefix = _BLOCK_ON_THROWING + "try "
        elif _has_plain_try(masked, end, stop):
            # ``await f(try g())``: the closure throws, so its call needs a try.
            prefix = "try " + _BLOCK_ON_THROWING
        else:
            prefix = _BLOCK_ON
        self.edits.append((start, prefix))
        self.edits.append((stop, _CLOSE))
        # Awaits inside the expression now run in the async closure.  It has
        # balanced brackets and no statement keyword of its own.
        return stop

    def _covered_by_try(self, offset: int) -> bool:
        """Tell whether the expression of an earlier top-level ``try`` contains ``offset``."""
        trys = self.trys
        while offset >= self.try_end and self.next_try < len(trys):
            operand, body_follows = trys[self.next_try]
            self.next_try += 1
            # A try inside an earlier one's expression also ends before
            # ``offset``: no need to measure it.
            if operand > self.try_end:
                self.try_end = _expression_end(self.masked, operand, body_follows)
        return offset < self.try_end


def _pending_after(words: list[str], pending: str) -> str:
    """Return the pending body keyword after reading ``words`` with ``pending`` before them."""
    last = words[-1]
    if last == ";" or (last == "while" and len(words) == 1 and pending == _AFTER_REPEAT):
        # The statement ended, or this "while" ends a repeat loop.
        return ""
    return last


def _net_brackets(masked: str, start: int, end: int) -> int:
    """Return how many more ``(`` and ``[`` than closers ``masked[start:end]`` has."""
    count = masked.count
    return count("(", start, end) + count("[", start, end) - count(")", start, end) - count("]", start, end)


def _skip_group(masked: str, pos: int, opener: str, closer: str) -> int:
    """Return the index past the ``closer`` matching an ``opener`` just before ``pos``.

    Only one kind of bracket is counted: literals and comments are masked,
    so in code that compiles the other kinds nest properly inside.
    Searching and counting run in C, one step per closer.
    """
    depth = 1
    while True:
        close = masked.find(closer, pos)
        if close < 0:
            return len(masked)
        depth += masked.count(opener, pos, close) - 1
        if depth == 0:
            return close + 1
        pos = close + 1


def _expression_end(masked: str, start: int, body_follows: bool) -> int:
    """Return where the expression starting at ``start`` ends, before trailing blanks.

    ``body_follows`` says that the expression is a statement's condition or
    subject, so a ``{`` at its depth opens the statement's body rather than a
    trailing closure.
    """
    n = len(masked)
    pos = start
    ternaries = 0
    search = _EXTENT_TOKEN.search
    while True:
        match = search(masked, pos)
        if match is None:
            stop = n
            break
        token = match.group()
        stop = match.start()
        if token == "(":
            pos = _skip_group(masked, stop + 1, "(", ")")
        elif token == "[":
            pos = _skip_group(masked, stop + 1, "[", "]")
        elif token == "{" and not body_follows:
            group = _BRACE_GROUP.match(masked, stop)
            pos = group.end() if group else _skip_group(masked, stop + 1, "{", "}")
        elif token == "?":
            ternaries += 1
            pos = stop + 1
        elif token == ":" and ternaries:
            ternaries -= 1
            pos = stop + 1
        elif token == "\n" and _continues(masked, start, stop, ternaries):
            following = _NON_SPACE.search(masked, stop)
            pos = n if following is None else following.start()
        else:
            break
    while stop > start and masked[stop - 1].isspace():
        stop -= 1
    return stop


def _continues(masked: str, start: int, newline: int, ternaries: int) -> bool:
    """Tell whether the expression begun at ``start`` goes on past ``newline``."""
    last = newline - 1
    while last >= start and masked[last].isspace():
        last -= 1
    if last < start:
        # ``await`` alone on its line: the operand is on the next.
        return True
    if masked[last] in _OPERATOR_CHARS:
        first = last
        while first > start and masked[first - 1] in _OPERATOR_CHARS:
            first -= 1
        # Swift's rule: an operator with whitespace on both sides is binary
        # and wants a right operand; one touching the token before it
        # (``x!``, ``y?``, ``Array<Int>``) is postfix and may end the line.
        if first == start or masked[first - 1].isspace() or masked[first : last + 1] == ".":
            return True
        if _ends_with_word(masked, start, first, _BANG_WORDS):
            return True
    elif _ends_with_word(masked, start, last + 1, _CONTINUING_WORDS):
        return True
    following = _NON_SPACE.search(masked, newline)
    if following is None:
        return False
    at = following.start()
    char = masked[at]
    if char == ".":
        # ``.member`` continues a chain; a ``...x`` or ``..<x`` range would not.
        return not masked.startswith(".", at + 1)
    if char in _OPERATOR_CHARS:
        # A binary operator leading the next line continues the expression; a
        # prefix one (``-x``, ``!flag``) starts a new statement.
        after = at
        while after < len(masked) and masked[after] in _OPERATOR_CHARS:
            after += 1
        return after == len(masked) or masked[after].isspace()
    return char == ":" and ternaries > 0


def _ends_with_word(masked: str, floor: int, end: int, words: tuple[str, ...]) -> bool:
    """Tell whether ``masked[floor:end]`` ends with one of ``words`` as a whole word."""
    for word in words:
        begin = end - len(word)
        if begin >= floor and masked.startswith(word, begin):
            before = masked[begin - 1] if begin else " "
            if not (before.isalnum() or before in _IDENTIFIER_EDGE):
                return True
    return False


def _has_plain_try(masked: str, start: int, stop: int) -> bool:
    """Tell whether a throwing ``try`` sits in ``masked[start:stop]`` outside closures."""
    depth = 0
    last = start
    for match in _PLAIN_TRY.finditer(masked, start, stop):
        at = match.start()
        depth += masked.count("{", last, at) - masked.count("}", last, at)
        last = at
        if depth == 0:
            return True
    return False
