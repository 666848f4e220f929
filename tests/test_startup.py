"""The kernel answers kernel_info before ipykernel is imported, and loses no request on the way (issue 18).

To make "before" an ordering and not a timing, the kernel is started from the installed
kernelspec with an import gate: a ``sitecustomize`` on its PYTHONPATH makes the first import of
ipykernel wait until the test creates a file. Whatever the kernel answers while the gate is shut
it answers without ipykernel; once the gate opens, ipykernel takes over the same sockets.
"""

from __future__ import annotations

import builtins
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from ipykernel._version import kernel_protocol_version
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from swift_kernel import kernelinfo, lazylsp, lsp
from swift_kernel.lazylsp import LazySourceKitLSP
from swift_kernel.toolchain import find_toolchain

from .conftest import KernelPair, python_children, stop_kernel
from .utils import collect, execute, run_python, until

pytestmark = [pytest.mark.lldb, pytest.mark.timeout(180)]

GATE_SOURCE = '''
import importlib.abc, os, sys, time

class _Gate(importlib.abc.MetaPathFinder):
    """Hold the first import of one module until the test opens the gate (creates the file)."""

    def find_spec(self, name, path, target=None):
        if name == os.environ["SWIFT_KERNEL_TEST_GATED_MODULE"]:
            while not os.path.exists(os.environ["SWIFT_KERNEL_TEST_IMPORT_GATE"]):
                time.sleep(0.01)
        return None

if os.environ.get("SWIFT_KERNEL_TEST_IMPORT_GATE"):
    sys.meta_path.insert(0, _Gate())
'''
# Long enough for any start on a loaded machine; a kernel that cannot answer without ipykernel
# (main before issue 18) never answers while the gate is shut.
SHUT_GATE_WAIT = 30.0


@contextmanager
def gated_kernel(
    tmp_path: Path, module: str = "ipykernel", arguments: tuple[str, ...] = (), **manager_options: Any
) -> Iterator[tuple[BlockingKernelClient, Path]]:
    """Start the `swift` kernel (``arguments`` added) with ``module``'s import held; yield its client and the gate."""
    gate = tmp_path / "gate-open"
    site = tmp_path / "gate-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(GATE_SOURCE)
    python_path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=python_path)
    env.update(SWIFT_KERNEL_TEST_IMPORT_GATE=str(gate), SWIFT_KERNEL_TEST_GATED_MODULE=module)
    km = KernelManager(kernel_name="swift", **manager_options)
    km.start_kernel(env=env, extra_arguments=list(arguments))
    kc = km.client()
    kc.start_channels()
    try:
        yield kc, gate
    finally:
        gate.touch()
        stop_kernel(km, kc)


def reply_to(kc: BlockingKernelClient, msg_id: str, channel: str = "shell", timeout: float = 60) -> dict[str, Any]:
    """Return the reply to ``msg_id`` on ``channel``; fail if it does not come within ``timeout`` seconds."""
    get = kc.get_control_msg if channel == "control" else kc.get_shell_msg
    deadline = time.monotonic() + timeout
    while True:
        try:
            message: dict[str, Any] = get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no reply to {msg_id} on {channel} within {timeout} s")
        if message["parent_header"].get("msg_id") == msg_id:
            return message


def send_control(kc: BlockingKernelClient, msg_type: str) -> str:
    """Send a request with empty content on the control channel; return its id."""
    message = kc.session.msg(msg_type, {})
    kc.control_channel.send(message)
    return str(message["header"]["msg_id"])


def replies_within(kc: BlockingKernelClient, seconds: float) -> list[tuple[str, dict[str, Any]]]:
    """Return every reply on shell and control within ``seconds``, as (channel, message)."""
    found: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for channel, get in (("shell", kc.get_shell_msg), ("control", kc.get_control_msg)):
            try:
                found.append((channel, get(timeout=0.02)))
            except queue.Empty:
                pass
    return found


def expected_content() -> dict[str, Any]:
    version = os.environ.get("SWIFT_KERNEL_SWIFT_VERSION") or find_toolchain().short_version()
    return {"status": "ok", **kernelinfo.kernel_info(version)}


