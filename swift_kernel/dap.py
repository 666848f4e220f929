"""The Debug Adapter Protocol's shapes for Swift values and frames; no I/O, no ``lldb`` import.

JupyterLab's debugger speaks DAP (inside Jupyter's ``debug_request``/``debug_reply``). The LLDB
host answers a cell stopped at a breakpoint from LLDB's values and frames (``lldb_session``);
this module turns those into DAP bodies and numbers what the frontend may expand
(``variablesReference``). The kernel side (``kernel.py``) uses the naming of cell files and
the capabilities. Values and frames are LLDB's ``SBValue``/``SBFrame`` objects, used only
through their methods, so the unit tests give stand-ins.

Dependencies: none inside the package.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# A cell's types and functions live in a per-cell module named __lldb_expr_N.
_LLDB_MODULE_PREFIX = re.compile(r"\b__lldb_expr_\d+\.")
# The most children one variables request returns when the frontend asks for no page.
MAX_CHILDREN = 1000
# Collections whose children are elements, paged by index; anything else has named fields.
_INDEXED = ("Swift.Array<", "Swift.ContiguousArray<", "Swift.ArraySlice<", "Swift.Set<", "Swift.Dictionary<")
# The Swift expressions' own variables, and the kernel's.
_HIDDEN = ("$", "__")

# What the stop of a cell is reported as, and the Swift errors the frontend may stop on.
EXCEPTION_FILTERS = (
    {
        "filter": "swift-trap",
        "label": "Runtime traps",
        "description": "Stop at a runtime trap (index out of range, nil unwrapped, fatalError) before the cell ends",
        "default": True,
    },
    {
        "filter": "swift-throw",
        "label": "Swift errors thrown",
        "description": "Stop where a Swift error is thrown",
        "default": False,
    },
)
CAPABILITIES: dict[str, Any] = {
    "supportsConfigurationDoneRequest": True,
    "supportsConditionalBreakpoints": True,
    "supportsEvaluateForHovers": True,
    "supportsDelayedStackTraceLoading": True,
    "supportsTerminateRequest": False,
    "supportsExceptionFilterOptions": False,
    "exceptionBreakpointFilters": list(EXCEPTION_FILTERS),
}
RESUMING = ("continue", "next", "stepIn", "stepOut")
# Requests about a stopped cell's frames and values.
WHILE_STOPPED = ("stackTrace", "scopes", "variables", "evaluate")


def set_up_key(command: str, arguments: dict[str, Any]) -> tuple[str, str]:
    """Return what a set-up request replaces when sent again: setBreakpoints one file's, others their own."""
    return command, str((arguments.get("source") or {}).get("path")) if command == "setBreakpoints" else ""


class DebugError(Exception):
    """A debug request that cannot be answered; the text is the DAP response's message."""


def without_cell_modules(text: str) -> str:
    """Return ``text`` without LLDB's per-cell module names (``__lldb_expr_12.Point`` → ``Point``)."""
    return _LLDB_MODULE_PREFIX.sub("", text)


def type_name(value: Any) -> str:
    """Return the Swift type of ``value`` as a user wrote it (no per-cell module prefix)."""
    return without_cell_modules(value.GetDisplayTypeName() or value.GetTypeName() or "")


def value_text(value: Any) -> str:
    """Return one line that shows ``value``: LLDB's summary, its scalar value, or its type."""
    text = value.GetSummary() or value.GetValue()
    if text is None:
        return type_name(value)
    return without_cell_modules(text)


def hidden(name: str | None) -> bool:
    """Say whether a variable is LLDB's or the kernel's own, not the notebook's."""
    return not name or name.startswith(_HIDDEN)


def function_name(name: str) -> str:
    """Return a frame's function name without per-cell module prefixes."""
    return without_cell_modules(name)


class References:
    """The things a stopped cell's frontend may expand, numbered from 1 (0 means "nothing")."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, item: Any) -> int:
        """Number ``item`` (a value, or a scope's key) and return its reference."""
        self.items.append(item)
        return len(self.items)

    def get(self, reference: int) -> Any:
        """Return what ``reference`` stands for; DebugError when it is not one of this stop's."""
        if not isinstance(reference, int) or not 0 < reference <= len(self.items):
            raise DebugError(f"no variables with reference {reference!r} (they are renewed at each stop)")
        return self.items[reference - 1]

    def clear(self) -> None:
        """Forget every reference: the values are gone once the code runs again."""
        self.items.clear()


def variable(name: str, value: Any, references: References, evaluate_name: str | None = None) -> dict[str, Any]:
    """Return the DAP ``Variable`` for ``value`` (see ``shown``), with a reference when it has children."""
    found = shown(name, value_text(value), type_name(value), evaluate_name)
    children = value.GetNumChildren()
    if children:
        found["variablesReference"] = references.add(value)
        key = "indexedVariables" if (value.GetTypeName() or "").startswith(_INDEXED) else "namedVariables"
        found[key] = children
    return found


def shown(name: str, text: str, kind: str, evaluate_name: str | None = None) -> dict[str, Any]:
    """Return a DAP ``Variable`` without children: its value, and its type where the value is the type.

    JupyterLab's variables tree shows a variable's type in place of its value whenever it has
    one it does not know (it knows Python's), so ``doubled: Int`` would hide the 10.
    """
    found: dict[str, Any] = {"name": name, "value": text, "variablesReference": 0}
    if text == kind:
        found["type"] = kind
    if evaluate_name:
        found["evaluateName"] = evaluate_name
    return found


def children(value: Any, references: References, start: int = 0, count: int = 0) -> list[dict[str, Any]]:
    """Return the DAP variables of ``value``'s children, ``count`` of them from ``start`` (0: all, capped)."""
    total = value.GetNumChildren()
    end = total if count <= 0 else min(total, start + count)
    end = min(end, start + MAX_CHILDREN)
    found = []
    for index in range(max(start, 0), end):
        child = value.GetChildAtIndex(index)
        name = child.GetName() or f"[{index}]"
        found.append(variable(name, child, references))
    return found


def named(values: Iterable[tuple[str, Any]], references: References) -> list[dict[str, Any]]:
    """Return the DAP variables of ``(name, value)`` pairs, leaving out LLDB's and the kernel's own."""
    return [variable(name, value, references, evaluate_name=name) for name, value in values if not hidden(name)]


def response(request: dict[str, Any], body: dict[str, Any] | None = None, error: str | None = None) -> dict[str, Any]:
    """Return the DAP response to ``request``: its body, or a failure saying ``error``."""
    answer: dict[str, Any] = {
        "type": "response",
        "seq": request.get("seq", 0),
        "request_seq": request.get("seq", 0),
        "command": request.get("command", ""),
        "success": error is None,
    }
    if error is not None:
        answer["message"] = error
        answer["body"] = body or {}
    else:
        answer["body"] = body if body is not None else {}
    return answer
