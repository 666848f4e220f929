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
contexts of their own (or the compiler reports that they are not).

"Top-level code" is the cell's statements and the bodies of top-level
``if``/``else``/``guard``/``for``/``while``/``repeat``/``do``/``catch``/
``switch``/``defer`` statements.  The rewrite never adds a line, so compiler
diagnostics still point at the user's lines.

This is not a Swift parser.  It masks string literals and comments, then
follows brackets and a handful of keywords; the extent of an ``await`` ends
where Swift's expression would (``,``, ``;``, a closing bracket, ``:``,
``else``, ``where``, the ``{`` of a statement body, or a newline that neither
a trailing binary operator nor a leading ``.member`` or operator continues).

Cells without ``await`` cost one substring test; cells whose ``await`` is
only inside bodies cost a linear scan in which bodies are skipped with C-level
``str.find``/``str.count`` calls, well under 100 ms for a megabyte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final, NamedTuple

__all__ = ["AwaitRewriteError", "rewrite_top_level_await"]

# What the rewrite inserts around an awaited expression.  The prelude defines
# both functions; the parentheses keep the closure from ever being read as a
# trailing closure or statement body (``if (blockOn { ... }) {``).
_BLOCK_ON: Final = "(__SwiftKernel.blockOn { "
_BLOCK_ON_THROWING: Final = "(__SwiftKernel.blockOnThrowing { "
_CLOSE: Final = " })"

# --- Masking strings and comments ---------------------------------------------------

# Character that stands for string, raw string and regex literal text in the
# masked copy: not a bracket, operator, keyword letter or space, so a literal
# reads as one opaque operand.  Comments become spaces (newlines kept), which
# is what Swift makes of them.
_LITERAL_FILL: Final = '"'

# Whole literals that need no interpolation handling: the regex engine takes
# them in C.  Anything with "\(" or an unusual shape fails these patterns and
# reaches the precise scanner through the fallbacks of _LITERAL.
# The (?!"") keeps "" from swallowing the start of a """ delimiter.
_SINGLE_LINE_STRING: Final = r'"(?!"")[^"\\\n]*(?:\\[^(\n][^"\\\n]*)*"'
_MULTI_LINE_STRING: Final = r'"""[^"\\]*(?:(?:\\[^(]|"(?!""))[^"\\]*)*"""'
# One-hash raw strings whose backslashes are all literal (no "\#" escapes).
_RAW_STRING: Final = r'#"(?!"")[^"\\\n]*(?:(?:\\(?!#)|"(?!#))[^"\\\n]*)*"#'
# Consecutive comment lines form one token: fewer Python steps for heavily
# commented code.
_LINE_COMMENT: Final = r"//[^\n]*(?:\n[^\S\n]*//[^\n]*)*"
# Unnested block comments only; a "/*" inside makes the match fail on purpose.
_BLOCK_COMMENT: Final = r"/\*[^*/]*(?:(?:\*(?!/)|/(?!\*))[^*/]*)*\*/"
# Every alternative starts with '"', '#' or '/', so the engine skips plain
# code quickly.  The last three catch what the whole-token patterns could not
# (interpolations, "##" raw strings, "#/regex/#" literals, nested comments);
# their empty groups make ``match.lastindex`` non-None.
_LITERAL: Final = re.compile(
    "|".join(
        (
            _MULTI_LINE_STRING,
            _SINGLE_LINE_STRING,
            _RAW_STRING,
            _LINE_COMMENT,
            _BLOCK_COMMENT,
            r'"()',
            r'#+(?=["/])()',
            r"/\*()",
        )
    )
)
_NOT_NEWLINE: Final = re.compile(r"[^\n]")
_HASHES: Final = re.compile(r"#*")
_SINGLE_LINE_STRING_TOKEN: Final = re.compile(r'["\\\n]')
_MULTI_LINE_STRING_TOKEN: Final = re.compile(r'["\\]')
# Inside an interpolation only parentheses (to find the closing ")"), nested
# literals and comments matter.
_INTERPOLATION_TOKEN: Final = re.compile(r'[()"#]|/[/*]')
_BLOCK_COMMENT_TOKEN: Final = re.compile(r"/\*|\*/")

# --- Words and tokens in masked code ---------------------------------------------------

