"""Turn LLDB's error text and stack frames into Jupyter errors; pure functions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .declarations import scopes_at


@dataclass(frozen=True)
class CellError:
    """An error as Jupyter shows it: ename, evalue and traceback lines."""

    ename: str
    evalue: str
    traceback: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Frame:
    """One stack frame of Swift code, as read from LLDB."""

    function: str
    file: str | None
    line: int
    column: int = 0

    def render(self) -> str:
        """Return ``function at <Cell N>:line`` (or just the function when it has no line)."""
        if self.file and self.line > 0:
            return f"{self.function} at {self.file}:{self.line}"
        return self.function


# LLDB 17+ says "Expression execution was interrupted: X."; older ones "Execution was interrupted, reason: X."
_INTERRUPTED = re.compile(
    r"(?:Expression execution was interrupted:|Execution was interrupted, reason:"
    r"|Expression execution hit a breakpoint:) (.*?)\.?\n"
)
DIAGNOSTIC = re.compile(r"^(error|warning|note): (<[^>\n]+>|[^:\n]+):(\d+):(\d+): (.*)$", re.MULTILINE)
# The file LLDB compiles a REPL cell in, around the cell's own lines.
_LLDB_WRAPPER = re.compile(r"(?:^|/)(?:repl|expr)\d+-[^/]*\.cpp$")
_PROCESS_GONE = (
    "no JIT compiled function",
    "process is exited",
    "process exited",
    "while the process is exited",
    "no process",
    "invalid process",
    "Process must be launched",
    "execution stopped with unexpected state",
)
# The kernel's own Swift code (the prelude: safe points, display helpers) shows in no traceback.
_KERNEL_FUNCTIONS = ("__swiftKernel", "__SwiftKernel")
_SIGNAL_NAMES = {
    "SIGILL": "illegal instruction",
    "SIGSEGV": "segmentation fault",
    "SIGBUS": "bus error",
    "SIGABRT": "abort",
    "SIGTRAP": "trap",
    "SIGFPE": "floating point exception",
}


def is_no_result(error_text: str) -> bool:
    """Say whether LLDB's error means "ran fine, nothing to show" (declarations, Void statements)."""
    return error_text.strip() == "unknown error"


def interruption_reason(error_text: str) -> str | None:
    """Return why LLDB stopped the expression (``signal SIGINT``, ``breakpoint 1.1``), or None."""
    match = _INTERRUPTED.search(error_text + "\n")
    return match.group(1).strip() if match else None


def process_left_stopped(error_text: str) -> bool:
    """Say whether LLDB left the process inside the expression, so the kernel must unwind it."""
    return "has been left at the point where it was interrupted" in error_text


def is_process_gone(error_text: str) -> bool:
    """Say whether the error means the Swift process or its debug server is gone."""
    return any(marker in error_text for marker in _PROCESS_GONE)


