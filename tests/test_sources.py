"""Checks on source before it reaches the compiler, and reading %include files; no LLDB."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swift_kernel.sources import (
    SourceError,
    check_source,
    expand_user,
    lines_of_code,
    placeholder_error,
    read_source_file,
)


@pytest.mark.parametrize(
    ("code", "where"),
    [
        ("let a = 1\0\nlet b = 2", "line 1, column 10"),
        ("let a = 1\n  %system echo \0", "line 2, column 16, in its %system line"),
        ("\0", "line 1, column 1"),
    ],
)
def test_a_nul_is_refused_with_its_place(code: str, where: str) -> None:
    with pytest.raises(SourceError, match="NUL character") as raised:
        check_source(code, "the cell", 100)
    assert where in str(raised.value)
    assert raised.value.ename == "InvalidCharacter"


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(SourceError, match=r"lone surrogate \(U\+D800\) at line 1, column 5"):
        check_source("let \ud800 = 1", "the cell", 100)


def test_the_line_limit_counts_code_only() -> None:
    code = "let a = 1\n\n// comment\n  \nlet b = 2\n"
    assert lines_of_code(code) == 2
    check_source(code, "the cell", 2)
    with pytest.raises(SourceError, match="has 2 lines of code; more than 1") as raised:
        check_source(code, "the cell", 1)
    assert raised.value.ename == "CellTooLarge"


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.swift"
    os.mkfifo(fifo)
    kinds = [(str(fifo), r"a FIFO \(named pipe\)"), (str(tmp_path), "a directory"), ("/dev/zero", "a character device")]
    for path, kind in kinds:
        with pytest.raises(SourceError, match=f"is {kind}, not a regular file"):
            read_source_file(path, 1000)


def test_the_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.swift"
    big.write_text("x" * 101)
    with pytest.raises(SourceError, match="larger than 100 bytes"):
        read_source_file(str(big), 100)
    assert read_source_file(str(big), 101) == "x" * 101


def test_files_must_be_utf8(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.swift"
    latin1.write_bytes(b"let caf\xe9 = 1")
    with pytest.raises(SourceError, match="byte 7 is not valid UTF-8"):
        read_source_file(str(latin1), 100)


def test_an_unknown_user_is_named() -> None:
    with pytest.raises(SourceError, match="there is no user 'nosuchuser'"):
        expand_user("~nosuchuser/x.swift")
    assert expand_user("~/x.swift") == os.path.expanduser("~/x.swift")


def test_editor_placeholders_are_found_outside_literals_and_comments() -> None:
    code = 'let a = "<#text#>" /* <#comment#> */\nlet b = f(<#x#>, <#y: Int#>)\n'
    error = placeholder_error(code, "<Cell 4>")
    assert error is not None and error.ename == "CompileError"
    assert error.evalue == "<Cell 4>:2:11: editor placeholder in source file (replace <#x#> with code)"
    assert [block.split("\n")[0].split(": error")[0] for block in error.traceback] == ["<Cell 4>:2:11", "<Cell 4>:2:18"]
    assert error.traceback[1].split("\n")[2] == " " * 17 + "^~~~~~~~~~"
    assert placeholder_error('let a = "<#text#>"', "<Cell 4>") is None
