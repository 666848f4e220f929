"""An earlier cell as declarations only, for the second file beside a cell's warnings (``lsp``).

A cell's warnings come from sourcekit-lsp's check of a main file that holds the cell, beside a
second file of the earlier cells. Declarations in a second file are checked only as far as the
main file uses them, so the check no longer grows with the notebook. But Swift allows top-level
statements only in a program's main file: one in the second file is an error there, and an error
anywhere in the program stops the compiler before the passes that find, for example, code that
will never be executed, so the cell lost those warnings. So an earlier cell goes into the second
file without its top-level statements (what later cells see of it is what it declares).

The parse is tree-sitter-swift's, loaded the first time it is needed. A cell it cannot parse has
no such form: the caller then keeps the cells in one document. (A top-level ``guard`` is a
statement like any other: what it binds, LLDB's REPL keeps for no later cell.)
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["declarations_only", "scopes_at"]

# Kept at the top level: declarations, #if and its kin, comments. Everything else is a statement.
_KEPT = frozenset({"directive", "comment", "multiline_comment"})


@functools.cache
def _parser() -> Any:
    """Return tree-sitter's Swift parser, made on first use (about 17 ms here: not on the start's path)."""
    import tree_sitter  # noqa: PLC0415 - see above
    import tree_sitter_swift  # noqa: PLC0415

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language()))


@functools.lru_cache(maxsize=1024)
def declarations_only(cell: str) -> str | None:
    """Return ``cell`` with each top-level statement blanked, its lines kept; None if tree-sitter cannot parse it."""
    source = cell.encode("utf-8")
    root = _parser().parse(source).root_node
    if root.has_error:
        return None
    kept = bytearray()
    end = 0
    for node in root.children:
        if node.type.endswith("_declaration") or node.type in _KEPT:
            continue
        kept += source[end : node.start_byte] + b"\n" * source.count(b"\n", node.start_byte, node.end_byte)
        end = node.end_byte
    kept += source[end:]
    return kept.decode("utf-8")


def scopes_at(cell: str, line: int, column: int) -> tuple[str, ...] | None:
    """Return the kinds of tree-sitter node around 0-based ``line`` and byte ``column`` of ``cell``, innermost first.

    None when tree-sitter cannot parse the cell (the caller then knows nothing of its scopes).
    """
    root = _parser().parse(cell.encode("utf-8")).root_node
    if root.has_error:
        return None
    node = root.descendant_for_point_range((line, column), (line, column))
    kinds = []
    while node is not None:
        kinds.append(node.type)
        node = node.parent
    return tuple(kinds)
