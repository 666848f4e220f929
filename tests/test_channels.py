"""The Swift process's output channels stay the kernel's, whatever a cell does with them (issue 14).

Display frames that never end, or pass the limit, end with their cell at the latest and never take
later output with them; a frame is decoded in time linear in its size; a cell that closes, replaces
or buffers its standard output or error, or the kernel's result channel, gets them put back before
the next cell, and is told. The decoder and the pump are tested without LLDB, the rest through the
real kernel.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from swift_kernel import output
from swift_kernel.output import (
    DISPLAY_END,
    DISPLAY_START,
    FRAME_CHARS_PER_SECOND,
    FRAME_SECONDS,
    MAX_DISPLAY_CHARS,
    Clear,
    Display,
    OutputEvent,
    OutputPump,
    StreamDecoder,
    Text,
)

from .utils import Execution, execute, value

START = DISPLAY_START.encode()
END = DISPLAY_END.encode()
FRAME = b'{"type":"clear","wait":false}'


def text_of(events: list[OutputEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, Text))


def notes(events: list[OutputEvent]) -> list[str]:
    return [event.error for event in events if isinstance(event, Display) and event.error is not None]


def payloads(events: list[OutputEvent]) -> list[str]:
    return [event.payload for event in events if isinstance(event, Display) and event.error is None]


# ----- the decoder: frames that end, and frames that do not --------------------------------------


def test_a_frame_between_lines_keeps_its_place() -> None:
    events = StreamDecoder().feed(b"a\n" + START + FRAME + END + b"b\n")
    assert events == [Text("a\n"), Display(FRAME.decode()), Text("b\n")]


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_a_frame_split_into_any_pieces_is_whole(size: int) -> None:
    data = b"x" + START + FRAME + END + b"y"
    decoder = StreamDecoder()
    events: list[OutputEvent] = []
    for at in range(0, len(data), size):
        events += decoder.feed(data[at : at + size], now=0.0)
    assert payloads(events) == [FRAME.decode()]
    assert text_of(events) == "xy"
    assert decoder.deadline is None


def test_an_unterminated_frame_ends_with_its_cell_and_gives_its_text_back() -> None:
    decoder = StreamDecoder()
    events = decoder.feed(b"before\n" + START + b"not json\nmore output\n", now=0.0)
    assert text_of(events) == "before\n"  # the rest may still be a frame
    assert decoder.deadline == FRAME_SECONDS + 21 / FRAME_CHARS_PER_SECOND
    ended = decoder.feed(b"", final=True)
    assert notes(ended) == [
        "a display message had no end (\\u{07}) when the cell ended: its 21 characters are shown as printed text"
    ]
    assert text_of(ended) == "not json\nmore output\n"
    # The next cell's output is plain output again.
    assert decoder.feed(b"next cell\n", final=True) == [Text("next cell\n")]


def test_an_unterminated_frame_stops_holding_output_back_when_its_time_is_up() -> None:
    decoder = StreamDecoder()
    decoder.feed(START + b"stray", now=10.0)
    assert decoder.expire(10.0 + FRAME_SECONDS / 2) == []
    assert text_of(decoder.feed(b" line\n", now=10.5)) == ""
    deadline = decoder.deadline
    assert deadline is not None and deadline < 10.0 + FRAME_SECONDS + 0.01
    expired = decoder.expire(deadline)
    assert notes(expired) == [
        f"a display message had no end (\\u{{07}}) within {deadline - 10.0:.1f} s of its start: "
        "its 11 characters are shown as printed text"
    ]
    assert text_of(expired) == "stray line\n"
    assert decoder.deadline is None
    assert decoder.feed(b"live\n", now=11.5) == [Text("live\n")]


def test_an_escape_inside_a_frame_ends_it_at_once() -> None:
    # JSON never holds a raw ESC: the next frame (or a colour, a clear) means this one had no end.
    decoder = StreamDecoder()
    events = decoder.feed(b"a" + START + b"stray\n" + START + FRAME + END + b"\x1b[2Jb", now=0.0)
    assert notes(events) == [
        "a display message had no end (\\u{07}) before the escape sequence that followed it: "
        "its 6 characters are shown as printed text"
    ]
    assert payloads(events) == [FRAME.decode()]
    assert Clear() in events
    assert text_of(events) == "astray\nb"


def test_a_frame_over_the_limit_is_dropped_and_said_so() -> None:
    decoder = StreamDecoder()
    chunk = b"x" * (1 << 20)
    events = decoder.feed(b"before\n" + START, now=0.0)
    for _ in range((MAX_DISPLAY_CHARS >> 20) + 2):
        events += decoder.feed(chunk, now=0.0)
    events += decoder.feed(END + b"after\n", now=0.0)
    assert notes(events) == [f"a display message over {MAX_DISPLAY_CHARS >> 20} MiB was dropped"]
    assert payloads(events) == []
    assert text_of(events) == "before\nafter\n"


def test_a_frame_over_the_limit_without_an_end_does_not_swallow_the_next_cell() -> None:
    # It used to: every later cell's stdout was discarded until some cell printed \u{07}.
    decoder = StreamDecoder()
    events = decoder.feed(START + b"x" * (MAX_DISPLAY_CHARS + 1), now=0.0)
    events += decoder.feed(b"y" * 10, final=True)
    assert notes(events) == [
        f"a display message over {MAX_DISPLAY_CHARS >> 20} MiB was dropped",
        f"the display message over {MAX_DISPLAY_CHARS >> 20} MiB had no end (\\u{{07}}) when the cell ended: "
        f"the {MAX_DISPLAY_CHARS + 11:,} characters printed after its start were dropped",
    ]
    assert text_of(events) == ""
    assert decoder.feed(b"next cell\n", final=True) == [Text("next cell\n")]


def test_a_large_frame_gets_time_in_proportion_to_its_size() -> None:
    # On a loaded machine a big frame takes a while through the pipe: it is not cut after 1 s.
    decoder = StreamDecoder()
    decoder.feed(START + b"x" * (8 * FRAME_CHARS_PER_SECOND), now=0.0)
    assert decoder.expire(FRAME_SECONDS + 7.0) == []
    events = decoder.feed(b"x" + END, now=FRAME_SECONDS + 7.5)
    assert [len(payload) for payload in payloads(events)] == [8 * FRAME_CHARS_PER_SECOND + 1]


def test_a_dropped_frame_without_an_end_lets_output_through_when_its_time_is_up() -> None:
    decoder = StreamDecoder()
    decoder.feed(START + b"x" * (MAX_DISPLAY_CHARS + 1), now=0.0)
    deadline = decoder.deadline
    assert deadline is not None
    assert len(notes(decoder.expire(deadline))) == 1
    assert decoder.feed(b"live\n", now=deadline + 1) == [Text("live\n")]


# ----- the pump: frames that do not end, with real pipes ------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, OutputEvent]] = []

    def __call__(self, name: str, event: OutputEvent) -> None:
        self.events.append((name, event))

    def stdout(self) -> list[OutputEvent]:
        return [event for name, event in list(self.events) if name == "stdout"]

    def wait_for(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in text_of(self.stdout()):
            assert time.monotonic() < deadline, f"{text!r} never arrived: {self.stdout()!r}"
            time.sleep(0.005)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def pump(recorder: Recorder) -> Iterator[OutputPump]:
    pump = OutputPump(recorder)
    yield pump
    pump.close()


@pytest.mark.timeout(30)
def test_the_pump_lets_live_output_through_after_an_unterminated_frame(pump: OutputPump, recorder: Recorder) -> None:
    fd = os.open(pump.path("stdout"), os.O_WRONLY)
    try:
        os.write(fd, START + b"stray\n")
        os.write(fd, b"line 1\n")
        recorder.wait_for("line 1\n")  # with no drain: not held back until the cell's end
        assert len(notes(recorder.stdout())) == 1
        os.write(fd, b"line 2\n")
        recorder.wait_for("line 2\n")
    finally:
        os.close(fd)
    pump.drain()
    assert text_of(recorder.stdout()) == "stray\nline 1\nline 2\n"


@pytest.mark.timeout(30)
def test_drain_cuts_an_unterminated_frame_and_the_next_cell_prints(pump: OutputPump, recorder: Recorder) -> None:
    fd = os.open(pump.path("stdout"), os.O_WRONLY)
    try:
        os.write(fd, b"a\n" + START + b"cut")
        pump.drain()
        assert text_of(recorder.stdout()) == "a\ncut"
        assert len(notes(recorder.stdout())) == 1
        os.write(fd, b"next\n")
        pump.drain()
    finally:
        os.close(fd)
    assert text_of(recorder.stdout()) == "a\ncutnext\n"


def test_the_end_of_a_cell_does_not_cut_a_frame_still_in_the_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reading stops for a while at enough pending text; the cell's end must wait for an empty pipe.
    monkeypatch.setattr(output, "MAX_PENDING_CHARS", 1000)
    stream = output._Stream("stdout")
    try:
        fcntl.fcntl(stream.write_fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        payload = b'{"type":"display","data":{"text/plain":"' + b"p" * 200_000 + b'"}}'
        os.write(stream.write_fd, b"t" * 1100 + START + payload + END + b"end\n")
        events: list[OutputEvent] = []
        while stream.read_available(final=True):  # as OutputPump.drain does
            events += stream.take()
        events += stream.take()
    finally:
        stream.close()
    assert payloads(events) == [payload.decode()]
    assert notes(events) == []
    assert text_of(events).endswith("t" * 100 + "end\n")


# ----- through the real kernel ---------------------------------------------------------------------


def display_notes(execution: Execution) -> list[str]:
    return [line for line in execution.stream("stderr").splitlines() if line.startswith("Jupyter.display:")]


@pytest.mark.lldb
@pytest.mark.timeout(120)
def test_an_unterminated_frame_in_a_cell_does_not_swallow_later_cells(kc: BlockingKernelClient) -> None:
    cut = execute(kc, 'print("before")\nprint("\\u{1B}]5151;not a frame")\nprint("after")')
    assert cut.status == "ok", cut.content
    assert cut.stream("stdout") == "before\nnot a frame\nafter\n"
    assert len(display_notes(cut)) == 1, cut.stream("stderr")
    later = execute(kc, 'print("later cell")\nJupyter.display(text: "shown")')
    assert later.stream("stdout") == "later cell\n"
    assert [m["content"]["data"] for m in later.of_type("display_data")] == [{"text/plain": "shown"}]


@pytest.mark.lldb
@pytest.mark.timeout(120)
def test_an_unterminated_frame_does_not_hold_back_live_output(kc: BlockingKernelClient) -> None:
    msg_id = kc.execute(
        'import Glibc\nprint("\\u{1B}]5151;stray")\nprint("live")\nfor _ in 0..<200 { usleep(50_000) }'  # 10 s
    )
    deadline = time.monotonic() + 60
    seen = ""
    while "live" not in seen:
        assert time.monotonic() < deadline, seen
        message = kc.get_iopub_msg(timeout=60)
        if message["parent_header"].get("msg_id") == msg_id and message["msg_type"] == "stream":
            seen += message["content"]["text"]
            shown_at = message["header"]["date"]
    reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "ok"
    # Shown while the cell still ran (it sleeps 10 s), not when it ended.
    assert (reply["header"]["date"] - shown_at).total_seconds() > 5


@pytest.mark.lldb
@pytest.mark.timeout(300)
def test_a_frame_over_the_limit_gives_an_error_and_later_output_shows(kc: BlockingKernelClient) -> None:
    size = MAX_DISPLAY_CHARS + (1 << 20)
    dropped = [f"Jupyter.display: a display message over {MAX_DISPLAY_CHARS >> 20} MiB was dropped"]
    api = execute(kc, f'Jupyter.display(html: String(repeating: "x", count: {size}))\nprint("same cell")', timeout=240)
    assert api.status == "ok", api.content
    assert display_notes(api) == dropped
    assert api.of_type("display_data") == []
    assert api.stream("stdout") == "same cell\n"
    # A frame printed by hand: the limit is the kernel's, whatever writes the frame.
    payload = f'{{\\"type\\":\\"clear\\",\\"x\\":\\"" + String(repeating: "x", count: {size}) + "\\"}}'
    frame = f'"\\u{{1B}}]5151;{payload}\\u{{07}}"'
    over = execute(kc, f'print({frame}, terminator: "")\nprint("same cell")', timeout=240)
    assert over.status == "ok", over.content
    assert display_notes(over) == dropped
    assert over.of_type("display_data") == []
    assert over.stream("stdout") == "same cell\n"
    unterminated = execute(kc, f'print("\\u{{1B}}]5151;" + String(repeating: "y", count: {size}))', timeout=240)
    assert len(display_notes(unterminated)) == 2, unterminated.stream("stderr")
    assert "were dropped" in display_notes(unterminated)[1]
    assert execute(kc, 'print("next cell")').stream("stdout") == "next cell\n"


# ----- the result channel and the standard streams are put back ------------------------------------

PROBE = 'struct ChannelProbe: CustomStringConvertible { var n = 7; var description: String { "probe \\(n)" } }'


def described_results_work(kc: BlockingKernelClient) -> None:
    """Check that results Swift describes (not LLDB: a struct's description) still reach the kernel."""
    assert execute(kc, PROBE).status == "ok"
    for _ in range(2):
        assert value(kc, "ChannelProbe()") == "probe 7"
        assert value(kc, '"text"') == '"text"'


def ran(execution: Execution) -> Execution:
    assert execution.status == "ok", execution.content
    return execution


@pytest.mark.lldb
@pytest.mark.timeout(120)
def test_a_closed_result_channel_is_opened_again_and_said(kc: BlockingKernelClient) -> None:
    closed = ran(execute(kc, "import Glibc\nfor fd in Int32(1000)..<1100 { close(fd) }"))
    assert "The kernel's result channel, fd 1000, was closed: the kernel opened it again as fd 1000." in closed.stream(
        "stderr"
    )
    described_results_work(kc)
    assert execute(kc, '"quiet"').stream("stderr") == ""  # said once, when it happened


@pytest.mark.lldb
@pytest.mark.timeout(120)
def test_a_result_channel_replaced_by_dup2_stays_the_cells_and_results_move(
    kc: BlockingKernelClient, tmp_path: Path
) -> None:
    user_file = tmp_path / "mine.txt"
    ran(execute(kc, PROBE))
    replaced = ran(
        execute(
            kc,
            "import Glibc\n"
            f'let mine = open("{user_file}", O_WRONLY | O_CREAT | O_TRUNC, 0o644)\n'
            "for fd in Int32(1000)..<1100 where fcntl(fd, F_GETFD) >= 0 { dup2(mine, fd) }\n"
            "ChannelProbe(n: 8)",
        )
    )
    assert replaced.result == "probe 8"  # described through the channel put back, not into the file
    assert "was taken for something else (dup2, or a file opened there)" in replaced.stream("stderr")
    described_results_work(kc)
    # The fd the cell took is still the cell's: its writes reach its file, and no result did.
    ran(execute(kc, 'for fd in Int32(1000)..<1100 where fcntl(fd, F_GETFD) >= 0 { _ = write(fd, "mine", 4) }'))
    assert set(user_file.read_text().split("mine")) == {""}, user_file.read_text()


@pytest.mark.lldb
@pytest.mark.timeout(120)
def test_junk_of_any_shape_in_the_result_channel_does_not_break_results(kc: BlockingKernelClient) -> None:
    junk = ran(
        execute(
            kc,
            "import Glibc\n"
            "var junkWritten = 0\n"
            "for fd in Int32(1000)..<1100 where fcntl(fd, F_GETFD) >= 0 {\n"
            '    for junk in ["result 99999999\\n", "exit 3\\n0", "\\u{0}\\u{FF}garbage",\n'
            '                 "result 5\\nab", "result "] {\n'
            "        junkWritten += write(fd, junk, junk.utf8.count)\n"
            "    }\n"
            "}\n"
            "junkWritten",
        )
    )
    assert int(junk.result or "0") > 0
    described_results_work(kc)


@pytest.mark.lldb
@pytest.mark.timeout(120)
def test_setvbuf_on_stdout_keeps_output_in_its_cell_and_is_undone(kc: BlockingKernelClient) -> None:
    buffered = ran(
        execute(kc, 'import Glibc\nsetvbuf(stdout, nil, _IOFBF, 1 << 16)\nprint("held in the buffer", terminator: "")')
    )
    assert buffered.stream("stdout") == "held in the buffer"  # in its own cell, not the next one
    assert "Standard output was made buffered (setvbuf)" in buffered.stream("stderr")
    after = ran(execute(kc, 'print("next", terminator: "")'))
    assert after.stream("stdout") == "next"
    assert after.stream("stderr") == ""


@pytest.mark.lldb
@pytest.mark.timeout(120)
def test_setvbuf_on_stderr_is_undone_too(kc: BlockingKernelClient) -> None:
    buffered = ran(execute(kc, 'import Glibc\nsetvbuf(stderr, nil, _IOFBF, 1 << 16)\nfputs("to stderr", stderr)'))
    assert buffered.stream("stderr").startswith("to stderr"), buffered.stream("stderr")
    assert "Standard error was made buffered (setvbuf)" in buffered.stream("stderr")


@pytest.mark.lldb
@pytest.mark.timeout(120)
def test_stdout_redirected_by_dup2_is_put_back_for_the_next_cell(kc: BlockingKernelClient, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    redirected = ran(
        execute(
            kc,
            "import Glibc\n"
            f'let logFd = open("{log}", O_WRONLY | O_CREAT | O_TRUNC, 0o644)\n'
            "dup2(logFd, 1)\n"
            'print("into the file")',
        )
    )
    assert log.read_text() == "into the file\n"
    assert redirected.stream("stdout") == ""
    assert "Standard output (fd 1) led elsewhere (dup2, or a file opened in its place)." in redirected.stream("stderr")
    back = ran(execute(kc, 'print("back in the cell")'))
    assert back.stream("stdout") == "back in the cell\n"
    assert log.read_text() == "into the file\n"


@pytest.mark.lldb
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("fd", "name", "write"), [(1, "stdout", 'print("back")'), (2, "stderr", 'fputs("back\\n", stderr)')]
)
def test_a_closed_standard_stream_is_opened_again(kc: BlockingKernelClient, fd: int, name: str, write: str) -> None:
    closed = ran(execute(kc, f"import Glibc\nclose({fd})\n{write.replace('back', 'gone')}"))
    assert "gone" not in closed.stream(name)
    stream_name = "Standard output" if fd == 1 else "Standard error"
    assert f"{stream_name} (fd {fd}) was closed: what was written to it since went nowhere." in closed.stream("stderr")
    back = ran(execute(kc, write))
    assert back.stream(name) == "back\n"
    if name == "stdout":
        assert back.stream("stderr") == ""
