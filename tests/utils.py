"""Helpers for driving a real kernel through jupyter_client in tests."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

TIMEOUT = 60
REPO = Path(__file__).resolve().parents[1]
# What the error of a cell stopped by a crash in another thread (one it or an earlier cell started) adds.
OTHER_THREAD = "in another thread: it is stopped for good, and the cell was stopped with it"
# The same in a task (a thread of Swift concurrency's pool).
IN_A_TASK = (
    "in a task: its thread is stopped for good, so async code has one thread fewer from now on (with "
    "none left, await waits for ever: restart the kernel then), and the cell was stopped with it"
)


def register_private_kernelspec(prefix: Path, name: str, *options: str) -> Path:
    """Register a Swift kernelspec for this Python under ``prefix``; return the directory to put on JUPYTER_PATH.

    For kernelspecs that only tests and benchmarks use (`swift-signal`): users see only `swift`.
    """
    subprocess.run(
        [sys.executable, str(REPO / "register.py"), "--prefix", str(prefix), "--name", name, *options],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return prefix / "share" / "jupyter"


@dataclass
class Execution:
    """Everything one execute_request produced."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.reply["content"]["status"])

    @property
    def content(self) -> dict[str, Any]:
        return dict(self.reply["content"])

    def stream(self, name: str = "stdout") -> str:
        return "".join(
            m["content"]["text"] for m in self.messages if m["msg_type"] == "stream" and m["content"]["name"] == name
        )

    @property
    def result(self) -> str | None:
        for m in self.messages:
            if m["msg_type"] == "execute_result":
                return str(m["content"]["data"]["text/plain"])
        return None

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [m["content"] for m in self.messages if m["msg_type"] == "error"]

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] == msg_type]


def flush_channels(kc: BlockingKernelClient) -> None:
    """Drop every message waiting on iopub and shell."""
    for channel in (kc.iopub_channel, kc.shell_channel):
        while True:
            try:
                channel.get_msg(timeout=0.05)
            except Exception:  # noqa: BLE001 - queue.Empty: nothing left
                break


def collect(kc: BlockingKernelClient, msg_id: str, timeout: float = TIMEOUT) -> Execution:
    """Wait for the reply to ``msg_id`` and every iopub message it caused, up to its last idle status.

    Two things make "the first idle" the wrong end: ipykernel 7 can publish a stray busy/idle pair
    carrying the request's parent before the request runs (while it handles a burst of control
    messages), and a client that just connected may miss the start of iopub (a slow subscriber).
    So the end is an idle after execute_input, or, with the reply in hand, a second of quiet.
    """
    deadline = time.monotonic() + timeout
    messages: list[dict[str, Any]] = []
    reply: dict[str, Any] | None = None
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            if reply is None:
                reply = _reply_if_sent(kc, msg_id, wait=0.01)
                if reply is not None:
                    # The quiet second starts now: the cell's last iopub messages (its error) may
                    # still be on their way, sent just before this reply after a long silence.
                    quiet_since = time.monotonic()
            if reply is not None and time.monotonic() - quiet_since > 1.0:
                return Execution(reply, messages)
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        quiet_since = time.monotonic()
        if msg["msg_type"] != "status":
            messages.append(msg)
            continue
        if msg["content"]["execution_state"] != "idle":
            continue
        ran = any(m["msg_type"] == "execute_input" for m in messages)
        reply = reply or _reply_if_sent(kc, msg_id, wait=max(1.0, deadline - time.monotonic()) if ran else 0.5)
        if reply is not None and (ran or reply["content"]["status"] == "aborted"):
            return Execution(reply, messages)
    raise TimeoutError(f"no reply and idle status for {msg_id} within {timeout} s")


