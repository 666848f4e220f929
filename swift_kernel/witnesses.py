"""Write ``public`` before the members of a cell's conformance extensions (issue 15, limit L2).

LLDB's REPL makes every declaration of a cell public once the cell type-checks, so a protocol of
an earlier cell (or of a library) is public, and a conformance declared in a later cell must have
public witnesses: ``extension Int: Describable { func describe() ... }`` fails with "must be
declared public", which a program never asks for. Worse, the failed cell leaves the conformance
behind without code (measured on LLDB 6.3.1: the same extension with ``public`` written is then a
"redundant conformance"), so retrying after the error cannot work: the rewrite is done before the
cell is compiled.

Only a cell that declares no type, protocol or type alias at its top level is rewritten: in such a
cell every type a member's signature can name comes from an earlier cell (public) or a library,
so ``public`` cannot make the member refer to something less visible than itself. Members that
say their access level are left as written. Like the other rewrites this is not a parser:
literals and comments are masked, then declarations are found at bracket depth 1 of an
``extension`` with a conformance list. Pure functions, no I/O.
"""

from __future__ import annotations

import re

from .asyncwrap import mask_literals

_ACCESS = frozenset({"public", "private", "fileprivate", "internal", "open", "package"})
_MODIFIERS = _ACCESS | {
    "static",
    "class",
    "mutating",
    "nonmutating",
    "final",
    "override",
    "convenience",
    "required",
    "lazy",
    "dynamic",
    "nonisolated",
    "indirect",
    "optional",
    "weak",
    "unowned",
}
_TOP_LEVEL_TYPE = re.compile(r"(?<![\w.$@])(?:struct|class|enum|protocol|actor|typealias)\s+[A-Za-z_`]")
_EXTENSION = re.compile(r"(?<![\w.$@])extension\s")
_MEMBER = re.compile(r"(?<![\w.$@])(func|var|let|subscript|init|typealias|struct|class|enum|actor)(?![\w$])")
# What may stand between a member's start and its keyword: attributes and modifier words.
_ATTRIBUTE_OR_WORD = re.compile(r"\s*(?:@\w+(?:\([^()]*\))?|[a-z]+(?:\(set\))?)")


def _depths(masked: str) -> list[int]:
    """Return the brace depth before each character of ``masked``."""
    depths, depth = [], 0
    for char in masked:
        depths.append(depth)
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(0, depth - 1)
    return depths


def _member_start(masked: str, body_start: int, keyword_at: int) -> int:
    """Return where the declaration whose keyword is at ``keyword_at`` may start (after a delimiter)."""
    return max(masked.rfind(delimiter, body_start, keyword_at) for delimiter in ("{", "}", ";", "\n")) + 1


def _modifiers_before(masked: str, start: int, keyword_at: int) -> list[str] | None:
    """Return the attribute and modifier words before a member keyword, or None if it starts no member."""
    prefix = masked[start:keyword_at]
    words: list[str] = []
    position = 0
    while position < len(prefix) and prefix[position:].strip():
        match = _ATTRIBUTE_OR_WORD.match(prefix, position)
        if match is None:
            return None
        word = match.group().strip()
        if not word.startswith("@"):
            if word.removesuffix("(set)") not in _MODIFIERS:
                return None
            words.append(word.removesuffix("(set)"))
        position = match.end()
    return words


def publish_witnesses(code: str) -> str:
    """Return ``code`` with ``public`` before each member of its conformance extensions that has no access level.

    A cell that declares a type, protocol or type alias at its top level is returned as it is.
    """
    masked = mask_literals(code)
    depths = _depths(masked)
    if any(depths[m.start()] == 0 for m in _TOP_LEVEL_TYPE.finditer(masked)):
        return code
    insertions: list[int] = []
    for extension in _EXTENSION.finditer(masked):
        if depths[extension.start()] != 0:
            continue
        brace = masked.find("{", extension.end())
        if brace < 0:
            break
        header = re.split(r"\swhere\s", masked[extension.end() : brace])[0]
        if ":" not in header:
            continue  # no conformance: LLDB makes its members public itself, after type checking
        end = brace + 1
        while end < len(masked) and depths[end] > 0:
            end += 1
        starts: set[int] = set()
        for member in _MEMBER.finditer(masked, brace + 1, end):
            if depths[member.start()] != 1:
                continue
            start = _member_start(masked, brace, member.start())
            if start in starts:
                continue  # the second keyword of `class func`, `class var`
            starts.add(start)
            words = _modifiers_before(masked, start, member.start())
            if words is None or _ACCESS.intersection(words):
                continue
            insertions.append(member.start())
    for at in sorted(insertions, reverse=True):
        code = f"{code[:at]}public {code[at:]}"
    return code