# A keyword is not one after "." (member), "`" (escaped identifier), "$", "#"
# (#if, #else), "@" or "\" (key path), or inside a longer identifier.
_WORD_START: Final = r"(?<![\w.$`#@\\])"
# ... and not when an argument label: ``f(for: x)``, ``g(await: 1)``.
_WORD_END: Final = r"(?![\w`])(?!\s*:)"
_ASYNC_WORD: Final = re.compile(_WORD_START + r"(?:await|async\s+let)" + _WORD_END)
# What the top-level scan reacts to: brackets, ";" and the keywords that open
# statement bodies, start an await or try, or start an unsupported form.
_TOP_TOKEN: Final = re.compile(
    r"[(){}\[\];]|"
    + _WORD_START
    + r"(if|guard|for|while|repeat|do|switch|defer|else|catch|await|async|try)"
    + _WORD_END
)
# What can end an awaited expression at its own bracket depth.  A ternary "?"
# has whitespace on both sides; "x?.y", "try?" and "??" do not qualify.
_EXTENT_TOKEN: Final = re.compile(r"[()\[\]{},;:\n]|(?<=\s)\?(?=\s)|" + _WORD_START + r"(?:else|where)(?![\w`])")
_NON_SPACE: Final = re.compile(r"\S")
_TRY_AFTER: Final = re.compile(r"[?!]?")
_PLAIN_TRY: Final = re.compile(_WORD_START + r"try(?![\w`?!])")
_FOR_AWAIT: Final = re.compile(r"\s+(try\s+)?await(?![\w`])")
_ASYNC_LET: Final = re.compile(r"\s+let(?![\w`])")
_LINE_BREAK: Final = re.compile(r"\r\n?|\n")

# Keywords whose statement body is the next "{" at the same bracket depth.
# "guard" is absent: its body follows "else", which is listed.
_BODY_KEYWORDS: Final = frozenset({"if", "for", "while", "switch", "do", "repeat", "defer", "else", "catch"})
# Pending state after a repeat body closes: the "while" that follows is the
# loop condition and opens no body.
_AFTER_REPEAT: Final = "repeat }"
_OPERATOR_CHARS: Final = frozenset("/=-+!*%<>&|^~?.")
_IDENTIFIER_EDGE: Final = frozenset("_.`$@#")
# Words after which an expression cannot end (``x as``, ``try``); "as" and
# "try" also take a "?" or "!" that would otherwise look postfix.
_CONTINUING_WORDS: Final = ("as", "is", "try", "await")
_BANG_WORDS: Final = ("as", "try")


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
    # Most cells never mention either word: one C-level scan each.
    if "await" not in code and "async" not in code:
        return code
    # Swift also breaks lines at a lone CR; mapping every CR to LF keeps all
    # offsets, so edits found in the copy apply to ``code`` unchanged.
    text = code.replace("\r", "\n") if "\r" in code else code
    masked = _mask(text)
    if _ASYNC_WORD.search(masked) is None:
        return code
    edits = _TopLevelScan(code, masked).run()
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


def _mask(text: str) -> str:
    """Return ``text`` with literal text filled and comments blanked, offsets kept.

    Interpolated code inside strings stays as it is, with the ``(`` of each
    ``\\(`` kept, so an interpolation reads as a parenthesized expression.
    """
    out: list[str] = []
    pos = 0
    search = _LITERAL.search
    while True:
        match = search(text, pos)
        if match is None:
            out.append(text[pos:])
            break
        start = match.start()
        out.append(text[pos:start])
        if match.lastindex is None:
            token = match.group()
            out.append(_blank(token) if token[0] == "/" else _LITERAL_FILL * len(token))
            pos = match.end()
        else:
            pos = _mask_literal(text, start, out)
    masked = "".join(out)
    # Every later offset relies on this.
    assert len(masked) == len(text)
    return masked


def _blank(comment: str) -> str:
    """Return spaces in place of ``comment``, keeping its line breaks."""
    if "\n" in comment:
        return _NOT_NEWLINE.sub(" ", comment)
    return " " * len(comment)


class _StringKind(NamedTuple):
    """Describe the delimiters of a string literal: triple quotes, and how many ``#``."""

    multiline: bool
    hashes: int


class _StringEnd(Enum):
    """Name the ways a scan of a string literal's body can stop."""

    CLOSED = "closed"
    INTERPOLATION = "interpolation"
    UNTERMINATED = "unterminated"


