"""Hostile and malformed input through the real kernel: every request gets a clear reply (issue 14).

Cells with NUL characters, directives with arguments they cannot take, %include of things that are
not small regular files, names and values that need escaping for Swift, signed requests whose
content is malformed, and processes that end by a signal. The tests that end the Swift process
come last in the file.
"""

from __future__ import annotations

import os
import queue
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from .conftest import KernelPair, descendants, execute_while_compiling, kernel_pid, lldb_host, named
from .utils import Execution, collect, execute, gone, value

pytestmark = [pytest.mark.lldb, pytest.mark.timeout(120)]


def refused(execution: Execution, ename: str, *words: str) -> str:
    """Check that a cell failed with ``ename`` and an evalue naming each of ``words``; return the evalue."""
    assert execution.status == "error", execution.content
    evalue = str(execution.content["evalue"])
    assert execution.content["ename"] == ename, execution.content
    for word in words:
        assert word in evalue, evalue
    assert [e["evalue"] for e in execution.errors] == [evalue]
    return evalue


def still_works(kc: BlockingKernelClient) -> None:
    assert value(kc, "40 + 2") == "42"


# ----- every request gets a reply -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "ename", "words"),
    [
        ('%install-swiftpm-flags "unterminated', "DirectiveError", ["%install-swiftpm-flags", "No closing quotation"]),
        ("%include ~nosuchuser/x.swift", "IncludeError", ["~nosuchuser/x.swift", "no user 'nosuchuser'"]),
        ("%include a\0b.swift", "InvalidCharacter", ["NUL", "line 1, column 11", "%include"]),
        ("%system echo a\0b", "InvalidCharacter", ["NUL", "%system"]),
        ("let fine = 1\n%env P=a\0b", "InvalidCharacter", ["NUL", "line 2", "%env"]),
        ("%timeout 1e10", "DirectiveError", ["%timeout", "30 days", "%timeout off"]),
    ],
    ids=["unterminated quote", "unknown user", "NUL in include", "NUL in system", "NUL in env", "huge timeout"],
)
def test_a_directive_it_cannot_take_gets_an_error_naming_it(
    kc: BlockingKernelClient, code: str, ename: str, words: list[str]
) -> None:
    refused(execute(kc, code, timeout=20), ename, *words)
    still_works(kc)


def test_a_refused_env_leaves_later_commands_working(kc: BlockingKernelClient) -> None:
    refused(execute(kc, "%env SK_BROKEN=a\0b"), "InvalidCharacter", "%env")
    later = execute(kc, "%system echo still fine")
    assert later.status == "ok", later.content
    assert later.stream("stdout") == "still fine\n"


def test_a_nul_in_a_cell_refuses_all_of_it(kc: BlockingKernelClient) -> None:
    # LLDB stopped reading at the NUL: "z1 = 2" was silently dropped and the cell replied ok.
    refused(execute(kc, "var nulCell = 1\0\nnulCell = 2"), "InvalidCharacter", "line 1, column 16")
    assert execute(kc, "nulCell").content["ename"] == "CompileError"  # nothing of it ran