def compile_error(error_text: str, source_name: str | None = None, source: str | None = None) -> CellError | None:
    """Parse Swift diagnostics into a CompileError; None when the text has no error diagnostic.

    LLDB prints ``error: <Cell 3>:2:5: message`` followed by the source line and a caret;
    Jupyter users expect the compiler's own ``<Cell 3>:2:5: error: message`` order. A diagnostic
    at the end of the input (a missing operand or brace) points into the wrapper LLDB wraps the
    cell in (``/tmp/repl12-ab..cpp:4:1``); with ``source_name`` and ``source`` it is moved to the
    end of the cell, where the user's code stopped.
    """
    blocks: list[list[str]] = []
    first_error: str | None = None
    in_wrapper = False
    for line in error_text.splitlines():
        match = DIAGNOSTIC.match(line)
        if match:
            severity, file, row, col, message = match.groups()
            in_wrapper = bool(source_name and source is not None and _LLDB_WRAPPER.search(file))
            if in_wrapper and source is not None and source_name is not None:
                lines = source.rstrip("\n").split("\n")
                file, row, col = source_name, str(len(lines)), str(len(lines[-1]) + 1)
                blocks.append([f"{file}:{row}:{col}: {severity}: {message}", lines[-1], " " * (int(col) - 1) + "^"])
            else:
                blocks.append([f"{file}:{row}:{col}: {severity}: {message}"])
            if severity == "error" and first_error is None:
                first_error = f"{file}:{row}:{col}: {message}"
        elif line.startswith("error: ") and not blocks:
            blocks.append([line])
            if first_error is None:
                first_error = line[len("error: ") :]
        elif blocks and line.strip() and not in_wrapper:
            blocks[-1].append(line)
    if first_error is None and _NO_DIAGNOSTICS in error_text:
        first_error = error_text.strip().removeprefix("error: ")
    if first_error is None:
        return None
    if first_error.startswith(_NOT_COMPILE_ERRORS):
        # LLDB's own failure, with no diagnostic of the compiler's: not the code's fault.
        evalue = f"LLDB could not run the cell: {first_error} (not an error in the code; running it again may work)"
        return CellError("LLDBError", evalue, [f"LLDBError: {evalue}"])
    traceback = ["\n".join(block) for block in blocks]
    limit = repl_limit(error_text)
    if limit is not None and limit.startswith(_L11) and _isolated_in_a_declaration(error_text, source_name, source):
        limit = None  # a program would refuse this code too: the compiler's message says enough
    if limit is not None:
        if first_error.startswith(_NO_DIAGNOSTICS):
            # LLDB's words say nothing the user can act on: the limit's note replaces them.
            return CellError("CompileError", limit, [limit])
        return CellError("CompileError", f"{first_error} ({limit})", [*traceback, limit])
    return CellError("CompileError", first_error, traceback)


