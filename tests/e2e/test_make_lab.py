"""The README's `make lab`, run for real: it starts JupyterLab (as root too) with only the `swift` kernelspec."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import REPO, Server, assert_all_exit, free_port, jupyter_env, process_tree, system_tool, wait_for_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def user_env(home: Path) -> dict[str, str]:
    """Return the environment a user's shell would give `make lab`: private Jupyter dirs, no test kernelspecs."""
    env = jupyter_env(home)
    # The tests' signal_kernelspec fixture puts its private spec on JUPYTER_PATH; a user has none.
    env.pop("JUPYTER_PATH", None)
    return env


def test_make_lab_serves_only_the_swift_kernelspec(tmp_path: Path) -> None:
    make = system_tool("make")
    # `make lab` must not reinstall here (a minute of pip under the test's timeout): make test ran
    # `make setup` just before, so the stamp is newer than everything it depends on.
    fresh = subprocess.run([make, "-q", "setup"], cwd=REPO, capture_output=True, timeout=30, check=False)
    assert fresh.returncode == 0, "the setup stamp is stale: run `make setup` first (make test does)"

    port, token = free_port(), "make-lab-test-token"
    env = user_env(tmp_path)
    env["JUPYTER_TOKEN"] = token  # read by Jupyter Server; `make lab` prints a random one otherwise
    log = tmp_path / "make-lab.log"
    with log.open("wb") as log_file:
        # Its own session: make and the JupyterLab it execs are stopped together through the group.
        process = subprocess.Popen(
            [make, "lab", f"PORT={port}"],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        tree = []
        try:
            server = Server(process, f"http://127.0.0.1:{port}", token, log)
            wait_for_http(server.url(f"/api/kernelspecs?token={token}"), process, log, timeout=120)
            tree = process_tree(process.pid)
            specs = server.request("GET", "/api/kernelspecs")["kernelspecs"]
        finally:
            if process.poll() is None:
                tree = tree or process_tree(process.pid)
                # SIGTERM is Jupyter Server's clean stop (it shuts its kernels down); make gets it too.
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
                pytest.fail(f"make lab did not stop within 30 s of SIGTERM:\n{log.read_text()}")
            assert_all_exit(tree)
    output = log.read_text()
    assert "setup:" not in output, f"make lab ran the setup again:\n{output}"
    if os.geteuid() == 0:
        assert "running as root, so JupyterLab is started with --allow-root" in output, output
    swift_specs = {name for name, spec in specs.items() if spec["spec"]["language"] == "swift"}
    assert swift_specs == {"swift"}, json.dumps(specs, indent=1)[:2000]
    # ipykernel's own python3 is the only other one: Jupyter always offers it.
    assert set(specs) <= {"swift", "python3"}, sorted(specs)
    assert specs["swift"]["spec"]["interrupt_mode"] == "message"


def test_kernelspec_list_a_user_sees_has_no_test_kernelspec(tmp_path: Path) -> None:
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter"), "kernelspec", "list", "--json"],
        env=user_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    specs = json.loads(listing.stdout)["kernelspecs"]
    assert {name for name, spec in specs.items() if spec["spec"]["language"] == "swift"} == {"swift"}, sorted(specs)
