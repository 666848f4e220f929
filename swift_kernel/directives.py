"""Parse the ``%`` lines of a cell into typed requests; pure, no I/O.

Each directive is one small parser in ``REGISTRY``; its docstring's first line is
what ``%help`` shows. Directive lines are blanked out of the Swift code, not
removed, so compiler diagnostics keep the cell's own line numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


class DirectiveError(ValueError):
    """A ``%`` line the kernel cannot run; the message names it and the expected form."""


@dataclass(frozen=True)
class SetTimeout:
    """Set (or with None clear) the time limit for the cells that follow."""

    seconds: float | None


@dataclass(frozen=True)
class ShowHelp:
    """List the directives."""


Directive = SetTimeout | ShowHelp


def _timeout(argument: str) -> Directive:
    """%timeout SECONDS | off  -- stop every following cell that runs longer than SECONDS."""
    text = argument.strip()
    if text == "off":
        return SetTimeout(None)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise DirectiveError(f"%timeout takes a positive number of seconds or 'off', not {text!r}")
    return SetTimeout(seconds)


def _help(argument: str) -> Directive:
    """%help  -- list the directives."""
    if argument.strip():
        raise DirectiveError("%help takes no arguments")
    return ShowHelp()


REGISTRY: dict[str, Callable[[str], Directive]] = {
    "timeout": _timeout,
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
        directives.append(parse(argument))
        swift_lines.append("")
    return directives, "\n".join(swift_lines)
