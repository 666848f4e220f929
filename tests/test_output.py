"""Test output decoding and the output pump with real pipes; no LLDB."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator

import pytest

from swift_kernel.output import (
    CLEAR_SCREEN,
    COALESCE_SECONDS,
    MAX_PENDING_CHARS,
    MAX_PROMPT_CHARS,
    PARTIAL_LINE_SECONDS,
    REPORT_HOLD_SECONDS,
    Clear,
    OutputEvent,
    OutputPump,
    StreamDecoder,
    Text,
    split_clear,
)

pytestmark = pytest.mark.timeout(30)

EMOJI = "\U0001f600"  # four UTF-8 bytes


def text_of(events: list[OutputEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, Text))


def feed_all(chunks: list[bytes]) -> list[OutputEvent]:
    decoder = StreamDecoder()
    events: list[OutputEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.feed(b"", final=True)
    return events


# ----- StreamDecoder ------------------------------------------------------------------------------


def test_plain_text() -> None:
    assert StreamDecoder().feed(b"hello\n") == [Text("hello\n")]


def test_character_split_across_every_byte_survives() -> None:
    data = f"a{EMOJI}b\u00e9\u4e2d\n".encode()
    decoder = StreamDecoder()
    pieces = [decoder.feed(data[i : i + 1]) for i in range(len(data))]
    # Nothing is emitted for a partial character: no replacement character ever appears.
    assert all("\ufffd" not in text_of(events) for events in pieces)
    assert "".join(text_of(events) for events in pieces) == f"a{EMOJI}b\u00e9\u4e2d\n"
    # The emoji's first three bytes produce nothing; the fourth produces the whole character.
    emoji_start = 1
    assert [text_of(pieces[emoji_start + i]) for i in range(4)] == ["", "", "", EMOJI]


@pytest.mark.parametrize("cut", range(1, 4))
def test_character_split_between_two_feeds(cut: int) -> None:
    data = f"x{EMOJI}y".encode()
    assert text_of(feed_all([data[: 1 + cut], data[1 + cut :]])) == f"x{EMOJI}y"


def test_invalid_bytes_become_replacement_characters() -> None:
    assert text_of(feed_all([b"a\xff\xfeb\n"])) == "a\ufffd\ufffdb\n"


def test_lone_continuation_and_overlong_bytes() -> None:
    assert text_of(feed_all([b"\x80x\xc0\xafy"])) == "\ufffdx\ufffd\ufffdy"


def test_truncated_character_at_the_end_becomes_one_replacement() -> None:
    decoder = StreamDecoder()
    assert text_of(decoder.feed(EMOJI.encode()[:3])) == ""
    assert text_of(decoder.feed(b"", final=True)) == "\ufffd"


def test_truncated_character_followed_by_ascii() -> None:
    assert text_of(feed_all([EMOJI.encode()[:2], b"ok"])) == "\ufffdok"


def test_nul_bytes_become_replacement_characters() -> None:
    assert text_of(feed_all([b"a\x00b\x00\x00\n"])) == "a\ufffdb\ufffd\ufffd\n"


def test_clear_screen_becomes_a_clear_event() -> None:
    assert feed_all([b"before\x1b[2Jafter\n"]) == [Text("before"), Clear(), Text("after\n")]


def test_clear_screen_at_start_and_twice() -> None:
    assert feed_all([b"\x1b[2J\x1b[2Jx"]) == [Clear(), Clear(), Text("x")]


@pytest.mark.parametrize("cut", range(1, len(CLEAR_SCREEN)))
def test_clear_screen_split_across_feeds(cut: int) -> None:
    data = b"ab\x1b[2Jcd"
    events = feed_all([data[: 2 + cut], data[2 + cut :]])
    assert [e for e in events if isinstance(e, Clear)] == [Clear()]
    assert text_of(events) == "abcd"
    assert "\x1b" not in text_of(events)


def test_clear_screen_split_byte_by_byte() -> None:
    data = b"ab\x1b[2Jcd"
    events = feed_all([data[i : i + 1] for i in range(len(data))])
    assert [type(e) for e in events if isinstance(e, Clear)] == [Clear]
    assert text_of(events) == "abcd"


def test_other_escapes_pass_through() -> None:
    # Colours are for the frontend to render; only clear-screen is translated.
    data = b"\x1b[31mred\x1b[0m \x1b[2K"
    assert text_of(feed_all([data[:3], data[3:]])) == "\x1b[31mred\x1b[0m \x1b[2K"


def test_held_escape_prefix_is_released_when_it_is_not_a_clear() -> None:
    decoder = StreamDecoder()
    assert text_of(decoder.feed(b"x\x1b[")) == "x"
    assert text_of(decoder.feed(b"1m")) == "\x1b[1m"


def test_held_escape_prefix_is_flushed_at_the_end() -> None:
    decoder = StreamDecoder()
    assert text_of(decoder.feed(b"x\x1b[2")) == "x"
    assert decoder.feed(b"", final=True) == [Text("\x1b[2")]


def test_split_clear() -> None:
    assert split_clear("") == []
    assert split_clear("abc") == [Text("abc")]
    assert split_clear("a\x1b[2J") == [Text("a"), Clear()]
    assert split_clear("a\x00") == [Text("a\ufffd")]


# ----- OutputPump ---------------------------------------------------------------------------------


class Recorder:
    """Collects what the pump sends, with arrival times."""

    def __init__(self) -> None:
        self.events: list[tuple[str, OutputEvent, float]] = []
        self.lock = threading.Lock()

    def __call__(self, name: str, event: OutputEvent) -> None:
        with self.lock:
            self.events.append((name, event, time.monotonic()))

    def text(self, name: str) -> str:
        with self.lock:
            return "".join(e.text for n, e, _ in self.events if n == name and isinstance(e, Text))

    def wait_for(self, name: str, text: str, timeout: float = 5.0) -> float:
        """Wait until stream ``name`` has carried ``text``; return when it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.text(name):
                return time.monotonic()
            time.sleep(0.002)
        raise AssertionError(f"{text!r} never arrived on {name}; got {self.text(name)!r}")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def pump(recorder: Recorder) -> Iterator[OutputPump]:
    pump = OutputPump(recorder)
    yield pump
    pump.close()


