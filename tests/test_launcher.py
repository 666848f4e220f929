"""The kernel, its LLDB host and its gateway launcher import their own modules from any folder.

They are started through ``swift_kernel_launcher``. Jupyter starts a kernel in its notebook's
folder, and ``python -m`` puts the working directory first on ``sys.path``. Each test starts from
a folder that holds Python files named like modules the kernel imports, each failing when imported.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from swift_kernel import launch_arguments
from swift_kernel.toolchain import find_toolchain

from .conftest import KernelPair
from .utils import execute

pytestmark = [pytest.mark.lldb, pytest.mark.timeout(180)]

# The package itself (a checkout of this project), a standard module, a third-party one.
LOOKALIKES = ("swift_kernel/__init__.py", "queue.py", "zmq.py")
WORKING_DIRECTORY = "import Foundation\nprint(FileManager.default.currentDirectoryPath)"


def notebook_folder(tmp_path: Path) -> Path:
    """Make a folder of Python files named like the kernel's modules, each raising ImportError."""
    folder = tmp_path / "notebooks"
    for name in LOOKALIKES:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"raise ImportError({name!r} ' was imported from the notebook folder')\n")
    return folder


def test_a_kernel_started_among_lookalike_modules_runs_cells_in_that_folder(
    tmp_path: Path, fresh_kernel: Callable[..., KernelPair]
) -> None:
    # The installed kernelspec's argv, and the LLDB host the kernel spawns in the same folder.
    folder = notebook_folder(tmp_path)
    _, kc = fresh_kernel("swift", cwd=str(folder))
    run = execute(kc, WORKING_DIRECTORY)
    assert run.status == "ok", run.content
    assert run.stream().strip() == str(folder)


def last_lines(path: Path, count: int = 20) -> str:
    """The last ``count`` lines of ``path`` (a log), or a note that it is missing."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-count:]) if path.exists() else f"(no {path.name})"


def threads_of(pid: int) -> str:
    """Each thread of ``pid``: its name, state and what it waits in (for a process that does not end)."""
    described = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
        try:
            name = (task / "comm").read_text().strip()
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
            described.append(f"{task.name} {name} {state} {(task / 'wchan').read_text().strip()}")
        except OSError:
            continue
    return "; ".join(described)


def test_the_kernel_started_without_the_loader_path_runs_again_through_the_launcher(tmp_path: Path) -> None:
    # Outside the kernelspec the kernel sets LD_LIBRARY_PATH and runs itself again (toolchain.ensure_loader_path).
    folder = notebook_folder(tmp_path)
    connection_file = tmp_path / "connection.json"
    write_connection_file(str(connection_file), ip="127.0.0.1")
    env = {key: value for key, value in os.environ.items() if key != "LD_LIBRARY_PATH"}
    # A debug log and stderr in files: what it did, should it not end (a pipe nobody reads could block it).
    log, stderr = tmp_path / "kernel.log", tmp_path / "stderr.txt"
    env["SWIFT_KERNEL_LOG"] = str(log)
    command = [sys.executable, *launch_arguments(None, "-f", str(connection_file))]
    with stderr.open("w") as stderr_file:
        process = psutil.Popen(command, cwd=folder, env=env, stderr=stderr_file)
    kc = BlockingKernelClient(connection_file=str(connection_file))
    kc.load_connection_file()
    kc.start_channels()
    children: list[psutil.Process] = []
    try:
        kc.wait_for_ready(timeout=60)
        run = execute(kc, WORKING_DIRECTORY)
        assert run.status == "ok", run.content
        assert run.stream().strip() == str(folder)
        loader_path = process.environ().get("LD_LIBRARY_PATH", "").split(":")
        assert all(str(d) in loader_path for d in find_toolchain().library_dirs), loader_path
        children = process.children(recursive=True)
        kc.shutdown()
        try:
            process.wait(timeout=30)
        except psutil.TimeoutExpired:
            pytest.fail(
                f"the kernel had not ended 30 s after its shutdown request; threads: {threads_of(process.pid)}\n"
                f"log:\n{last_lines(log)}\nstderr:\n{last_lines(stderr)}"
            )
    finally:
        kc.stop_channels()
        if process.is_running():
            process.kill()
            process.wait(timeout=30)
    _, alive = psutil.wait_procs(children, timeout=10)
    for left in alive:
        left.kill()
    assert not alive, f"left running: {alive}"
    assert process.returncode == 0, last_lines(stderr)


def test_the_gateway_launcher_starts_among_lookalike_modules(tmp_path: Path) -> None:
    folder = notebook_folder(tmp_path)
    command = [sys.executable, *launch_arguments("swift_kernel.gateway", "--help")]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "--response-address" in done.stdout


def test_the_launcher_starts_in_a_folder_removed_since(tmp_path: Path) -> None:
    # A server started in a folder deleted since: os.getcwd() fails, and python -m adds nothing.
    folder = tmp_path / "removed"
    folder.mkdir()
    command = [sys.executable, *launch_arguments("swift_kernel.gateway", "--help")]
    script = f"cd {shlex.quote(str(folder))} && rmdir {shlex.quote(str(folder))} && exec {shlex.join(command)}"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "--response-address" in done.stdout
