"""Regular-expression pieces for Swift literals and comments, shared by the cell scanners.

completeness.py (is_complete) and asyncwrap.py (top-level await) both skip over strings and
comments fast by letting the regex engine match whole literals in C; these are those patterns.
"""

from __future__ import annotations

from typing import Final

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
