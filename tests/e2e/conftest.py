"""End-to-end test plumbing: name the artifact folders a run wrote at the end of pytest's report."""

from __future__ import annotations

import pytest

from .helpers import ARTIFACT_DIRS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for folder in config.stash.get(ARTIFACT_DIRS, []):
        terminalreporter.write_line(f"e2e artifacts: {folder}")
