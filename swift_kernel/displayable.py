"""What the LLDB host needs for rich results: the display extras and types that say how they look; pure.

``JupyterDisplayable`` (SwiftKernelPrelude.swift) has one requirement, ``func jupyterMimeBundle() -> [String:
String]``. A package can adopt it without depending on anything of the kernel's by declaring that
method alone: the host finds such methods among the functions LLDB knows (``SBTarget.FindFunctions``,
well under a millisecond), and, once the type's module is imported, declares the conformance for it
(``extension T: @retroactive JupyterDisplayable {}``), so the cell's result and ``Jupyter.display``
show it like a conforming type. A type declared in a cell is handled the same way.

The tables, charts and images of ``Jupyter`` live in a second Swift file, ``swift/display.swift``,
compiled into the Swift process only when a cell first names one of them (``needs_extras``): the
prelude is compiled at every start.

Dependencies: ``imports`` (the modules a cell imports).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .imports import imported_modules

EXTRAS = Path(__file__).with_name("swift") / "display.swift"
BUNDLE_METHOD = "jupyterMimeBundle"
# The names that need the extras: `Jupyter.plot(`, `Jupyter.table(`, ...
_EXTRAS_NAMES = re.compile(r"\bJupyter\s*\.\s*(?:plot|scatter|bar|histogram|table|image)\b")
# How LLDB names a method `func jupyterMimeBundle() -> [String: String]` (demangled), and the
# witness of a type that conforms already.
_METHOD = re.compile(
    r"(?P<type>[A-Za-z_][\w.]*)\.jupyterMimeBundle\(\) -> "
    r"(?:Swift\.Dictionary<Swift\.String, Swift\.String>|\[Swift\.String : Swift\.String\])"
)
_WITNESS = re.compile(
    r"^protocol witness for [\w.]+\.JupyterDisplayable\.jupyterMimeBundle\(\).* in conformance (?P<type>[\w.]+) : "
)
# Types declared in cells live in LLDB's per-expression modules.
_CELL_MODULE = re.compile(r"^__lldb_expr_\d+\.")


def needs_extras(code: str) -> bool:
    """Say whether code names the tables, charts or images of ``Jupyter`` (``display.swift``)."""
    return _EXTRAS_NAMES.search(code) is not None


def may_adopt(code: str) -> bool:
    """Say whether code may have brought a type with the bundle method in: it declares one or imports."""
    return BUNDLE_METHOD in code or "import" in code


@dataclass
class Adopter:
    """The types with the bundle method, and which of them conform by now."""

    imported: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)

    def reset(self) -> None:
        """Forget everything: a fresh Swift process knows none of it."""
        self.imported.clear()
        self.done.clear()

    def conformances(self, code: str, function_names: list[str]) -> list[str]:
        """Return one Swift declaration per type that needs the conformance, after ``code`` ran.

        ``function_names`` are LLDB's names of the functions called ``jupyterMimeBundle``. A type
        of a package counts once its module has been imported by a cell.
        """
        self.imported.update(item.module for item in imported_modules(code))
        conforming = {m.group("type") for name in function_names if (m := _WITNESS.match(name))}
        self.done |= conforming
        declarations = []
        for name in function_names:
            match = _METHOD.fullmatch(name)
            if match is None or name.startswith("protocol witness"):
                continue
            full = match.group("type")
            if full in self.done:
                continue
            cell_type = _CELL_MODULE.match(full)
            if cell_type is None and full.split(".", 1)[0] not in self.imported:
                continue
            self.done.add(full)
            swift_name = full[cell_type.end() :] if cell_type else full
            declarations.append(f"extension {swift_name}: @retroactive JupyterDisplayable {{}}")
        return declarations