_NO_DIAGNOSTICS = "expression failed to parse"
_L11 = "REPL limit L11"
_MAIN_ACTOR_ISOLATED = re.compile(
    r"main actor-isolated [^\n]*(?:in a synchronous nonisolated context|from a nonisolated context)"
)
# Code a program does not run on the main actor either: a body the cell declares (a function's,
# an initializer's, an accessor's or a subscript's) and a type's members.
_DECLARED_BODIES = frozenset({"function_body", "computed_property", "class_body", "enum_class_body", "protocol_body"})
# Limits of LLDB's REPL (README: Known limits), each recognised by what LLDB says, with one sentence
# that names it and says what to write instead. Checked in order; the first that matches is given.
_REPL_LIMITS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"must be declared public because it matches a requirement in public protocol"),
        "REPL limit L2: LLDB's REPL makes a cell's declarations public, so a conformance to a protocol"
        " of an earlier cell or a library needs public witnesses: write `public` before the member"
        " (`public func ...`), after %reset, since LLDB now keeps this conformance without its code",
    ),
    (
        re.compile(r"is inaccessible due to 'internal' protection level.*declared here\n[^\n]*@\w+", re.S),
        "REPL limit L2: LLDB's REPL leaves a property with a property wrapper internal to the cell that"
        " declared it: read it in that cell, or declare it `public` (`@Wrapper public var name`)",
    ),
    (
        re.compile(r"cannot find operator '[^']+' in scope|operator implementation without matching operator"),
        "REPL limit L3: LLDB's REPL finds neither an operator implemented as a static member of a type of"
        " another cell nor, to implement it, an operator declared in an earlier cell: declare the operator"
        " and implement it as a top-level function in one cell (`prefix operator +++` and `prefix func +++"
        " (v: inout Int) -> Int { ... }`; `func + (l: Vec, r: Vec) -> Vec { ... }`), and later cells can use it",
    ),
    (
        re.compile(r"referencing operator function '[^']+' on '[^']+' requires that '[^']+' conform to"),
        "REPL limit L3: LLDB's REPL finds neither an operator implemented as a static member of a type of"
        " another cell nor, to implement it, an operator declared in an earlier cell: declare the operator"
        " and implement it as a top-level function in one cell (`prefix operator +++` and `prefix func +++"
        " (v: inout Int) -> Int { ... }`; `func + (l: Vec, r: Vec) -> Vec { ... }`), and later cells can use it",
    ),
    (
        re.compile(r"extension outside of file declaring (?:struct|enum|class|actor) '[^']+' prevents automatic"),
        "REPL limit L10: each cell is a file of its own to LLDB's REPL, so a conformance Swift synthesizes"
        " (Equatable, Hashable, Codable) must be declared where the type is: add it to the type's"
        " declaration, or write its requirements (`static func ==`) in the extension",
    ),
    (
        # One candidate is a library's (``Swift.RandomNumberGenerator:1:17: found this candidate``).
        re.compile(r"ambiguous for type lookup in this context.*^(?:note: )?\w+\.\w+:\d+:\d+: found this", re.M | re.S),
        "REPL limit L5: a type named like one of a library's (the standard library's) leaves LLDB's REPL"
        " with both in later cells: give your type a name of its own, or use it only in the cell that"
        " declares it",
    ),
    (
        re.compile(r"is ambiguous for type lookup in this context"),
        "REPL limit L4: a type declared again in a later cell leaves LLDB's REPL with both: give the new"
        " type a name of its own",
    ),
    (
        # Candidates in two cells' modules: the same function declared again in a later cell.
        re.compile(r"ambiguous use of.*in module '(__lldb_expr_\d+)'.*in module '(?!\1')__lldb_expr_\d+'", re.S),
        "REPL limit L4/L9: a function declared again in a later cell with a type that changed, or that"
        " differs only in `throws`, leaves LLDB's REPL with both declarations: give the new one a name"
        " of its own",
    ),
    (
        _MAIN_ACTOR_ISOLATED,
        f"{_L11}: LLDB's REPL compiles a cell's top-level code as nonisolated, where a program's"
        " runs on the main actor, although the cell runs on the main thread: write"
        " `MainActor.assumeIsolated { ... }` around it (`let model = MainActor.assumeIsolated { Model() }`),"
        " or `await` it",
    ),
    (
        re.compile(r"redundant conformance of '[^']+' to protocol"),
        "REPL limit L8: if an earlier cell that declared this conformance failed, LLDB's REPL keeps the"
        " conformance without its code: start over with %reset, then declare it once",
    ),
    (
        re.compile(r"Couldn't look up symbols"),
        "REPL limit L8: this uses a declaration of a cell that failed to compile, which LLDB's REPL"
        " keeps without its code: declare it again under a new name in a cell that compiles, or"
        " start over with %reset",
    ),
    (
        re.compile(_NO_DIAGNOSTICS),
        "REPL limit L6/L7: LLDB's REPL type-checked this cell but could not compile it, as happens for a"
        " global of opaque type (write `let shape: any Shape = make()` for `let shape = make()`) and,"
        " after a cell that failed, for later generic declarations (start over with %reset)",
    ),
)


def _isolated_in_a_declaration(error_text: str, source_name: str | None, source: str | None) -> bool:
    """Say whether the cell's first main-actor isolation error lies in a body or type the cell declares.

    L11 is about top-level code, which a program runs on the main actor. In a function the cell
    declares (``func load() { Model() }``) a program would refuse the call too.
    """
    if source_name is None or source is None:
        return False
    for match in DIAGNOSTIC.finditer(error_text):
        severity, file, row, column, message = match.groups()
        if severity == "error" and file == source_name and _MAIN_ACTOR_ISOLATED.search(message):
            lines = source.split("\n")
            line = int(row) - 1
            if not 0 <= line < len(lines):
                return False
            # The compiler counts columns in bytes, as tree-sitter does.
            scopes = scopes_at(source, line, max(0, int(column) - 1))
            return scopes is not None and not _DECLARED_BODIES.isdisjoint(scopes)
    return False


def repl_limit(error_text: str) -> str | None:
    """Return the sentence naming the limit of LLDB's REPL that ``error_text`` comes from, or None."""
    for pattern, note in _REPL_LIMITS:
        if pattern.search(error_text):
            return note
    return None


