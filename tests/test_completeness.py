"""Test the is_complete classification of Swift cells."""

from __future__ import annotations

import time

import pytest

from swift_kernel.completeness import Completeness, check_completeness

COMPLETE = "complete"
INCOMPLETE = "incomplete"
INVALID = "invalid"

# (code, expected status); the id says which rule each case exercises.
CASES: list[tuple[str, str, str]] = [
    # Trivially complete input.
    ("empty", "", COMPLETE),
    ("whitespace only", "  \n\t\n  ", COMPLETE),
    ("simple let", "let x = 1", COMPLETE),
    ("call", 'print("hello")', COMPLETE),
    ("closed function", "func f() {\n    return\n}", COMPLETE),
    ("semicolon", "let x = 1;", COMPLETE),
    ("crlf line endings", "if x {\r\n    y()\r\n}\r\n", COMPLETE),
    ("cr line endings", "if x {\r    y()\r}", COMPLETE),
    ("unicode identifiers", 'let café = "é{"\nprint(café)', COMPLETE),
    # Open brackets.
    ("open brace func", "func f() {", INCOMPLETE),
    ("open brace if", "if x {", INCOMPLETE),
    ("open paren", "print(1,\n      2", INCOMPLETE),
    ("open square", "let a = [1, 2", INCOMPLETE),
    ("open closure in call", "xs.map({ x in", INCOMPLETE),
    ("open #if", "#if DEBUG\nprint(1)", INCOMPLETE),
    ("closed #if", "#if DEBUG\nprint(1)\n#else\nprint(2)\n#endif", COMPLETE),
    # Mismatched or unmatched closers.
    ("lone close brace", "}", INVALID),
    ("lone close paren after code", "let x = 1)", INVALID),
    ("mismatched paren square", "foo(]", INVALID),
    ("mismatched nested", "let a = [(1, 2]]", INVALID),
    ("closer before opener", "}\nfunc f() {", INVALID),
    ("stray #endif", "#endif", INVALID),
    ("stray #else", "#else\nprint(1)", INVALID),
    ("paren closing across #if", "foo(\n#if X\n)", INVALID),
    ("bad closer beats open comment", "}\n/* still open", INVALID),
    ("bad closer beats open multiline string", ')\nlet s = """', INVALID),
    # Brackets inside strings and comments do not count.
    ("brace in string", 'print("a{")', COMPLETE),
    ("paren in string", 'let s = "(((["', COMPLETE),
    ("brace in line comment", "let x = 1 // {", COMPLETE),
    ("brace in block comment", "let x = 1 /* { ( [ */", COMPLETE),
    ("close brace in string", 'print("}")', COMPLETE),
    # Escapes.
    ("escaped quote", 'let s = "a\\"b{"', COMPLETE),
    ("escaped backslash then quote", 'let s = "a\\\\"', COMPLETE),
    ("escaped quote unterminated", 'let s = "a\\"', INVALID),
    ("unicode escape braces", 'let s = "\\u{1F600}"', COMPLETE),
    # String interpolation.
    ("interpolation", 'print("\\(f(x))")', COMPLETE),
    ("interpolation nested string", 'print("\\(d["k(("]!) done")', COMPLETE),
    ("interpolation nested interpolation", 'print("a \\("b \\(c) d") e")', COMPLETE),
    ("interpolation closure", 'print("\\(xs.map { $0 + 1 })")', COMPLETE),
    ("interpolation deeply nested", 'print("\\(xs.map { f(g([$0])) }) ok")', COMPLETE),
    ("interpolation with comment", 'print("\\(x /* ) */ + 1)")', COMPLETE),
    ("interpolation starts multiline string", 'print("\\(f("""', INVALID),
    ("interpolation unclosed at end", 'print("\\(f(x)', INVALID),
    ("interpolation spans lines", 'print("\\(f(\nx))")', INVALID),
    ("interpolation mismatched", 'print("\\(x]")', INVALID),
    # Single-line strings cannot span lines.
    ("unterminated string at end", 'let s = "abc', INVALID),
    ("unterminated string mid cell", 'let s = "abc\nlet t = 1', INVALID),
    ("unterminated string in open call", 'print(\n"abc', INVALID),
    ("backslash at end of string line", 'let s = "abc\\\n"', INVALID),
    ("empty string", 'let s = ""', COMPLETE),
    # Multi-line strings.
    ("open multiline string", 'let s = """\nhello', INCOMPLETE),
    ("closed multiline string", 'let s = """\nhello {\n"""', COMPLETE),
    ("multiline quotes inside", 'let s = """\nsay "hi" and ""\n"""', COMPLETE),
    ("multiline escaped delimiter", 'let s = """\n\\"""\nstill open', INCOMPLETE),
    ("multiline interpolation spans lines", 'let s = """\n\\(f(\n1))\n"""', COMPLETE),
    ("multiline interpolation open", 'let s = """\n\\(f(', INCOMPLETE),
    # Raw strings.
    ("raw string", 'let s = #"a "quoted" \\d{"#', COMPLETE),
    ("raw string two hashes", 'let s = ##"a "# b"##', COMPLETE),
    ("raw string unterminated", 'let s = #"a "quoted"', INVALID),
    ("raw string interpolation", 'let s = #"\\#(f(x)) \\(not"#', COMPLETE),
    ("raw multiline open", 'let s = #"""\nabc """\n', INCOMPLETE),
    ("raw multiline closed", 'let s = #"""\nabc """\n"""#', COMPLETE),
    ("raw multiline is not raw single line", 'let s = #"""\n"#', INCOMPLETE),
    ("raw string closing hash then keyword", 'let s = #"a"# as String', COMPLETE),
    # Comments.
    ("ends in line comment", "let x = 1\n// done", COMPLETE),
    ("only a comment", "// just a comment", COMPLETE),
    ("operator then comment", "let x = 1 + // more\n", INCOMPLETE),
    ("comment hides operator", "let x = 1 // +", COMPLETE),
    ("comment lines after operator", "let x = 1 +\n// a\n  // b\n", INCOMPLETE),
    ("block comment after operator", "let x = 1 + /* more */", INCOMPLETE),
    ("unclosed block comment", "/* start", INCOMPLETE),
    ("nested block comment closed", "/* a /* b */ c */ let x = 1", COMPLETE),
    ("nested block comment open", "/* a /* b */ c", INCOMPLETE),
    ("quote in comment", '// say "hi\nlet x = 1', COMPLETE),
    ("comment in interpolation is not string", 'print("\\(x /* ) */ )")', COMPLETE),
    # Trailing operators and punctuation.
    ("trailing plus", "let x = 1 +", INCOMPLETE),
    ("trailing minus", "let x = 1 -", INCOMPLETE),
    ("trailing star", "let x = 2 *", INCOMPLETE),
    ("trailing slash", "let x = 2 /", INCOMPLETE),
    ("trailing percent", "let x = 7 %", INCOMPLETE),
    ("trailing assign", "let x =", INCOMPLETE),
    ("trailing equal", "x ==", INCOMPLETE),
    ("trailing not equal", "x !=", INCOMPLETE),
    ("trailing and", "a &&", INCOMPLETE),
    ("trailing or", "a ||", INCOMPLETE),
    ("trailing nil coalescing", "let y = x ??", INCOMPLETE),
    ("trailing less", "a <", INCOMPLETE),
    ("trailing greater", "a >", INCOMPLETE),
    ("trailing less equal", "a <=", INCOMPLETE),
    ("trailing greater equal", "a >=", INCOMPLETE),
    ("trailing bit or", "a |", INCOMPLETE),
    ("trailing bit and", "a &", INCOMPLETE),
    ("trailing xor", "a ^", INCOMPLETE),
    ("trailing arrow", "func f() ->", INCOMPLETE),
    ("trailing arrow touching", "func f()->", INCOMPLETE),
    ("trailing ternary", "let y = c ?", INCOMPLETE),
    ("trailing colon", "let y = c ? 1 :", INCOMPLETE),
    ("trailing dot", "let y = foo.", INCOMPLETE),
    ("trailing optional chain", "let y = foo?.", INCOMPLETE),
    ("trailing half open range", "let r = 1..<", INCOMPLETE),
    ("trailing comma", "let a = 1,", INCOMPLETE),
    ("trailing backslash", "let x = 1 \\", INCOMPLETE),
    ("operator with trailing blank lines", "let x = 1 +\n\n  ", INCOMPLETE),
    # Postfix and closing operators are not trailing operators.
    ("postfix bang", "let y = x!", COMPLETE),
    ("postfix question type", "var y: Int?", COMPLETE),
    ("double optional type", "var y: Int??", COMPLETE),
    ("generic close", "let a: Array<Int>", COMPLETE),
    ("nested generic close", "let a = Array<Array<Int>>()\nlet b: Set<Set<Int>>", COMPLETE),
    ("optional generic", "let a: Array<Int>?", COMPLETE),
    ("one-sided range", "let r = 1...", COMPLETE),
    ("key path", "let k = \\Point.x", COMPLETE),
    # Keywords that need an operand.
    ("trailing try", "let y = try", INCOMPLETE),
    ("trailing try bang", "let y = try!", INCOMPLETE),
    ("trailing as question", "let y = x as?", INCOMPLETE),
    ("trailing else", "if x { f() } else", INCOMPLETE),
    ("trailing for in", "for x in", INCOMPLETE),
    ("member named like keyword", "let y = x.is", COMPLETE),
    ("identifier ending in keyword", "let retry = 1\nretry", COMPLETE),
    # Kernel directives are ignored.
    ("directive only", "%install '.package(url: \"x\"' Foo", COMPLETE),
    ("indented directive", '   %include "foo.swift', COMPLETE),
    ("directive then open brace", "%enableCompletion\nfunc f() {", INCOMPLETE),
    ("directive after trailing operator", "let x = 1 +\n%some (directive", INCOMPLETE),
    ("percent operator mid line", "let r = 7 % 3", COMPLETE),
    ("directive inside multiline string", 'let s = """\n%timeout 5\n"""', COMPLETE),
    ("percent then space is code", "let r = 7\n  % ", INCOMPLETE),
    ("percent then digit is code", "let r = 7\n%3", COMPLETE),
]