def _reply_if_sent(kc: BlockingKernelClient, msg_id: str, wait: float) -> dict[str, Any] | None:
    """Return the shell reply to ``msg_id`` if it arrives within ``wait`` seconds, dropping others."""
    while True:
        try:
            reply: dict[str, Any] = kc.get_shell_msg(timeout=wait)
        except queue.Empty:
            return None
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def ok(execution: Execution) -> Execution:
    """Fail with the reply when a cell did not run cleanly; return it for chaining."""
    assert execution.status == "ok", execution.content
    assert execution.errors == [], execution.errors
    return execution


def count_of(execution: Execution) -> int:
    """Return the execution count the cell's reply carries."""
    return int(execution.content["execution_count"])


def single_error(execution: Execution) -> dict[str, object]:
    """Return the one iopub error of a failed cell, checking it matches the reply."""
    assert execution.status == "error", execution.content
    assert len(execution.errors) == 1, execution.errors
    error = execution.errors[0]
    for key in ("ename", "evalue", "traceback"):
        assert execution.content[key] == error[key]
    return error


def execute(kc: BlockingKernelClient, code: str, timeout: float = TIMEOUT, **kwargs: Any) -> Execution:
    """Run ``code`` and return its reply and output."""
    msg_id = kc.execute(code, **kwargs)
    return collect(kc, msg_id, timeout)


def execute_in_notebook(kc: BlockingKernelClient, code: str, cell_id: str = "cell-1") -> Execution:
    """Run ``code`` as JupyterLab runs a notebook cell: its request names the cell (metadata cellId)."""
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": True,
        "stop_on_error": True,
    }
    message = kc.session.msg("execute_request", content, metadata={"cellId": cell_id})
    kc.shell_channel.send(message)
    return collect(kc, message["header"]["msg_id"])


def is_idle(msg: dict[str, Any]) -> bool:
    """Whether ``msg`` is an idle status (the end of the request it answers)."""
    return bool(msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle")


def interrupt_after(
    km: KernelManager, kc: BlockingKernelClient, code: str, delay: float, timeout: float = TIMEOUT
) -> tuple[Execution, float]:
    """Start ``code``, interrupt it after ``delay`` seconds; return the execution and the reply latency."""
    msg_id = kc.execute(code)
    time.sleep(delay)
    sent = time.monotonic()
    km.interrupt_kernel()
    execution = collect(kc, msg_id, timeout)
    return execution, time.monotonic() - sent


def value(kc: BlockingKernelClient, expression: str) -> str | None:
    """Evaluate a Swift expression and return its text/plain result, failing loudly on errors."""
    execution = execute(kc, expression)
    assert execution.status == "ok", execution.content
    return execution.result


@dataclass
class FakeValue:
    """What the explorer reads of an SBValue (with the SB API's method names): name, type, value, summary, children."""

    name: str = ""
    type: str = "Int"
    value: str | None = None
    summary: str | None = None
    children: list[FakeValue] = field(default_factory=list)

    def GetName(self) -> str:
        return self.name

    def GetDisplayTypeName(self) -> str:
        return self.type

    def GetTypeName(self) -> str:
        return self.type

    def GetValue(self) -> str | None:
        return self.value

    def GetSummary(self) -> str | None:
        return self.summary

    def GetNumChildren(self, most: int = 1 << 31) -> int:
        return min(len(self.children), most)

    def GetChildAtIndex(self, index: int) -> FakeValue:
        return self.children[index]


def run_python(code: str, *path: Path) -> None:
    """Run ``code`` in a fresh Python with ``path`` and this repository first on its path; it must print ok."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in (*path, REPO)))
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def until(predicate: Callable[[], object], timeout: float, message: str = "") -> None:
    """Wait until ``predicate()`` is true, checking every 20 ms; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message or f"not true within {timeout} s"
        time.sleep(0.02)


def gone(process: psutil.Process | int) -> bool:
    """Whether a process (or pid) has ended: exited, reaped or a zombie. Safe against it ending while asked."""
    try:
        if isinstance(process, int):
            process = psutil.Process(process)
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
