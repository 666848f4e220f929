"""Notebook features through the real kernel: rich display, input, await, %system, %env, %include, %help."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import KernelPair
from .utils import collect, execute, execute_in_notebook, flush_channels, interrupt_after, is_idle, value

pytestmark = pytest.mark.lldb

DISPLAY_CASES = [
    ('Jupyter.display(html: "<b>bold</b>")', "text/html", "<b>bold</b>"),
    ('Jupyter.display(markdown: "# Title")', "text/markdown", "# Title"),
    ('Jupyter.display(svg: "<svg/>")', "image/svg+xml", "<svg/>"),
    ('Jupyter.display(latex: "$x^2$")', "text/latex", "$x^2$"),
    ('Jupyter.display(text: "plain")', "text/plain", "plain"),
    ('Jupyter.display(json: "{\\"a\\": [1, 2]}")', "application/json", {"a": [1, 2]}),
    ("Jupyter.display(png: [137, 80, 78, 71, 13, 10])", "image/png", "iVBORw0K"),
    ("Jupyter.display(jpeg: [255, 216, 255])", "image/jpeg", "/9j/"),
]


@pytest.mark.parametrize(("code", "mime", "expected"), DISPLAY_CASES)
def test_display_each_mime_type(kc: object, code: str, mime: str, expected: object) -> None:
    execution = execute(kc, code)  # type: ignore[arg-type]
    assert execution.status == "ok", execution.content
    shown = execution.of_type("display_data")
    assert len(shown) == 1
    assert shown[0]["content"]["data"] == {mime: expected}


def test_display_order_update_and_clear_while_running(kc: object) -> None:
    """Display messages arrive during the cell, in order with printed lines, and update by id."""
    code = (
        'print("before")\n'
        'Jupyter.display(text: "0%", id: "progress")\n'
        "for step in 1...3 {\n"
        '    Jupyter.updateDisplay(id: "progress", text: "\\(step * 33)%")\n'
        "    usleep(300_000)\n"
        "}\n"
        'print("after")\n'
        "Jupyter.clearOutput(wait: true)\n"
        'print("fresh")'
    )
    msg_id = kc.execute(code)  # type: ignore[attr-defined]
    started = time.monotonic()
    seen: list[tuple[str, object, float]] = []
    while True:
        msg = kc.get_iopub_msg(timeout=30)  # type: ignore[attr-defined]
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if is_idle(msg):
            break
        if kind == "stream":
            # A line may arrive in pieces (stdout is unbuffered); frontends join adjacent stream text.
            if seen and seen[-1][0] == "stream":
                seen[-1] = ("stream", str(seen[-1][1]) + msg["content"]["text"], seen[-1][2])
            else:
                seen.append(("stream", msg["content"]["text"], time.monotonic() - started))
        elif kind in ("display_data", "update_display_data"):
            content = msg["content"]
            shown = (content["data"]["text/plain"], content["transient"]["display_id"])
            seen.append((kind, shown, time.monotonic() - started))
        elif kind == "clear_output":
            seen.append((kind, msg["content"]["wait"], time.monotonic() - started))
    kinds = [(kind, payload) for kind, payload, _ in seen]
    assert kinds == [
        ("stream", "before\n"),
        ("display_data", ("0%", "progress")),
        ("update_display_data", ("33%", "progress")),
        ("update_display_data", ("66%", "progress")),
        ("update_display_data", ("99%", "progress")),
        ("stream", "after\n"),
        ("clear_output", True),
        ("stream", "fresh\n"),
    ]
    # The first update reached the frontend while the cell still ran (it runs about 0.9 s).
    first_update = next(at for kind, _, at in seen if kind == "update_display_data")
    last = seen[-1][2]
    assert last - first_update > 0.4


def test_bad_display_input_is_reported_not_fatal(kc: object) -> None:
    execution = execute(kc, 'Jupyter.display(json: "{not json")\nlet afterBad = 1')  # type: ignore[arg-type]
    assert execution.status == "ok"
    assert "Jupyter.display: json: not valid JSON" in execution.stream("stderr")
    assert not execution.of_type("display_data")
    big = execute(kc, 'Jupyter.display(text: String(repeating: "x", count: 5_000_000))')  # type: ignore[arg-type]
    assert big.status == "ok"
    assert len(big.of_type("display_data")[0]["content"]["data"]["text/plain"]) == 5_000_000
    assert value(kc, "afterBad") == "1"  # type: ignore[arg-type]


def test_output_of_work_left_running_shows_in_the_cell_running_then(kc: object) -> None:
    """A queue that prints and displays after its cell replied.

    Between cells the debugger holds the Swift process stopped, so such work runs on during the
    next cell, and its output (a bad display's error included) belongs to that cell.
    """
    started = execute(  # type: ignore[arg-type]
        kc,
        "import Dispatch\nDispatchQueue.global().asyncAfter(deadline: .now() + 0.5) {\n"
        '    print("late line")\n    Jupyter.display(text: "late display")\n'
        '    Jupyter.display(json: "{broken")\n}',
    )
    assert started.status == "ok" and not started.stream("stdout")
    later = execute(kc, "import Glibc\nusleep(1_500_000)\nlet afterLate = 3")  # type: ignore[arg-type]
    assert later.status == "ok"
    assert later.stream("stdout") == "late line\n"
    assert [m["content"]["data"]["text/plain"] for m in later.of_type("display_data")] == ["late display"]
    assert "Jupyter.display: json: not valid JSON" in later.stream("stderr")
    assert value(kc, "afterLate") == "3"  # type: ignore[arg-type]


def test_system_streams_and_reports_exit_status(kc: object) -> None:
    execution = execute(kc, "%system echo out; echo err >&2; exit 3")  # type: ignore[arg-type]
    assert execution.status == "ok"
    assert execution.stream("stdout") == "out\n"
    assert execution.stream("stderr") == "err\n%system: exit status 3\n"


def test_system_output_is_live_and_interruptible(kernel: KernelPair) -> None:
    km, kc = kernel
    execution, latency = interrupt_after(km, kc, "%system echo started; sleep 100", 1.0)
    assert execution.content["ename"] == "KeyboardInterrupt"
    assert execution.stream("stdout") == "started\n"
    assert latency < 2.0
    assert value(kc, "1 + 1") == "2"


def test_env_reaches_system_and_swift(kc: object) -> None:
    execution = execute(kc, "%env SWIFT_KERNEL_GREETING=hello there\n%system echo $SWIFT_KERNEL_GREETING")  # type: ignore[arg-type]
    assert execution.stream("stdout") == "hello there\n"
    assert value(kc, 'String(cString: getenv("SWIFT_KERNEL_GREETING"))') == '"hello there"'  # type: ignore[arg-type]
    bad = execute(kc, "%env NOT VALID")  # type: ignore[arg-type]
    assert bad.content["ename"] == "DirectiveError"
    assert "%env takes NAME=VALUE" in bad.content["evalue"]


def test_include_runs_file_and_names_it_in_diagnostics(kc: object, tmp_path: Path) -> None:
    helpers = tmp_path / "helpers.swift"
    helpers.write_text("let base = 40\nfunc twice(_ x: Int) -> Int { 2 * x }\n")
    assert value(kc, f'%include "{helpers}"\ntwice(base) + 2') == "82"  # type: ignore[arg-type]
    broken = tmp_path / "broken.swift"
    broken.write_text("let fine = 1\nlet wrong: Int = \"text\"\n")
    execution = execute(kc, f"%include {broken}")  # type: ignore[arg-type]
    assert execution.content["ename"] == "CompileError"
    assert execution.content["evalue"].startswith(f"{broken}:2:")
    missing = execute(kc, f'%include "{tmp_path / "missing.swift"}"')  # type: ignore[arg-type]
    assert missing.content["ename"] == "IncludeError"


def test_help_lists_every_directive(kc: object) -> None:
    text = execute(kc, "%help").stream("stdout")  # type: ignore[arg-type]
    for name in ("%timeout", "%system", "%env", "%include", "%help"):
        assert name in text
    unknown = execute(kc, "%frobnicate now")  # type: ignore[arg-type]
    assert unknown.content["ename"] == "DirectiveError"
    assert "%frobnicate" in unknown.content["evalue"]


ASK_EXIT = [{"source": "ask_exit", "keepkernel": False}]


@pytest.mark.parametrize("typed", ["exit", "quit", "exit()", "quit()"])
def test_exit_or_quit_alone_asks_a_console_to_end_the_session(kc: object, typed: str) -> None:
    # What IPython's `exit` sends: jupyter console ends the session (and the kernel) on it.
    execution = execute(kc, typed)  # type: ignore[arg-type]
    assert execution.status == "ok", execution.content
    assert execution.content["payload"] == ASK_EXIT
    # No "(Function)" value, no compile error, nothing to read in a terminal that is closing.
    assert [m["msg_type"] for m in execution.messages] == ["execute_input"]
    # The kernel itself goes on until the console shuts it down.
    assert value(kc, "1 + 1") == "2"  # type: ignore[arg-type]


def test_exit_in_a_notebook_explains_what_ends_the_kernel(kc: object) -> None:
    # JupyterLab ignores the ask_exit payload (it has no handler for it): the cell says what to do.
    execution = execute_in_notebook(kc, "exit")  # type: ignore[arg-type]
    assert execution.status == "ok", execution.content
    text = execution.stream("stdout")
    assert text.startswith("exit: ") and "Kernel > Shut Down Kernel" in text and "exit(0)" in text
    assert execution.errors == [] and execution.result is None
    assert execution.content["payload"] == ASK_EXIT
    # Headless runs (nbclient) send no cell id but allow no input: explained too.
    headless = execute(kc, "quit()", allow_stdin=False)  # type: ignore[arg-type]
    assert headless.stream("stdout").startswith("quit(): ")


def test_a_quit_the_user_declared_is_theirs(fresh_kernel: Callable[..., KernelPair]) -> None:
    _, kc = fresh_kernel()
    assert execute(kc, 'func quit() -> String { "my own quit" }').status == "ok"
    assert value(kc, "quit()") == '"my own quit"'
    assert execute(kc, "exit").content["payload"] == ASK_EXIT


def test_top_level_await_runs_and_its_values_persist(kc: object) -> None:
    """LLDB crashes on top-level await; the kernel rewrites it, so the kernel lives and values persist."""
    assert execute(kc, "func work(_ n: Int) async -> Int { n * 2 }").status == "ok"  # type: ignore[arg-type]
    assert execute(kc, "let page = await work(21)").status == "ok"  # type: ignore[arg-type]
    assert value(kc, "page") == "42"  # type: ignore[arg-type]
    assert value(kc, "await work(4) + 1") == "9"  # type: ignore[arg-type]
    shown = execute(kc, 'print("got \\(await work(5))")')  # type: ignore[arg-type]
    assert shown.stream("stdout") == "got 10\n"
    thrown = execute(  # type: ignore[arg-type]
        kc,
        "struct Nope: Error {}\nfunc fail() async throws -> Int { throw Nope() }\n"
        "let caught = (try? await fail()) ?? -1",
    )
    assert thrown.status == "ok", thrown.content
    assert value(kc, "caught") == "-1"  # type: ignore[arg-type]


def test_async_forms_in_cells(kc: object) -> None:
    actor = execute(  # type: ignore[arg-type]
        kc, "actor Tally { var n = 0; func bump() -> Int { n += 1; return n } }\nlet tally = Tally()\n"
        "_ = await tally.bump()\nawait tally.bump()"
    )
    assert actor.result == "2", actor.content
    task = execute(  # type: ignore[arg-type]
        kc, "import Dispatch\nlet gate = DispatchSemaphore(value: 0)\nvar fromTask = 0\n"
        "Task { fromTask = await work(50); gate.signal() }\ngate.wait()\nfromTask"
    )
    assert task.result == "100", task.content
    queue = execute(  # type: ignore[arg-type]
        kc, "var fromQueue = 0\nDispatchQueue.global().async { fromQueue = 7; gate.signal() }\ngate.wait()\nfromQueue"
    )
    assert queue.result == "7", queue.content
    unsupported = execute(kc, "for await x in AsyncStream<Int> { $0.finish() } { print(x) }")  # type: ignore[arg-type]
    assert unsupported.content["ename"] == "AwaitError"
    assert "for await" in unsupported.content["evalue"]


def test_awaited_main_actor_work_runs(kc: object) -> None:
    # The main actor's jobs run on the main queue, whose thread is the cell's: while a top-level
    # await waits, the cell runs them, as a program's top-level code does. They waited for ever.
    hopped = execute(kc, 'await MainActor.run { print("on the main actor") }')  # type: ignore[arg-type]
    assert hopped.stream("stdout") == "on the main actor\n", hopped.content
    isolated = execute(kc, "@MainActor func onMain() -> Int { 41 + 1 }\nawait onMain()")  # type: ignore[arg-type]
    assert isolated.result == "42", isolated.content
    queued = execute(  # type: ignore[arg-type]
        kc, 'Task { @MainActor in print("a main actor task") }\ntry await Task.sleep(nanoseconds: 200_000_000)'
    )
    assert queued.stream("stdout") == "a main actor task\n", queued.content


def test_interrupting_main_actor_work_keeps_the_kernel(kernel: KernelPair) -> None:
    km, kc = kernel
    assert execute(kc, "var spins = 0").status == "ok"
    code = "await MainActor.run { while true { spins += 1 } }"
    execution, _ = interrupt_after(km, kc, code, 1.0)
    assert execution.content["ename"] == "KeyboardInterrupt"
    assert value(kc, "spins > 0") == "true"
    assert value(kc, "await MainActor.run { 5 }") == "5"


def test_interrupting_an_await_keeps_the_kernel(kernel: KernelPair) -> None:
    km, kc = kernel
    execution, _ = interrupt_after(km, kc, "let slept = try await Task.sleep(nanoseconds: 100_000_000_000)", 1.0)
    assert execution.content["ename"] == "KeyboardInterrupt"
    assert km.is_alive()
    assert value(kc, "page") == "42"


def _answer_next_input(kc: object, text: str) -> dict[str, object]:
    request: dict[str, object] = kc.get_stdin_msg(timeout=30)  # type: ignore[attr-defined]
    assert request["msg_type"] == "input_request"
    kc.input(text)  # type: ignore[attr-defined]
    return request


def test_readline_becomes_input_request(kc: object) -> None:
    msg_id = kc.execute(  # type: ignore[attr-defined]
        'print("Name? ", terminator: "")\nlet name = readLine()\n'
        'print("hi \\(name ?? "nil")")\nlet second = readLine()',
        allow_stdin=True,
    )
    first = _answer_next_input(kc, "Ada")
    second = _answer_next_input(kc, "Lovelace")
    execution = collect(kc, msg_id)  # type: ignore[arg-type]
    assert execution.status == "ok", execution.content
    # The line printed without its newline is the prompt beside the input box, not an output line.
    assert (first["content"]["prompt"], second["content"]["prompt"]) == ("Name? ", "")  # type: ignore[index]
    assert execution.stream("stdout") == "hi Ada\n"
    assert value(kc, "second") == 'Optional("Lovelace")'  # type: ignore[arg-type]


def test_readline_without_stdin_returns_nil_at_once(kc: object) -> None:
    for _ in range(2):
        code = 'print("Name? ", terminator: "")\nreadLine() == nil'
        execution = execute(kc, code, allow_stdin=False, timeout=20)  # type: ignore[arg-type]
        assert (execution.status, execution.result) == ("ok", "true")
        # Nobody is asked, so the prompt stays where it was printed.
        assert execution.stream("stdout") == "Name? "
    # Input works again for a frontend that allows it.
    msg_id = kc.execute("let later = readLine()", allow_stdin=True)  # type: ignore[attr-defined]
    _answer_next_input(kc, "back")
    assert collect(kc, msg_id).status == "ok"  # type: ignore[arg-type]
    assert value(kc, "later") == 'Optional("back")'  # type: ignore[arg-type]


def test_interrupt_while_waiting_for_input(kernel: KernelPair) -> None:
    km, kc = kernel
    assert execute(kc, "let kept = 11").status == "ok"
    msg_id = kc.execute('print("Name? ", terminator: "")\nlet waiting = readLine()', allow_stdin=True)
    request = kc.get_stdin_msg(timeout=30)
    assert request["msg_type"] == "input_request"
    assert request["content"]["prompt"] == "Name? "
    km.interrupt_kernel()
    execution = collect(kc, msg_id)
    assert execution.content["ename"] == "KeyboardInterrupt"
    # Nobody answered: the prompt is back in the output, before the error.
    assert execution.stream("stdout") == "Name? "
    kinds = [m["msg_type"] for m in execution.messages if m["msg_type"] in ("stream", "error")]
    assert kinds == ["stream", "error"], kinds
    assert value(kc, "kept") == "11"


def test_input_survives_repeated_interrupts_and_answers(kernel: KernelPair) -> None:
    """Alternate interrupted waits and answered ones: each wait ends, no request leaks into the next."""
    km, kc = kernel
    flush_channels(kc)
    for round_ in range(8):
        msg_id = kc.execute(f"let answer{round_} = readLine()", allow_stdin=True)
        request = kc.get_stdin_msg(timeout=30)
        assert request["msg_type"] == "input_request"
        if round_ % 2:
            kc.input(f"line {round_}")
            assert collect(kc, msg_id).status == "ok"
            assert value(kc, f"answer{round_}") == f'Optional("line {round_}")'
        else:
            km.interrupt_kernel()
            assert collect(kc, msg_id).content["ename"] == "KeyboardInterrupt"
    assert km.is_alive()
    with pytest.raises(queue.Empty):
        kc.get_stdin_msg(timeout=0.5)


def test_signal_interrupt_while_waiting_for_input(
    fresh_kernel: Callable[..., KernelPair], signal_kernelspec: str
) -> None:
    km, kc = fresh_kernel(signal_kernelspec)
    assert execute(kc, "var kept = [1, 2]").status == "ok"
    msg_id = kc.execute("let waiting = readLine()", allow_stdin=True)
    assert kc.get_stdin_msg(timeout=30)["msg_type"] == "input_request"
    km.interrupt_kernel()
    assert collect(kc, msg_id).content["ename"] == "KeyboardInterrupt"
    assert value(kc, "kept") == "[1, 2]"


def test_other_reads_of_stdin_are_answered_too(kc: object) -> None:
    msg_id = kc.execute(  # type: ignore[attr-defined]
        "import Foundation\nlet chunk = String(decoding: FileHandle.standardInput.availableData, as: UTF8.self)",
        allow_stdin=True,
    )
    _answer_next_input(kc, "from a FileHandle")
    assert collect(kc, msg_id).status == "ok"  # type: ignore[arg-type]
    assert value(kc, "chunk") == '"from a FileHandle\\n"'  # type: ignore[arg-type]


def test_read_after_a_long_computation_is_asked_too(kc: object) -> None:
    """Past its first seconds a cell's reads are looked for less often, but still found."""
    msg_id = kc.execute("import Glibc\nusleep(2_600_000)\nlet late = readLine()", allow_stdin=True)  # type: ignore[attr-defined]
    _answer_next_input(kc, "later on")
    assert collect(kc, msg_id).status == "ok"  # type: ignore[arg-type]
    assert value(kc, "late") == 'Optional("later on")'  # type: ignore[arg-type]


def test_ctrl_d_ends_input(kc: object) -> None:
    msg_id = kc.execute("let first = readLine()\nlet second = readLine()", allow_stdin=True)  # type: ignore[attr-defined]
    _answer_next_input(kc, "\x04")
    # After end of input, the second read returns nil at once without asking.
    assert collect(kc, msg_id).status == "ok"  # type: ignore[arg-type]
    assert value(kc, "[first, second]") == "[nil, nil]"  # type: ignore[arg-type]