@pytest.mark.parametrize(
    ("code", "expected"),
    [pytest.param(code, status, id=name) for name, code, status in CASES],
)
def test_status(code: str, expected: str) -> None:
    """Check that each table case gets the expected status."""
    assert check_completeness(code).status == expected


@pytest.mark.parametrize(
    ("code", "indent"),
    [
        pytest.param("func f() {", "    ", id="top-level brace"),
        pytest.param("if x {\n    if y {", "        ", id="nested brace"),
        pytest.param("if x {\n    let y = 1", "    ", id="inside body"),
        pytest.param("if x {\n    foo(\n", "        ", id="blank last line ignored"),
        pytest.param("foo(a,\n    b,", "    ", id="continuation keeps indent"),
        pytest.param("foo(bar: {", "    ", id="two brackets one level"),
        pytest.param("let x = 1 +", "", id="trailing operator"),
        pytest.param('  let s = """\n', "  ", id="multiline string"),
        pytest.param("\tif x {", "\t    ", id="tab indentation kept"),
        pytest.param("func f() {\n#if DEBUG", "", id="#if adds no level"),
        pytest.param("if x {\n    %magic\n", "    ", id="directive line ignored"),
    ],
)
def test_incomplete_indent(code: str, indent: str) -> None:
    """Check the suggested indentation for the next line."""
    assert check_completeness(code) == Completeness("incomplete", indent)