def test_the_protocol_version_is_ipykernels() -> None:
    # ipykernel carries out the protocol; kernelinfo names its version without importing it.
    assert kernelinfo.PROTOCOL_VERSION == kernel_protocol_version


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_kernel_info_is_answered_before_ipykernel_is_imported(tmp_path: Path, transport: str) -> None:
    options: dict[str, Any] = {"transport": "ipc", "ip": str(tmp_path / "kernel-ipc")} if transport == "ipc" else {}
    with gated_kernel(tmp_path, **options) as (kc, gate):
        early = reply_to(kc, kc.kernel_info(), timeout=SHUT_GATE_WAIT)
        early_control = reply_to(kc, send_control(kc, "kernel_info_request"), "control", timeout=SHUT_GATE_WAIT)
        assert not gate.exists()
        assert early["content"] == early_control["content"] == expected_content()
        gate.touch()
        first = execute(kc, "1 + 1")
        assert (first.status, first.result) == ("ok", "2"), first.content
        later = reply_to(kc, kc.kernel_info())
        assert later["content"] == early["content"]
        # One session for the kernel's messages, early or not.
        assert later["header"]["session"] == early["header"]["session"]


def test_subscribers_are_welcomed_before_ipykernel_is_imported(tmp_path: Path) -> None:
    # ipykernel welcomes each iopub subscription (iopub_welcome); a welcome that came only after
    # the handover reached clients that had already taken the kernel for ready.
    with gated_kernel(tmp_path) as (kc, gate):
        deadline = time.monotonic() + SHUT_GATE_WAIT
        types = []
        while "iopub_welcome" not in types and time.monotonic() < deadline:
            try:
                types.append(kc.get_iopub_msg(timeout=0.5)["msg_type"])
            except queue.Empty:
                pass
        assert "iopub_welcome" in types
        assert not gate.exists()


def test_starting_is_not_said_after_the_early_replies(tmp_path: Path) -> None:
    with gated_kernel(tmp_path) as (kc, gate):
        msg_id = kc.kernel_info()
        reply_to(kc, msg_id, timeout=SHUT_GATE_WAIT)
        # An iopub message shows the subscription is through (as wait_for_ready checks).
        while True:
            try:
                kc.get_iopub_msg(timeout=0.5)
                break
            except queue.Empty:
                reply_to(kc, kc.kernel_info(), timeout=SHUT_GATE_WAIT)
        gate.touch()
        cell = kc.execute("()")
        states = []
        while True:
            message = kc.get_iopub_msg(timeout=60)
            if message["msg_type"] == "status":
                states.append(message["content"]["execution_state"])
                if message["parent_header"].get("msg_id") == cell and states[-1] == "idle":
                    break
        # A "starting" after the early idle would leave frontends showing a starting kernel.
        assert "starting" not in states


def test_requests_read_before_the_kernel_is_up_are_handled_once_in_order(tmp_path: Path) -> None:
    with gated_kernel(tmp_path) as (kc, gate):
        reply_to(kc, kc.kernel_info(), timeout=SHUT_GATE_WAIT)
        cell = kc.execute("1 + 1")
        behind = kc.kernel_info()
        # Held behind the cell, in order: nothing comes while ipykernel is not there to run it.
        assert replies_within(kc, 1.0) == []
        gate.touch()
        execution = collect(kc, cell)
        assert (execution.status, execution.result) == ("ok", "2"), execution.content
        info = reply_to(kc, behind)
        assert info["content"] == expected_content()
        # Exactly once: no second reply to either.
        assert replies_within(kc, 1.0) == []


def test_control_requests_during_the_start_are_answered_once_in_order(tmp_path: Path) -> None:
    with gated_kernel(tmp_path) as (kc, gate):
        reply_to(kc, send_control(kc, "kernel_info_request"), "control", timeout=SHUT_GATE_WAIT)
        interrupt = send_control(kc, "interrupt_request")
        behind = send_control(kc, "kernel_info_request")
        assert replies_within(kc, 1.0) == []
        gate.touch()
        replies = [message for channel, message in replies_within(kc, 15.0) if channel == "control"]
        assert [(m["parent_header"]["msg_id"], m["msg_type"]) for m in replies] == [
            (interrupt, "interrupt_reply"),
            (behind, "kernel_info_reply"),
        ]
        assert replies[0]["content"]["status"] == "ok"
        first = execute(kc, "1 + 1")
        assert (first.status, first.result) == ("ok", "2"), first.content


