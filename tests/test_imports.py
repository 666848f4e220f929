"""Imports of modules that do not exist: found in the cell's text, confirmed by the compiler."""

from __future__ import annotations

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from swift_kernel.imports import Import, ModuleChecker, imported_modules, missing_import_error
from swift_kernel.toolchain import find_toolchain

from .utils import execute, value


def test_imported_modules_with_positions_attributes_and_kinds() -> None:
    code = (
        "import Foundation\n  @testable import Greeter\n@_exported import struct Glibc.timeval\n"
        "let x = 1 // import No"
    )
    assert imported_modules(code) == [
        Import("Foundation", 1, 8),
        Import("Greeter", 2, 20),
        Import("Glibc", 3, 26),
    ]


def test_imports_in_strings_and_comments_are_not_imports() -> None:
    code = 'let s = """\nimport InString\n"""\n/* block\nimport InComment\n*/\n// import InLineComment\nimport Real'
    assert imported_modules(code) == [Import("Real", 8, 8)]
    assert imported_modules("let important = 1\nimportFoo()") == []


def test_missing_import_error_points_at_each_name() -> None:
    code = "import Foundation\nimport Foundatoin\nimport Nope"
    error = missing_import_error(code, "<Cell 4>", [Import("Foundatoin", 2, 8), Import("Nope", 3, 8)])
    assert (error.ename, error.evalue) == ("CompileError", "<Cell 4>:2:8: no such module 'Foundatoin'")
    assert error.traceback == [
        "<Cell 4>:2:8: error: no such module 'Foundatoin'\nimport Foundatoin\n       ^",
        "<Cell 4>:3:8: error: no such module 'Nope'\nimport Nope\n       ^",
    ]


@pytest.mark.timeout(120)
def test_checker_asks_the_compiler_once_per_module() -> None:
    checker = ModuleChecker(find_toolchain(None).swiftc)
    wanted = [Import("Glibc", 1, 8), Import("NoSuchModuleHere", 2, 8)]
    assert checker.missing(wanted, [], []) == [Import("NoSuchModuleHere", 2, 8)]
    assert checker.known == {"Glibc"}
    # A module that exists is not asked about again; one that is missing is, each time.
    assert checker.missing([Import("Glibc", 3, 8)], [], []) == []


@pytest.mark.lldb
def test_misspelt_import_is_a_compile_error_and_nothing_runs(kc: BlockingKernelClient) -> None:
    assert execute(kc, "var ranBefore = 1").status == "ok"
    execution = execute(kc, "ranBefore = 2\nimport Glibc\nimport Glibcc")
    assert execution.content["ename"] == "CompileError"
    assert execution.content["evalue"].endswith(":3:8: no such module 'Glibcc'")
    assert execution.content["traceback"][0].endswith("error: no such module 'Glibcc'\nimport Glibcc\n       ^")
    assert value(kc, "ranBefore") == "1"
    assert value(kc, "import Glibc\nabs(-3)") == "3"
