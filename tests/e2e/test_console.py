"""jupyter console in a real terminal (a pseudo-terminal driven by pexpect)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import psutil
import pytest

from .helpers import assert_all_exit, jupyter_env, process_tree, venv_tool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# prompt_toolkit paints with colours and cursor moves; tests read the text that is left.
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


class Terminal:
    """What a person sees in the console, read as plain text, with a cursor past what was matched."""

    def __init__(self, child: pexpect.spawn, kernel_log: Path | None = None) -> None:
        self.child = child
        self.raw = ""
        self.position = 0
        # The kernel's debug log (SWIFT_KERNEL_LOG), shown when something did not appear.
        self.kernel_log = kernel_log

    def _log_tail(self) -> str:
        if self.kernel_log is None or not self.kernel_log.exists():
            return ""
        return "\nthe kernel's debug log ended with:\n" + "\n".join(self.kernel_log.read_text().splitlines()[-40:])

    @property
    def text(self) -> str:
        return ESCAPES.sub("", self.raw)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Wait until ``pattern`` shows up after the last match; fail with the screen so far if not."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = compiled.search(self.text, self.position)
            if match:
                self.position = match.end()
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(
                    f"{pattern!r} did not show within {timeout} s; the terminal showed:\n{self.text}{self._log_tail()}"
                )
            try:
                self.raw += self.child.read_nonblocking(65536, timeout=min(remaining, 0.5))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                pytest.fail(f"the console ended while waiting for {pattern!r}; it showed:\n{self.text}")

    def type_line(self, line: str) -> None:
        self.child.send(line + "\r")


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Terminal]:
    """Run `jupyter console --kernel swift` in a pseudo-terminal; kill whatever is left at the end."""
    env = jupyter_env(tmp_path)
    env["TERM"] = "xterm"
    # No terminal answers prompt_toolkit's cursor-position query here; without this it waits for one.
    env["PROMPT_TOOLKIT_NO_CPR"] = "1"
    env["SWIFT_KERNEL_LOG"] = str(tmp_path / "kernel.log")
    argv = ["console", "--kernel", "swift"]
    child = pexpect.spawn(venv_tool("jupyter"), argv, env=env, encoding="utf-8", dimensions=(40, 160), timeout=60)
    yield Terminal(child, tmp_path / "kernel.log")
    if child.isalive():
        leftover = process_tree(child.pid)
        child.terminate(force=True)
        psutil.wait_procs(leftover, timeout=10)


def swift_session_tree(screen: Terminal) -> list[psutil.Process]:
    """Return the console's processes, checking that the kernel's Swift process is among them."""
    tree = process_tree(screen.child.pid)
    names = {process.name() for process in tree if process.is_running()}
    assert "repl_swift" in names, f"expected the Swift process below the console, found {names}"
    return tree


def assert_session_ended(screen: Terminal, tree: list[psutil.Process]) -> None:
    """Check that the console shut its kernel down and ended, leaving no process behind."""
    child = screen.child
    screen.wait_for(r"Shutting down kernel")
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 0, (child.exitstatus, child.signalstatus, screen.text)
    assert_all_exit(tree)


def exit_with_ctrl_d(screen: Terminal) -> None:
    """Leave the console as a person does and check that it and its kernel's processes are gone."""
    tree = swift_session_tree(screen)
    screen.child.sendeof()  # Ctrl-D on an empty prompt
    screen.wait_for(r"Do you really want to exit")
    screen.child.send("y\r")
    assert_session_ended(screen, tree)


@pytest.mark.timeout(150)
def test_console_session_multiline_interrupt_and_clean_exit(console: Terminal) -> None:
    screen = console
    screen.wait_for(r"Swift \d+\.\d+(\.\d+)? kernel", timeout=30)
    screen.wait_for(r"In \[1\]: ")
    screen.type_line("let base = 40")
    screen.wait_for(r"In \[2\]: ")

    # The kernel's is_complete keeps the cell open after `{`, with a four-space indent on the
    # continuation line, and closes it once the braces balance. The continuation prompt is
    # "   ...: ": its own space, then the kernel's indent.
    screen.type_line("func greet(_ name: String) -> String {")
    screen.wait_for(r"\.\.\.: {5}(?! )")
    screen.type_line('return "Hello, \\(name)!"')  # the console supplies the indent
    screen.wait_for(r'\.\.\.: {5}return "Hello, \\\(name\)!"')
    screen.wait_for(r"\.\.\.: {5}(?! )")
    screen.type_line("}")
    screen.wait_for(r"In \[3\]: ")
    screen.type_line('greet("console")')
    screen.wait_for(r'Out\[3\]: "Hello, console!"')
    screen.wait_for(r"In \[4\]: ")

    screen.type_line("while true {}")
    screen.wait_for(r"while true \{\}\n")  # submitted: the prompt line is finished
    time.sleep(1.5)  # well into the loop
    assert "In [5]" not in screen.text[screen.position :]
    pressed = time.monotonic()
    screen.child.sendintr()
    screen.wait_for(r"KeyboardInterrupt")
    screen.wait_for(r"In \[5\]: ")
    prompt_back = time.monotonic() - pressed
    assert prompt_back < 10, f"prompt came back {prompt_back:.1f} s after Ctrl-C"

    screen.type_line("base + 2")
    screen.wait_for(r"Out\[5\]: 42\n")
    screen.wait_for(r"In \[6\]: ")

    # readLine(): the console asks with the prompt the code printed, and what is typed reaches Swift.
    screen.type_line('print("Your name? ", terminator: ""); let name = readLine() ?? "nobody"; print("hi \\(name)")')
    screen.wait_for(r"(?m)^Your name\? ")  # at a line's start: the prompt, not the echo of the code
    screen.type_line("Grace")
    screen.wait_for(r"hi Grace\n")
    screen.wait_for(r"In \[7\]: ")

    # A chart, which a terminal cannot draw as Vega-Lite: its text drawing is shown instead.
    screen.type_line('Jupyter.bar(labels: ["a", "b"], values: [4, 2], title: "Votes")')
    screen.wait_for(r"Bar chart: Votes\n")
    screen.wait_for(r"a \| █{40} 4\n")
    screen.wait_for(r"In \[8\]: ")
    assert "did not respond to an is_complete_request" not in screen.text
    # The kernel's stderr shares this terminal: nothing it logs may look like a crash to the user.
    assert "Traceback" not in screen.text, screen.text
    exit_with_ctrl_d(screen)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("typed", ["exit", "quit()"])
def test_exit_or_quit_typed_in_the_console_ends_the_session(console: Terminal, typed: str) -> None:
    # As in IPython: `exit` or `quit` alone ends the session and shuts the kernel down (issue 17:
    # it printed "Out[2]: (Function)", and `quit` was a compile error).
    screen = console
    screen.wait_for(r"In \[1\]: ")
    screen.type_line("let kept = 1")
    screen.wait_for(r"In \[2\]: ")
    tree = swift_session_tree(screen)
    screen.type_line(typed)
    assert_session_ended(screen, tree)
    assert "Out[2]" not in screen.text and "error" not in screen.text.lower(), screen.text