def test_kernel_info_during_the_handover_is_answered_once(tmp_path: Path) -> None:
    """Requests every few milliseconds from the shut gate until well after ipykernel took the sockets."""
    with gated_kernel(tmp_path) as (kc, gate):
        reply_to(kc, kc.kernel_info(), timeout=SHUT_GATE_WAIT)
        sent: dict[str, str] = {}
        replies: list[tuple[str, dict[str, Any]]] = []
        gate.touch()
        cell = kc.execute("()")
        cell_done = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (cell_done is None or time.monotonic() < cell_done + 0.5):
            if len(sent) % 2:
                sent[send_control(kc, "kernel_info_request")] = "control"
            else:
                sent[kc.kernel_info()] = "shell"
            for channel, message in replies_within(kc, 0.01):
                if message["parent_header"].get("msg_id") == cell:
                    cell_done = time.monotonic()
                else:
                    replies.append((channel, message))
        assert cell_done is not None, "the first cell was not answered"
        replies += replies_within(kc, 2.0)
        answered = [message["parent_header"]["msg_id"] for _, message in replies]
        assert sorted(answered) == sorted(sent), f"{len(sent)} sent, {len(answered)} replies"
        assert all(channel == sent[message["parent_header"]["msg_id"]] for channel, message in replies)
        assert all(message["content"] == expected_content() for _, message in replies)


def test_a_cell_sent_right_after_the_start_runs_once() -> None:
    km = KernelManager(kernel_name="swift")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        cell = kc.execute("1 + 1")  # no kernel_info first
        execution = collect(kc, cell)
        assert (execution.status, execution.result) == ("ok", "2"), execution.content
        assert replies_within(kc, 1.0) == []
    finally:
        stop_kernel(km, kc)


def test_lsprotocol_is_not_on_the_way_to_the_first_cell(tmp_path: Path) -> None:
    """The first cell runs while lsprotocol (code intelligence) cannot be imported yet; Tab works once it can."""
    with gated_kernel(tmp_path, module="lsprotocol") as (kc, gate):
        first = execute(kc, "let answer = 1 + 1\nanswer")
        assert (first.status, first.result) == ("ok", "2"), first.content
        assert not gate.exists()
        gate.touch()
        reply = kc.complete("answ", 4, reply=True, timeout=60)
        deadline = time.monotonic() + 60
        # sourcekit-lsp starts once it can be imported; the first requests may find it still warming up.
        while "answer" not in reply["content"]["matches"] and time.monotonic() < deadline:
            time.sleep(0.5)
            reply = kc.complete("answ", 4, reply=True, timeout=60)
        assert "answer" in reply["content"]["matches"], reply["content"]


def test_ipythons_terminal_shell_is_not_on_the_way_to_the_first_cell(tmp_path: Path) -> None:
    """The kernel imports IPython without its terminal shell: with prompt_toolkit held shut it still answers."""
    with gated_kernel(tmp_path, module="prompt_toolkit") as (kc, gate):
        first = execute(kc, "1 + 1", timeout=SHUT_GATE_WAIT)
        assert (first.status, first.result) == ("ok", "2"), first.content
        assert not gate.exists()


def test_jedi_is_not_on_the_way_to_the_first_cell(tmp_path: Path) -> None:
    """IPython's completer would import jedi, which Swift does not use: with jedi held shut the kernel answers."""
    with gated_kernel(tmp_path, module="jedi") as (kc, gate):
        first = execute(kc, "1 + 1", timeout=SHUT_GATE_WAIT)
        assert (first.status, first.result) == ("ok", "2"), first.content
        assert not gate.exists()


