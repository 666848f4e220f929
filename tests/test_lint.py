"""The package passes its own linters: ruff (see pyproject.toml) and mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "command",
    [
        [
            str(BIN / "ruff"),
            "check",
            "swift_kernel",
            "swift_kernel_launcher.py",
            "tests",
            "bench",
            "deploy",
            "register.py",
        ],
        [str(BIN / "mypy"), "swift_kernel", "swift_kernel_launcher.py"],
    ],
    ids=["ruff", "mypy"],
)
def test_linter_is_clean(command: list[str]) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
