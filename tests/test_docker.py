"""docker/Dockerfile, checked without a Docker engine: hadolint, and the facts the image relies on."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from swift_kernel.toolchain import find_toolchain

from .e2e.helpers import REPO, venv_tool

DOCKERFILE = REPO / "docker" / "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """Return the Dockerfile's (INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    pairs = []
    for line in joined:
        keyword, _, arguments = line.partition(" ")
        pairs.append((keyword.upper(), arguments.strip()))
    return pairs


@pytest.mark.timeout(60)
def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [venv_tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=50, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.timeout(60)
def test_image_is_the_official_swift_image_of_our_toolchain_version() -> None:
    froms = [arguments for keyword, arguments in instructions(DOCKERFILE) if keyword == "FROM"]
    assert froms == [f"swift:{find_toolchain().short_version()}-bookworm"]


@pytest.mark.timeout(60)
def test_install_step_is_the_setup_script_that_make_setup_runs() -> None:
    runs = [arguments for keyword, arguments in instructions(DOCKERFILE) if keyword == "RUN"]
    setup_runs = [run for run in runs if "scripts/setup.sh" in run]
    assert len(setup_runs) == 1, runs
    assert shlex.split(setup_runs[0])[-2:] == ["bash", "scripts/setup.sh"], setup_runs
    # No second copy of what setup.sh does.
    for run in runs:
        for duplicate in ("pip install", "register.py", "-m venv", "kernelspec install"):
            assert duplicate not in run, f"{duplicate!r} belongs in scripts/setup.sh, not the Dockerfile: {run}"
    makefile = (REPO / "Makefile").read_text()
    stamp_recipe = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert stamp_recipe is not None, "no $(STAMP) rule in the Makefile"
    assert "bash scripts/setup.sh" in stamp_recipe.group(1)


@pytest.mark.timeout(60)
def test_runs_jupyterlab_as_a_non_root_user_on_all_interfaces() -> None:
    steps = instructions(DOCKERFILE)
    users = [arguments for keyword, arguments in steps if keyword == "USER"]
    assert users, "the image would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), users
    first_user = next(i for i, (keyword, _) in enumerate(steps) if keyword == "USER")
    setup = next(i for i, (keyword, arguments) in enumerate(steps) if keyword == "RUN" and "setup.sh" in arguments)
    assert first_user < setup, "setup.sh should run as the user who runs the kernel (its .venv and kernelspecs)"
    assert ("EXPOSE", "8888") in steps
    cmds = [arguments for keyword, arguments in steps if keyword == "CMD"]
    assert len(cmds) == 1
    cmd = cmds[0]
    assert cmd.startswith("["), "exec form, so the server gets signals directly"
    for part in ('"lab"', '"--ip=0.0.0.0"', '"--port=8888"', '"--no-browser"'):
        assert part in cmd, (part, cmd)
    assert ".venv/bin/jupyter" in cmd


@pytest.mark.timeout(60)
def test_keeps_aslr_so_the_default_seccomp_profile_suffices() -> None:
    # Measured by bench/ptrace_sandbox.py: under Docker's default seccomp profile LLDB fails to
    # start the Swift process unless the kernel keeps ASLR; no capability is needed then.
    text = DOCKERFILE.read_text()
    assert ("ENV", "SWIFT_KERNEL_DISABLE_ASLR=0") in instructions(DOCKERFILE)
    assert "docker run --rm -it -p 8888:8888 swift-kernel" in text
    assert "docker build -f docker/Dockerfile" in text