def open_for_writing(pump: OutputPump, name: str) -> int:
    """Open the pipe the way the Swift process does: through its /proc path."""
    return os.open(pump.path(name), os.O_WRONLY)


def test_output_arrives_while_the_writer_is_still_running(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stdout")
    try:
        written = time.monotonic()
        os.write(fd, b"first line\n")
        arrived = recorder.wait_for("stdout", "first line\n")
        # Live: no drain needed, and the first line after a quiet spell is not held back.
        assert arrived - written < 0.5
    finally:
        os.close(fd)


def test_stdout_and_stderr_stay_separate(pump: OutputPump, recorder: Recorder) -> None:
    out, err = open_for_writing(pump, "stdout"), open_for_writing(pump, "stderr")
    try:
        os.write(out, b"to out\n")
        os.write(err, b"to err\n")
        os.write(out, b"more out\n")
        pump.drain()
    finally:
        os.close(out)
        os.close(err)
    assert recorder.text("stdout") == "to out\nmore out\n"
    assert recorder.text("stderr") == "to err\n"


def test_drain_delivers_everything_written_before_it(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stdout")
    try:
        lines = [f"line {i}\n" for i in range(5000)]
        for line in lines:
            os.write(fd, line.encode())
        pump.drain()
        # Right after drain returns, without waiting: nothing is left for the next cell.
        assert recorder.text("stdout") == "".join(lines)
    finally:
        os.close(fd)


def test_drain_flushes_an_incomplete_character_as_a_replacement(pump: OutputPump, recorder: Recorder) -> None:
    # A cell that ends in the middle of a character must not leave bytes for the next cell.
    fd = open_for_writing(pump, "stdout")
    try:
        os.write(fd, b"end" + EMOJI.encode()[:2])
        pump.drain()
        assert recorder.text("stdout") == "end\ufffd"
        os.write(fd, b"next")
        pump.drain()
        assert recorder.text("stdout") == "end\ufffdnext"
    finally:
        os.close(fd)


def test_split_character_across_writes_survives(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stdout")
    try:
        for byte in EMOJI.encode():
            os.write(fd, bytes([byte]))
            time.sleep(0.02)  # separate reads on the pump side
        os.write(fd, b"\n")
        pump.drain()
    finally:
        os.close(fd)
    assert recorder.text("stdout") == EMOJI + "\n"


def test_a_burst_is_coalesced_into_few_messages_in_order(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stdout")
    lines = [f"{i}\n" for i in range(20000)]
    started = time.monotonic()
    try:
        for line in lines:
            os.write(fd, line.encode())
        pump.drain()
    finally:
        os.close(fd)
    elapsed = time.monotonic() - started
    assert recorder.text("stdout") == "".join(lines)
    messages = [e for n, e, _ in recorder.events if n == "stdout"]
    # At most one message per coalescing period (plus the first and the drain), never one per line.
    assert len(messages) <= elapsed / COALESCE_SECONDS + 3, (len(messages), elapsed)
    assert len(messages) < len(lines) / 10


def test_coalesced_messages_are_spaced_by_the_coalescing_period(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stdout")
    try:
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            os.write(fd, b"tick\n")
            time.sleep(0.001)
        pump.drain()
    finally:
        os.close(fd)
    times = [t for n, _, t in recorder.events if n == "stdout"]
    # The first message goes at once and the drain's may follow closely; the rest are paced.
    paced = times[1:-1]
    gaps = [later - earlier for earlier, later in itertools.pairwise(paced)]
    assert len(times) >= 5  # live, not all at the end
    assert all(gap >= COALESCE_SECONDS * 0.8 for gap in gaps), gaps


def test_pending_text_is_bounded_when_the_callback_is_slow() -> None:
    sizes: list[int] = []

    def slow(name: str, event: OutputEvent) -> None:
        if isinstance(event, Text):
            sizes.append(len(event.text))
        time.sleep(0.05)

    pump = OutputPump(slow)
    total = 6 * MAX_PENDING_CHARS
    fd = open_for_writing(pump, "stdout")
    try:
        chunk = b"y" * 65536
        for _ in range(total // len(chunk)):
            os.write(fd, chunk)  # blocks when the pipe is full: back-pressure, not buffering
        pump.drain()
    finally:
        os.close(fd)
        pump.close()
    assert sum(sizes) == total
    # One message never carries much more than the cap (the cap plus at most one read).
    assert max(sizes) <= MAX_PENDING_CHARS + (1 << 16)


def test_pump_turns_a_split_clear_screen_into_a_clear_event(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stdout")
    try:
        os.write(fd, b"old\x1b[")
        time.sleep(0.1)
        os.write(fd, b"2Jnew\n")
        pump.drain()
    finally:
        os.close(fd)
    events = [e for n, e, _ in recorder.events if n == "stdout"]
    assert [e for e in events if isinstance(e, Clear)] == [Clear()]
    assert recorder.text("stdout") == "oldnew\n"
    assert events.index(Clear()) > 0 and text_of(events[: events.index(Clear())]) == "old"


def test_set_callback_moves_output_to_the_new_callback(pump: OutputPump, recorder: Recorder) -> None:
    second = Recorder()
    fd = open_for_writing(pump, "stdout")
    try:
        os.write(fd, b"one\n")
        pump.drain()
        pump.set_callback(second)
        os.write(fd, b"two\n")
        pump.drain()
    finally:
        os.close(fd)
    assert recorder.text("stdout") == "one\n"
    assert second.text("stdout") == "two\n"


def test_a_failing_callback_does_not_stop_the_pump(recorder: Recorder) -> None:
    calls = []

    def failing(name: str, event: OutputEvent) -> None:
        calls.append(event)
        raise RuntimeError("frontend went away")

    pump = OutputPump(failing)
    fd = open_for_writing(pump, "stdout")
    try:
        os.write(fd, b"a\n")
        time.sleep(0.2)
        pump.set_callback(recorder)
        os.write(fd, b"b\n")
        recorder.wait_for("stdout", "b\n")
    finally:
        os.close(fd)
        pump.close()
    assert calls


def test_tail_keeps_the_end_of_the_cells_stderr(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stderr")
    try:
        os.write(fd, b"old cell\n")
        pump.drain()
        pump.reset_tail()
        os.write(fd, b"x" * 20000 + b"Fatal error: boom\n")
        pump.drain()
    finally:
        os.close(fd)
    tail = pump.tail("stderr")
    assert tail.endswith("Fatal error: boom\n")
    assert "old cell" not in tail
    assert len(tail) <= 8192
    assert pump.tail("stdout") == ""


def test_emitted_text_follows_what_the_pipe_carried_and_stays_out_of_the_tail(
    pump: OutputPump, recorder: Recorder
) -> None:
    fd = open_for_writing(pump, "stderr")
    try:
        os.write(fd, b"from the process\n")
        pump.emit("stderr", Text("<Cell 1>:1:5: warning: from the compiler\n"))
    finally:
        os.close(fd)
    # At once, without a drain: the kernel sends its reply right after.
    assert recorder.text("stderr") == "from the process\n<Cell 1>:1:5: warning: from the compiler\n"
    # The tail is where a crash's "Fatal error" is looked for; a warning must not be taken for one.
    assert "warning" not in pump.tail("stderr")


def test_an_unfinished_line_waits_a_little_then_goes_out(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stdout")
    try:
        written = time.monotonic()
        os.write(fd, b"done\nName? ")
        recorder.wait_for("stdout", "done\n")
        arrived = recorder.wait_for("stdout", "done\nName? ")
        assert arrived - written >= PARTIAL_LINE_SECONDS * 0.9
        # A line finished in time goes out whole, at once.
        os.write(fd, b"Loading")
        time.sleep(PARTIAL_LINE_SECONDS / 4)
        started = time.monotonic()
        os.write(fd, b" done\n")
        assert recorder.wait_for("stdout", "Loading done\n") - started < PARTIAL_LINE_SECONDS
        assert [e.text for n, e, _ in recorder.events if isinstance(e, Text)][-1] == "Loading done\n"
    finally:
        os.close(fd)


REPORT = "Swift/ContiguousArrayBuffer.swift:692: Fatal error: Index out of range\n"


def test_a_runtime_report_on_stderr_is_held_for_the_crash(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stderr")
    try:
        os.write(fd, b"before\n" + REPORT.encode())
        recorder.wait_for("stderr", "before\n")
        time.sleep(REPORT_HOLD_SECONDS / 2)
        assert recorder.text("stderr") == "before\n"
        # The crash came: the report is handed over, not sent.
        assert pump.drain(withhold_report=True) == REPORT
        assert recorder.text("stderr") == "before\n"
    finally:
        os.close(fd)


def test_a_held_report_goes_out_when_the_code_runs_on(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stderr")
    try:
        written = time.monotonic()
        os.write(fd, REPORT.encode())
        arrived = recorder.wait_for("stderr", REPORT)
        assert REPORT_HOLD_SECONDS * 0.9 <= arrived - written < REPORT_HOLD_SECONDS + 1
        # Sent already: nothing is left to withhold, and nothing is lost.
        assert pump.drain(withhold_report=True) == ""
        assert recorder.text("stderr") == REPORT
    finally:
        os.close(fd)


def test_text_after_a_report_sends_both_at_once(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stderr")
    try:
        os.write(fd, REPORT.encode())
        time.sleep(0.1)
        started = time.monotonic()
        os.write(fd, b"the program goes on\n")
        assert recorder.wait_for("stderr", REPORT + "the program goes on\n") - started < REPORT_HOLD_SECONDS / 2
        assert pump.drain(withhold_report=True) == ""
    finally:
        os.close(fd)


def test_drain_sends_a_held_report_unless_told_to_withhold_it(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stderr")
    try:
        os.write(fd, REPORT.encode())
        assert pump.drain() == ""
        assert recorder.text("stderr") == REPORT
        # On stdout the same text is output like any other.
        out = open_for_writing(pump, "stdout")
        os.write(out, REPORT.encode())
        assert pump.drain(withhold_report=True) == ""
        assert recorder.text("stdout") == REPORT
        os.close(out)
    finally:
        os.close(fd)


def test_take_prompt_takes_the_unfinished_line_out_of_the_stream(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stdout")
    try:
        os.write(fd, b"Welcome\nName? ")
        recorder.wait_for("stdout", "Welcome\n")
        assert pump.take_prompt() == "Name? "
        os.write(fd, b"hi\n")
        pump.drain()
        assert recorder.text("stdout") == "Welcome\nhi\n"
        # Nothing unfinished: no prompt, and finished lines are not taken.
        os.write(fd, b"line\n")
        assert pump.take_prompt() == ""
        pump.drain()
        assert recorder.text("stdout") == "Welcome\nhi\nline\n"
    finally:
        os.close(fd)


def test_a_long_unfinished_line_is_not_held(pump: OutputPump, recorder: Recorder) -> None:
    fd = open_for_writing(pump, "stdout")
    try:
        long_text = "x" * (MAX_PROMPT_CHARS + 1)
        written = time.monotonic()
        os.write(fd, long_text.encode())
        assert recorder.wait_for("stdout", long_text) - written < PARTIAL_LINE_SECONDS
        assert pump.take_prompt() == ""
    finally:
        os.close(fd)


def test_close_stops_the_thread_and_closes_the_pipes(recorder: Recorder) -> None:
    pump = OutputPump(recorder)
    thread = next(t for t in threading.enumerate() if t.name == "swift-output-pump" and t.is_alive())
    fd = open_for_writing(pump, "stdout")
    try:
        pump.close()
        assert not thread.is_alive()
        # The read end is gone: a writer that outlives the pump gets EPIPE, it cannot block forever.
        with pytest.raises(BrokenPipeError):
            os.write(fd, b"late\n")
    finally:
        os.close(fd)
