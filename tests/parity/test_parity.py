"""The kernel prints what swiftc's program prints, chapter by chapter of the language guide (issue 15).

Each chapter of ``snippets.py`` is one kernel (its snippets' cells in order) and one program
(the same cells concatenated, a marker line printed before each snippet) that swiftc builds. The
programs are built two at a time, once per test session. Snippets that meet a REPL limit expect
the kernel's clear error naming it instead of the program's output.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from ..conftest import KernelPair
from ..utils import execute
from .snippets import CHAPTERS, Snippet

pytestmark = [pytest.mark.lldb, pytest.mark.slow]

SWIFTC = "/opt/swift/usr/bin/swiftc"
# Regex literals as the kernel has them (its LLDB enables bare-slash regexes).
SWIFTC_FLAGS = ("-Onone", "-swift-version", "5", "-enable-bare-slash-regex")


def program_of(snippets: list[Snippet]) -> str:
    """Return one Swift program: each snippet's cells, after a line printing its marker."""
    parts = []
    for snippet in snippets:
        parts.append(f'print("\\u{{1}}parity:{snippet.name}")')
        parts.extend(snippet.cells)
    return "\n".join(parts) + "\n"


def outputs_by_snippet(stdout: str) -> dict[str, str]:
    """Split a program's output at the marker lines into each snippet's output."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines(keepends=True):
        if line.startswith("\x01parity:"):
            current = found.setdefault(line[len("\x01parity:") :].rstrip("\n"), [])
        elif current is not None:
            current.append(line)
    return {name: "".join(lines) for name, lines in found.items()}


def build_and_run(chapter: str, folder: Path) -> dict[str, str]:
    """Build the chapter's program with swiftc, run it, return each snippet's output."""
    source = folder / chapter / "main.swift"
    source.parent.mkdir()
    source.write_text(program_of(CHAPTERS[chapter]))
    binary = source.parent / chapter
    built = subprocess.run(
        [SWIFTC, *SWIFTC_FLAGS, str(source), "-o", str(binary)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        # The Swift driver can leave an empty TemporaryDirectory.* behind in TMPDIR.
        env={**os.environ, "TMPDIR": str(source.parent)},
    )
    assert built.returncode == 0, f"swiftc refused chapter {chapter}:\n{built.stderr}"
    ran = subprocess.run([str(binary)], check=False, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, f"chapter {chapter}'s program failed: {ran.stderr}"
    return outputs_by_snippet(ran.stdout)


@pytest.fixture(scope="session")
def swiftc_outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[dict[str, str]]]]:
    """Every chapter's program being built and run, two at a time: chapter → its snippets' outputs.

    Futures, so that each chapter's test waits for its own program only, and a program swiftc
    refuses fails its own chapter, not every chapter.
    """
    folder = tmp_path_factory.mktemp("parity")
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {chapter: pool.submit(build_and_run, chapter, folder) for chapter in CHAPTERS}


def test_the_snippets_cover_the_guide() -> None:
    names = [snippet.name for snippets in CHAPTERS.values() for snippet in snippets]
    assert len(names) >= 60
    for chapter, snippets in CHAPTERS.items():
        assert len({snippet.name for snippet in snippets}) == len(snippets), chapter
        # Divergent snippets come last: a failed cell may leave LLDB's REPL worse off (L6, L8).
        limits = [snippet.limit is not None for snippet in snippets]
        assert limits == sorted(limits), chapter


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_the_kernel_prints_what_swiftc_prints(
    chapter: str, swiftc_outputs: dict[str, Future[dict[str, str]]], fresh_kernel: Callable[..., KernelPair]
) -> None:
    _, kc = fresh_kernel()
    expected = swiftc_outputs[chapter].result(timeout=600)
    differences = []
    for snippet in CHAPTERS[chapter]:
        printed, failures = [], []
        for cell in snippet.cells:
            run = execute(kc, cell, timeout=120)
            printed.append(run.stream("stdout"))
            if run.status != "ok":
                failures.append(f"{run.content.get('ename')}: {run.content.get('evalue')}")
        assert snippet.name in expected, f"the program printed no marker for {snippet.name!r}"
        if snippet.limit is None:
            if failures or "".join(printed) != expected[snippet.name]:
                differences.append(
                    f"{snippet.name}: kernel {''.join(printed)!r} {failures} != swiftc {expected[snippet.name]!r}"
                )
            continue
        limit_id, text = snippet.limit
        if not any(text in failure for failure in failures):
            differences.append(f"{snippet.name}: expected the kernel's {limit_id} error ({text!r}), got {failures}")
    assert not differences, "\n".join(differences)
