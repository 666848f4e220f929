"""Catch imports of modules that do not exist, which LLDB's REPL accepts without a word.

Measured with Swift 6.3.1: ``import NoSuchModule`` evaluates "successfully" in REPL mode and LLDB
answers its first use with "module 'NoSuchModule' has no member named ...", so a misspelt
``import Foundatoin`` only shows up later, as names that cannot be found. Before a cell runs, the
kernel asks the toolchain's compiler about each module the cell imports that it has not seen
imported before (``swiftc -typecheck`` of a file of imports, with the installed packages' paths:
~35 ms when a module is missing, ~80 ms for Foundation) and refuses the cell with the compiler's
own "no such module" error.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import CellError
from .swiftlex import MULTI_LINE_STRING

_IMPORT = re.compile(
    r"^[ \t]*(?:@\w+(?:\([^)\n]*\))?[ \t]+)*import[ \t]+"
    r"(?:(?:typealias|struct|class|enum|protocol|let|var|func)[ \t]+)?([A-Za-z_]\w*)",
    re.MULTILINE,
)
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_MISSING = re.compile(r"^(?P<file>.*?):(?P<line>\d+):\d+: error: no such module '(?P<name>[^']+)'", re.MULTILINE)


@dataclass(frozen=True)
class Import:
    """One module a cell imports, and where (1-based line and column of the module's name)."""

    module: str
    line: int
    column: int


def _blank(match: re.Match[str]) -> str:
    # Keep the line count, so that the imports after a string or comment keep their line numbers.
    return "\n" * match.group().count("\n")


def imported_modules(code: str) -> list[Import]:
    """Return the modules ``code`` imports at the start of a line, outside strings and comments."""
    masked = _BLOCK_COMMENT.sub(_blank, re.sub(MULTI_LINE_STRING, _blank, code))
    found = []
    for match in _IMPORT.finditer(masked):
        line = masked.count("\n", 0, match.start(1)) + 1
        column = match.start(1) - (masked.rfind("\n", 0, match.start(1)) + 1) + 1
        found.append(Import(match.group(1), line, column))
    return found


def missing_import_error(code: str, cell_name: str, missing: list[Import]) -> CellError:
    """Return the CompileError of a cell that imports modules that do not exist."""
    lines = code.split("\n")
    blocks = []
    for item in missing:
        source = lines[item.line - 1] if item.line <= len(lines) else ""
        caret = " " * (item.column - 1) + "^"
        header = f"{cell_name}:{item.line}:{item.column}: error: no such module '{item.module}'"
        blocks.append(f"{header}\n{source}\n{caret}")
    first = missing[0]
    evalue = f"{cell_name}:{first.line}:{first.column}: no such module '{first.module}'"
    return CellError("CompileError", evalue, blocks)


@dataclass
class ModuleChecker:
    """Ask the toolchain's compiler whether modules exist; remember the ones that do."""

    swiftc: Path
    known: set[str] = field(default_factory=set)
    timeout: float = 30.0

    def missing(self, imports: list[Import], module_dirs: list[str], module_maps: list[str]) -> list[Import]:
        """Return the imports whose module the compiler cannot find (any thread; blocks ~35-100 ms)."""
        unknown = sorted({item.module for item in imports} - self.known)
        if not unknown:
            return []
        with tempfile.TemporaryDirectory(prefix="swift-kernel-imports-") as directory:
            probe = Path(directory) / "imports.swift"
            probe.write_text("".join(f"import {name}\n" for name in unknown))
            command = [str(self.swiftc), "-typecheck", str(probe)]
            for module_dir in module_dirs:
                command += ["-I", module_dir]
            for module_map in module_maps:
                command += ["-Xcc", f"-fmodule-map-file={module_map}"]
            try:
                # The Swift driver leaves an empty TemporaryDirectory.* in TMPDIR per run: here.
                environment = {**os.environ, "TMPDIR": directory}
                result = subprocess.run(
                    command, capture_output=True, text=True, timeout=self.timeout, check=False, env=environment
                )
            except (OSError, subprocess.TimeoutExpired):
                # No verdict: let LLDB have the cell rather than refuse it on a guess.
                return []
        absent = {match.group("name") for match in _MISSING.finditer(result.stderr)}
        self.known.update(name for name in unknown if name not in absent)
        return [item for item in imports if item.module in absent]
