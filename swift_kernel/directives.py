"""Parse the ``%`` lines of a cell into typed requests; pure, no I/O.

Each directive is one small parser in ``REGISTRY``; its docstring's first line is
what ``%help`` shows. Directive lines are blanked out of the Swift code, not
removed, so compiler diagnostics keep the cell's own line numbers.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

# The longest time limit %timeout takes. Python's timers refuse waits past about 292 years
# (threading.TIMEOUT_MAX), and a longer limit set silently no limit at all; a limit in weeks is a
# mistake more often than a wish ("%timeout off" is the way to run without one).
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600


class DirectiveError(ValueError):
    """A ``%`` line the kernel cannot run; the message names it and the expected form."""


@dataclass(frozen=True)
class SetTimeout:
    """Set (or with None clear) the time limit for the cells that follow."""

    directive: ClassVar[str] = "%timeout"

    seconds: float | None


@dataclass(frozen=True)
class ShowHelp:
    """List the directives."""

    directive: ClassVar[str] = "%help"


@dataclass(frozen=True)
class RunSystem:
    """Run a shell command with its output streamed."""

    directive: ClassVar[str] = "%system"

    command: str


@dataclass(frozen=True)
class SetEnv:
    """Set an environment variable for commands, builds and the Swift process."""

    directive: ClassVar[str] = "%env"

    name: str
    value: str


@dataclass(frozen=True)
class Include:
    """Run a Swift file's code before the cell's own."""

    directive: ClassVar[str] = "%include"

    path: str


@dataclass(frozen=True)
class InstallPackage:
    """Build a SwiftPM package and make its products importable."""

    directive: ClassVar[str] = "%install"

    spec: str
    products: tuple[str, ...]


@dataclass(frozen=True)
class InstallFlags:
    """Add flags for the SwiftPM builds of %install (they accumulate), clear them, or show them."""

    directive: ClassVar[str] = "%install-swiftpm-flags"

    flags: tuple[str, ...]
    # "add" the flags; "clear" every flag (``$clear``); "show" the current ones (no argument).
    action: str = "add"


@dataclass(frozen=True)
class ListInstalled:
    """List the installed packages, their products and the build folder."""

    directive: ClassVar[str] = "%install"


@dataclass(frozen=True)
class InstallMirror:
    """Satisfy a url dependency of later %install packages with a local folder (no network needed)."""

    directive: ClassVar[str] = "%install-mirror"

    url: str
    path: str


@dataclass(frozen=True)
class InstallIncludeCommand:
    """Run a command that prints -I flags (pkg-config --cflags) for the builds of %install and for LLDB."""

    directive: ClassVar[str] = "%install-extra-include-command"

    command: str


@dataclass(frozen=True)
class InstallLocation:
    """Choose the folder that keeps %install builds across kernel restarts."""

    directive: ClassVar[str] = "%install-location"

    path: str


@dataclass(frozen=True)
class ResetSession:
    """Start a fresh LLDB host and Swift process, keeping packages, environment and imports."""

    directive: ClassVar[str] = "%reset"


@dataclass(frozen=True)
class SetDisplay:
    """Show the results of the cells that follow as tables, or not."""

    directive: ClassVar[str] = "%display"

    tables: bool


@dataclass(frozen=True)
class ListNames:
    """List the names of the globals the cells declared."""

    directive: ClassVar[str] = "%who"


@dataclass(frozen=True)
class ListGlobals:
    """Show the globals the cells declared as a table: name, type, value."""

    directive: ClassVar[str] = "%whos"


Directive = (
    SetTimeout
    | ShowHelp
    | RunSystem
    | SetEnv
    | Include
    | InstallPackage
    | InstallFlags
    | ListInstalled
    | InstallMirror
    | InstallLocation
    | InstallIncludeCommand
    | ResetSession
    | SetDisplay
    | ListNames
    | ListGlobals
)


def _timeout(argument: str) -> Directive:
    """%timeout SECONDS | off  -- stop every following cell that runs longer than SECONDS."""
    text = argument.strip()
    if text == "off":
        return SetTimeout(None)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds <= 0:
        raise DirectiveError(f"%timeout takes a positive number of seconds or 'off', not {text!r}")
    if seconds > MAX_TIMEOUT_SECONDS:
        raise DirectiveError(
            f"%timeout {text}: the longest limit is {MAX_TIMEOUT_SECONDS:,} s (30 days); "
            "%timeout off runs cells without one"
        )
    return SetTimeout(seconds)


def _help(argument: str) -> Directive:
    """%help  -- list the directives."""
    if argument.strip():
        raise DirectiveError("%help takes no arguments")
    return ShowHelp()


def _system(argument: str) -> Directive:
    """%system COMMAND  -- run a shell command, its output streamed live; interruptible."""
    if not argument.strip():
        raise DirectiveError("%system takes a shell command, e.g. %system ls -l")
    return RunSystem(argument.strip())


_ENV = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _env(argument: str) -> Directive:
    """%env NAME=VALUE  -- set an environment variable for %system, builds and the Swift process."""
    match = _ENV.match(argument)
    if match is None:
        raise DirectiveError(f"%env takes NAME=VALUE, not {argument.strip()!r}")
    return SetEnv(match.group(1), match.group(2).strip())


def _include(argument: str) -> Directive:
    """%include "FILE.swift"  -- run a Swift file's code as if it stood in the cell."""
    text = argument.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
    if not text:
        raise DirectiveError('%include takes a file name, e.g. %include "helpers.swift"')
    return Include(text)