def _mask_literal(text: str, start: int, out: list[str]) -> int:
    """Append the masked form of the literal or comment at ``start``; return its end.

    Handles what the whole-token patterns leave over: nested block comments,
    ``#/regex/#`` literals and strings with any number of ``#`` and with
    interpolations, which may hold further literals and comments.
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
    string: _StringKind | None
    string, pos = _open_string(text, start, hashes_end)
    # Literals whose interpolation is open, each with the parenthesis depth
    # at its "\(": the ")" that returns to that depth closes the interpolation.
    suspended: list[tuple[_StringKind, int]] = []
    parens = 0
    # Start of the text not yet appended: literal text while ``string`` is
    # set, interpolated code while it is None.
    segment = start
    while True:
        if string is not None:
            end_kind, pos = _scan_string_body(text, pos, string)
            if end_kind is _StringEnd.INTERPOLATION:
                out.append(_LITERAL_FILL * (pos - 1 - segment) + "(")
                suspended.append((string, parens))
                string = None
            else:
                out.append(_LITERAL_FILL * (pos - segment))
                # An unterminated literal ends the whole scan: Swift reports
                # it, and the masked copy only has to stay in step.
                if end_kind is _StringEnd.UNTERMINATED or not suspended:
                    return pos
                # A literal nested in interpolated code closed.
                string = None
            segment = pos
            continue
        match = _INTERPOLATION_TOKEN.search(text, pos)
        if match is None:
            out.append(text[segment:])
            return len(text)
        token = match.start()
        char = text[token]
        pos = token + 1
        if char == "(":
            parens += 1
        elif char == ")":
            if parens == suspended[-1][1]:
                out.append(text[segment:pos])
                segment = pos
                string = suspended.pop()[0]
            else:
                parens -= 1
        elif char == "/":
            out.append(text[segment:token])
            if text.startswith("//", token):
                newline = text.find("\n", token)
                pos = len(text) if newline < 0 else newline
            else:
                pos = _block_comment_end(text, token + 2)
            out.append(_blank(text[token:pos]))
            segment = pos
        else:
            hashes_end = _hashes_end(text, token)
            if text.startswith('"', hashes_end):
                out.append(text[segment:token])
                segment = token
                string, pos = _open_string(text, token, hashes_end)
            elif char == "#" and text.startswith("/", hashes_end):
                out.append(text[segment:token])
                pos = _regex_end(text, token, hashes_end)
                out.append(_LITERAL_FILL * (pos - token))
                segment = pos
            else:
                # "#if", "#available(...)": code.
                pos = hashes_end


def _hashes_end(text: str, start: int) -> int:
    """Return the index past the run of ``#`` starting at ``start``."""
    match = _HASHES.match(text, start)
    assert match is not None  # "#*" always matches
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
    """Return the index past a block comment whose body starts at ``pos``.

    Swift block comments nest, so ``/* /* */`` is still open.
    """
    depth = 1
    for match in _BLOCK_COMMENT_TOKEN.finditer(text, pos):
        if text[match.start()] == "/":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return match.end()
    return len(text)


def _scan_string_body(text: str, pos: int, kind: _StringKind) -> tuple[_StringEnd, int]:
    """Scan a string literal's body from ``pos``; report how and where it stopped.

    The position is past the closing delimiter for CLOSED, past the ``(``
    for INTERPOLATION, and at the line break or end for UNTERMINATED.
    """
    pattern = _MULTI_LINE_STRING_TOKEN if kind.multiline else _SINGLE_LINE_STRING_TOKEN
    # In a raw string the closing quote, and an escape's backslash, must be
    # followed by the same number of "#" as the opening.
    hashes = "#" * kind.hashes
    quote = '"""' if kind.multiline else '"'
    while True:
        match = pattern.search(text, pos)
        if match is None:
            return _StringEnd.UNTERMINATED, len(text)
        token = match.start()
        char = text[token]
        if char == "\n":
            return _StringEnd.UNTERMINATED, token
        if char == '"':
            if text.startswith(quote, token) and text.startswith(hashes, token + len(quote)):
                return _StringEnd.CLOSED, token + len(quote) + kind.hashes
            pos = token + 1
            continue
        if not text.startswith(hashes, token + 1):
            # A backslash without enough "#" is literal text in a raw string.
            pos = token + 1
            continue
        escaped = token + 1 + kind.hashes
        if escaped >= len(text):
            return _StringEnd.UNTERMINATED, len(text)
        if text[escaped] == "(":
            return _StringEnd.INTERPOLATION, escaped + 1
        # Skip the escaped character so \" cannot close the literal; a
        # backslash before a line break in a single-line string continues
        # nothing, so leave the break for the next search.
        pos = escaped if text[escaped] == "\n" and not kind.multiline else escaped + 1


# --- Top-level structure -----------------------------------------------------------------


@dataclass
class _Frame:
    """Hold one open bracket or block of top-level code.

    ``closer`` is ``")"`` or ``"]"`` for brackets, ``"}"`` for the body of a
    top-level statement and ``""`` for the cell itself.  ``keyword`` names
    the statement whose body this is; ``pending`` is the last body keyword
    seen whose ``{`` has not come yet.
    """

    closer: str
    keyword: str = ""
    pending: str = ""

    @property
    def is_block(self) -> bool:
        """Tell whether statements (rather than an expression) live here."""
        return self.closer in ("", "}")


