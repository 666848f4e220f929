"""The variable explorer's value texts from LLDB's formatters, and the %whos table; pure, with SBValue stand-ins."""

from __future__ import annotations

import pytest

from swift_kernel import dap
from swift_kernel.display import variables_bundle
from swift_kernel.lldb_session import value_text

from .utils import FakeValue

pytestmark = pytest.mark.timeout(10)


def leaf(name: str, value: str, type_name: str = "Int") -> FakeValue:
    return FakeValue(name, type_name, value=value)


def string(name: str, text: str) -> FakeValue:
    # LLDB's String has one internal child (_guts) and its summary.
    return FakeValue(name, "String", summary=f'"{text}"', children=[FakeValue("_guts", "_StringGuts")])


def array(name: str, *elements: FakeValue, type_name: str = "[Int]") -> FakeValue:
    count = len(elements)
    return FakeValue(name, type_name, summary=f"{count} value{'s' * (count != 1)}", children=list(elements))


def test_leaves_are_lldbs_values_and_summaries() -> None:
    assert value_text(leaf("count", "42")) == "42"
    assert value_text(string("greeting", "hi")) == '"hi"'
    assert value_text(FakeValue("r", "Range<Int>", summary="1..<5", children=[leaf("lowerBound", "1")])) == "1..<5"
    assert value_text(FakeValue("o", "Int?", value="nil", summary="nil")) == "nil"


def test_collections_are_listed_like_swift() -> None:
    numbers = array("numbers", leaf("[0]", "1"), leaf("[1]", "2"))
    assert value_text(numbers) == "[1, 2]"
    assert value_text(array("none")) == "[]"
    pair = FakeValue("[0]", "(key: String, value: Int)", children=[string("key", "k"), leaf("value", "1")])
    table = FakeValue("d", "[String : Int]", summary="1 key/value pair", children=[pair])
    assert value_text(table) == '["k": 1]'
    assert value_text(FakeValue("e", "[Int : Int]", summary="0 key/value pairs")) == "[:]"
    assert value_text(array("nested", numbers, type_name="[[Int]]")) == "[[1, 2]]"


def test_structs_tuples_and_classes_show_their_stored_properties() -> None:
    point = FakeValue("origin", "Point", children=[leaf("x", "3"), leaf("y", "4")])
    assert value_text(point) == "Point(x: 3, y: 4)"
    assert value_text(FakeValue("t", "(Int, String)", children=[leaf("0", "1"), string("1", "x")])) == '(1, "x")'
    labeled = FakeValue("t", "(a: Int, b: String)", children=[leaf("a", "1"), string("b", "x")])
    assert value_text(labeled) == '(a: 1, b: "x")'
    # A subclass instance: LLDB's first child is the base class, named by its type.
    base = FakeValue("__lldb_expr_8.C", "C", children=[leaf("v", "5")])
    instance = FakeValue("c", "D", value="0x0000555555574720", children=[base, string("w", "w")])
    assert value_text(instance) == 'D(v: 5, w: "w")'
    # A struct in an optional: LLDB's summary is "(x = 1)"; the fields read better.
    optional = FakeValue("o", "Point?", summary="(x = 1)", children=[leaf("x", "1")])
    assert value_text(optional) == "Point(x: 1)"


def test_a_value_lldb_cannot_read_is_shown_by_its_type_not_lldbs_error() -> None:
    unreadable = FakeValue("e", "R", value="Could not find reflection metadata for type\nno TypeInfo for nominal type")
    assert value_text(unreadable) == "<R>"


def test_long_values_are_cut_with_an_ellipsis() -> None:
    many = array("many", *(leaf(f"[{i}]", str(i)) for i in range(60)))
    text = value_text(many, limit=40)
    assert len(text) == 40
    assert text.startswith("[0, 1, 2, 3") and text.endswith("…")
    assert value_text(string("long", "x" * 500)).endswith("x…")
    assert len(value_text(string("long", "x" * 500))) == 200


def test_type_names_lose_lldbs_module_names() -> None:
    assert dap.type_name(FakeValue(type="__lldb_expr_12.Point")) == "Point"
    assert dap.type_name(FakeValue(type="[__lldb_expr_3.P]")) == "[P]"


def test_whos_table_has_a_row_per_variable_in_html_and_text() -> None:
    bundle = variables_bundle([("count", "Int", "1"), ("tag", "String", '"<b>"')])
    assert bundle["text/plain"].split("\n") == [
        "Name   Type    Value",
        "-----  ------  -----",
        "count  Int     1",
        'tag    String  "<b>"',
    ]
    assert "<td>&quot;&lt;b&gt;&quot;</td>" in bundle["text/html"]


def test_elements_of_mixed_type_keep_their_own_texts() -> None:
    flag = FakeValue("[1]", "Bool", value="1", summary="true")
    assert value_text(array("mixed", leaf("[0]", "1"), flag, type_name="[Any]")) == "[1, true]"
    assert value_text(array("flags", flag, flag, type_name="[Bool]")) == "[true, true]"
