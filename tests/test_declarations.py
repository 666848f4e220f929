"""An earlier cell as declarations only (``declarations``), with tree-sitter-swift's real parse."""

from __future__ import annotations

from swift_kernel.declarations import declarations_only


def test_statements_are_blanked_and_declarations_kept_line_for_line() -> None:
    cell = (
        "import Foundation\n"
        "var total = 0\n"
        "total += 1\n"
        'print("total",\n      total)\n'
        "@available(*, deprecated)\n"
        "func old() -> Int { 1 }\n"
        "for i in 0..<3 { total += i }\n"
        "let doubled = [1, 2]\n"
        "    .map { $0 * 2 }\n"
        "// a comment\n"
        "#if os(Linux)\n"
        "struct OnLinux {}\n"
        "#endif\n"
        "extension Int { var twice: Int { self * 2 } }\n"
        "_ = old()\n"
        "try? run()\n"
        'guard let five = Int("5") else { fatalError() }\n'
    )
    expected = (
        "import Foundation\n"
        "var total = 0\n"
        "\n"
        "\n\n"
        "@available(*, deprecated)\n"
        "func old() -> Int { 1 }\n"
        "\n"
        "let doubled = [1, 2]\n"
        "    .map { $0 * 2 }\n"
        "// a comment\n"
        "#if os(Linux)\n"
        "struct OnLinux {}\n"
        "#endif\n"
        "extension Int { var twice: Int { self * 2 } }\n"
        "\n"
        "\n"
        "\n"
    )
    assert declarations_only(cell) == expected


def test_unicode_survives() -> None:
    assert declarations_only('let s = "ünï 😀"\nprint(s)') == 'let s = "ünï 😀"\n'


def test_a_cell_tree_sitter_cannot_parse_has_no_such_form() -> None:
    assert declarations_only("let broken = (1,") is None
