"""Swift source before it reaches the compiler: the checks a cell or an included file must pass,
and reading an ``%include``d file safely. No Jupyter, no LLDB.

LLDB takes source as a C string, so a NUL character silently ends it: the rest of the cell would
never run, with no word said. The compiler's time grows steeply with the number of top-level
statements and cannot be interrupted, hence the line limit. An included file is read with a
bounded size and only if it is a regular file: ``/dev/zero`` would fill the kernel's memory, and a
FIFO would block the read until some other process writes to it.
"""

from __future__ import annotations

import os
import re
import stat

from .asyncwrap import mask_literals
from .diagnostics import CellError, compile_error

_DIRECTIVE = re.compile(r"[ \t]*(%[A-Za-z][\w-]*)")
# Characters no source can carry to the compiler: NUL (LLDB takes a C string) and lone surrogates
# (which JSON's \ud800 escapes can produce, and which UTF-8 cannot encode).
_UNCOMPILABLE = re.compile("[\0\ud800-\udfff]")


class SourceError(ValueError):
    """Source the kernel refuses to compile; the message says why and what to do."""

    def __init__(self, message: str, ename: str = "IncludeError") -> None:
        super().__init__(message)
        # The error's name in the cell's reply.
        self.ename = ename


def lines_of_code(code: str) -> int:
    """Count the lines the compiler works on: neither blank nor only a ``//`` comment."""
    return sum(1 for line in code.split("\n") if line.strip() and not line.lstrip().startswith("//"))


def _line_and_column(code: str, offset: int) -> tuple[int, int]:
    """Return the 1-based line and column of ``offset`` in ``code``."""
    return code.count("\n", 0, offset) + 1, offset - (code.rfind("\n", 0, offset) + 1) + 1


def check_source(code: str, name: str, max_lines: int) -> None:
    """Raise SourceError when ``code`` (called ``name`` in the message) must not be compiled."""
    bad = _UNCOMPILABLE.search(code)
    if bad is not None:
        at = bad.start()
        line_start = code.rfind("\n", 0, at) + 1
        row, column = _line_and_column(code, at)
        where = f"line {row}, column {column}"
        directive = _DIRECTIVE.match(code, line_start)
        if directive is not None:
            where += f", in its {directive.group(1)} line"
        if bad.group() == "\0":
            raise SourceError(
                f"{name} contains a NUL character (\\0) at {where}: the compiler would silently drop everything "
                "after it, and no command, path or environment variable can hold one, so nothing was run; remove "
                "it (in a Swift string literal, write \\0)",
                "InvalidCharacter",
            )
        raise SourceError(
            f"{name} contains a lone surrogate (U+{ord(bad.group()):04X}) at {where}, which is not Unicode text: "
            "nothing was run",
            "InvalidCharacter",
        )
    lines = lines_of_code(code)
    if lines > max_lines:
        raise SourceError(
            f"{name} has {lines} lines of code; more than {max_lines} would keep the compiler busy for "
            "minutes, beyond the reach of interrupts: split it (SwiftKernel.max_cell_lines)",
            "CellTooLarge",
        )


# An Xcode editor placeholder (`<#value#>`): swiftc refuses one; LLDB compiles it with a warning
# and the code traps when it gets there.
_PLACEHOLDER = re.compile(r"<#.*?#>")


def placeholder_error(code: str, name: str) -> CellError | None:
    """Return the compile error swiftc gives for editor placeholders in ``code`` (None if it has none).

    Each placeholder outside string literals and comments gets a diagnostic at its line and
    column, as the compiler's own read (``<Cell 2>:1:9: error: editor placeholder in source file``).
    """
    lines = code.split("\n")
    diagnostics: list[str] = []
    for match in _PLACEHOLDER.finditer(mask_literals(code)):
        row, column = _line_and_column(code, match.start())
        source_line = lines[row - 1]
        width = min(len(match.group()), len(source_line) - column + 1)
        diagnostics += [
            f"error: {name}:{row}:{column}: editor placeholder in source file (replace {match.group()} with code)",
            source_line,
            " " * (column - 1) + "^" + "~" * (width - 1),
        ]
    return compile_error("\n".join(diagnostics)) if diagnostics else None


def expand_user(path: str) -> str:
    """Expand a leading ``~`` or ``~user``; raise SourceError for a user that does not exist."""
    expanded = os.path.expanduser(path)
    if path.startswith("~") and expanded == path:
        user = path[1:].split("/", 1)[0]
        raise SourceError(f"{path}: there is no user {user!r}" if user else f"{path}: no home directory is known")
    return expanded


def read_source_file(path: str, max_bytes: int) -> str:
    """Return the text of the regular file at ``path``: at most ``max_bytes`` of UTF-8.

    Opened without blocking (a FIFO's open would wait for a writer) and read only once it is
    known to be a regular file. Runs in a worker thread: even a regular file may be slow to
    read (a network file system), and the kernel's event loop must keep answering.
    """
    try:
        fd = os.open(expand_user(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as error:
        raise SourceError(f"{path}: {error.strerror}") from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(f"{path} is {_kind(info.st_mode)}, not a regular file: only Swift files can be included")
        if info.st_size > max_bytes:
            raise SourceError(_too_large(path, max_bytes))
        chunks: list[bytes] = []
        left = max_bytes + 1  # one more, for a file that grew since fstat
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as error:
        raise SourceError(f"{path}: {error.strerror}") from error
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise SourceError(_too_large(path, max_bytes))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SourceError(f"{path} is not UTF-8 text (byte {error.start} is not valid UTF-8)") from error


def _too_large(path: str, max_bytes: int) -> str:
    return f"{path} is larger than {max_bytes:,} bytes, the most %include reads (SwiftKernel.max_include_bytes)"


def _kind(mode: int) -> str:
    """Name the kind of a file that is not a regular one."""
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "a special file")