def test_complete_has_no_indent() -> None:
    """Check that non-incomplete answers carry an empty indent."""
    assert check_completeness("let x = 1") == Completeness("complete")
    assert check_completeness("}") == Completeness("invalid")


def test_result_is_frozen() -> None:
    """Check that results cannot be mutated."""
    result = check_completeness("")
    with pytest.raises(AttributeError):
        result.status = "invalid"  # type: ignore[misc]


_BLOCK = (
    "func f{n}(_ xs: [Int]) -> [String: Int] {{\n"
    "    // sum the (positive) values {{\n"
    "    let s = xs.filter {{ $0 > 0 }}.reduce(0, +)\n"
    '    print("total \\(s) of \\(xs.count) in \\"f{n}\\" {{", #"raw \\d+ "[x]""#)\n'
    "    /* nested /* comment */ ( */\n"
    '    let t = """\n'
    "        multi {{ line \\(s + 1)\n"
    '        """\n'
    '    return ["s": s, "n": xs.count]\n'
    "}}\n"
)
_MEGABYTE = 1 << 20
_HALF = _MEGABYTE // 2


def _big_code() -> str:
    """Build about one megabyte of balanced Swift source."""
    parts: list[str] = []
    size = 0
    n = 0
    while size < _MEGABYTE:
        block = _BLOCK.format(n=n)
        parts.append(block)
        size += len(block)
        n += 1
    return "".join(parts)


