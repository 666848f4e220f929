"""Pump the Swift process's stdout and stderr into callbacks while a cell runs.

The Swift process writes into pipes the kernel owns. A pump thread reads them as
data arrives and hands decoded text to a callback, coalescing bursts so that a
print flood becomes a few large messages instead of one per line. ``drain`` is
called by the cell controller once an evaluation has returned: the Swift process is
stopped then, so everything it wrote is already in the pipes, and reading them
dry under the pump's lock means no output leaks into the next cell.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import selectors
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .diagnostics import runtime_report_start

CLEAR_SCREEN = "\x1b[2J"
# Rich display messages travel in-band on stdout as an OSC escape, so they keep their place among
# the printed lines: ESC ] 5151 ; <JSON> BEL. JSON text never contains a raw BEL.
DISPLAY_START = "\x1b]5151;"
DISPLAY_END = "\x07"
MAX_DISPLAY_CHARS = 64 << 20
# A display frame arrives whole in one write of the Swift process: one still open this long after
# its start is no frame (a stray start marker), and what followed it is printed text. A large frame
# gets more time, as long as it keeps coming at this rate (a loaded machine passes 64 MiB through
# the pipe in well under 16 s; a stray marker followed by a few lines still ends after ~1 s).
FRAME_SECONDS = 1.0
FRAME_CHARS_PER_SECOND = 4_000_000
READ_SIZE = 1 << 16
# A burst is sent at most this often per stream; the first line after a quiet spell goes at once.
COALESCE_SECONDS = 0.05
# The end of each stream's text in the current cell is kept to read crash messages from.
TAIL_CHARS = 8192
# Text waiting to be sent never grows past this, whatever the Swift code prints.
MAX_PENDING_CHARS = 1 << 20
# A line printed without its newline (a prompt before readLine()) waits this long for the rest of
# the line before it goes out alone, so that a read of stdin can take it as the input's prompt.
PARTIAL_LINE_SECONDS = 0.2
# Only a short unfinished line is held back like that: a prompt, not a long line still being printed.
MAX_PROMPT_CHARS = 4096
# The Swift runtime's report of a fatal error at the end of stderr waits this long for the crash that
# follows it at once, so that the kernel can show its message in the cell's error instead
# (``OutputPump.drain``); if the code runs on, or writes more, it goes out as it is.
REPORT_HOLD_SECONDS = 1.0


@dataclass(frozen=True)
class Text:
    """Text written to a stream."""

    text: str


@dataclass(frozen=True)
class Clear:
    """The Swift code cleared the screen (``\\u{1B}[2J``)."""


@dataclass(frozen=True)
class Display:
    """A rich display message from the Swift ``Jupyter`` API: its JSON text, or an error."""

    payload: str
    error: str | None = None


OutputEvent = Text | Clear | Display
OutputCallback = Callable[[str, OutputEvent], None]


class StreamDecoder:
    """Turn a byte stream into text, clear-screen and display events; pure, no I/O.

    A display frame (``DISPLAY_START`` JSON ``DISPLAY_END``) is collected as it arrives, in pieces,
    each searched once: decoding is linear in the frame's size. A frame ends at its end marker; one
    that has none ends, and what followed its start is given back as printed text with a note
    (``Display`` with an error), at the first escape character (JSON never holds a raw ESC: the
    next frame, a colour), when its time is up (``deadline``), or when the cell ends (``final``).
    A frame longer than ``MAX_DISPLAY_CHARS`` is dropped, with a note, up to its end, which may
    come no later than that either. So no output is ever held back for long, or lost unsaid.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # A tail of text that may be the beginning of an escape split across reads.
        self._held = ""
        # The open frame's text so far (after its start marker), when one is open.
        self._frame: list[str] | None = None
        self._frame_chars = 0
        self._frame_started = 0.0
        # The open frame passed the limit: it is dropped up to its end (``_frame_chars`` counts).
        self._dropping = False

    @property
    def deadline(self) -> float | None:
        """Return when the open frame is taken for printed text if it has not ended; None: none open."""
        if self._frame is None:
            return None
        return self._frame_started + FRAME_SECONDS + self._frame_chars / FRAME_CHARS_PER_SECOND

    def feed(self, data: bytes, final: bool = False, now: float | None = None) -> list[OutputEvent]:
        """Decode ``data``; with ``final`` (the cell ended) also flush any incomplete character, escape or frame."""
        now = time.monotonic() if now is None else now
        text = self._held + self._decoder.decode(data, final=final)
        self._held = ""
        events: list[OutputEvent] = []
        at = 0
        while at < len(text):
            if self._frame is not None:
                at = self._frame_text(text, at, events)
                continue
            start = text.find(DISPLAY_START, at)
            if start < 0:
                break
            events += split_clear(text[at:start])
            at = start + len(DISPLAY_START)
            self._frame, self._frame_chars, self._frame_started = [], 0, now
        rest = text[at:]
        if not final and self._frame is None:
            # Keep back a tail that could begin an escape split across reads.
            for keep in range(min(len(DISPLAY_START) - 1, len(rest)), 0, -1):
                tail = rest[-keep:]
                if CLEAR_SCREEN.startswith(tail) or DISPLAY_START.startswith(tail):
                    self._held = tail
                    rest = rest[:-keep]
                    break
        events += split_clear(rest)
        if final:
            events += self._cut("when the cell ended")
        return events

    def expire(self, now: float) -> list[OutputEvent]:
        """End the open frame if its time is up (``deadline``); return what that gives."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return []
        return self._cut(f"within {now - self._frame_started:.1f} s of its start")

    def _frame_text(self, text: str, at: int, events: list[OutputEvent]) -> int:
        """Take the open frame's text from ``text[at:]`` up to its end or an escape; return where it stopped."""
        end = text.find(DISPLAY_END, at)
        escape = text.find("\x1b", at, end if end >= 0 else len(text))
        stop = escape if escape >= 0 else end
        self._grow(text[at : stop if stop >= 0 else len(text)], events)
        if stop < 0:
            return len(text)
        if stop == escape:
            events += self._cut("before the escape sequence that followed it")
            return escape
        if self._dropping:
            self._dropping = False
        else:
            events.append(Display("".join(self._frame or ())))
        self._frame = None
        return end + len(DISPLAY_END)

    def _grow(self, piece: str, events: list[OutputEvent]) -> None:
        """Add ``piece`` to the open frame, or drop it if the frame is over the limit."""
        if not piece:
            return
        assert self._frame is not None
        self._frame_chars += len(piece)
        if self._dropping:
            return
        self._frame.append(piece)
        if self._frame_chars > MAX_DISPLAY_CHARS:
            events.append(Display("", f"a display message over {MAX_DISPLAY_CHARS >> 20} MiB was dropped"))
            self._frame.clear()
            self._dropping = True

    def _cut(self, when: str) -> list[OutputEvent]:
        """End the open frame, which had no end marker ``when``; say so, and give its text back."""
        if self._frame is None:
            return []
        frame, chars, dropping = "".join(self._frame), self._frame_chars, self._dropping
        self._frame, self._frame_chars, self._dropping = None, 0, False
        if dropping:
            note = f"the display message over {MAX_DISPLAY_CHARS >> 20} MiB had no end (\\u{{07}}) {when}"
            return [Display("", f"{note}: the {chars:,} characters printed after its start were dropped")]
        note = f"a display message had no end (\\u{{07}}) {when}: its {chars:,} characters are shown as printed text"
        return [Display("", note), *split_clear(frame)]


def split_clear(text: str) -> list[OutputEvent]:
    """Split text at clear-screen escapes; NUL characters become U+FFFD."""
    text = text.replace("\x00", "\ufffd")
    events: list[OutputEvent] = []
    parts = text.split(CLEAR_SCREEN)
    for index, part in enumerate(parts):
        if index:
            events.append(Clear())
        if part:
            events.append(Text(part))
    return events


def child_path(fd: int) -> str:
    """Return a path another process (the Swift process, via lldb-server) can open to reach ``fd``."""
    return f"/proc/{os.getpid()}/fd/{fd}"


def close_fds(*fds: int) -> None:
    """Close file descriptors, ignoring ones already closed (-1 or gone)."""
    for fd in fds:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


class _Stream:
    """One pipe, its decoder and the text read but not yet sent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self.decoder = StreamDecoder()
        self.pending: list[OutputEvent] = []
        self.pending_chars = 0
        self.last_sent = 0.0
        self.tail = ""
        # Since when the end of ``pending`` has been held back: an unfinished line on stdout, the
        # runtime's fatal-error report on stderr (see ``_held_start``).
        self.held_since: float | None = None
        self.hold_seconds = PARTIAL_LINE_SECONDS if name == "stdout" else REPORT_HOLD_SECONDS

    @property
    def path_for_child(self) -> str:
        """Return a path another process can open to get this pipe's write end."""
        return child_path(self.write_fd)

    def read_available(self, final: bool = False) -> bool:
        """Read until the pipe is empty, or enough text is pending; return whether anything was read.

        With ``final`` (the cell ended) the decoder is flushed once the pipe is empty, not before:
        a frame still coming must not be cut.
        """
        got = False
        while True:
            try:
                data = os.read(self.read_fd, READ_SIZE)
            except OSError as error:
                if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    break
                raise
            if not data:
                break
            got = True
            self._add(self.decoder.feed(data, now=time.monotonic()))
            if self.pending_chars >= MAX_PENDING_CHARS:
                return True
        if final:
            self._add(self.decoder.feed(b"", final=True))
        return got

    def expire(self, now: float) -> None:
        """Give up on a display frame that did not end in time (``StreamDecoder.expire``)."""
        self._add(self.decoder.expire(now))

    def _add(self, events: list[OutputEvent]) -> None:
        for event in events:
            if isinstance(event, Text) and self.pending and isinstance(self.pending[-1], Text):
                self.pending[-1] = Text(self.pending[-1].text + event.text)
            else:
                self.pending.append(event)
            if isinstance(event, Text):
                self.pending_chars += len(event.text)
                self.tail = (self.tail + event.text)[-TAIL_CHARS:]

    def _held_start(self, text: str) -> int | None:
        """Return where the end of ``text`` that may wait a while begins, or None.

        On stdout an unfinished short line (the prompt of a read); on stderr the Swift runtime's
        report of a fatal error, which a crash follows at once.
        """
        if self.name == "stdout":
            cut = text.rfind("\n") + 1
            return cut if 0 < len(text) - cut <= MAX_PROMPT_CHARS else None
        return runtime_report_start(text)

    def held_partial(self) -> str | None:
        """Return the unfinished line being held back, if that is all that is pending."""
        event = self.pending[0] if self._holding_all() else None
        if self.name != "stdout" or self.held_since is None or not isinstance(event, Text):
            return None
        return event.text

    def due(self) -> float | None:
        """Return when what is pending should go out, or an open display frame expires; None: never."""
        frame_deadline = self.decoder.deadline
        if not self.pending:
            return frame_deadline
        due = self.last_sent + COALESCE_SECONDS
        if self.held_since is not None and self._holding_all():
            due = max(due, self.held_since + self.hold_seconds)
        return due if frame_deadline is None else min(due, frame_deadline)

    def _holding_all(self) -> bool:
        """Say whether all that is pending is text that may still wait (nothing came after it)."""
        if len(self.pending) != 1:
            return False
        event = self.pending[0]
        return isinstance(event, Text) and self._held_start(event.text) == 0

    def take(self, hold: bool = False) -> list[OutputEvent]:
        """Return what is pending; with ``hold``, keep its end a while longer (see ``_held_start``)."""
        now = time.monotonic()
        events, self.pending, self.pending_chars = self.pending, [], 0
        last = events[-1] if events else None
        start = self._held_start(last.text) if hold and isinstance(last, Text) else None
        if start is not None and isinstance(last, Text):
            if self.held_since is None or start:
                self.held_since = now  # new text starts waiting
            if now - self.held_since < self.hold_seconds:
                events[-1:] = [Text(last.text[:start])] if start else []
                self.pending = [Text(last.text[start:])]
                self.pending_chars = len(last.text) - start
            else:
                self.held_since = None
        else:
            self.held_since = None
        if events:
            self.last_sent = now
        return events

    def take_report(self) -> str:
        """Take the runtime's fatal-error report off the end of what is pending, if it ends there."""
        last = self.pending[-1] if self.pending else None
        start = runtime_report_start(last.text) if self.name == "stderr" and isinstance(last, Text) else None
        if start is None or not isinstance(last, Text):
            return ""
        self.pending[-1:] = [Text(last.text[:start])] if start else []
        self.pending_chars -= len(last.text) - start
        self.held_since = None
        return last.text[start:]

    def close(self) -> None:
        close_fds(self.read_fd, self.write_fd)


class OutputPump:
    """Read stdout and stderr pipes on a thread and send what they carry to a callback."""

    def __init__(self, callback: OutputCallback) -> None:
        self._callback = callback
        self._streams = {name: _Stream(name) for name in ("stdout", "stderr")}
        self._lock = threading.Lock()
        self._stop_read, self._stop_write = os.pipe()
        self._thread = threading.Thread(target=self._run, name="swift-output-pump", daemon=True)
        self._thread.start()

    def path(self, name: str) -> str:
        """Return the path the Swift process opens for stream ``name``."""
        return self._streams[name].path_for_child

    def set_callback(self, callback: OutputCallback) -> None:
        """Send output to ``callback`` from now on (the kernel sets one per cell)."""
        with self._lock:
            self._callback = callback

    def reset_tail(self) -> None:
        """Forget the text kept by ``tail``; called when a cell starts."""
        with self._lock:
            for stream in self._streams.values():
                stream.tail = ""

    def tail(self, name: str) -> str:
        """Return the last few thousand characters stream ``name`` carried in this cell."""
        with self._lock:
            return self._streams[name].tail

    def drain(self, withhold_report: bool = False) -> str:
        """Read every pipe dry and send everything pending; called after an evaluation returns.

        With ``withhold_report`` (the code crashed through the Swift runtime's fatal-error report),
        the report at the end of stderr is not sent but returned: the kernel shows its message in the
        cell's error. Returns "" when there is none, or when it went out already (the code ran on
        after it for ``REPORT_HOLD_SECONDS``).
        """
        report = ""
        with self._lock:
            for stream in self._streams.values():
                while stream.read_available(final=True):
                    self._send(stream, hold=withhold_report)
                if withhold_report:
                    report += stream.take_report()
                self._send(stream)
        return report

    def take_prompt(self) -> str:
        """Take the unfinished line the Swift code printed last on stdout (the prompt of a read).

        Called when the code reads standard input and the kernel asks the frontend for a line: the
        frontend shows the prompt beside its input box instead of on a line of its own.
        """
        with self._lock:
            stream = self._streams["stdout"]
            stream.read_available()
            self._send(stream, hold=True)
            prompt = stream.held_partial()
            if prompt is None:
                return ""
            stream.pending, stream.pending_chars, stream.held_since = [], 0, None
            return prompt

    def emit(self, name: str, event: OutputEvent) -> None:
        """Send an event that did not come from the Swift process (compiler warnings) as stream ``name``.

        What the pipe carried before goes out first, so the order on the stream holds.
        """
        with self._lock:
            stream = self._streams[name]
            stream.read_available()
            self._send(stream)
            stream.pending.append(event)
            self._send(stream)

    def close(self) -> None:
        """Stop the pump thread and close the pipes."""
        os.write(self._stop_write, b"x")
        self._thread.join(timeout=2)
        for stream in self._streams.values():
            stream.close()
        os.close(self._stop_read)
        os.close(self._stop_write)

    def _send(self, stream: _Stream, hold: bool = False) -> None:
        for event in stream.take(hold):
            try:
                self._callback(stream.name, event)
            except Exception:  # noqa: BLE001 - a failing frontend callback must not kill the pump
                pass

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        by_fd = {stream.read_fd: stream for stream in self._streams.values()}
        for fd in by_fd:
            selector.register(fd, selectors.EVENT_READ)
        selector.register(self._stop_read, selectors.EVENT_READ)
        while True:
            dues = [due for due in (s.due() for s in self._streams.values()) if due is not None]
            timeout = max(0.0, min(dues) - time.monotonic()) if dues else None
            ready = selector.select(timeout)
            if any(key.fd == self._stop_read for key, _ in ready):
                selector.close()
                return
            with self._lock:
                for key, _ in ready:
                    by_fd[key.fd].read_available()
                now = time.monotonic()
                for stream in self._streams.values():
                    stream.expire(now)
                    due = stream.due()
                    if due is not None and (now >= due or stream.pending_chars >= MAX_PENDING_CHARS):
                        self._send(stream, hold=True)
