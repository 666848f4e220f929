"""An earlier cell as declarations only (``declarations``), with tree-sitter-swift's real parse."""

from __future__ import annotations

from swift_kernel.declarations import declarations_only

# Each piece of a cell, and whether the declarations-only form keeps it (if not: blanked, its lines kept).
PIECES = [
    ("import Foundation\n", True),
    ("var total = 0\n", True),
    ("total += 1\n", False),
    ('print("total",\n      total)\n', False),
    ("@available(*, deprecated)\nfunc old() -> Int { 1 }\n", True),
    ("for i in 0..<3 { total += i }\n", False),
    ("let doubled = [1, 2]\n    .map { $0 * 2 }\n", True),
    ("// a comment\n", True),
    ("#if os(Linux)\nstruct OnLinux {}\n#endif\n", True),
    ("extension Int { var twice: Int { self * 2 } }\n", True),
    ("_ = old()\n", False),
    ("try? run()\n", False),
    ('guard let five = Int("5") else { fatalError() }\n', False),
]


def test_statements_are_blanked_and_declarations_kept_line_for_line() -> None:
    cell = "".join(piece for piece, _ in PIECES)
    expected = "".join(piece if kept else "\n" * piece.count("\n") for piece, kept in PIECES)
    assert declarations_only(cell) == expected


def test_unicode_survives() -> None:
    assert declarations_only('let s = "ünï 😀"\nprint(s)') == 'let s = "ünï 😀"\n'


def test_a_cell_tree_sitter_cannot_parse_has_no_such_form() -> None:
    assert declarations_only("let broken = (1,") is None