def send_signed(
    kc: BlockingKernelClient, msg_type: str, content: dict[str, Any], channel: str = "shell"
) -> dict[str, Any]:
    """Send a request signed with the session's key, as any client could, and return its reply."""
    request = kc.session.msg(msg_type, content)
    getattr(kc, f"{channel}_channel").send(request)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            reply: dict[str, Any] = getattr(kc, f"get_{channel}_msg")(timeout=1)
        except queue.Empty:
            continue
        if reply["parent_header"].get("msg_id") == request["header"]["msg_id"]:
            return reply
    raise AssertionError(f"no reply to a {msg_type} with content {content!r}")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ({"silent": False}, ["'code'", "missing"]),
        ({"code": 5}, ["'code'", "string", "int"]),
        ({"code": None}, ["'code'", "string", "null"]),
        ({"code": "1", "user_expressions": 7}, ["'user_expressions'", "object"]),
    ],
    ids=["missing", "integer", "null", "bad user_expressions"],
)
def test_malformed_execute_requests_get_an_error_reply(
    kc: BlockingKernelClient, content: dict[str, Any], words: list[str]
) -> None:
    reply = send_signed(kc, "execute_request", content)
    assert reply["msg_type"] == "execute_reply"
    assert reply["content"]["status"] == "error", reply["content"]
    assert reply["content"]["ename"] == "BadRequest"
    for word in words:
        assert word in reply["content"]["evalue"]
    # The history stays searchable (an integer `code` used to break every later search).
    search = {"hist_access_type": "search", "pattern": "*", "output": False, "raw": True}
    history = send_signed(kc, "history_request", search)
    assert history["content"]["status"] == "ok"
    assert all(isinstance(code, str) for _, _, code in history["content"]["history"])
    still_works(kc)


def test_other_malformed_requests_get_an_error_reply(kc: BlockingKernelClient) -> None:
    complete = send_signed(kc, "complete_request", {"code": 3, "cursor_pos": 0})
    assert complete["msg_type"] == "complete_reply"
    assert "'code' must be a string" in complete["content"]["evalue"]
    search = {"hist_access_type": "search", "pattern": 4, "output": False, "raw": True}
    history = send_signed(kc, "history_request", search)
    assert history["msg_type"] == "history_reply"
    assert "'pattern' must be a string or null" in history["content"]["evalue"]
    shutdown = send_signed(kc, "shutdown_request", {}, channel="control")
    assert shutdown["msg_type"] == "shutdown_reply"
    assert "'restart' is missing" in shutdown["content"]["evalue"]
    still_works(kc)


# ----- %include reads only small regular files, off the event loop ---------------------------------


