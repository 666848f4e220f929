"""Completion (Tab) and inspection (Shift-Tab) through jupyter_client against the real kernel,
its real sourcekit-lsp and the real Swift REPL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from swift_kernel.lsp import SourceKitLSP
from swift_kernel.toolchain import find_toolchain

from .conftest import KernelPair, kernel_pid, sourcekit_lsp, stop_kernel
from .utils import execute, flush_channels

pytestmark = [pytest.mark.lldb, pytest.mark.timeout(120)]

# Every reply must come within the kernel's deadline (0.9 s cold, 1.0 s warm) plus message
# overhead; slower means the shell loop waited on sourcekit-lsp.
REPLY_WITHIN = 2.5


def complete(kc: BlockingKernelClient, code: str, cursor_pos: int | None = None) -> dict[str, Any]:
    """Send one complete_request and return its reply content, checking it came in time."""
    started = time.monotonic()
    reply = kc.complete(code, len(code) if cursor_pos is None else cursor_pos, reply=True, timeout=30)
    took = time.monotonic() - started
    assert took < REPLY_WITHIN, f"complete_reply took {took:.2f} s"
    content: dict[str, Any] = reply["content"]
    assert content["status"] == "ok", content
    return content


def complete_until(kc: BlockingKernelClient, code: str, wanted: str, timeout: float = 30) -> dict[str, Any]:
    """Ask again until ``wanted`` is offered: the first Tab after start may miss its deadline."""
    deadline = time.monotonic() + timeout
    while True:
        content = complete(kc, code)
        if wanted in content["matches"] or time.monotonic() > deadline:
            return content
        time.sleep(0.2)


def inspect(kc: BlockingKernelClient, code: str, cursor_pos: int | None = None) -> dict[str, Any]:
    """Send one inspect_request and return its reply content, checking it came in time."""
    started = time.monotonic()
    reply = kc.inspect(code, len(code) if cursor_pos is None else cursor_pos, reply=True, timeout=30)
    took = time.monotonic() - started
    assert took < REPLY_WITHIN, f"inspect_reply took {took:.2f} s"
    content: dict[str, Any] = reply["content"]
    assert content["status"] == "ok", content
    return content


def run(kc: BlockingKernelClient, code: str) -> None:
    """Execute a cell that must succeed."""
    execution = execute(kc, code)
    assert execution.status == "ok", execution.content


@pytest.fixture(scope="module")
def notebook(kernel: KernelPair) -> KernelPair:
    """The shared kernel after the cells every test here completes against."""
    _, kc = kernel
    flush_channels(kc)
    cells = [
        "import Foundation",
        "let distanceInMeters = 42",
        "struct Point {\n  var x: Int\n  var y: Int\n  /// Distance from the origin.\n"
        "  func norm() -> Double { Double(x * x + y * y).squareRoot() }\n}",
        "%timeout 30\nextension Int {\n  /// Twice the value.\n  var doubled: Int { self * 2 }\n}",
        "func triple(_ value: Int) -> Int { value * 3 }",
        "let p = Point(x: 3, y: 4)",
        "let formatter = DateFormatter()",
        'print("three cells after distanceInMeters")',
    ]
    for cell in cells:
        run(kc, cell)
    # A cell that failed declares nothing, in the REPL and so in the document.
    assert execute(kc, "let brokenName: Int = undefinedThing").status == "error"
    return kernel


@pytest.fixture
def nkc(notebook: KernelPair) -> BlockingKernelClient:
    """The notebook kernel's client, with stale messages dropped."""
    flush_channels(notebook[1])
    return notebook[1]


def test_first_answer_is_in_time_and_names_from_three_cells_earlier_follow(nkc: BlockingKernelClient) -> None:
    # sourcekit-lsp started with the kernel; a server still busy may miss the deadline and answer
    # empty, but never late (complete() checks the time).
    complete(nkc, "distanceIn")
    content = complete_until(nkc, "distanceIn", "distanceInMeters")
    assert content["matches"][0] == "distanceInMeters"
    assert (content["cursor_start"], content["cursor_end"]) == (0, len("distanceIn"))
    types = content["metadata"]["_jupyter_types_experimental"]
    assert types[0] == {
        "start": 0,
        "end": len("distanceIn"),
        "text": "distanceInMeters",
        "type": "variable",
        "signature": "distanceInMeters: Int",
    }
    assert len(types) == len(content["matches"])