_INSTALL = re.compile(r"""^\s*'(\.package\(.*\))'\s+(.+)$""")


def _install(argument: str) -> Directive:
    """%install '.package(path: "DIR")' PRODUCT [PRODUCT...]  -- build a SwiftPM package; import its products.

    Alone: list the installed packages and the build folder.
    """
    if not argument.strip():
        return ListInstalled()
    match = _INSTALL.match(argument)
    if match is None:
        raise DirectiveError(
            "%install takes a quoted package and product names, e.g. "
            """%install '.package(path: "$cwd/MyLib")' MyLib"""
        )
    spec, products = match.group(1), tuple(match.group(2).split())
    if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", product) for product in products):
        raise DirectiveError(f"%install: product names must be Swift identifiers, not {' '.join(products)!r}")
    return InstallPackage(spec, products)


def _reset(argument: str) -> Directive:
    """%reset  -- free LLDB's memory: fresh LLDB and Swift process; packages, %env and imports kept."""
    if argument.strip():
        raise DirectiveError("%reset takes no arguments")
    return ResetSession()


def _install_flags(argument: str) -> Directive:
    """%install-swiftpm-flags FLAG...  -- add flags for the builds of %install; alone: show them; $clear: none."""
    flags = tuple(shlex.split(argument))
    if not flags:
        return InstallFlags((), "show")
    if flags == ("$clear",):
        return InstallFlags((), "clear")
    return InstallFlags(flags)


def _install_mirror(argument: str) -> Directive:
    """%install-mirror URL PATH  -- a url dependency of later %install packages comes from the folder PATH."""
    words = shlex.split(argument)
    if len(words) != 2 or ("://" not in words[0] and not words[0].startswith("git@")):
        raise DirectiveError(
            "%install-mirror takes a package url and a local folder, e.g. "
            "%install-mirror https://github.com/apple/swift-numerics.git $cwd/swift-numerics"
        )
    return InstallMirror(words[0], words[1])


def _install_location(argument: str) -> Directive:
    """%install-location DIR  -- keep the builds of %install in DIR (default: the user's cache folder)."""
    words = shlex.split(argument)
    if len(words) != 1:
        raise DirectiveError("%install-location takes one folder, e.g. %install-location $cwd/swift-builds")
    return InstallLocation(words[0])