# Messages LLDB gives, with no location, for failures of its own that are not compile errors (a
# debug server that stopped answering, an execution cut short without a stop reason, memory it
# could not get in the Swift process).
_NOT_COMPILE_ERRORS = (
    "Unknown error",
    "Expression execution was interrupted",
    "Couldn't allocate",
    "Couldn't materialize",
    "Couldn't dematerialize",
    "Couldn't write",
    "Couldn't read",
)


@dataclass(frozen=True)
class FixIt:
    """A replacement the compiler proposes: ``text`` for columns ``column`` to ``end`` of ``line`` (0-based)."""

    line: int
    column: int
    end_line: int
    end: int
    text: str


@dataclass(frozen=True)
class SourceDiagnostic:
    """A compiler diagnostic placed in a cell: 0-based line and column, in characters of the cell."""

    severity: str  # "error", "warning", "note" or "remark"
    line: int
    column: int
    end_line: int
    end: int
    message: str
    fixits: tuple[FixIt, ...] = ()


# Messages the REPL makes moot: the cell's last expression is its result, not an unused value.
# ("result of operator '+' is unused", "expression of type 'Int' is unused", "string literal is unused")
_UNUSED_RESULT = re.compile(r".* is unused$", re.IGNORECASE)
# Bracket-depth scan of a cell, as in lsp.py's declaration finder: strings and line comments skipped.
_STRING_OR_COMMENT = re.compile(r'"(?:\\.|[^"\\])*"|//.*$')


# A line ending in one of these goes on on the next line.
_CONTINUING = tuple("+-*/%=&|^<>!?:,.([{")


def _last_statement_line(code: str) -> int:
    """Return the 0-based line on which the cell's last top-level statement starts (a rough scan)."""
    depth, last, previous = 0, 0, ""
    for number, line in enumerate(code.split("\n")):
        bare = _STRING_OR_COMMENT.sub("", line)
        stripped = bare.strip()
        continued = stripped.startswith((".", "}", ")", "]")) or previous.endswith(_CONTINUING)
        if depth == 0 and stripped and not continued:
            last = number
        previous = stripped or previous
        depth = max(0, depth + sum(bare.count(c) for c in "{([") - sum(bare.count(c) for c in "})]"))
    return last


def compiler_message(message: str, quoted: str) -> str:
    """Return the compiler's wording of a message sourcekit-lsp capitalized.

    sourcekit-lsp upper-cases a diagnostic's first letter ("Variable 'x' was never mutated");
    the compiler writes "variable". A ``#warning("...")``'s message is the user's own text: it is
    taken from the literal the diagnostic covers (``quoted``).
    """
    if len(quoted) >= 2 and quoted[0] == quoted[-1] == '"' and quoted[1:-1].lower() == message.lower():
        return quoted[1:-1]
    if message[:1].isupper() and not message[1:2].isupper():
        return message[0].lower() + message[1:]
    return message


def render_warnings(diagnostics: list[SourceDiagnostic], code: str, source_name: str) -> str:
    """Return the warnings among ``diagnostics`` of the cell ``code`` as compile errors show them.

    Each reads ``<Cell 3>:2:5: warning: message``, then its source line, a caret (``~`` under
    what a fix-it replaces) and the fix-it's text below, as the compiler prints them. An unused
    value in the cell's last statement is left out: the REPL shows it as the cell's result.
    """
    lines = code.split("\n")
    last = _last_statement_line(code)
    rendered = []
    for found in diagnostics:
        if found.severity != "warning" or not 0 <= found.line < len(lines):
            continue
        if _UNUSED_RESULT.match(found.message) and found.line >= last:
            continue
        source = lines[found.line].rstrip("\r")
        block = [f"{source_name}:{found.line + 1}:{found.column + 1}: warning: {found.message}", source]
        marks = [" "] * (len(source) + 1)
        below = [" "] * (len(source) + 1)
        for fixit in found.fixits:
            if fixit.line == found.line == fixit.end_line:
                for column in range(fixit.column, min(fixit.end, len(marks))):
                    marks[column] = "~"
                for offset, char in enumerate(fixit.text):
                    if fixit.column + offset >= len(below):
                        below.append(char)
                    else:
                        below[fixit.column + offset] = char
        if found.end_line == found.line and found.end > found.column + 1 and not found.fixits:
            for column in range(found.column + 1, min(found.end, len(marks))):
                marks[column] = "~"
        marks[min(found.column, len(marks) - 1)] = "^"
        block.append("".join(marks).rstrip())
        if "".join(below).strip():
            block.append("".join(below).rstrip())
        rendered.append("\n".join(block) + "\n")
    return "".join(rendered)


