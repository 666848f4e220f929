"""Over the wire: Jupyter Server and Jupyter Kernel Gateway run the kernel for a websocket client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session

from .helpers import (
    Server,
    assert_all_exit,
    free_port,
    jupyter_env,
    jupyter_server_argv,
    process_tree,
    running_server,
    venv_tool,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A kernel that answers kernel_info at once is connected in well under a second.
CONNECT_TIMEOUT = 20


class KernelChannels:
    """A Jupyter kernel websocket (/api/kernels/{id}/channels), messages built by jupyter_client's Session."""

    def __init__(self, server: Server, kernel_id: str) -> None:
        self.session = Session(key=b"", username="e2e")
        path = f"/api/kernels/{kernel_id}/channels?session_id={self.session.session}"
        url = server.url(path).replace("http://", "ws://", 1)
        # The server answers the websocket handshake only after the kernel's kernel_info_reply (or
        # after giving up on it at 60 s): a kernel that loses that request shows up here.
        try:
            self.socket = websocket.create_connection(url, header=server.headers, timeout=CONNECT_TIMEOUT)
        except websocket.WebSocketTimeoutException:
            log = server.log.read_text().splitlines()
            problems = "\n".join(line for line in log if "kernel_info" in line or "Error" in line)
            pytest.fail(f"websocket not accepted within {CONNECT_TIMEOUT} s; the server log says:\n{problems}")
        self.socket.settimeout(60)

    def close(self) -> None:
        self.socket.close()

    def send(self, msg_type: str, content: dict[str, Any], channel: str = "shell") -> str:
        msg = self.session.msg(msg_type, content)
        msg["channel"] = channel
        self.socket.send(json.dumps(msg, default=json_default))
        return str(msg["header"]["msg_id"])

    def start(self, code: str) -> str:
        content = {"code": code, "silent": False, "store_history": True, "allow_stdin": False}
        return self.send("execute_request", content)

    def collect(self, msg_id: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Return the execute_reply to ``msg_id`` and its iopub output, once the kernel is idle again."""
        deadline = time.monotonic() + timeout
        reply: dict[str, Any] | None = None
        outputs: list[dict[str, Any]] = []
        idle = False
        while reply is None or not idle:
            self.socket.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.socket.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_reply":
                reply = msg
            elif msg["msg_type"] == "status":
                idle = msg["content"]["execution_state"] == "idle"
            elif msg["msg_type"] in ("stream", "execute_result", "error", "display_data"):
                outputs.append(msg)
        return reply["content"], outputs

    def value(self, code: str) -> str:
        """Run ``code`` and return its text/plain result, failing on anything else."""
        reply, outputs = self.collect(self.start(code))
        assert reply["status"] == "ok", reply
        results = [o["content"]["data"]["text/plain"] for o in outputs if o["msg_type"] == "execute_result"]
        assert len(results) == 1, outputs
        return str(results[0])


def assert_server_sees_idle(server: Server, kernel_id: str, timeout: float = 30) -> None:
    """The server's REST model of the kernel comes to ``idle``, as the websocket already saw.

    Jupyter Server records ``execution_state`` from its own IOPub subscription, a second socket its
    event loop reads independently of the websocket's: just after the websocket's ``idle``, the REST
    model may still say ``busy`` (seen once in CI). The state is polled until it says ``idle``; the
    limit only catches a kernel that never goes idle.
    """
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        state = server.request("GET", f"/api/kernels/{kernel_id}")["execution_state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == "idle":
            return
        time.sleep(0.02)
    pytest.fail(f"the server's execution_state never came to idle within {timeout} s: {seen}")


def check_execute_interrupt_and_kept_variable(server: Server) -> None:
    """The checks shared by both servers: REST kernel, websocket execute, REST interrupt, state kept."""
    specs = server.request("GET", "/api/kernelspecs")
    assert "swift" in specs["kernelspecs"], sorted(specs["kernelspecs"])
    assert specs["kernelspecs"]["swift"]["spec"]["language"] == "swift"

    kernel = server.request("POST", "/api/kernels", json.dumps({"name": "swift"}).encode())
    kernel_id = kernel["id"]
    assert kernel["name"] == "swift"
    channels = KernelChannels(server, kernel_id)
    try:
        reply, outputs = channels.collect(channels.start('var kept = 41\nprint("ready \\(kept)")'))
        assert reply["status"] == "ok", reply
        assert "".join(o["content"]["text"] for o in outputs if o["msg_type"] == "stream") == "ready 41\n"
        assert channels.value("kept + 1") == "42"

        loop = channels.start("while true { kept &+= 0 }")
        time.sleep(1.0)  # let it get well into the loop
        sent = time.monotonic()
        assert server.request("POST", f"/api/kernels/{kernel_id}/interrupt") is None  # 204 No Content
        reply, outputs = channels.collect(loop, timeout=30)
        latency = time.monotonic() - sent
        assert reply["status"] == "error", reply
        assert reply["ename"] == "KeyboardInterrupt", reply
        assert [o["content"]["ename"] for o in outputs if o["msg_type"] == "error"] == ["KeyboardInterrupt"]
        assert latency < 5, f"interrupt reply took {latency:.2f} s"

        assert channels.value("kept + 1") == "42"
        assert_server_sees_idle(server, kernel_id)
    finally:
        channels.close()
    swift_kernels = [p for p in process_tree(server.process.pid)[1:] if "swift_kernel" in " ".join(p.cmdline())]
    # The kernel and its LLDB host (python -m swift_kernel.host), which runs the Swift process.
    kernel_processes = [p for p in swift_kernels if "swift_kernel.host" not in " ".join(p.cmdline())]
    assert len(kernel_processes) == 1, swift_kernels
    below_kernel = process_tree(kernel_processes[0].pid)
    assert any("swift_kernel.host" in " ".join(p.cmdline()) for p in below_kernel), below_kernel
    assert any(p.name() == "repl_swift" for p in below_kernel), below_kernel
    assert server.request("DELETE", f"/api/kernels/{kernel_id}") is None
    assert_all_exit(below_kernel)
    assert server.status("GET", f"/api/kernels/{kernel_id}") == 404


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    return tmp_path


@pytest.fixture
def jupyter_server(home: Path) -> Iterator[Server]:
    port, token = free_port(), uuid.uuid4().hex
    argv = jupyter_server_argv(port, token, home / "root")
    env = jupyter_env(home)
    log = home / "server.log"
    with running_server(argv, port=port, token=token, env=env, log=log, ready_path="/api/status") as server:
        yield server


@pytest.fixture
def kernel_gateway(home: Path) -> Iterator[Server]:
    port, token = free_port(), uuid.uuid4().hex
    argv = [
        venv_tool("jupyter"),
        "kernelgateway",
        "--KernelGatewayApp.ip=127.0.0.1",
        f"--KernelGatewayApp.port={port}",
        f"--KernelGatewayApp.auth_token={token}",
        "--KernelGatewayApp.default_kernel_name=swift",
    ]
    env = jupyter_env(home)
    log = home / "gateway.log"
    with running_server(argv, port=port, token=token, env=env, log=log, ready_path="/api/kernelspecs") as server:
        yield server


@pytest.mark.timeout(120)
def test_jupyter_server_rest_and_websocket(jupyter_server: Server) -> None:
    check_execute_interrupt_and_kept_variable(jupyter_server)


@pytest.mark.timeout(120)
def test_kernel_gateway_rest_and_websocket(kernel_gateway: Server) -> None:
    check_execute_interrupt_and_kept_variable(kernel_gateway)
