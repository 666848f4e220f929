"""Test the rewrite that gives conformance extensions public witnesses (issue 15, L2); pure, no LLDB."""

from __future__ import annotations

import pytest

from swift_kernel.witnesses import publish_witnesses

pytestmark = pytest.mark.timeout(10)


def test_members_of_a_conformance_extension_become_public() -> None:
    code = 'extension Int: Describable { func describe() -> String { "int \\(self)" } }'
    assert publish_witnesses(code) == code.replace("{ func", "{ public func")


def test_every_kind_of_member_and_its_modifiers() -> None:
    code = (
        "extension S: P {\n"
        '    var name: String { "s" }\n'
        "    private func helper() {}\n"
        "    static func make() -> S { S() }\n"
        "    class func made() {}\n"
        "    @discardableResult mutating func bump() -> Int { let x = 1; return x }\n"
        "    init?(x: Int) { nil }\n"
        "    subscript(i: Int) -> Int { i }\n"
        "}"
    )
    assert publish_witnesses(code) == (
        "extension S: P {\n"
        '    public var name: String { "s" }\n'
        "    private func helper() {}\n"
        "    static public func make() -> S { S() }\n"
        "    public class func made() {}\n"
        "    @discardableResult mutating public func bump() -> Int { let x = 1; return x }\n"
        "    public init?(x: Int) { nil }\n"
        "    public subscript(i: Int) -> Int { i }\n"
        "}"
    )


@pytest.mark.parametrize(
    "code",
    [
        "extension Int { func f() {} }",  # no conformance: LLDB makes it public itself
        "struct S {}\nextension S: P { func f() {} }",  # the cell's own type is not public yet
        "protocol Q {}\nextension Int: Q { func f() {} }",
        'let s = "extension X: Y { func f() }"',  # text, not code
        "// extension X: Y { func f() }",
    ],
)
def test_cells_left_as_written(code: str) -> None:
    assert publish_witnesses(code) == code


def test_a_where_clause_and_code_after() -> None:
    code = 'extension Array: P where Element == Int { func f() -> String { "func var" } }\nprint(1)'
    assert publish_witnesses(code) == code.replace("{ func", "{ public func")
