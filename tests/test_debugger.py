"""JupyterLab's debugger protocol against the real kernel: debug_request on control, debug_event on iopub."""

from __future__ import annotations

import json
import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ipykernel.compiler import murmur2_x86
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from .conftest import KernelPair
from .utils import OTHER_THREAD, TIMEOUT, Execution, collect, execute, flush_channels, ok, single_error, value

pytestmark = pytest.mark.lldb

FUNCTIONS = """\
struct Point { var x: Int; var tags: [String] }
final class Box { var items = [1, 2, 3] }
func total(_ n: Int) -> Int {
  var sum = 0
  for i in 0..<n {
    sum += i
  }
  return sum
}
func pick(_ k: Int) -> Int {
  let numbers = [10, 20]
  return numbers[k]
}
enum Failure: Error { case bad(Int) }
func fail(_ code: Int) throws -> Int {
  throw Failure.bad(code)
}
"""


class Debugger:
    """A debugger frontend as JupyterLab is one: DAP requests on control, events from iopub."""

    def __init__(self, kc: BlockingKernelClient) -> None:
        self.kc = kc
        self.seq = 0
        # Iopub messages that were not debug events, kept for the cell they belong to.
        self.other: list[dict[str, Any]] = []

    def request(self, command: str, **arguments: Any) -> dict[str, Any]:
        """Send one request and return the DAP response (the debug_reply's content)."""
        self.seq += 1
        content = {"type": "request", "seq": self.seq, "command": command, "arguments": arguments}
        message = self.kc.session.msg("debug_request", content)
        self.kc.control_channel.send(message)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            reply = self.kc.control_channel.get_msg(timeout=TIMEOUT)
            if reply["parent_header"].get("msg_id") == message["header"]["msg_id"]:
                assert reply["msg_type"] == "debug_reply"
                answer: dict[str, Any] = reply["content"]
                assert answer["command"] == command and answer["request_seq"] == self.seq, answer
                return answer
        raise TimeoutError(f"no debug_reply to {command}")

    def body(self, command: str, **arguments: Any) -> dict[str, Any]:
        """Send a request that must succeed; return its body."""
        answer = self.request(command, **arguments)
        assert answer["success"], answer
        return dict(answer["body"])

    def event(self, name: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Wait for the next debug_event called ``name``; return its body."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            if message["msg_type"] == "debug_event" and message["content"]["event"] == name:
                return dict(message["content"]["body"])
            if message["msg_type"] != "debug_event":
                self.other.append(message)
        raise TimeoutError(f"no {name} debug_event within {timeout} s")

    def stopped(self, reason: str) -> int:
        """Wait for a stop of ``reason``; return the stopped thread."""
        body = self.event("stopped")
        assert body["reason"] == reason, body
        assert body["allThreadsStopped"] is True
        return int(body["threadId"])

    def frames(self, thread: int) -> list[dict[str, Any]]:
        return list(self.body("stackTrace", threadId=thread)["stackFrames"])

    def scope(self, frame: int, name: str) -> int:
        scopes = {scope["name"]: scope["variablesReference"] for scope in self.body("scopes", frameId=frame)["scopes"]}
        return int(scopes[name])

    def variables(self, reference: int, **paging: int) -> dict[str, dict[str, Any]]:
        found = self.body("variables", variablesReference=reference, **paging)["variables"]
        return {item["name"]: item for item in found}

    def finish(self, msg_id: str, thread: int) -> Execution:
        """Continue a stopped cell and return its execution (reply and output)."""
        assert self.body("continue", threadId=thread) == {"allThreadsContinued": True}
        execution = collect(self.kc, msg_id)
        execution.messages[:0] = [m for m in self.other if m["parent_header"].get("msg_id") == msg_id]
        self.other.clear()
        return execution

    def cell_file(self, code: str) -> str:
        """Name the file of a cell as JupyterLab does, from debugInfo (and check dumpCell agrees)."""
        info = self.body("debugInfo")
        name = f"{info['tmpFilePrefix']}{murmur2_x86(code, info['hashSeed'])}{info['tmpFileSuffix']}"
        assert self.body("dumpCell", code=code) == {"sourcePath": name}
        return name


@pytest.fixture(scope="module")
def debugging(kernel: KernelPair) -> Iterator[Debugger]:
    """The module's kernel with the debugger started as JupyterLab starts it, and the functions declared."""
    kc = kernel[1]
    flush_channels(kc)
    debugger = Debugger(kc)
    assert debugger.body("debugInfo")["isStarted"] is False
    capabilities = debugger.body("initialize", clientID="jupyterlab", adapterID="swift", linesStartAt1=True)
    assert capabilities["supportsConfigurationDoneRequest"] is True
    assert {item["filter"] for item in capabilities["exceptionBreakpointFilters"]} == {"swift-trap", "swift-throw"}
    debugger.body("attach")
    debugger.body("configurationDone")
    assert debugger.body("debugInfo")["isStarted"] is True
    ok(execute(kc, FUNCTIONS))
    debugger.functions_file = debugger.cell_file(FUNCTIONS)  # type: ignore[attr-defined]
    yield debugger
    debugger.body("disconnect", restart=False, terminateDebuggee=False)


@pytest.fixture
def debugger(debugging: Debugger) -> Iterator[Debugger]:
    flush_channels(debugging.kc)
    debugging.other.clear()
    yield debugging
    # No breakpoint of one test stops another.
    for source in debugging.body("debugInfo")["breakpoints"]:
        debugging.body("setBreakpoints", source={"path": source["source"]}, breakpoints=[])
    debugging.body("setExceptionBreakpoints", filters=["swift-trap"])


def test_the_kernel_offers_the_debugger(kernel: KernelPair) -> None:
    kc = kernel[1]
    kc.kernel_info()
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert "debugger" in reply["content"]["supported_features"]
    spec = KernelSpecManager().get_kernel_spec("swift")
    assert spec.metadata["debugger"] is True


def test_debug_info_names_cell_files_and_dump_cell_writes_them(debugger: Debugger) -> None:
    info = debugger.body("debugInfo")
    assert info["hashMethod"] == "Murmur2"
    assert info["tmpFileSuffix"] == ".swift"
    code = 'let dumped = "é"\n'
    path = debugger.cell_file(code)
    assert Path(path).read_text(encoding="utf-8") == code
    assert debugger.body("source", source={"path": path}) == {"content": code}
    outside = debugger.request("source", source={"path": "/etc/passwd"})
    assert outside["success"] is False and "no source" in outside["message"]


def test_a_breakpoint_set_before_its_cell_ran_stops_it_and_shows_its_globals(debugger: Debugger) -> None:
    code = (
        'var seen = 5\nlet spot = Point(x: 3, tags: ["a", "b", "c"])\nseen += spot.x\nprint("after", seen)\n'
        "let maybe: Int? = 4\nlet box = Box()\nseen += 0\n"
    )
    path = debugger.cell_file(code)
    answer = debugger.body("setBreakpoints", source={"path": path}, breakpoints=[{"line": 3}])
    assert [(item["line"], item["verified"]) for item in answer["breakpoints"]] == [(3, True)]
    assert debugger.body("debugInfo")["breakpoints"] == [{"source": path, "breakpoints": [{"line": 3}]}]
    msg_id = debugger.kc.execute(code)
    thread = debugger.stopped("breakpoint")
    assert debugger.body("threads")["threads"][0]["id"] == thread
    assert thread in debugger.body("debugInfo")["stoppedThreads"]
    top = debugger.frames(thread)[0]
    assert (top["line"], top["source"]["path"]) == (3, path)
    assert top["source"]["name"].startswith("<Cell ")
    names = debugger.variables(debugger.scope(top["id"], "Globals"))
    # A value JupyterLab's tree shows in place of its type (it shows the type of types it does not know).
    assert names["seen"]["value"] == "5" and "type" not in names["seen"]
    spot = names["spot"]
    assert spot["type"] == "Point" and spot["variablesReference"] > 0
    fields = debugger.variables(spot["variablesReference"])
    assert fields["x"]["value"] == "3"
    tags = fields["tags"]
    assert tags["indexedVariables"] == 3
    page = debugger.body("variables", variablesReference=tags["variablesReference"], start=1, count=2)["variables"]
    assert [item["value"] for item in page] == ['"b"', '"c"']
    # The console reads a global of a type declared in a cell (LLDB's frame evaluation alone cannot).
    evaluated = debugger.body("evaluate", expression="spot.x + spot.tags.count", frameId=top["id"], context="repl")
    assert evaluated["result"] == "6"
    # A class instance and an optional, further on in the cell.
    debugger.body("setBreakpoints", source={"path": path}, breakpoints=[{"line": 7}])
    debugger.body("continue", threadId=thread)
    thread = debugger.stopped("breakpoint")
    top = debugger.frames(thread)[0]
    assert top["line"] == 7
    names = debugger.variables(debugger.scope(top["id"], "Globals"))
    assert names["maybe"]["value"] == "4"
    box = debugger.variables(names["box"]["variablesReference"])
    assert box["items"]["value"] == "3 values"
    execution = ok(debugger.finish(msg_id, thread))
    assert execution.stream() == "after 8\n"
    assert value(debugger.kc, "seen") == "8"


def test_a_function_from_an_earlier_cell_stops_and_steps(debugger: Debugger) -> None:
    path = debugger.functions_file  # type: ignore[attr-defined]
    debugger.body("setBreakpoints", source={"path": path}, breakpoints=[{"line": 6}])
    code = "let summed = total(4)\nprint(summed)\n"
    msg_id = debugger.kc.execute(code)
    thread = debugger.stopped("breakpoint")
    frames = debugger.frames(thread)
    assert [(frame["name"], frame["line"]) for frame in frames[:2]] == [("total(_:)", 6), ("<cell>", 1)]
    assert frames[0]["source"]["path"] == path
    local = debugger.variables(debugger.scope(frames[0]["id"], "Locals"))
    assert (local["n"]["value"], local["sum"]["value"], local["i"]["value"]) == ("4", "0", "0")
    evaluated = debugger.body("evaluate", expression="n * 10 + i", frameId=frames[0]["id"], context="repl")
    assert (evaluated["result"], evaluated["type"]) == ("40", "Int")
    failed = debugger.request("evaluate", expression="no_such_name", frameId=frames[0]["id"], context="repl")
    assert failed["success"] is False and "no_such_name" in failed["message"]
    # Off the breakpoint: a step moves to the next line, a step out returns to the cell.
    debugger.body("setBreakpoints", source={"path": path}, breakpoints=[])
    debugger.body("next", threadId=thread)
    assert debugger.event("continued")["threadId"] == thread
    debugger.stopped("step")
    stepped = debugger.frames(thread)[0]
    assert stepped["name"] == "total(_:)" and stepped["line"] in (5, 7), stepped  # the loop's next turn
    debugger.body("stepOut", threadId=thread)
    debugger.stopped("step")
    assert debugger.frames(thread)[0]["name"] == "<cell>"
    execution = ok(debugger.finish(msg_id, thread))
    assert execution.stream() == "6\n"


def test_step_in_enters_a_function_of_an_earlier_cell(debugger: Debugger) -> None:
    code = "var stepped = 1\nstepped = total(3)\nstepped += 1\n"
    path = debugger.cell_file(code)
    debugger.body("setBreakpoints", source={"path": path}, breakpoints=[{"line": 2}])
    msg_id = debugger.kc.execute(code)
    thread = debugger.stopped("breakpoint")
    debugger.body("stepIn", threadId=thread)
    debugger.stopped("step")
    assert debugger.frames(thread)[0]["name"] == "total(_:)"
    ok(debugger.finish(msg_id, thread))
    assert value(debugger.kc, "stepped") == "4"


@pytest.mark.parametrize("load", ["quiet", "under CPU load"])
def test_pause_stops_a_running_loop_where_it_is_and_continue_resumes_it(
    debugger: Debugger, load: str, request: pytest.FixtureRequest
) -> None:
    if load != "quiet":
        request.getfixturevalue("cpu_load")
    ok(execute(debugger.kc, "var spins = 0"))
    msg_id = debugger.kc.execute("while spins >= 0 { spins &+= 1 }")
    time.sleep(0.5)
    assert debugger.body("pause", threadId=1) == {}
    thread = debugger.stopped("pause")
    top = debugger.frames(thread)[0]
    first = int(debugger.variables(debugger.scope(top["id"], "Globals"))["spins"]["value"])
    assert first > 0
    debugger.body("continue", threadId=thread)
    time.sleep(0.3)
    debugger.body("pause", threadId=thread)
    thread = debugger.stopped("pause")
    top = debugger.frames(thread)[0]
    assert int(debugger.variables(debugger.scope(top["id"], "Globals"))["spins"]["value"]) > first
    # An interrupt while paused ends the cell as usual, its globals kept.
    interrupt(debugger)
    execution = collect(debugger.kc, msg_id)
    assert single_error(execution)["ename"] == "KeyboardInterrupt"
    assert int(value(debugger.kc, "spins") or 0) > first


def interrupt(debugger: Debugger) -> None:
    """Send an interrupt_request, as JupyterLab's stop button does (message mode)."""
    message = debugger.kc.session.msg("interrupt_request", {})
    debugger.kc.control_channel.send(message)
    reply = debugger.kc.control_channel.get_msg(timeout=TIMEOUT)
    assert reply["msg_type"] == "interrupt_reply", reply


@pytest.mark.parametrize("load", ["quiet", "under CPU load"])
def test_an_interrupt_while_stopped_at_a_breakpoint_ends_the_cell_and_keeps_state(
    debugger: Debugger, load: str, request: pytest.FixtureRequest
) -> None:
    if load != "quiet":
        request.getfixturevalue("cpu_load")
    code = "var kept = 41\nkept += 1\nkept += 100\n"
    path = debugger.cell_file(code)
    debugger.body("setBreakpoints", source={"path": path}, breakpoints=[{"line": 3}])
    msg_id = debugger.kc.execute(code)
    thread = debugger.stopped("breakpoint")
    assert thread
    interrupt(debugger)
    assert debugger.event("continued")["allThreadsContinued"] is True
    execution = collect(debugger.kc, msg_id)
    assert single_error(execution)["ename"] == "KeyboardInterrupt"
    assert debugger.body("debugInfo")["stoppedThreads"] == []
    assert value(debugger.kc, "kept") == "42"
    assert value(debugger.kc, "kept + 1") == "43"


def test_a_trap_stops_post_mortem_at_the_faulting_line(debugger: Debugger) -> None:
    ok(execute(debugger.kc, "var before = 7"))
    msg_id = debugger.kc.execute("before = 8\nlet picked = pick(5)\n")
    body = debugger.event("stopped")
    assert body["reason"] == "exception" and "SIGILL" in body["description"], body
    thread = int(body["threadId"])
    frames = debugger.frames(thread)
    assert [(frame["name"], frame["line"]) for frame in frames[:2]] == [("pick(_:)", 12), ("<cell>", 2)]
    local = debugger.variables(debugger.scope(frames[0]["id"], "Locals"))
    assert local["k"]["value"] == "5" and local["numbers"]["indexedVariables"] == 2
    execution = debugger.finish(msg_id, thread)
    error = single_error(execution)
    assert "Index out of range" in str(error["evalue"])
    assert value(debugger.kc, "before") == "8"


def test_a_trap_in_another_thread_stops_in_that_thread(debugger: Debugger) -> None:
    # LLDB selects the cell's thread after the expression; the stop is shown where the trap was.
    code = "import Foundation\nThread.detachNewThread {\n    let empty: [Int] = []\n    print(empty[1])\n}\n"
    code += "Thread.sleep(forTimeInterval: 30)\n"
    path = debugger.cell_file(code)
    msg_id = debugger.kc.execute(code)
    body = debugger.event("stopped")
    assert body["reason"] == "exception" and "SIGILL" in body["description"], body
    thread = int(body["threadId"])
    frames = debugger.frames(thread)
    assert (frames[0]["line"], frames[0]["source"]["path"]) == (4, path), frames
    execution = debugger.finish(msg_id, thread)
    error = single_error(execution)
    assert (error["ename"], error["evalue"]) == ("Fatal error", f"Index out of range ({OTHER_THREAD})")
    assert value(debugger.kc, "1 + 1") == "2"


def test_thrown_errors_stop_when_asked_and_the_cell_ends_with_the_error(debugger: Debugger) -> None:
    debugger.body("setExceptionBreakpoints", filters=["swift-throw"])
    msg_id = debugger.kc.execute("let code = try fail(3)\n")
    thread = debugger.stopped("exception")
    assert any(frame["name"] == "fail(_:)" for frame in debugger.frames(thread))
    execution = debugger.finish(msg_id, thread)
    assert single_error(execution)["ename"] == "Failure"


def test_without_the_trap_filter_a_trap_ends_the_cell_at_once(debugger: Debugger) -> None:
    debugger.body("setExceptionBreakpoints", filters=[])
    execution = execute(debugger.kc, "let again = pick(9)\n")
    assert "Index out of range" in str(single_error(execution)["evalue"])


def test_breakpoints_set_while_a_cell_runs_apply_from_the_next_stop(debugger: Debugger) -> None:
    code = "var later = 0\nlater += 1\nlater += 1\n"
    path = debugger.cell_file(code)
    msg_id = debugger.kc.execute("usleep(700_000)")
    time.sleep(0.3)
    answer = debugger.body("setBreakpoints", source={"path": path}, breakpoints=[{"line": 3}])
    assert answer["breakpoints"][0]["verified"] is True
    refused = debugger.request("stackTrace", threadId=1)
    assert refused["success"] is False and "pause it first" in refused["message"]
    ok(collect(debugger.kc, msg_id))
    msg_id = debugger.kc.execute(code)
    thread = debugger.stopped("breakpoint")
    assert debugger.frames(thread)[0]["line"] == 3
    ok(debugger.finish(msg_id, thread))


def test_requests_that_need_a_stop_fail_clearly_when_idle(debugger: Debugger) -> None:
    for command in ("stackTrace", "scopes", "variables", "evaluate", "next"):
        answer = debugger.request(command, threadId=1, frameId=1, variablesReference=1, expression="1")
        assert answer["success"] is False, answer
        assert answer["message"], answer
    assert debugger.body("threads") == {"threads": []}
    unknown = debugger.request("noSuchCommand")
    assert unknown["success"] is False and "not supported" in unknown["message"]


def test_errors_still_name_cells_not_their_files(debugger: Debugger) -> None:
    error = single_error(execute(debugger.kc, 'let broken: Int = "text"'))
    assert "<Cell " in str(error["evalue"]) and debugger.body("debugInfo")["tmpFilePrefix"] not in json.dumps(error)


def test_after_disconnect_breakpoints_no_longer_stop_cells(fresh_kernel: Any) -> None:
    km, kc = fresh_kernel()
    debugger = Debugger(kc)
    debugger.body("initialize", clientID="test", adapterID="swift")
    debugger.body("attach")
    code = "var free = 1\nfree += 1\n"
    debugger.body("setBreakpoints", source={"path": debugger.cell_file(code)}, breakpoints=[{"line": 2}])
    debugger.body("disconnect", restart=False)
    assert debugger.body("debugInfo")["isStarted"] is False
    assert debugger.body("debugInfo")["breakpoints"] == []
    ok(execute(kc, code, timeout=30))
    assert value(kc, "free") == "2"
    assert isinstance(km, KernelManager) and os.path.isdir(debugger.body("debugInfo")["tmpFilePrefix"])


def test_a_time_limit_does_not_count_the_time_stopped_in_the_debugger(debugger: Debugger) -> None:
    code = "%timeout 1\nvar timed = 1\ntimed += 1\n"
    path = debugger.cell_file(code)
    debugger.body("setBreakpoints", source={"path": path}, breakpoints=[{"line": 3}])
    msg_id = debugger.kc.execute(code)
    thread = debugger.stopped("breakpoint")
    time.sleep(1.5)
    try:
        ok(debugger.finish(msg_id, thread))
    finally:
        ok(execute(debugger.kc, "%timeout off"))
    assert value(debugger.kc, "timed") == "2"


def test_a_conditional_breakpoint_stops_only_when_its_condition_holds(debugger: Debugger) -> None:
    path = debugger.functions_file  # type: ignore[attr-defined]
    debugger.body("setBreakpoints", source={"path": path}, breakpoints=[{"line": 6, "condition": "i == 2"}])
    msg_id = debugger.kc.execute("let conditioned = total(5)\n")
    thread = debugger.stopped("breakpoint")
    top = debugger.frames(thread)[0]
    local = debugger.variables(debugger.scope(top["id"], "Locals"))
    assert (local["i"]["value"], local["sum"]["value"]) == ("2", "1")
    debugger.body("setBreakpoints", source={"path": path}, breakpoints=[])
    ok(debugger.finish(msg_id, thread))
    assert value(debugger.kc, "conditioned") == "10"


@pytest.mark.parametrize("restart", ["Glibc._exit(3)", "%reset"], ids=["fresh Swift process", "fresh LLDB host"])
def test_breakpoints_and_the_debugger_outlive_a_fresh_swift_process_or_host(debugger: Debugger, restart: str) -> None:
    code = "var again = 1\nagain += 1\n"
    path = debugger.cell_file(code)
    debugger.body("setBreakpoints", source={"path": path}, breakpoints=[{"line": 2}])
    execute(debugger.kc, restart)
    ok(execute(debugger.kc, FUNCTIONS))  # the state is gone; the next tests use these functions
    msg_id = debugger.kc.execute(code)
    thread = debugger.stopped("breakpoint")
    assert debugger.frames(thread)[0]["line"] == 2
    ok(debugger.finish(msg_id, thread))


def test_an_interrupt_during_a_long_step_ends_the_cell(debugger: Debugger) -> None:
    code = "var stepping = 1\nusleep(20_000_000)\nstepping += 1\n"
    path = debugger.cell_file(code)
    debugger.body("setBreakpoints", source={"path": path}, breakpoints=[{"line": 2}])
    msg_id = debugger.kc.execute(code)
    thread = debugger.stopped("breakpoint")
    debugger.body("next", threadId=thread)
    time.sleep(0.5)
    started = time.monotonic()
    interrupt(debugger)
    execution = collect(debugger.kc, msg_id)
    assert single_error(execution)["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 10  # not the 20 s sleep: the step was stopped
    assert value(debugger.kc, "stepping") == "1"
