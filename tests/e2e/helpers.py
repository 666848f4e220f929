"""Shared pieces of the end-to-end tests: real Jupyter programs started from the project's venv."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
# The tests run under the venv's interpreter; its bin/ holds the jupyter commands they drive.
VENV_BIN = Path(sys.executable).parent
ARTIFACTS = REPO / "test-artifacts"
ARTIFACT_DIRS = pytest.StashKey[list[Path]]()


def record_artifacts(config: pytest.Config, folder: Path) -> None:
    """Remember ``folder`` so that pytest's terminal summary names it, even when output is captured."""
    config.stash.setdefault(ARTIFACT_DIRS, []).append(folder)


def venv_tool(name: str) -> str:
    """Return the path of a command installed in the venv, failing loudly when it is missing."""
    path = VENV_BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run `make setup` (scripts/setup.sh installs the test extras)")
    return str(path)


def system_tool(name: str) -> str:
    """Return the path of a system command, failing loudly when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make setup` (scripts/setup.sh installs it)")
    return path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def jupyter_env(home: Path) -> dict[str, str]:
    """Return an environment whose Jupyter config, data and runtime dirs are private to one test.

    Kernelspecs still come from the venv (sys-prefix), where `make setup` registered them; a
    user-level `swift` kernelspec elsewhere on the machine cannot shadow them.
    """
    env = dict(os.environ)
    for name, sub in {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces",
        "IPYTHONDIR": "ipython",
    }.items():
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(home / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def root_flag(app: str) -> list[str]:
    """Return the flag a Jupyter server app needs to run as root (these machines and CI run as root)."""
    return [f"--{app}.allow_root=True"] if os.geteuid() == 0 else []


def jupyter_server_argv(port: int, token: str, root: Path, *options: str) -> list[str]:
    """Return the command line of a Jupyter Server on 127.0.0.1:``port`` serving ``root``, with ``options``."""
    return [
        venv_tool("jupyter"),
        "server",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--no-browser",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        *options,
        *root_flag("ServerApp"),
    ]


def process_tree(pid: int) -> list[psutil.Process]:
    """Return ``pid``'s process and everything below it."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def assert_all_exit(processes: list[psutil.Process], timeout: float = 20) -> None:
    """Wait for ``processes`` to end; kill and fail on any that outlive ``timeout``."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    described = []
    for process in alive:
        try:
            described.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
            process.kill()
        except psutil.NoSuchProcess:
            continue
    assert not described, f"processes left behind: {described}"


def wait_for_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Poll ``url`` until it answers 200, failing with the server log if the process dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited with {process.returncode} before serving:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            error.close()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout} s:\n{log.read_text()}")


@dataclass
class Server:
    """A Jupyter web server (Lab, Server or Kernel Gateway) running for one test."""

    process: subprocess.Popen[bytes]
    base_url: str
    token: str
    log: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def request(self, method: str, path: str, body: bytes | None = None) -> Any:
        """Send one REST request with the token and return the decoded JSON (or None for 204)."""
        request = urllib.request.Request(self.url(path), data=body, method=method, headers=self.headers)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            data = response.read()
        return json.loads(data) if data else None

    def status(self, method: str, path: str) -> int:
        """Send one REST request with the token and return its HTTP status code."""
        request = urllib.request.Request(self.url(path), method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            error.close()
            return int(error.code)


@contextmanager
def running_server(
    argv: list[str], *, port: int, token: str, env: dict[str, str], log: Path, ready_path: str
) -> Iterator[Server]:
    """Start a Jupyter web server, wait until ``ready_path`` answers, stop it and everything it started."""
    log_file: IO[bytes] = log.open("wb")
    # Its own session, so a stray terminal signal to the test runner does not reach it.
    process = subprocess.Popen(argv, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(process, f"http://127.0.0.1:{port}", token, log)
    try:
        wait_for_http(server.url(f"{ready_path}?token={token}"), process, log)
        yield server
    finally:
        tree = process_tree(process.pid)
        # SIGTERM is the servers' clean stop: they shut their kernels down before exiting.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            log_file.close()
            assert_all_exit(tree)