def test_include_refuses_devices_directories_and_fifos(kc: BlockingKernelClient, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.swift"
    os.mkfifo(fifo)
    started = time.monotonic()
    refused(execute(kc, "%include /dev/zero", timeout=20), "IncludeError", "/dev/zero", "character device")
    refused(execute(kc, f'%include "{fifo}"', timeout=20), "IncludeError", "FIFO")
    refused(execute(kc, f'%include "{tmp_path}"', timeout=20), "IncludeError", "directory")
    assert time.monotonic() - started < 20
    still_works(kc)


def test_include_refuses_a_file_past_the_size_limit(kc: BlockingKernelClient, tmp_path: Path) -> None:
    huge = tmp_path / "huge.swift"
    with huge.open("wb") as file:
        file.truncate(64 << 20)  # sparse: 64 MiB that cost no disk
    refused(execute(kc, f'%include "{huge}"', timeout=20), "IncludeError", "larger than 8,388,608 bytes")


def test_include_refuses_nul_and_invalid_utf8(kc: BlockingKernelClient, tmp_path: Path) -> None:
    (tmp_path / "nul.swift").write_bytes(b"let beforeNul = 1\nlet after\0Nul = 2\n")
    (tmp_path / "latin1.swift").write_bytes(b'let caf\xe9 = "x"\n')
    refused(execute(kc, f'%include "{tmp_path / "nul.swift"}"'), "InvalidCharacter", "nul.swift", "line 2, column 10")
    refused(execute(kc, f'%include "{tmp_path / "latin1.swift"}"'), "IncludeError", "not UTF-8", "byte 7")


# ----- escaping for Swift ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ['quote".swift', "back\\slash.swift", "caf\u00e9.swift"])
def test_include_of_a_file_whose_name_needs_escaping(kc: BlockingKernelClient, tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("let escapedInclude = 41\n")
    included = execute(kc, f"%include '{tmp_path / name}'\nescapedInclude + 1")
    assert included.status == "ok", included.content
    assert included.result == "42"
    (tmp_path / name).write_text('let escapedWrong: Int = "x"\n')
    wrong = execute(kc, f"%include '{tmp_path / name}'")
    evalue = refused(wrong, "CompileError", "cannot convert value of type 'String'")
    assert evalue.startswith(str(tmp_path)), evalue
    assert ":1:" in evalue


@pytest.mark.parametrize(
    ("text", "swift"),
    [
        ("caf\u00e9", '"caf\u00e9"'),
        ("tab\there", '"tab\\there"'),
        ("bell\x07", '"bell\\u{07}"'),
        ('q"\\', '"q\\"\\\\"'),
    ],
    ids=["accent", "tab", "control", "quote and backslash"],
)
def test_env_values_reach_swift_as_written(kc: BlockingKernelClient, text: str, swift: str) -> None:
    execution = execute(kc, f"%env SK_ESCAPED={text}\nString(cString: getenv(\"SK_ESCAPED\"))")
    assert execution.status == "ok", execution.content
    assert execution.result == swift
    shell = execute(kc, "%system printf %s \"$SK_ESCAPED\"")
    assert shell.stream("stdout") == text


# ----- the kernel's result channel is out of user code's way ----------------------------------------

PROBE = "struct ChannelProbe: CustomStringConvertible { var n = 7; var description: String { \"probe \\(n)\" } }"


def test_a_cell_that_closes_low_fds_and_opens_a_file_keeps_it_to_itself(
    kc: BlockingKernelClient, tmp_path: Path
) -> None:
    user_file = tmp_path / "mine.txt"
    assert value(kc, '"a described value"') == '"a described value"'  # the channel is in use
    opened = execute(
        kc,
        "import Glibc\n"
        "for fd in Int32(3)...63 { close(fd) }\n"
        f'let userFd = open("{user_file}", O_WRONLY | O_CREAT | O_TRUNC, 0o644)\n'
        "userFd",
    )
    assert opened.status == "ok", opened.content
    assert 3 <= int(opened.result or "-1") <= 63  # the fd the kernel's channel had before
    assert execute(kc, PROBE).status == "ok"
    assert value(kc, "ChannelProbe()") == "probe 7"
    assert value(kc, "close(userFd)") == "0"
    assert user_file.read_text() == ""


def test_junk_written_into_the_result_channel_does_not_break_results(kc: BlockingKernelClient) -> None:
    junk = execute(
        kc,
        "import Glibc\n"
        "var junked = 0\n"
        "for fd in Int32(3)..<4096 {\n"
        "    var target = [CChar](repeating: 0, count: 64)\n"
        '    if readlink("/proc/self/fd/\\(fd)", &target, 63) > 0, String(cString: target).hasPrefix("pipe:"),\n'
        '       write(fd, "result 99999999\\n", 16) == 16 { junked += 1 }\n'
        "}\n"
        "junked",
    )
    assert junk.status == "ok", junk.content
    assert int(junk.result or "0") >= 1  # the channel was found and written into
    assert execute(kc, PROBE).status == "ok"
    for _ in range(2):
        assert value(kc, "ChannelProbe()") == "probe 7"
        assert value(kc, '"text"') == '"text"'


# ----- messages say how a process ended -------------------------------------------------------------


def test_system_says_which_signal_ended_the_command(kc: BlockingKernelClient) -> None:
    execution = execute(kc, "%system kill -9 $$")
    assert execution.stream("stderr") == "%system: killed by SIGKILL\n"


def swift_process(km: Any, name: str) -> psutil.Process:
    found = named(descendants(kernel_pid(km)), name)
    assert len(found) == 1, found
    return found[0]


def test_a_swift_process_killed_by_a_signal_says_which(kc: BlockingKernelClient) -> None:
    execution = execute(kc, "import Glibc\nkill(getpid(), SIGKILL)")
    refused(execution, "SwiftProcessEnded", "while the cell ran (killed by SIGKILL)")
    exited = execute(kc, "import Glibc\nexit(9)")
    refused(exited, "SwiftProcessEnded", "while the cell ran (exit status 9)")


def test_a_debug_server_lost_while_a_cell_runs_is_named(kernel: KernelPair, kc: BlockingKernelClient) -> None:
    km, _ = kernel
    msg_id = kc.execute("var spinning = 0\nwhile spinning >= 0 { spinning &+= 1 }")
    time.sleep(1.0)
    swift_process(km, "lldb-server").kill()
    refused(collect(kc, msg_id, 30), "SwiftProcessEnded", "while the cell ran (its debug server, lldb-server, ended)")
    still_works(kc)


def test_a_debug_server_crash_while_idle_is_not_blamed_on_the_next_cell(
    kernel: KernelPair, kc: BlockingKernelClient
) -> None:
    # A crashing lldb-server takes a while to die: the next cell's compile failed on it and was told
    # the process "ended while the cell ran", though none of the cell's code had run.
    km, _ = kernel
    for _ in range(2):
        still_works(kc)
        swift_process(km, "lldb-server").send_signal(signal.SIGSEGV)
        refused(execute(kc, "1 + 1", timeout=30), "SwiftProcessEnded", "ended before this cell ran")
    still_works(kc)


# ----- a stuck debugger side is ended and replaced (item 6), a long compile too (item 4) ------------


def debugger_side(km: Any, part: str) -> psutil.Process:
    return lldb_host(km) if part == "host" else swift_process(km, "lldb-server")


@pytest.mark.parametrize("part", ["host", "lldb-server"])
def test_a_debugger_side_stopped_while_a_cell_runs_is_ended(
    kernel: KernelPair, kc: BlockingKernelClient, part: str
) -> None:
    km, _ = kernel
    assert value(kc, "var before = 7\nbefore") == "7"
    msg_id = kc.execute("var spinning = 0\nwhile spinning >= 0 { spinning &+= 1 }")
    time.sleep(1.0)
    stopped = debugger_side(km, part)
    stopped.suspend()  # SIGSTOP: it answers nothing until continued
    evalue = refused(collect(kc, msg_id, 60), "LLDBHostEnded", "stopped by a signal", "did not answer for 5 s")
    assert "while the cell ran" in evalue and "earlier variables are gone" in evalue
    assert gone(stopped)
    still_works(kc)
    assert execute(kc, "before").status == "error"  # a fresh Swift process, as the error said


@pytest.mark.parametrize("part", ["host", "lldb-server"])
def test_a_debugger_side_stopped_while_idle_is_ended_at_the_next_cell(
    kernel: KernelPair, kc: BlockingKernelClient, part: str
) -> None:
    km, _ = kernel
    still_works(kc)
    stopped = debugger_side(km, part)
    stopped.suspend()
    refused(execute(kc, "1 + 1", timeout=60), "LLDBHostEnded", "stopped by a signal", "did not answer for 5 s")
    assert gone(stopped)
    still_works(kc)


def test_an_interrupt_during_a_long_compile_ends_the_host(fresh_kernel: Callable[..., KernelPair]) -> None:
    # One line of 6,000 statements: the line limit does not see it, and the compiler took 317 s.
    km, kc = fresh_kernel("swift", extra_arguments=["--SwiftKernel.compile_grace=3"])
    still_works(kc)
    host = lldb_host(km)
    msg_id = execute_while_compiling(km, kc, "var total = 0; " + "; ".join(f"total += {i}" for i in range(6000)), 0.5)
    km.interrupt_kernel()
    execution = collect(kc, msg_id, 90)
    evalue = refused(execution, "KeyboardInterrupt", "the compiler was still working on this cell")
    assert "so the LLDB host was ended while the cell ran" in evalue
    assert "the compiler was still working on this cell 3." in evalue
    assert "the LLDB host is ended to stop it" in execution.stream("stderr")
    assert gone(host)
    still_works(kc)