def test_megabyte_balanced_is_complete() -> None:
    """Check a megabyte of balanced code is complete."""
    code = _big_code()
    assert len(code) >= _MEGABYTE
    assert check_completeness(code) == Completeness("complete")


def test_megabyte_unbalanced_is_incomplete() -> None:
    """Check a megabyte of code with one missing closer is incomplete."""
    code = _big_code() + "func last() {\n    if x {\n        print(1)\n    }\n"
    assert check_completeness(code) == Completeness("incomplete", "    ")


def test_megabyte_extra_closer_is_invalid() -> None:
    """Check a megabyte of code with one extra closer is invalid."""
    code = _big_code() + "}\n"
    assert check_completeness(code).status == "invalid"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("(" * _MEGABYTE, INCOMPLETE, id="only openers"),
        pytest.param("(" * _HALF + ")" * _HALF, COMPLETE, id="deep nesting"),
        pytest.param("(" * _HALF + "]" + ")" * (_HALF - 1), INVALID, id="deep mismatch"),
        pytest.param("{[(" * (_MEGABYTE // 6) + ")]}" * (_MEGABYTE // 6), COMPLETE, id="deep mixed nesting"),
        pytest.param("/*" * _HALF, INCOMPLETE, id="deep block comments"),
        pytest.param('"' + "a" * _MEGABYTE, INVALID, id="huge unterminated string"),
        pytest.param("x" + " " * _MEGABYTE, COMPLETE, id="huge whitespace"),
        pytest.param("x " + "+" * _MEGABYTE, INCOMPLETE, id="huge operator"),
        pytest.param("#" * _MEGABYTE + '"' + '"#' * 1000, INVALID, id="raw hash runs"),
    ],
)
def test_megabyte_pathological(code: str, expected: str) -> None:
    """Check adversarial megabyte inputs are still classified."""
    assert check_completeness(code).status == expected


DEDENT_CASES = [
    # jupyter console offers 8 spaces after `print(1)`; the `}` typed there keeps them.
    ("closing brace typed at the offered indent", "func f() {\n    if x {\n        print(1)\n        }", "    "),
    ("closing brace already dedented", "func f() {\n    if x {\n        print(1)\n    }", "    "),
    ("} else { reopens one level", "func f() {\n    if x {\n        a\n        } else {", "        "),
    ("two closers, one opening line", "func f() {\n    foo(bar: {\n        x\n        })", "    "),
    ("brackets in comments ignored", "func f() {\n    if x { // {\n        /* } */ a\n        }", "    "),
    ("multi-line string", 'class A {\n    func f() {\n        let t = """\n        {\n        """\n        }', "    "),
    ("continuation after a closed call", "foo(a,\n    b) +", ""),
]


@pytest.mark.parametrize(("code", "indent"), [pytest.param(c, i, id=name) for name, c, i in DEDENT_CASES])
def test_indent_dedents_after_a_line_that_closes_a_brace(code: str, indent: str) -> None:
    """The line after one that closes a bracket of an earlier line goes back to that bracket's line."""
    assert check_completeness(code) == Completeness("incomplete", indent)


def test_dedent_on_a_megabyte_is_fast() -> None:
    """The second pass a closing line needs stays linear and quick."""
    code = _big_code() + "func last() {\n    if x {\n        print(1)\n        }\n"
    started = time.perf_counter()
    assert check_completeness(code) == Completeness("incomplete", "    ")
    assert time.perf_counter() - started < 1.0