def test_dot_offers_the_members_of_a_struct_declared_earlier(nkc: BlockingKernelClient) -> None:
    content = complete_until(nkc, "let d = p.", "norm()")
    assert {"x", "y", "norm()"} <= set(content["matches"])
    assert content["cursor_start"] == content["cursor_end"] == len("let d = p.")
    kinds = {t["text"]: t["type"] for t in content["metadata"]["_jupyter_types_experimental"]}
    assert kinds["x"] == "property"
    assert kinds["norm()"] == "method"

    content = complete(nkc, "let d = p.no")
    assert content["matches"] == ["norm()"]
    assert (content["cursor_start"], content["cursor_end"]) == (len("let d = p."), len("let d = p.no"))


def test_functions_extensions_and_the_current_cell_are_completed(nkc: BlockingKernelClient) -> None:
    # triple(_ value: Int): the name and `(`, ready for the argument (not `triple()`).
    assert "triple(" in complete_until(nkc, "let t = trip", "triple(")["matches"]
    assert "doubled" in complete(nkc, "let d = 21.doub")["matches"]
    # A name the edited cell itself declares above the cursor; the text after the cursor counts too.
    code = "let localThing = 1\nprint(localTh)\nlet after = 2"
    content = complete(nkc, code, code.index("localTh)") + len("localTh"))
    assert "localThing" in content["matches"]
    assert content["cursor_start"] == code.index("localTh)")


def test_cells_run_again_or_redefined_complete_like_the_repl(nkc: BlockingKernelClient) -> None:
    # Re-running a cell is the notebook's habit; two copies in one file used to leave `pair.`
    # with nothing, and a redefinition must win over the original, as in the REPL.
    pair = "struct Pair {\n  var first: Int\n  var second: Int\n}\nlet pair = Pair(first: 1, second: 2)"
    run(nkc, pair)
    run(nkc, pair)
    content = complete_until(nkc, "let f = pair.", "first")
    assert {"first", "second"} <= set(content["matches"])
    run(nkc, pair.replace("var second: Int", "var second: Int\n  var third: Int").replace("2)", "2, third: 3)"))
    assert "third" in complete(nkc, "let f = pair.")["matches"]
    run(nkc, 'let pair2 = 1\nlet pair2Text = "x"')
    run(nkc, 'let pair2 = "now a string"')
    assert "uppercased()" in complete(nkc, "pair2.upperc")["matches"]


def test_foundation_symbols_are_completed(nkc: BlockingKernelClient) -> None:
    content = complete_until(nkc, "let t = Date().timeIntervalSince19", "timeIntervalSince1970")
    assert content["matches"] == ["timeIntervalSince1970"]
    assert content["cursor_start"] == len("let t = Date().")
    assert "JSONEncoder" in complete(nkc, "let e = JSONEnc")["matches"]


def test_failed_cells_and_directive_lines_contribute_nothing(nkc: BlockingKernelClient) -> None:
    complete_until(nkc, "distanceIn", "distanceInMeters")  # warm
    assert "brokenName" not in complete(nkc, "brokenNa")["matches"]
    content = complete(nkc, "%timeo")
    assert content["matches"] == []
    assert content["cursor_start"] == content["cursor_end"] == len("%timeo")


def test_cursor_positions_count_code_points(nkc: BlockingKernelClient) -> None:
    code = 'let s = "😀👍🏽"; let q = distanceIn'
    content = complete_until(nkc, code, "distanceInMeters")
    assert content["cursor_start"] == code.index("distanceIn")
    assert content["cursor_end"] == len(code)


def test_inspect_shows_declaration_and_doc_comment(nkc: BlockingKernelClient) -> None:
    complete_until(nkc, "distanceIn", "distanceInMeters")  # warm
    content = inspect(nkc, "let d = p.norm()", len("let d = p.no"))
    assert content["found"] is True
    assert content["data"]["text/plain"] == "func norm() -> Double\n\nDistance from the origin."
    assert content["data"]["text/markdown"].startswith("```swift\nfunc norm() -> Double\n```")
    assert "Distance from the origin." in content["data"]["text/markdown"]

    # Inside a call's parentheses Shift-Tab asks about the callee, as in IPython.
    content = inspect(nkc, "let t = triple(")
    assert content["found"] is True
    assert "func triple(_ value: Int) -> Int" in content["data"]["text/plain"]

    content = inspect(nkc, "distanceInMeters")
    assert content["data"]["text/plain"] == "let distanceInMeters: Int"