JEDI_KEPT_OUT_CHECK = """
import sys
from swift_kernel.__main__ import import_ipython_lightly, jedi_kept_out

import_ipython_lightly()
with jedi_kept_out():
    import swift_kernel.kernel
    import ipykernel.ipkernel
    import IPython.core.completer as completer

assert "jedi" not in sys.modules and not completer.JEDI_INSTALLED
import jedi  # afterwards, as usual

assert jedi.Script.__name__ == "Script"
print("ok")
"""


def test_jedi_is_kept_out_of_the_kernels_imports_and_importable_after() -> None:
    run_python(JEDI_KEPT_OUT_CHECK)


IPYTHON_STAND_IN_CHECK = """
import sys
from swift_kernel.__main__ import import_ipython_lightly

import_ipython_lightly()
import IPython

assert "prompt_toolkit" not in sys.modules and "IPython.terminal.embed" not in sys.modules
assert IPython.embed.__qualname__.startswith("import_ipython_lightly")  # the stand-in's, for now
import IPython.terminal.embed as real

assert real.InteractiveShellEmbed.__name__ == "InteractiveShellEmbed"
assert sys.modules["IPython.terminal.embed"] is real and "prompt_toolkit" in sys.modules
print("ok")
"""

MORE_THAN_EMBED = {
    "IPython/__init__.py": "from .terminal.embed import embed, Shell\n",
    "IPython/terminal/__init__.py": "",
    "IPython/terminal/embed.py": "class Shell:\n    pass\n\ndef embed():\n    return 'the real embed'\n",
}


def test_ipython_is_imported_without_its_terminal_shell_which_comes_when_asked_for() -> None:
    run_python(IPYTHON_STAND_IN_CHECK)


def test_an_ipython_that_wants_more_of_its_terminal_module_gets_the_real_one(tmp_path: Path) -> None:
    for name, text in MORE_THAN_EMBED.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    check = (
        "from swift_kernel.__main__ import import_ipython_lightly\n"
        "import_ipython_lightly()\n"
        "import IPython\n"
        "import IPython.terminal.embed as real\n"
        "assert IPython.Shell is real.Shell and IPython.embed() == 'the real embed'\n"
        "print('ok')\n"
    )
    run_python(check, tmp_path)