def _install_include_command(argument: str) -> Directive:
    """%install-extra-include-command CMD  -- add the -I folders CMD prints (pkg-config --cflags x) to %install."""
    if not argument.strip():
        raise DirectiveError("%install-extra-include-command takes a shell command, e.g. pkg-config --cflags zlib")
    return InstallIncludeCommand(argument.strip())


def _display(argument: str) -> Directive:
    """%display tables on|off  -- show a cell's result that is a collection of rows as a table."""
    words = argument.split()
    if len(words) != 2 or words[0] != "tables" or words[1] not in ("on", "off"):
        raise DirectiveError(f"%display takes 'tables on' or 'tables off', not {argument.strip()!r}")
    return SetDisplay(words[1] == "on")


def _who(argument: str) -> Directive:
    """%who  -- list the names of the variables the cells declared (newest declaration of each)."""
    if argument.strip():
        raise DirectiveError(f"%who takes no arguments, not {argument.strip()!r} (%whos shows types and values)")
    return ListNames()


def _whos(argument: str) -> Directive:
    """%whos  -- show the variables the cells declared as a table: name, type and value."""
    if argument.strip():
        raise DirectiveError(f"%whos takes no arguments, not {argument.strip()!r}")
    return ListGlobals()


REGISTRY: dict[str, Callable[[str], Directive]] = {
    "timeout": _timeout,
    "system": _system,
    "env": _env,
    "include": _include,
    "install": _install,
    "install-swiftpm-flags": _install_flags,
    "install-mirror": _install_mirror,
    "install-location": _install_location,
    "install-extra-include-command": _install_include_command,
    "reset": _reset,
    "display": _display,
    "who": _who,
    "whos": _whos,
    "help": _help,
}

_LINE = re.compile(r"^\s*%([A-Za-z][\w-]*)(.*)$")


def help_text() -> str:
    """Return one line per directive, from the parsers' docstrings."""
    lines = ["Directives (a line starting with %):"]
    for parse in REGISTRY.values():
        doc = (parse.__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {doc}")
    return "\n".join(lines) + "\n"


def parse_cell(code: str) -> tuple[list[Directive], str]:
    """Split a cell into its directives and its Swift code (directive lines left blank)."""
    directives: list[Directive] = []
    swift_lines: list[str] = []
    for line in code.split("\n"):
        match = _LINE.match(line)
        if match is None:
            swift_lines.append(line)
            continue
        name, argument = match.groups()
        parse = REGISTRY.get(name)
        if parse is None:
            raise DirectiveError(f"unknown directive %{name} (%help lists the directives)")
        try:
            directives.append(parse(argument))
        except DirectiveError:
            raise
        except ValueError as error:  # shlex's "No closing quotation", and the like
            raise DirectiveError(f"%{name}: {error}") from error
        swift_lines.append("")
    return directives, "\n".join(swift_lines)


# A cell that is only `exit` or `quit`, bare or called without arguments (what a Python user types
# to leave), or the Swift REPL's own `:quit`, `:exit`, `:q`. `exit(0)` with an argument is Swift's
# call and stays Swift.
_EXIT_CELL = re.compile(r"\s*(?::(?:quit|exit|q)|(?P<name>exit|quit)\s*(?:\(\s*\))?\s*;?)\s*")


def exit_request(code: str, earlier_cells: Iterable[str]) -> str | None:
    """Return what a cell typed to end the session (``exit``, ``quit()``, ``:quit``), else None.

    Not when an earlier cell declared that name itself (``func quit()``): then it is the user's.
    """
    match = _EXIT_CELL.fullmatch(code)
    if match is None:
        return None
    name = match.group("name")
    if name is not None:
        declared = re.compile(rf"\b(?:func|var|let|class|struct|enum|actor|typealias)\s+{name}\b")
        if any(declared.search(cell) for cell in earlier_cells):
            return None
    return code.strip()