def test_inspect_of_an_overloaded_call_lists_the_overloads(nkc: BlockingKernelClient) -> None:
    complete_until(nkc, "distanceIn", "distanceInMeters")  # warm
    # Hover cannot pick one of DateFormatter.string(from:) and string(for:) before the arguments
    # are written; completion of the name lists both.
    content = inspect(nkc, "let s = formatter.string(")
    assert content["found"] is True
    plain = content["data"]["text/plain"]
    assert "string(from: Date) -> String" in plain
    assert "string(for: Any?) -> String?" in plain or "string(for: Any) -> String?" in plain


def test_tab_after_an_open_parenthesis_offers_arguments_and_keeps_sourcekit_lsp_alive(
    notebook: KernelPair, nkc: BlockingKernelClient
) -> None:
    km, _ = notebook
    complete_until(nkc, "distanceIn", "distanceInMeters")  # warm
    (before,) = sourcekit_lsp(kernel_pid(km))
    # sourcekit-lsp 6.3.1 crashes on this when the document ends right after the parenthesis.
    content = complete(nkc, "print(")
    assert any("separator" in match for match in content["matches"]), content["matches"][:10]
    assert "distanceInMeters" in complete(nkc, "let t = triple(distanceIn")["matches"]
    time.sleep(0.5)
    assert [p.pid for p in sourcekit_lsp(kernel_pid(km))] == [before.pid]


@pytest.mark.parametrize(("code", "cursor_pos"), [("1 + 2", 2), ("   ", 1), ("", 0), ("let q = noSuchName", 12)])
def test_inspect_not_found(nkc: BlockingKernelClient, code: str, cursor_pos: int) -> None:
    content = inspect(nkc, code, cursor_pos)
    assert content == {"status": "ok", "found": False, "data": {}, "metadata": {}}


def test_complete_request_while_a_cell_runs_is_answered_after_it(
    notebook: KernelPair, nkc: BlockingKernelClient
) -> None:
    """ipykernel handles shell messages one at a time (a lock around dispatch_shell), so a
    complete_request sent while a cell runs waits for that cell. The kernel keeps it sensible: the
    cell is not slowed, and the queued request is answered right after it, against a document that
    already holds what that cell declared."""
    km, _ = notebook
    complete_until(nkc, "distanceIn", "distanceInMeters")  # warm
    cell = "Thread.sleep(forTimeInterval: 3)\nlet declaredWhileSleeping = 1"
    started = time.monotonic()
    execute_id = nkc.execute(cell)
    time.sleep(0.5)
    complete_id = nkc.complete("declaredWhileSl", len("declaredWhileSl"))
    replies: dict[str, tuple[float, dict[str, Any]]] = {}
    while len(replies) < 2:
        msg = nkc.get_shell_msg(timeout=30)
        replies[msg["parent_header"]["msg_id"]] = (time.monotonic() - started, msg["content"])
    executed_at, executed = replies[execute_id]
    completed_at, completed = replies[complete_id]
    assert executed["status"] == "ok", executed
    assert executed_at < 3 + 2.0, f"the cell took {executed_at:.2f} s: completion slowed it"
    assert executed_at < completed_at < executed_at + REPLY_WITHIN
    assert completed["matches"][0] == "declaredWhileSleeping"
    assert km.is_alive()


def test_killed_sourcekit_lsp_is_restarted_and_answers_again(fresh_kernel: Callable[..., KernelPair]) -> None:
    km, kc = fresh_kernel()
    run(kc, "let survivorValue = 7")
    pid = kernel_pid(km)
    complete_until(kc, "survivorVa", "survivorValue")
    (server,) = sourcekit_lsp(pid)
    # Its own process group: SIGINT for the kernel's group (signal-mode interrupts) misses it.
    assert os.getpgid(server.pid) == server.pid != os.getpgid(pid)

    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    content = complete(kc, "survivorVa")  # answered in time, empty or not, while it restarts
    assert content["status"] == "ok"
    content = complete_until(kc, "survivorVa", "survivorValue")
    assert content["matches"][0] == "survivorValue"
    (restarted,) = sourcekit_lsp(pid)
    assert restarted.pid != server.pid
    run(kc, "print(survivorValue)")  # cells were never affected

    workspace = Path(restarted.cwd())
    assert "let survivorValue = 7\n" in (workspace / "complete" / "main.swift").read_text()
    stop_kernel(km, kc)  # also asserts that no process is left
    assert not workspace.exists(), "shutdown removes the private document directory"


