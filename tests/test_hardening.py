"""Hostile and malformed input through the real kernel: every request gets a clear reply (issue 14).

Cells with NUL characters, directives with arguments they cannot take, %include of things that are
not small regular files, names and values that need escaping for Swift, signed requests whose
content is malformed, and processes that end by a signal. The tests that end the Swift process
come last in the file.
"""

from __future__ import annotations

import queue
import time
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from .utils import Execution, execute, value

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
    ],
    ids=["unterminated quote"],
)
def test_a_directive_it_cannot_take_gets_an_error_naming_it(
    kc: BlockingKernelClient, code: str, ename: str, words: list[str]
) -> None:
    refused(execute(kc, code, timeout=20), ename, *words)
    still_works(kc)


def send_signed(kc: BlockingKernelClient, msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
    """Send a request signed with the session's key, as any client could, and return its reply."""
    request = kc.session.msg(msg_type, content)
    kc.shell_channel.send(request)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            reply: dict[str, Any] = kc.get_shell_msg(timeout=1)
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