class _TopLevelScan:
    """Walk the top-level code of one masked cell and plan the insertions."""

    def __init__(self, code: str, masked: str) -> None:
        """Prepare to scan ``masked``, the masked copy of ``code``."""
        self.code = code
        self.masked = masked
        self.frames: list[_Frame] = [_Frame("")]
        # (offset, text) insertions, in increasing offset order.
        self.edits: list[tuple[int, str]] = []
        # End of the furthest-reaching ``try`` expression seen so far: an
        # await before it is covered by that ``try``.
        self.try_end = -1

    def run(self) -> list[tuple[int, str]]:
        """Return the insertions that make every top-level ``await`` blocking."""
        masked = self.masked
        search = _TOP_TOKEN.search
        pos = 0
        while (match := search(masked, pos)) is not None:
            word = match.group(1)
            if word is None:
                pos = self._punctuation(match.group(), match.end())
            else:
                pos = self._keyword(word, match.start(), match.end())
        return self.edits

    def _punctuation(self, char: str, end: int) -> int:
        """Follow a bracket or ``;`` ending at ``end``; return where to go on."""
        frames = self.frames
        frame = frames[-1]
        if char == "{":
            if frame.is_block and frame.pending in _BODY_KEYWORDS:
                frames.append(_Frame("}", frame.pending))
                frame.pending = ""
                return end
            # A function, accessor, type or closure body: its code is not
            # top-level, so none of it matters.
            return _skip_group(self.masked, end, "{", "}")
        if char in "([":
            frames.append(_Frame(")" if char == "(" else "]"))
        elif char in ")]":
            if frame.closer == char:
                frames.pop()
        elif char == "}":
            # Brackets left open inside the block are a syntax error for
            # Swift to report; close them with it.
            while len(frames) > 1 and frames[-1].closer != "}":
                frames.pop()
            if len(frames) > 1:
                closed = frames.pop()
                if closed.keyword == "repeat":
                    frames[-1].pending = _AFTER_REPEAT
        else:
            frame.pending = ""
        return end

    def _keyword(self, word: str, start: int, end: int) -> int:
        """Follow the keyword ``word`` at ``start``; return where to go on."""
        frame = self.frames[-1]
        if word == "await":
            return self._await(start, end)
        if word == "try":
            if start >= self.try_end:
                after = _TRY_AFTER.match(self.masked, end)
                assert after is not None  # optional pattern
                self.try_end = _expression_end(self.masked, after.end(), self._body_follows())
        elif word == "async":
            if _ASYNC_LET.match(self.masked, end):
                raise AwaitRewriteError(
                    "async let", self._line(start), "a child task needs an enclosing async function."
                )
        elif word == "for":
            loop = _FOR_AWAIT.match(self.masked, end)
            if loop is not None:
                form = "for try await" if loop.group(1) else "for await"
                raise AwaitRewriteError(
                    form, self._line(start), "each step of the loop awaits, so it cannot be run as one blocking call."
                )
            frame.pending = word
        elif word == "while":
            frame.pending = "" if frame.pending == _AFTER_REPEAT else word
        else:
            frame.pending = word
        return end

    def _await(self, start: int, end: int) -> int:
        """Plan the rewrite of the ``await`` at ``start``; return where to go on."""
        masked = self.masked
        stop = _expression_end(masked, end, self._body_follows())
        if stop == end:
            # Nothing to await: leave the error to the compiler.
            return end
        if start < self.try_end:
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
        # Awaits inside the expression now run in the async closure.
        return stop

    def _body_follows(self) -> bool:
        """Tell whether the next ``{`` here opens a statement body."""
        frame = self.frames[-1]
        return frame.is_block and frame.pending in _BODY_KEYWORDS

    def _line(self, offset: int) -> int:
        """Return the 1-based line number of ``offset`` in the original cell."""
        return len(_LINE_BREAK.findall(self.code, 0, offset)) + 1


def _skip_group(masked: str, pos: int, opener: str, closer: str) -> int:
    """Return the index past the ``closer`` that matches an ``opener`` before ``pos``.

    Only one kind of bracket is counted: literals and comments are masked,
    so in code that compiles the others nest properly inside.  Searching and
    counting in C keeps skipping a large body fast.
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
    subject, so a ``{`` at its depth opens the statement body rather than a
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
            pos = _skip_group(masked, stop + 1, "{", "}")
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
        # ``.member`` continues a chain; ``...x`` or ``..<x`` would not.
        return not masked.startswith(".", at + 1)
    if char in _OPERATOR_CHARS:
        # A binary operator leading the next line continues the expression;
        # a prefix one (``-x``, ``!flag``) starts a new statement.
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
