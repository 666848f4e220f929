"""Regular-expression pieces for Swift literals and comments, shared by the cell scanners.

completeness.py (is_complete) and asyncwrap.py (top-level await) both skip over strings and
comments fast by letting the regex engine match whole literals in C; these are those patterns.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final, NamedTuple

PLAIN: Final = r'[^()\[\]{}"\\\n/#]'
# How deeply brackets may nest inside a fast-path interpolation: "\(f(a[0]))"
# needs 2.  Each level triples the size of the pattern.
INTERPOLATION_DEPTH: Final = 2


def interpolation_pattern(depth: int) -> str:
    """Build a pattern for an interpolation nesting brackets ``depth`` deep.

    The body may hold plain characters, a "/" that starts no comment, strings
    without escapes, and balanced (), [] and {} groups.
    """
    body = ""
    for level in range(depth + 1):
        atoms = [r"/(?![/*])", r'"(?!"")[^"\\\n]*"']
        if level:
            atoms += [r"\(" + body + r"\)", r"\[" + body + r"\]", r"\{" + body + r"\}"]
        body = PLAIN + "*(?:(?:" + "|".join(atoms) + ")" + PLAIN + "*)*"
    return r"\(" + body + r"\)"


SIMPLE_INTERPOLATION: Final = interpolation_pattern(INTERPOLATION_DEPTH)
# The (?!"") keeps "" from swallowing the start of a """ delimiter.
SINGLE_LINE_STRING: Final = r'"(?!"")[^"\\\n]*(?:\\(?:[^(\n]|' + SIMPLE_INTERPOLATION + r')[^"\\\n]*)*"'
MULTI_LINE_STRING: Final = r'"""[^"\\]*(?:(?:\\(?:[^(]|' + SIMPLE_INTERPOLATION + r')|"(?!""))[^"\\]*)*"""'
# Only one-hash raw strings without "\#" escapes; the rest are rare enough
# for the precise scanner.
RAW_STRING: Final = r'#"(?!"")[^"\\\n]*(?:(?:\\(?!#)|"(?!#))[^"\\\n]*)*"#'
# Consecutive comment lines form one token, which saves per-token work on
# heavily commented code.
LINE_COMMENT: Final = r"//[^\n]*(?:\n[^\S\n]*//[^\n]*)*"
# Unnested block comments only: a "/*" inside makes the match fail on purpose.
BLOCK_COMMENT: Final = r"/\*[^*/]*(?:(?:\*(?!/)|/(?!\*))[^*/]*)*\*/"

# Inside a string body only quotes, backslashes (and, for single-line strings, line breaks) matter.
SINGLE_LINE_STRING_TOKEN: Final = re.compile(r'["\\\n]')
MULTI_LINE_STRING_TOKEN: Final = re.compile(r'["\\]')


class StringKind(NamedTuple):
    """Describe the delimiters of a string literal: triple quotes, and how many ``#``."""

    multiline: bool
    hashes: int


class StringEnd(Enum):
    """Name the ways a scan of a string literal's body can stop."""

    CLOSED = "closed"
    INTERPOLATION = "interpolation"
    NEWLINE = "newline"
    END_OF_INPUT = "end of input"


def scan_string_body(text: str, pos: int, kind: StringKind) -> tuple[StringEnd, int]:
    """Scan a string literal's body from ``pos`` and report how it stopped.

    The returned position is just past the closing delimiter for
    ``CLOSED`` and just past the ``(`` for ``INTERPOLATION``.
    """
    pattern = MULTI_LINE_STRING_TOKEN if kind.multiline else SINGLE_LINE_STRING_TOKEN
    # In a raw string #"..."# the closing quote must be followed, and an
    # escape's backslash followed, by the same number of "#".
    hashes = "#" * kind.hashes
    quote = '"""' if kind.multiline else '"'
    while True:
        match = pattern.search(text, pos)
        if match is None:
            return StringEnd.END_OF_INPUT, len(text)
        tok = match.start()
        ch = text[tok]
        if ch == "\n":
            return StringEnd.NEWLINE, tok
        if ch == '"':
            if text.startswith(quote, tok) and text.startswith(hashes, tok + len(quote)):
                return StringEnd.CLOSED, tok + len(quote) + kind.hashes
            pos = tok + 1
            continue
        # A backslash.  In a raw string without enough "#" it is literal.
        if not text.startswith(hashes, tok + 1):
            pos = tok + 1
            continue
        escaped = tok + 1 + kind.hashes
        if escaped >= len(text):
            return StringEnd.END_OF_INPUT, len(text)
        if text[escaped] == "(":
            return StringEnd.INTERPOLATION, escaped + 1
        # Skip the escaped character (e.g. \" or \\) so it cannot end the
        # literal, except a newline in a single-line string: Swift has no
        # line continuation there, so let the next search report it.
        pos = escaped if text[escaped] == "\n" and not kind.multiline else escaped + 1




BLOCK_COMMENT_TOKEN: Final = re.compile(r"/\*|\*/")


def closing_match(tokens: re.Pattern[str], text: str, pos: int, openers: str, depth: int = 0) -> re.Match[str] | None:
    """Return the token that closes what is open at ``pos`` (``depth`` levels, or the first opener found).

    ``tokens`` matches openers and closers; one whose first character is in ``openers`` opens.
    """
    for match in tokens.finditer(text, pos):
        if text[match.start()] in openers:
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return match
    return None


def block_comment_end(text: str, pos: int) -> int | None:
    """Return the index past a block comment whose body starts at ``pos``, or None if it never ends.

    Swift block comments nest, so ``/* /* */`` is still open.
    """
    match = closing_match(BLOCK_COMMENT_TOKEN, text, pos, "/", depth=1)
    return match.end() if match is not None else None


_SWIFT_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def swift_literal(text: str) -> str:
    """Quote ``text`` as a Swift string literal, for code the kernel writes (paths, environment values).

    Swift takes any Unicode character as it is, but only ``\\u{...}`` escapes, not JSON's
    ``\\u00e9``; control characters are escaped. Raises ValueError for a lone surrogate, which no
    Swift string can hold.
    """
    out = ['"']
    for character in text:
        code = ord(character)
        if character in _SWIFT_ESCAPES:
            out.append(_SWIFT_ESCAPES[character])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{{{code:x}}}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"{text!r} holds a lone surrogate (U+{code:04X}), which a Swift string cannot")
        else:
            out.append(character)
    out.append('"')
    return "".join(out)