def test_sourcekit_lsp_exits_when_the_kernel_is_killed(fresh_kernel: Callable[..., KernelPair]) -> None:
    """A SIGKILLed kernel runs no shutdown code; sourcekit-lsp must still go (its stdin closes)."""
    km, kc = fresh_kernel()
    run(kc, "let orphanCheck = 1")
    complete_until(kc, "orphanChe", "orphanCheck")
    (server,) = sourcekit_lsp(kernel_pid(km))
    workspace = Path(server.cwd())
    os.kill(kernel_pid(km), signal.SIGKILL)
    server.wait(timeout=10)  # raises psutil.TimeoutExpired if it outlives the kernel
    assert km.provisioner is not None and km.provisioner.process is not None
    km.provisioner.process.wait(timeout=10)  # reap it: a zombie's pid still counts as alive
    # Nothing in the killed kernel could delete its documents; the next client to start does.
    assert workspace.exists()
    other = SourceKitLSP("/nonexistent/sourcekit-lsp")
    asyncio.run(other.complete([], "x", 1))
    other.close()
    assert not workspace.exists()


def test_modules_on_added_search_paths_are_completed(tmp_path: Path) -> None:
    """The hook ``%install`` uses: a module built outside the notebook, found through ``-I``."""
    toolchain = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
    source = tmp_path / "Greeter.swift"
    source.write_text('/// Says hello.\npublic func greetSomeone(_ name: String) -> String { "Hello, \\(name)" }\n')
    module = ["-emit-module", "-module-name", "Greeter", "-emit-module-path", str(tmp_path / "Greeter.swiftmodule")]
    subprocess.run(
        [str(toolchain.swiftc), "-parse-as-library", *module, str(source)],
        check=True,
        timeout=60,
    )
    client = SourceKitLSP(toolchain.sourcekit_lsp, first_deadline=30, warm_deadline=30)
    try:

        async def ask() -> tuple[list[str], list[str], bool]:
            cells = ["import Greeter"]
            before = (await client.complete(cells, "greetSome", 9)).matches
            client.set_compiler_arguments(["-I", str(tmp_path)])
            after = (await client.complete(cells, "greetSome", 9)).matches
            inspection = await client.inspect(cells, "greetSomeone(", 3)
            return before, after, inspection.found and "Says hello." in inspection.plain

        before, after, documented = asyncio.run(ask())
    finally:
        client.close()
    assert before == []
    assert after == ["greetSomeone("]
    assert documented


def test_functions_with_unlabelled_parameters_complete_to_valid_swift() -> None:
    """`greet(, loudly: )` and `precondition(, )` were inserted; now the name and `(`, the signature beside it."""
    toolchain = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
    client = SourceKitLSP(toolchain.sourcekit_lsp, first_deadline=30, warm_deadline=30)
    cells = ["func greet(_ name: String, loudly: Bool = false) -> String { loudly ? name.uppercased() : name }"]
    try:

        async def ask() -> tuple[Any, Any]:
            return await client.complete(cells, "gre", 3), await client.complete(cells, "precondi", 8)

        greet, precondition = asyncio.run(ask())
    finally:
        client.close()
    for completion in (greet, precondition):
        assert not any(", " in match and match.endswith(")") and "(," in match for match in completion.matches)
    greet_types = {t.text: t.signature for t in greet.types}
    assert "greet(" in greet_types, greet.matches[:10]
    assert "greet(, loudly: )" not in greet.matches
    assert greet_types["greet("].startswith("greet(_ name: String"), greet_types["greet("]
    precondition_types = {t.text: t.signature for t in precondition.types}
    assert "precondition(" in precondition_types, precondition.matches[:10]
    assert "precondition(, )" not in precondition.matches
    assert "_ condition: " in precondition_types["precondition("], precondition_types


def test_sourcekit_lsp_starts_with_the_kernel(fresh_kernel: Callable[..., KernelPair]) -> None:
    """No completion request yet, and the language server is already running (it used to start on the first Tab)."""
    km, _ = fresh_kernel()
    deadline = time.monotonic() + 30
    while not sourcekit_lsp(kernel_pid(km)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sourcekit_lsp(kernel_pid(km)), "no sourcekit-lsp below a kernel that has started"


def test_first_complete_request_of_a_fresh_kernel_returns_matches(fresh_kernel: Callable[..., KernelPair]) -> None:
    """The first Tab of a session, in a notebook that imports Foundation, is answered (it used to be empty)."""
    _, kc = fresh_kernel()
    run(kc, "import Foundation")
    content = complete(kc, "let formatter = DateForm")
    assert "DateFormatter" in content["matches"], content["matches"][:10]