# The Swift runtime's report of a fatal error on stderr, written just before it traps: a message
# line (``Swift/ContiguousArrayBuffer.swift:692: Fatal error: Index out of range``, ``<Cell 2>:1:
# Precondition failed: ...``, ``Fatal error: Attempted to read an unowned reference ...``), then,
# when the runtime's backtracer is off, "Current stack trace:" and one row per frame
# (swift::printCurrentBacktrace in stdlib/public/runtime/Errors.cpp).
_FATAL = r"(Fatal error|Precondition failed|Assertion failed)(?:: (.*))?"
_REPORT_MESSAGE = re.compile(rf"(?:.*:\d+: )?{_FATAL}")
_REPORT_DUMP_START = "Current stack trace:"
_REPORT_DUMP_ROW = re.compile(r"\d+ +(?:\S+ +)?0x[0-9a-f]+(?: .*)?|<backtrace unavailable>")
# How many lines from the end a report is looked for in (its dump has at most 128 rows).
_REPORT_LINES = 140
# The runtime's functions that report a fatal error (and then trap or abort), as LLDB names them.
_REPORTERS = re.compile(r"(?:closure #\d+ in )*(?:_assertionFailure|_fatalErrorMessage|swift::fatalErrorv?)\(")


def reported_by_runtime(frames: list[Frame]) -> bool:
    """Say whether a crashed thread went through the Swift runtime's fatal-error report.

    ``frames`` are the thread's frames as read, before ``cell_frames``: the reporter's frames are
    in the runtime (no line), still on the stack at the trap. Only then did the runtime write its
    report to stderr, just before the crash.
    """
    return any(frame.file is None and _REPORTERS.match(frame.function) for frame in frames)


def runtime_report_start(text: str) -> int | None:
    """Return where a Swift runtime fatal-error report that ends ``text`` starts, or None.

    The report is a message line and, optionally, the runtime's stack dump after it; it must run to
    the end of ``text``, complete lines only. Anything else after it means it is no report.
    """
    if not text.endswith("\n"):
        return None
    lines = text[:-1].rsplit("\n", _REPORT_LINES)
    if len(lines) > _REPORT_LINES:
        lines = lines[1:]  # the first part is all the text before those lines, not one line
    index = len(lines) - 1
    dump_rows = 0
    while index >= 0 and _REPORT_DUMP_ROW.fullmatch(lines[index]):
        index -= 1
        dump_rows += 1
    if dump_rows:
        if index < 0 or lines[index] != _REPORT_DUMP_START:
            return None
        index -= 1
    elif index >= 0 and lines[index] == _REPORT_DUMP_START:
        index -= 1
    if index < 0 or not _REPORT_MESSAGE.fullmatch(lines[index]):
        return None
    report_length = sum(len(line) + 1 for line in lines[index:])
    return len(text) - report_length


def frame_lines(frames: list[Frame] | tuple[Frame, ...], sources: Mapping[str, str | None]) -> list[str]:
    """Return traceback lines for ``frames``: each frame, then its source line as IPython shows it.

    ``sources`` maps a cell's name (``<Cell 3>``, an included file's name) to its code, as far as
    the kernel knows it; a frame in code it does not know gets no source line.
    """
    lines: list[str] = []
    for frame in frames:
        lines.append(f"  {frame.render()}")
        source = sources.get(frame.file) if frame.file and frame.line > 0 else None
        source_lines = source.split("\n") if source is not None else []
        if 0 < frame.line <= len(source_lines):
            number = str(frame.line)
            # IPython's arrow: "----> 3", "---> 12", the number's last digit in the same column.
            arrow = "-" * max(1, 5 - len(number)) + ">"
            lines.append(f"  {arrow} {number} {source_lines[frame.line - 1].rstrip()}")
    return lines


