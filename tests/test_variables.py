"""The variable explorer without a debugger, through the real kernel: %who, %whos, user_expressions, inspection."""

from __future__ import annotations

import itertools
import queue
import time
from collections.abc import Callable
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from .conftest import KernelPair
from .utils import collect, count_of, execute, ok, single_error

pytestmark = pytest.mark.lldb

DECLARATIONS = [
    'var count = 1\nlet greeting = "hello"',
    "var numbers = [1, 2, 3]\nstruct Point { var x: Int; var y: Int }\nlet origin = Point(x: 3, y: 4)",
    'final class Box { var label = "lid" }\nlet box = Box()\nvar count = "now a string"',
]
# name -> (type, value) as %whos shows them after DECLARATIONS; `count` has its newest declaration's.
EXPECTED = {
    "box": ("Box", 'Box(label: "lid")'),
    "count": ("String", '"now a string"'),
    "greeting": ("String", '"hello"'),
    "numbers": ("[Int]", "[1, 2, 3]"),
    "origin": ("Point", "Point(x: 3, y: 4)"),
}
_seq = itertools.count(1)


def declare(kc: BlockingKernelClient) -> None:
    for code in DECLARATIONS:
        ok(execute(kc, code))


def debug_request(kc: BlockingKernelClient, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send a DAP request on the control channel and return the debug_reply's content."""
    content: dict[str, Any] = {"type": "request", "seq": next(_seq), "command": command}
    if arguments is not None:
        content["arguments"] = arguments
    message = kc.session.msg("debug_request", content)
    kc.control_channel.send(message)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            reply = kc.control_channel.get_msg(timeout=1)
        except queue.Empty:
            continue
        if reply["parent_header"].get("msg_id") == message["header"]["msg_id"]:
            assert reply["msg_type"] == "debug_reply"
            return dict(reply["content"])
    raise TimeoutError(f"no debug_reply to {command}")


def test_who_and_whos_on_an_empty_notebook_say_so(fresh_kernel: Callable[..., KernelPair]) -> None:
    _, kc = fresh_kernel()
    assert ok(execute(kc, "%who")).stream() == "No variables.\n"
    assert ok(execute(kc, "%whos")).stream() == "No variables.\n"


def test_who_lists_the_declared_names_sorted_once_each(fresh_kernel: Callable[..., KernelPair]) -> None:
    _, kc = fresh_kernel()
    declare(kc)
    execution = ok(execute(kc, "%who"))
    assert execution.stream() == "\t".join(sorted(EXPECTED)) + "\n"
    assert execution.of_type("display_data") == []


def test_whos_shows_name_type_and_newest_value(fresh_kernel: Callable[..., KernelPair]) -> None:
    _, kc = fresh_kernel()
    declare(kc)
    execution = ok(execute(kc, "%whos"))
    shown = execution.of_type("display_data")
    assert len(shown) == 1
    data = shown[0]["content"]["data"]
    assert set(data) == {"text/html", "text/plain"}
    lines = data["text/plain"].split("\n")
    assert lines[0].split() == ["Name", "Type", "Value"]
    rows = [line.split(None, 2) for line in lines[2:]]
    assert rows == [[name, kind, value] for name, (kind, value) in EXPECTED.items()]
    assert "<th>Name</th><th>Type</th><th>Value</th>" in data["text/html"]
    assert "<td>Point(x: 3, y: 4)</td>" in data["text/html"]
    assert "__swiftKernel" not in data["text/plain"]


def test_whos_cuts_a_long_value(fresh_kernel: Callable[..., KernelPair]) -> None:
    _, kc = fresh_kernel()
    ok(execute(kc, "var many = Array(0..<10_000)"))
    text = ok(execute(kc, "%whos")).of_type("display_data")[0]["content"]["data"]["text/plain"]
    value = text.split("\n")[2].split(None, 2)[2]
    assert value.startswith("[0, 1, 2, 3,")
    assert value.endswith(", …]")
    assert len(value) <= 200
    ok(execute(kc, 'var text = String(repeating: "x", count: 1000)'))
    text = ok(execute(kc, "%whos")).of_type("display_data")[0]["content"]["data"]["text/plain"]
    assert text.split("\n")[3].split(None, 2)[2] == '"' + "x" * 198 + "…"


@pytest.mark.parametrize("line", ["%who x", "%whos --all"])
def test_who_and_whos_refuse_arguments(kc: BlockingKernelClient, line: str) -> None:
    error = single_error(execute(kc, line))
    assert error["ename"] == "DirectiveError"
    assert "takes no arguments" in str(error["evalue"])


def test_user_expressions_give_values_and_errors_without_side_effects(fresh_kernel: Callable[..., KernelPair]) -> None:
    _, kc = fresh_kernel()
    declare(kc)
    before = count_of(ok(execute(kc, "origin.x")))
    expressions = {
        "sum": "origin.x + origin.y",
        "text": "greeting",
        "point": "origin",
        "void": 'print("not in the cell")',
        "missing": "nosuch + 1",
        "declares": "struct Later {}; let later = 5; return later",
        "declares_then_fails": "struct Gone { var v = 1 }\nlet gone = Gone()\nreturn gone.missing",
    }
    execution = ok(execute(kc, "count", user_expressions=expressions))
    results = execution.content["user_expressions"]
    assert results["sum"] == {"status": "ok", "data": {"text/plain": "7"}, "metadata": {}}
    assert results["text"]["data"] == {"text/plain": '"hello"'}
    assert results["point"]["data"] == {"text/plain": "Point(x: 3, y: 4)"}
    assert results["void"] == {"status": "ok", "data": {"text/plain": "()"}, "metadata": {}}
    assert results["declares"]["data"] == {"text/plain": "5"}
    missing = results["missing"]
    assert missing["status"] == "error"
    assert missing["ename"] == "CompileError"
    assert "cannot find 'nosuch' in scope" in missing["evalue"]
    assert missing["traceback"]
    # No output in the cell but its own, no new In[] number.
    assert execution.stream() == ""
    assert execution.result == '"now a string"'
    assert count_of(execution) == before + 1
    assert count_of(ok(execute(kc, "1"))) == before + 2
    # Nothing the expressions declared, or failed to, is left behind: the names are free.
    assert results["declares_then_fails"]["ename"] == "CompileError"
    assert "has no member 'missing'" in results["declares_then_fails"]["evalue"]
    ok(execute(kc, "struct Later { var v = 1 }\nlet later = Later()\nlet nosuch = 2"))
    ok(execute(kc, 'struct Gone { var w = "w" }\nlet gone = Gone()'))
    assert execute(kc, "later.v + nosuch").result == "3"
    assert execute(kc, "gone.w").result == '"w"'
    names = ok(execute(kc, "%who")).stream().split()
    assert {"later", "nosuch", "gone"} <= set(names)


def test_an_interrupt_stops_a_user_expression_and_keeps_the_state(
    fresh_kernel: Callable[..., KernelPair],
) -> None:
    km, kc = fresh_kernel()
    ok(execute(kc, "var before = 41"))
    msg_id = kc.execute("before += 1", user_expressions={"spin": "while true {}", "next": "before"})
    time.sleep(2.0)
    km.interrupt_kernel()
    execution = ok(collect(kc, msg_id))
    results = execution.content["user_expressions"]
    assert results["spin"]["ename"] == "KeyboardInterrupt"
    # The interrupt ends the request's expressions, as it would end a cell.
    assert results["next"]["ename"] == "KeyboardInterrupt"
    assert execute(kc, "before").result == "42"


def test_user_expressions_are_skipped_after_a_failed_cell(kc: BlockingKernelClient) -> None:
    execution = execute(kc, "undefinedName", user_expressions={"one": "1"})
    assert execution.status == "error"
    assert execution.content.get("user_expressions", {}) == {}


def test_user_expressions_of_an_empty_cell_and_a_trap(kc: BlockingKernelClient) -> None:
    ok(execute(kc, "var kept = [1, 2]"))
    results = ok(execute(kc, "", user_expressions={"trap": "kept[5]", "after": "kept.count"})).content[
        "user_expressions"
    ]
    assert results["trap"]["status"] == "error"
    assert "Index out of range" in results["trap"]["evalue"]
    assert results["after"]["data"] == {"text/plain": "2"}
    assert execute(kc, "kept").result == "[1, 2]"


def test_inspect_variables_lists_the_globals_while_idle(fresh_kernel: Callable[..., KernelPair]) -> None:
    _, kc = fresh_kernel()
    empty = debug_request(kc, "inspectVariables")
    assert empty["success"] is True and empty["body"] == {"variables": []}
    declare(kc)
    reply = debug_request(kc, "inspectVariables")
    assert reply["type"] == "response" and reply["command"] == "inspectVariables" and reply["success"] is True
    assert reply["request_seq"] == reply["seq"]
    variables = {v["name"]: v for v in reply["body"]["variables"]}
    assert set(variables) == set(EXPECTED)
    for name, (kind, value) in EXPECTED.items():
        # The type only where the value is the type: JupyterLab's tree shows an unknown type in place of the value.
        typed = {"type": kind} if value == kind else {}
        assert variables[name] == {"name": name, "variablesReference": 0, "value": value, "evaluateName": name, **typed}


def test_rich_inspect_variables_gives_the_values_bundle(fresh_kernel: Callable[..., KernelPair]) -> None:
    _, kc = fresh_kernel()
    declare(kc)
    reply = debug_request(kc, "richInspectVariables", {"variableName": "origin"})
    assert reply["success"] is True, reply
    assert reply["body"] == {"data": {"text/plain": "Point(x: 3, y: 4)"}, "metadata": {}}
    page = (
        "struct Page: JupyterDisplayable {\n"
        '  func jupyterMimeBundle() -> [String: String] { ["text/html": "<b>hi</b>"] }\n'
        "}"
    )
    ok(execute(kc, f"{page}\nlet page = Page()"))
    rich = debug_request(kc, "richInspectVariables", {"variableName": "page"})
    assert rich["body"]["data"]["text/html"] == "<b>hi</b>"
    missing = debug_request(kc, "richInspectVariables", {"variableName": "nosuch"})
    assert missing["success"] is False and missing["body"] == {"data": {}, "metadata": {}}
    code = debug_request(kc, "richInspectVariables", {"variableName": "origin; exit(0)"})
    assert code["success"] is False
    assert execute(kc, "origin.x").result == "3"


def test_inspect_variables_while_a_cell_runs_answers_at_once(kc: BlockingKernelClient) -> None:
    msg_id = kc.execute("sleep(3)")
    time.sleep(1.0)
    started = time.monotonic()
    reply = debug_request(kc, "inspectVariables")
    assert time.monotonic() - started < 2.0
    assert reply["success"] is False
    assert "a cell is running" in reply["message"]
    assert collect(kc, msg_id).status == "ok"
