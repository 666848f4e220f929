"""The Debug Adapter Protocol shapes (``dap.py``), with stand-ins for LLDB's values."""

from __future__ import annotations

import pytest

from swift_kernel import dap

from .utils import FakeValue


def test_a_struct_is_named_by_its_type_and_expands_to_its_fields() -> None:
    references = dap.References()
    point = FakeValue(
        "p", "__lldb_expr_12.Point", children=[FakeValue("x", "Swift.Int", "3"), FakeValue("y", "Swift.Int", "4")]
    )
    shown = dap.variable("p", point, references, evaluate_name="p")
    assert shown == {
        "name": "p",
        "value": "Point",
        "type": "Point",
        "variablesReference": 1,
        "evaluateName": "p",
        "namedVariables": 2,
    }
    assert references.get(1) is point
    assert [item["value"] for item in dap.children(point, references)] == ["3", "4"]


def test_a_value_that_says_more_than_its_type_goes_without_it() -> None:
    # JupyterLab's tree shows the type of a variable whose type it does not know, not its value.
    shown = dap.variable("n", FakeValue("n", "Swift.Int", "10"), dap.References())
    assert shown == {"name": "n", "value": "10", "variablesReference": 0}


def test_arrays_page_by_index() -> None:
    references = dap.References()
    items = FakeValue(
        "a",
        "Swift.Array<Swift.Int>",
        summary="5 values",
        children=[FakeValue(f"[{i}]", "Swift.Int", str(i)) for i in range(5)],
    )
    shown = dap.variable("a", items, references)
    assert shown["indexedVariables"] == 5 and shown["value"] == "5 values"
    assert [item["name"] for item in dap.children(items, references, start=3, count=10)] == ["[3]", "[4]"]
    assert len(dap.children(items, references, start=1, count=2)) == 2


def test_children_without_a_count_stop_at_the_cap() -> None:
    references = dap.References()
    many = FakeValue("m", "Swift.Array<Swift.Int>", children=[FakeValue("", "Swift.Int", "0")] * (dap.MAX_CHILDREN + 5))
    found = dap.children(many, references)
    assert len(found) == dap.MAX_CHILDREN
    assert found[0]["name"] == "[0]"


def test_lldb_and_kernel_names_are_hidden() -> None:
    references = dap.References()
    pairs = [
        ("$__lldb_result", FakeValue("", "Swift.Int", "1")),
        ("__swiftKernelFlag", FakeValue("", "Swift.Int", "0")),
        ("kept", FakeValue("kept", "Swift.Int", "2")),
    ]
    assert [item["name"] for item in dap.named(pairs, references)] == ["kept"]


def test_references_are_renewed_at_each_stop() -> None:
    references = dap.References()
    number = references.add(("globals", None))
    references.clear()
    with pytest.raises(dap.DebugError, match="renewed at each stop"):
        references.get(number)
    with pytest.raises(dap.DebugError):
        references.get(0)


def test_responses_carry_the_request_they_answer() -> None:
    request = {"seq": 7, "command": "threads"}
    assert dap.response(request, {"threads": []}) == {
        "type": "response",
        "seq": 7,
        "request_seq": 7,
        "command": "threads",
        "success": True,
        "body": {"threads": []},
    }
    failed = dap.response(request, error="no")
    assert failed["success"] is False and failed["message"] == "no"


def test_function_names_lose_the_cell_module() -> None:
    assert dap.function_name("__lldb_expr_4.total(Swift.Int) -> Swift.Int") == "total(Swift.Int) -> Swift.Int"
