"""Test the parsing of ``%`` directive lines; pure, no LLDB."""

from __future__ import annotations

import pytest

from swift_kernel.directives import (
    REGISTRY,
    DirectiveError,
    InstallFlags,
    InstallIncludeCommand,
    InstallLocation,
    InstallMirror,
    ListGlobals,
    ListInstalled,
    ListNames,
    SetDisplay,
    SetTimeout,
    ShowHelp,
    exit_request,
    help_text,
    parse_cell,
)

pytestmark = pytest.mark.timeout(10)


def test_cell_without_directives_is_unchanged() -> None:
    code = 'let x = 1\nprint("100%")\nlet y = 7 % 3'
    assert parse_cell(code) == ([], code)


def test_empty_cell() -> None:
    assert parse_cell("") == ([], "")


def test_timeout_directive_is_parsed_and_its_line_blanked() -> None:
    directives, swift = parse_cell("%timeout 2.5\nlet x = 1\n")
    assert directives == [SetTimeout(2.5)]
    # Blanked, not removed: compiler diagnostics keep the cell's line numbers.
    assert swift == "\nlet x = 1\n"
    assert swift.split("\n").index("let x = 1") == 1


def test_display_tables_on_and_off() -> None:
    assert parse_cell("%display tables on\nrows")[0] == [SetDisplay(True)]
    assert parse_cell("%display  tables   off")[0] == [SetDisplay(False)]
    for wrong in ("%display", "%display tables", "%display tables maybe", "%display charts on"):
        with pytest.raises(DirectiveError, match="%display takes 'tables on' or 'tables off'"):
            parse_cell(wrong)


def test_directive_in_the_middle_keeps_line_numbers() -> None:
    _, swift = parse_cell("let a = 1\n  %timeout 3\nlet b = 2")
    assert swift.split("\n") == ["let a = 1", "", "let b = 2"]


@pytest.mark.parametrize(("argument", "expected"), [("1", 1.0), (" 0.25 ", 0.25), ("1e2", 100.0), ("off", None)])
def test_timeout_values(argument: str, expected: float | None) -> None:
    assert parse_cell(f"%timeout {argument}")[0] == [SetTimeout(expected)]


@pytest.mark.parametrize("argument", ["", "0", "-1", "abc", "nan", "inf", "1 2", "1e10"])
def test_bad_timeout_values_name_the_directive(argument: str) -> None:
    with pytest.raises(DirectiveError, match="%timeout"):
        parse_cell(f"%timeout {argument}")


def test_an_argument_shlex_cannot_split_names_the_directive() -> None:
    with pytest.raises(DirectiveError, match=r"^%install-swiftpm-flags: No closing quotation$"):
        parse_cell('%install-swiftpm-flags "unterminated')


def test_install_flags_add_clear_and_show() -> None:
    assert parse_cell("%install-swiftpm-flags -c release -Xswiftc '-D A'")[0] == [
        InstallFlags(("-c", "release", "-Xswiftc", "-D A"))
    ]
    assert parse_cell("%install-swiftpm-flags $clear")[0] == [InstallFlags((), "clear")]
    assert parse_cell("%install-swiftpm-flags")[0] == [InstallFlags((), "show")]


def test_install_alone_mirror_and_location() -> None:
    assert parse_cell("%install")[0] == [ListInstalled()]
    url = "https://github.com/apple/swift-numerics.git"
    assert parse_cell(f"%install-mirror {url} '/a b/numerics'")[0] == [InstallMirror(url, "/a b/numerics")]
    assert parse_cell("%install-location ~/builds")[0] == [InstallLocation("~/builds")]
    command = "pkg-config --cflags zlib"
    assert parse_cell(f"%install-extra-include-command {command}")[0] == [InstallIncludeCommand(command)]
    for wrong in (
        "%install-mirror /a/b",
        f"%install-mirror {url}",
        "%install-location",
        "%install-location a b",
        "%install-extra-include-command",
    ):
        with pytest.raises(DirectiveError, match=wrong.split()[0]):
            parse_cell(wrong)


def test_help() -> None:
    assert parse_cell("%help")[0] == [ShowHelp()]
    with pytest.raises(DirectiveError, match="%help takes no arguments"):
        parse_cell("%help me")


def test_several_directives_in_order() -> None:
    directives, swift = parse_cell("%help\n%timeout off\n%timeout 4\nprint(1)")
    assert directives == [ShowHelp(), SetTimeout(None), SetTimeout(4.0)]
    assert swift == "\n\n\nprint(1)"


@pytest.mark.parametrize("line", ["%foo", "%foo bar baz", "   %foo", "%foo-bar 1"])
def test_unknown_directive_is_named(line: str) -> None:
    name = line.strip().split()[0]
    with pytest.raises(DirectiveError) as raised:
        parse_cell(f"let x = 1\n{line}\nlet y = 2")
    assert f"unknown directive {name}" in str(raised.value)
    assert "%help" in str(raised.value)


def test_percent_not_at_line_start_is_swift() -> None:
    # The remainder operator and format strings are Swift, not directives.
    code = 'let r = 10 %3\nlet s = "%foo"'
    assert parse_cell(code) == ([], code)


def test_percent_followed_by_non_letter_is_swift() -> None:
    code = "%1\n% foo"
    assert parse_cell(code) == ([], code)


def test_help_text_lists_every_directive_from_its_docstring() -> None:
    text = help_text()
    assert text.endswith("\n")
    for name, parse in REGISTRY.items():
        first_line = (parse.__doc__ or "").strip().splitlines()[0]
        assert first_line.startswith(f"%{name}")
        assert first_line in text


@pytest.mark.parametrize(
    "code", ["exit", "quit", "exit()", "quit()", "  quit ( ) ;\n", "\nexit\n\n", ":quit", ":q", ":exit"]
)
def test_exit_and_quit_alone_ask_to_end_the_session(code: str) -> None:
    assert exit_request(code, []) == code.strip()


@pytest.mark.parametrize(
    "code", ["exit(0)", "exit(3)", "Glibc.exit(0)", "exit\nprint(1)", "let exit = 1", "quitting", "// exit", "exit()()"]
)
def test_swift_that_mentions_exit_stays_swift(code: str) -> None:
    assert exit_request(code, []) is None


def test_a_name_declared_by_an_earlier_cell_is_the_users() -> None:
    earlier = ["let x = 1", 'func quit() { print("bye") }']
    assert exit_request("quit()", earlier) is None
    assert exit_request("quit", earlier) is None
    assert exit_request("exit", earlier) == "exit"
    assert exit_request(":quit", earlier) == ":quit"
    assert exit_request("exit", ["var exitCode = 0"]) == "exit"


def test_who_and_whos_are_parsed_and_refuse_arguments() -> None:
    assert parse_cell("%who")[0] == [ListNames()]
    assert parse_cell("%whos\nlet x = 1")[0] == [ListGlobals()]
    for line in ("%who x", "%whos -l"):
        with pytest.raises(DirectiveError, match="takes no arguments"):
            parse_cell(line)
    assert "%whos" in help_text()
