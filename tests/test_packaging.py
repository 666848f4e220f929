"""Packaging: the wheel builds without a warning from setuptools and carries the kernel's data files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_wheel_builds_quietly_with_the_logos_and_the_prelude(tmp_path: Path) -> None:
    # Build isolation, as `pip install -e .` in scripts/setup.sh does: the setuptools it fetches
    # is the one whose deprecation banners (license table, data folders missing from packages)
    # filled make setup's output.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    for noise in ("Warning", "deprecated", "would be ignored", "!!"):
        assert noise not in output, output
    (wheel,) = tmp_path.glob("swift_kernel-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "swift_kernel/swift/prelude.swift" in names
    assert "swift_kernel_launcher.py" in names  # the kernelspec's argv runs it
    assert {"swift_kernel/resources/logo-32x32.png", "swift_kernel/resources/logo-64x64.png"} <= names
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(wheel).read(metadata).decode()


def test_setup_leaves_the_kernels_modules_compiled() -> None:
    # Where Python writes no bytecode (PYTHONDONTWRITEBYTECODE, a read-only checkout), each kernel
    # start and each LLDB host compiled the kernel's modules again unless `make setup` had (0.1 s).
    # After editing them, `make setup` (which `make test` runs) compiles them again.
    imported = subprocess.run(
        [sys.executable, "-v", "-c", "import swift_kernel.kernel, swift_kernel.host, swift_kernel_launcher"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=REPO,
    )
    compiled = [
        line for line in imported.stderr.splitlines() if line.startswith("# code object from") and line.endswith(".py")
    ]
    ours = [line for line in compiled if f"{REPO / 'swift_kernel'}/" in line or "swift_kernel_launcher" in line]
    assert not ours, f"compiled at import (run make setup): {ours}"