# Said of a crash in a thread other than the cell's own (``messages.Stop.in_other_thread``).
_OTHER_THREAD_NOTES = {
    "thread": "in another thread: it is stopped for good, and the cell was stopped with it",
    "task": (
        "in a task: its thread is stopped for good, so async code has one thread fewer from now on (with "
        "none left, await waits for ever: restart the kernel then), and the cell was stopped with it"
    ),
}


def runtime_error(
    reason: str,
    stop_description: str,
    report: str,
    frames: list[Frame] | tuple[Frame, ...],
    sources: Mapping[str, str | None] | None = None,
    *,
    in_other_thread: str = "",
) -> CellError:
    """Describe a crash: ename names the failure, evalue is the runtime's message, frames the traceback.

    ``reason`` is LLDB's interruption reason (``signal SIGILL: illegal operand``), ``stop_description``
    the crashed thread's stop description (``Swift runtime failure: arithmetic overflow``) and
    ``report`` the Swift runtime's report of the fatal error (``Fatal error: ...``) when the crash
    went through it (see ``reported_by_runtime``), else empty. ``sources`` gives the frames their
    source lines (``frame_lines``). ``in_other_thread``: the crash was in a thread other than the
    cell's, which the kernel holds for good ("thread" or "task": ``messages.Stop``).
    """
    fatal = re.findall(_FATAL, report)
    signal_match = re.search(r"signal (SIG[A-Z]+)(?::\s*(.*))?", reason)
    signal_name = signal_match.group(1) if signal_match else None
    if fatal:
        kind, message = fatal[-1]
        ename, evalue = kind, message.strip() or kind
    elif stop_description.startswith("Swift runtime failure: "):
        ename, evalue = "Fatal error", stop_description[len("Swift runtime failure: ") :]
    elif signal_name:
        detail = signal_match.group(2) if signal_match and signal_match.group(2) else _SIGNAL_NAMES.get(signal_name, "")
        ename, evalue = signal_name, detail or signal_name
        # cell_frames folds a recursion into one frame and a "... N more identical frames" line.
        called = [f.function for f in frames if not f.function.endswith("more identical frames")]
        recursing = len(frames) > 1 and len(set(called)) == 1
        if signal_name == "SIGSEGV" and recursing:
            evalue = f"{evalue} (stack overflow: {frames[0].function} calls itself without end)"
    else:
        ename, evalue = "RuntimeError", reason or stop_description or "the Swift code stopped unexpectedly"
    if in_other_thread:
        evalue += f" ({_OTHER_THREAD_NOTES[in_other_thread]})"
    return CellError(ename, evalue, [f"{ename}: {evalue}", *frame_lines(frames, sources or {})])


def cell_frames(frames: list[Frame], limit: int = 20) -> list[Frame]:
    """Keep the frames worth showing: user code with a line, runtime failure markers; fold repeats."""
    kept: list[Frame] = []
    repeats = 0
    for frame in frames:
        if frame.file == "<compiler-generated>" or frame.function.startswith(_KERNEL_FUNCTIONS):
            continue
        # Swift code only: cells and included files; C libraries may carry line tables too.
        file = frame.file or ""
        is_swift = frame.line > 0 and (file.startswith("<") or file.endswith(".swift"))
        if not is_swift and not frame.function.startswith("Swift runtime failure"):
            continue
        shown = frame
        if frame.function == "main" and frame.file and frame.file.startswith("<"):
            # The REPL wraps each cell's top-level code in `main`; show it as the cell itself.
            shown = Frame("top-level code", frame.file, frame.line, frame.column)
        elif frame.function.endswith(" in ") and file.startswith("<"):
            # A closure written in a cell's top-level code: LLDB names nothing it is in.
            shown = Frame(f"{frame.function}top-level code", frame.file, frame.line, frame.column)
        if kept and kept[-1] == shown:
            repeats += 1
            continue
        kept.append(shown)
    if repeats:
        kept.append(Frame(f"... {repeats} more identical frames", None, 0))
    return kept[:limit]