def test_the_kernel_spawns_its_lldb_host_before_anything_else(
    fresh_kernel: Callable[..., KernelPair], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The host's start is the critical path: it is spawned before the kernel binds its sockets or
    imports its modules, imports LLDB while the kernel does, and the kernel uses that host."""
    log = tmp_path / "kernel.log"
    monkeypatch.setenv("SWIFT_KERNEL_LOG", str(log))
    km, _ = fresh_kernel()
    steps = [line.split("start-up: ", 1)[1] for line in log.read_text().splitlines() if "start-up: " in line]
    order = [
        next(i for i, step in enumerate(steps) if step.startswith(s))
        for s in ("kernel process running", "LLDB host spawned", "kernel sockets bound", "kernel modules imported")
    ]
    assert order == sorted(order), steps
    hosts = python_children(km)
    assert len(hosts) == 1, hosts
    assert sum(1 for line in log.read_text().splitlines() if "LLDB host spawned" in line) == 1
    # Meanwhile the host imported LLDB, before the kernel's first request to it came.
    assert steps.index("LLDB imported before Init") < steps.index("the LLDB host has its first request"), steps


def test_the_code_intelligence_thread_gives_the_gil_up_often_while_it_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """While lsprotocol is imported and the client made, other threads (the first cell) get the GIL every 0.2 ms."""
    seen: list[float] = []

    class Client:  # a stand-in for lsp.SourceKitLSP: notes the switch interval it is made under
        def __init__(self, executable: str, *, log: logging.Logger) -> None:
            seen.append(sys.getswitchinterval())

    monkeypatch.setattr(lsp, "SourceKitLSP", Client)
    before = sys.getswitchinterval()
    lazy = LazySourceKitLSP("sourcekit-lsp", start=False, log=logging.getLogger("test"))
    lazy.begin()
    assert isinstance(lazy._client(), Client)
    assert seen == [pytest.approx(lazylsp._SWITCH_INTERVAL_WHILE_MADE)] and seen[0] < before / 10, seen
    assert sys.getswitchinterval() == before


def test_closing_the_code_intelligence_while_it_is_made_does_not_wait_and_makes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A restart right after the first cell came while lsprotocol was imported: close waited for the
    import and for sourcekit-lsp to start, only to end it (0.35-0.45 s of every such restart).
    Until the import is done, the shutdown's threads get the GIL every 10 us, not every 0.2 ms."""
    before = sys.getswitchinterval()
    importing, made = threading.Event(), threading.Event()
    go_on = threading.Event()

    class Client:  # a stand-in for lsp.SourceKitLSP whose making takes as long as the test says
        def __init__(self, executable: str, *, log: logging.Logger) -> None:
            made.set()

    def slow_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "lsp" or name.endswith(".lsp"):
            importing.set()
            assert go_on.wait(10)
        return real_import(name, *args, **kwargs)

    real_import = builtins.__import__
    monkeypatch.setattr(lsp, "SourceKitLSP", Client)
    monkeypatch.setattr(builtins, "__import__", slow_import)
    lazy = LazySourceKitLSP("sourcekit-lsp", start=True, log=logging.getLogger("test"))
    lazy.begin()
    assert importing.wait(10)
    closed = threading.Thread(target=lazy.close)
    closed.start()
    closed.join(5)
    assert not closed.is_alive(), "close waited for the import"
    assert sys.getswitchinterval() == pytest.approx(lazylsp._SWITCH_INTERVAL_WHILE_CLOSED)
    go_on.set()
    with pytest.raises(RuntimeError, match="closed"):
        lazy._client()
    until(lambda: sys.getswitchinterval() == before, 10, "the interval stayed as the close set it")
    assert not made.is_set()
    # A client made before the close is closed by it.
    finished = LazySourceKitLSP("sourcekit-lsp", start=False, log=logging.getLogger("test"))
    closes: list[bool] = []
    Client.close = lambda self: closes.append(True)  # type: ignore[attr-defined]
    finished.begin()
    assert isinstance(finished._client(), Client)
    finished.close()
    assert closes == [True]
    # Nothing being imported, nothing to give the GIL up for: the interval is left as it is.
    LazySourceKitLSP("sourcekit-lsp", start=False, log=logging.getLogger("test")).close()
    assert sys.getswitchinterval() == before


def test_the_code_intelligence_is_warming_up_while_made_to_start_and_then_as_its_client_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = threading.Event()

    class Client:  # a stand-in for lsp.SourceKitLSP, made when the test says
        warming_up = True

        def __init__(self, executable: str, *, log: logging.Logger) -> None:
            assert made.wait(10)

        def start(self) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(lsp, "SourceKitLSP", Client)
    lazy = LazySourceKitLSP("sourcekit-lsp", start=True, log=logging.getLogger("test"))
    assert not lazy.warming_up, "nothing begun"
    lazy.begin()
    assert lazy.warming_up, "being made, to start at once"
    made.set()
    until(lazy._ready.done, 10, "the client was never made")
    assert lazy.warming_up
    Client.warming_up = False
    assert not lazy.warming_up
    lazy.close()
    # One made on the first request (start_code_intelligence=False) has no warm-up to wait for.
    on_request = LazySourceKitLSP("sourcekit-lsp", start=False, log=logging.getLogger("test"))
    on_request.begin()
    assert not on_request.warming_up
    on_request.close()


# ----- the end of a kernel: a restart waits for it -------------------------------------------------


def test_the_kernel_process_ends_soon_after_its_shutdown_reply_every_time(
    fresh_kernel: Callable[..., KernelPair],
) -> None:
    """ipykernel's control thread once waited out a 10 s flush timeout in about 1 shutdown of 10."""
    for _ in range(12):
        km, kc = fresh_kernel()
        process = psutil.Process(km.provisioner.process.pid)  # type: ignore[union-attr]
        kc.shutdown(restart=True)
        reply = kc.get_control_msg(timeout=30)
        assert reply["msg_type"] == "shutdown_reply", reply
        # Generous: the process ends within 0.1 s here; the hang was 10 s.
        process.wait(timeout=5)
