"""One LLDB debugger driving one ``repl_swift`` process: the only module that imports ``lldb``.

``LLDBSession`` launches the toolchain's ``repl_swift`` stopped at its REPL entry point, runs the
kernel's prelude, and evaluates cells with the expression options that make them behave like the
Swift REPL. When a cell stops on a signal (a trap, or the kernel's interrupt) it reads the frames,
unwinds the process back to its state before the cell and says what happened as a
``messages.Outcome``. It knows nothing of Jupyter, cells' life or interrupt ladders: the kernel's
cell controller (``cells.py``) decides those and only tells this session, through
``interrupted``, that the evaluation now running is being stopped on purpose.

It runs in the LLDB host process (``host.py``), on that process's main thread: LLDB's Python
support must be set up there. It starts no threads of its own beyond a watchdog timer while a
stopped library call runs on to cell code, and a reader of the result channel while a result is
described (``ResultChannel.reading``).

Dependencies: ``diagnostics``, ``displayable``, ``messages``, ``procfs``, ``output.child_path``,
``toolchain``; and ``lldb``, imported late (``load``) once the toolchain's Python directory is on
``sys.path``.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import logging
import mmap
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from . import dap, diagnostics, layouts
from .dap import DebugError, References
from .diagnostics import CellError, Frame
from .displayable import BUNDLE_METHOD, EXTRAS, Adopter, may_adopt, needs_extras
from .install import clang_module_names
from .messages import Debug, Ended, Global, Installed, Outcome, Stop, Streams, SwiftProcessEnded, Thrown
from .numbers import swift_description
from .output import child_path, close_fds
from .prelude import MODULE as PRELUDE_MODULE
from .prelude import SOURCE as PRELUDE_SOURCE
from .prelude import PreludeModule, cache_root, prelude_module
from .procfs import (
    OWNER_VARIABLE,
    ProcessMemory,
    ProgressWatchdog,
    describe_exit,
    fd_identity,
    file_identity,
    open_fds,
    parent_pid,
    proc_status,
    process_state,
    send_signal,
    signal_bit,
    thread_cpu_ns,
    thread_state,
)
from .safepoints import SAFE_POINT, SAFE_POINT_FUNCTION, SafePoints, insert_safe_points
from .swiftlex import swift_literal
from .toolchain import Toolchain
from .witnesses import publish_witnesses

log = logging.getLogger(__name__)

# Integer and Bool results (and more: ``_read_directly``) are shown from LLDB's own reading of the
# value; everything else goes through Swift's String(reflecting:), which costs a second evaluation.
_FAST_TYPES = {
    f"Swift.{name}"
    for name in ("Int", "Int8", "Int16", "Int32", "Int64", "UInt", "UInt8", "UInt16", "UInt32", "UInt64")
}
# Numbers whose text follows from LLDB's reading of them (``numbers.swift_description``).
_FLOATING_TYPES = {"Swift.Double", "Swift.Float"}
# The types whose text follows from LLDB's reading of the value, where LLDB holds no bytes for it.
_READ_BY_LLDB = _FAST_TYPES | _FLOATING_TYPES | {"Swift.Bool"}
# The most array elements (those of nested arrays included) read rather than described by Swift.
_ARRAY_READ = 1000
# A String summary that is exactly Swift's debug description: quoted printable ASCII, nothing
# escaped, short enough that LLDB did not cut it (its summaries stop at 1024 characters).
_PLAIN_STRING = re.compile(r'"[ !#-\[\]-~]{0,1000}"')
# LLDB's cap on the frames it unwinds (without one a stack overflow takes minutes). LLDB walks the
# stopped thread's stack that deep before an evaluation that stopped returns: an interrupt 5,000
# calls deep took 70-90 ms with 1,000, 11-20 ms with 100. The kernel reads at most _FRAMES_READ.
_MAX_BACKTRACE_DEPTH = 128
_FRAMES_READ = 64
# Bytes of stack searched for the callers LLDB's unwinder did not find (see _callers_on_the_stack).
_STACK_SEARCHED = 16384
# How long the cell's thread may run on (to return to cell code from an interrupted library call,
# or to a safe point after another thread crashed) before it is stopped where it is: this much of
# its CPU time, or this long blocked in the kernel without running (procfs.ProgressWatchdog). By
# progress, not wall time: on a busy machine a 0.3 s timer stopped a sort that needed 55 ms of CPU.
_RETURN_CPU_NS = 300_000_000
_RETURN_BLOCKED_SECONDS = 0.3
# The hang guard: a run that neither ends, runs nor blocks (a thread that never gets the CPU).
_RETURN_HANG_SECONDS = 10.0
# Library functions that block in the kernel holding no user-space lock: unwound where they are.
# (A safe point stops its thread in raise(): in cell code, a call away, with nothing held.)
_BLOCKING_CALL = re.compile(
    r"sleep|read|write|poll|select|futex|wait|recv|accept|pause|sigsuspend|nanosleep|raise|pthread_kill"
)
_FRESH = "A fresh Swift process has been started: earlier variables, functions and imports are gone."
# Stopping the other threads that run an interrupted cell's code: they run (the rest held) in
# slices this long, until each is at a safe point or back in the library that called the cell's
# closure; one that uses this much CPU time without getting there is stopped where it is.
_HOLD_SLICE_SECONDS = 0.02
_HOLD_CPU_NS = 250_000_000
# Bound on the whole hold, in slices, for threads that neither progress nor block (a hang guard).
_HOLD_MAX_SLICES = 250
# The stop flag page (cells.StopFlag, SwiftKernelPrelude.swift): word 2 asks other threads to stop at their
# safe points; bytes 16-24 hold the address of the main thread's libdispatch state.
_HOLD_WORD = 8
# libdispatch's functions that run a dispatch_apply's iterations (on the caller and the workers).
_APPLY = ("_dispatch_apply_invoke", "dispatch_apply_f")
_CALLEE_SAVED = ("rbx", "rbp", "r12", "r13", "r14", "r15", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26")
# Where the main thread's stack may reach above its innermost frame (its default 8 MiB limit).
_MAIN_STACK_SPAN = 8 << 20
_DISPATCH_STATE_AT = 16
# Where an error's payload starts in the Swift runtime's error box (SwiftError): after the heap
# object header (16 bytes), the type and the Error witness table.
_ERROR_BOX_HEADER = 32
# libdispatch's main queue: where its label lies, and where the call that runs its jobs outside
# dispatch_main keeps its guard against running twice at once (_main_queue_guard).
_MAIN_QUEUE = "_dispatch_main_q"
_MAIN_QUEUE_LABEL = b"com.apple.main-thread\0"
_MAIN_QUEUE_LABEL_AT = 72
_MAIN_QUEUE_GUARD_AT = 112
# libdispatch's per-thread state (struct dispatch_tsd): the thread id, then eleven pointers. Put
# back after an unwind, except the id and the per-thread cache of free continuations (bytes
# 24-32), which changes as it is used and never points into a stack.
_DISPATCH_STATE_SIZE = 96
_DISPATCH_RESTORED = ((8, 24), (32, 96))
# The Swift runtime's backtracer, on in the Swift process. Not for its reports: its crash handler
# never runs here, because LLDB stops the process at every crash signal before the program's own
# handler could run, and the kernel unwinds the cell instead of passing the signal on. It is on
# because with it off, the runtime prints its own "Current stack trace:" dump (raw addresses of
# libswiftCore) after every fatal error (swift_reportError in stdlib/public/runtime/Errors.cpp
# drops that dump only when the backtracer is enabled); the kernel shows better frames from LLDB.
# No environment variable turns the dump off by itself. Warnings suppressed: a toolchain without
# swift-backtrace would say so at the start of every Swift process (the dump is back then, and
# the kernel leaves it out of the cell's output: see output.OutputPump.drain).
_SWIFT_BACKTRACE = "warnings=suppressed,enable=yes,interactive=no"
# How LLDB says that an expression's execution had begun when the process was lost.
_EXECUTION_CUT_SHORT = ("execution stopped with unexpected state", "execution was interrupted")

# The Swift process's standard output and error as the kernel set them up, which a cell may break
# (close, dup2, setvbuf): the fd, its name, and glibc's FILE for it. A FILE (struct _IO_FILE, LP64)
# holds its flags in its first int and its fd in the int at byte 112; setvbuf(_IONBF) sets
# _IO_UNBUFFERED among the flags.
_STANDARD_STREAMS = ((1, "Standard output", "_IO_2_1_stdout_"), (2, "Standard error", "_IO_2_1_stderr_"))
_FILE_FILENO_AT = 112
_IO_UNBUFFERED = 0x2

PRELUDE = Path(__file__).with_name("swift") / "prelude.swift"


def import_lldb(toolchain: Toolchain) -> Any:
    """Import the toolchain's LLDB Python module and return it; on the main thread, SIGINT blocked.

    Imported late, never at this module's import: the caller blocks SIGINT before LLDB starts
    threads, and changes ``sys.path`` before other threads run imports.
    """
    folder = str(toolchain.lldb_python_dir)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import lldb  # noqa: PLC0415 - see above

    return lldb


# LLDB asks an expression's cancel callback before it parses the expression and again before it
# runs it (``EvaluateExpressionOptions::InvokeCancelCallback``); True ends the expression there
# with an error. ``SBExpressionOptions`` has the setter, but SWIG gives Python no way to pass it a
# function pointer, so it is called through ctypes, with the SWIG object's pointer as ``this``.
_SET_CANCEL_CALLBACK = "_ZN4lldb19SBExpressionOptions17SetCancelCallbackEPFbNS_25ExpressionEvaluationPhaseEPvES2_"
CancelCallback = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_int, ctypes.c_void_p)
# LLDB's errors for an expression its cancel callback ended.
_CANCELLED = ("expression interrupted by callback before parse", "expression interrupted by callback before execution")


def set_cancel_callback(lldb: Any, options: Any, callback: Any) -> bool:
    """Give ``options`` (an SBExpressionOptions) the cancel callback ``callback``; False if this LLDB has no setter.

    The caller keeps ``callback`` (a ``CancelCallback``) alive as long as ``options`` is used.
    """
    try:
        setter = getattr(ctypes.CDLL(lldb._lldb.__file__), _SET_CANCEL_CALLBACK)
    except (AttributeError, OSError):
        log.warning("this LLDB cannot cancel an expression before it runs: cells start with a safe point")
        return False
    setter.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    setter.restype = None
    setter(int(options.this), ctypes.cast(callback, ctypes.c_void_p), None)
    return True


def _prelude(result_path: str, stop_flag: str) -> str:
    """Return the Swift code run once per Swift process, before the first cell."""
    return PRELUDE.read_text().replace("@RESULT_PATH@", result_path).replace("@STOP_PATH@", stop_flag)


def compiled_source(
    code: str, file: str, safe_points: bool = True, cell_safe_point: bool = False
) -> tuple[str, SafePoints]:
    """Return what LLDB compiles for a cell's ``code``, named ``file`` in diagnostics, and its safe points.

    ``cell_safe_point`` puts a safe point before the cell's code too, for an LLDB whose expressions
    the kernel cannot cancel before they run (``set_cancel_callback``): an interrupt that came
    during the compile then stops the cell there. It costs LLDB 0.6 ms of compile a cell.
    """
    # Conformance extensions get public witnesses, as the REPL needs (witnesses.py, issue 15's L2).
    compiled_code = publish_witnesses(code)
    points = insert_safe_points(compiled_code) if safe_points else SafePoints(compiled_code, compiled_code, ())
    # The cell's own safe point goes before its first line, so that no line or column moves.
    start = f"{SAFE_POINT}\n" if safe_points and cell_safe_point else ""
    return f'{start}#sourceLocation(file: "{file}", line: 1)\n{points.code}\n', points


# A cell that may add a conformance (CustomStringConvertible...) to a type declared earlier.
_EXTENSION = re.compile(r"\bextension\b")


@dataclasses.dataclass
class _PlainStruct:
    """A struct type whose description Swift said is just its stored properties (``_describe``)."""

    properties: list[str]
    # Once learned: each property's offset in the struct's bytes and its type, and their size; an
    # empty list when a property's type is not read from bytes (the properties are then read one
    # by one through LLDB).
    fields: list[tuple[int, str]] | None = None
    size: int = 0

    def learn_fields(self, value: Any) -> None:
        """Learn where the properties lie from ``value``'s type (LLDB does not give the offsets)."""
        kind = value.GetType()
        members = [kind.GetFieldAtIndex(index) for index in range(kind.GetNumberOfFields())]
        types = [member.GetType().GetName() or "" for member in members]
        layout = layouts.struct_layout(types)
        if layout is None or [member.GetName() for member in members] != self.properties:
            self.fields = []
            return
        offsets, self.size = layout
        self.fields = list(zip(offsets, types, strict=True))


def _read_directly(
    type_name: str, value: Any, read: layouts.Read, plain: Mapping[str, _PlainStruct] | None = None
) -> str | None:
    """Return how Swift describes a value, read without running code; None when it cannot be.

    Numbers, Bools and Strings, and arrays of them or of such arrays (up to ``_ARRAY_READ``
    elements in all), are read from the bytes LLDB holds for the value and the memory they point
    at, with ``read`` (``layouts``). A Double's or a Float's text follows from its value
    (``numbers.swift_description``, checked against Swift's own text value by value); a NaN's does
    not. A String is read when its text is printable ASCII with nothing Swift escapes. Where LLDB
    holds no bytes, LLDB's reading of a number and its summary of a String are used, and an
    array's elements are read one by one. Anything else is described by Swift, which costs an
    evaluation (~10 ms). So is a struct the first time: Swift then says (``plain``: its name ->
    its stored properties) whether its description is just those properties, which later values
    of it are read as, when each property can be (from the struct's bytes when every property is
    of a type read so); an array of such structs is read element by element through LLDB.
    """
    if layouts.readable(type_name):
        raw = _bytes_of(value)
        if raw is not None:
            return layouts.describe(type_name, raw, read, _ARRAY_READ)
    # Where LLDB holds no bytes for it: LLDB's own reading.
    text = value.GetValue() if type_name in _READ_BY_LLDB else None
    if type_name in _FAST_TYPES and text is not None:
        return str(text)
    if type_name == "Swift.Bool" and text is not None:
        return "false" if text in ("0", "false") else "true"
    if type_name in _FLOATING_TYPES and text is not None:
        with contextlib.suppress(ValueError):
            return swift_description(float(text), single=type_name == "Swift.Float")
    if type_name == "Swift.String":
        summary = value.GetSummary() or ""
        return summary if _PLAIN_STRING.fullmatch(summary) else None
    element = layouts.array_element(type_name)
    if element is not None and layouts.array_element(element) is None and value.GetNumChildren() <= _ARRAY_READ:
        parts = [_read_directly(element, value.GetChildAtIndex(i), read, plain) for i in range(value.GetNumChildren())]
        if all(part is not None for part in parts):
            return f"[{', '.join(part for part in parts if part is not None)}]"
    struct = plain.get(type_name) if plain else None
    if struct is None:
        return None
    value = value.GetNonSyntheticValue()  # its stored properties, without a formatter's set-up
    if struct.fields is None:
        struct.learn_fields(value)
    raw = _bytes_of(value) if struct.fields else None
    texts: list[str] | None
    if raw is not None and len(raw) == struct.size:
        texts = layouts.describe_fields(struct.fields or [], raw, read, _ARRAY_READ)
    elif value.GetNumChildren() == len(struct.properties):
        texts = []
        for index, label in enumerate(struct.properties):
            child = value.GetChildAtIndex(index)
            text = _read_directly(child.GetTypeName() or "", child, read, plain) if child.GetName() == label else None
            if text is None:
                return None
            texts.append(text)
    else:
        return None
    if texts is None:
        return None
    fields = ", ".join(f"{label}: {text}" for label, text in zip(struct.properties, texts, strict=True))
    # As the text Swift gives is shown: without the cells' module names, wherever they are.
    return dap.without_cell_modules(f"{type_name}({fields})")


def _bytes_of(value: Any) -> bytes | None:
    """Return a value's own bytes as LLDB holds them (not what they point at); None if it has none."""
    # The value as stored: a synthetic value (an array's elements as children) costs the set-up
    # of its formatter, 1-2 ms, at first use.
    data = value.GetNonSyntheticValue().GetData()
    size = data.GetByteSize()
    if not size:
        return None
    error = sys.modules["lldb"].SBError()
    raw = data.ReadRawData(error, 0, size)
    return bytes(raw) if error.Success() and raw else None


def _bundle(payload: str) -> dict[str, str] | None:
    """Read a MIME bundle from the result channel; its text/plain without LLDB's module names."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError:
        log.warning("a result bundle that is not JSON: %r", payload[:100])
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    data["text/plain"] = dap.without_cell_modules(data.get("text/plain", ""))
    return data


def _frame_of(function: str, entry: Any) -> Frame:
    """Return a Frame for ``function`` at the place a line entry names (none if it is invalid)."""
    spec = entry.GetFileSpec() if entry.IsValid() else None
    file = spec.GetFilename() if spec is not None and spec.IsValid() else None
    return Frame(function, file, entry.GetLine() or 0, entry.GetColumn() or 0)


def _in_cell_code(module: Any) -> bool:
    """Say whether a module is one LLDB JIT-compiled from a cell (or the prelude)."""
    return module.IsValid() and (module.GetFileSpec().GetFilename() or "").startswith("$__lldb_expr")


def _module_name(frame: Any) -> str:
    return frame.GetModule().GetFileSpec().GetFilename() or ""


def _first_frames(thread: Any, limit: int = _FRAMES_READ) -> Iterator[Any]:
    """Yield ``thread``'s innermost frames, at most ``limit``; unwinds no deeper than it yields.

    (``GetNumFrames`` would unwind the whole stack, as deep as LLDB's cap.)
    """
    for index in range(limit):
        frame = thread.GetFrameAtIndex(index)
        if not frame.IsValid():
            return
        yield frame


def _runs_module(thread: Any, module: str) -> bool:
    """Say whether any of ``thread``'s frames is in ``module``."""
    return any(_module_name(frame) == module for frame in _first_frames(thread))


def _calls_apply(thread: Any) -> bool:
    """Say whether ``thread`` is inside libdispatch's dispatch_apply (concurrentPerform)."""
    return any((frame.GetFunctionName() or "").startswith(_APPLY) for frame in _first_frames(thread))


def _caller_of_module(thread: Any, module: str) -> Any:
    """Return the frame that called the outermost of ``thread``'s frames in ``module`` (None if none)."""
    outermost = None
    for index, frame in enumerate(_first_frames(thread)):
        if _module_name(frame) == module:
            outermost = index
    if outermost is None:
        return None
    caller = thread.GetFrameAtIndex(outermost + 1)
    return caller if caller.IsValid() else None


def _blocked_in_kernel(frame: Any) -> bool:
    """Say whether ``frame`` is a C library call that blocks in the kernel (or raises a signal)."""
    return _module_name(frame).startswith(("libc.", "libpthread.", "ld-linux")) and bool(
        _BLOCKING_CALL.search(frame.GetFunctionName() or "")
    )


def _hold_point(thread: Any, module: str, breakpoint: Any) -> str | None:
    """Say where ``thread`` may be held for good (a safe point, out of the code, asleep), or None."""
    if not thread.IsValid():
        return "gone"
    if breakpoint is not None and thread.GetStopReason() == 3:  # eStopReasonBreakpoint
        if thread.GetStopReasonDataAtIndex(0) == breakpoint.GetID():
            return "back in the library that called the cell's code"
    names = [frame.GetFunctionName() or "" for frame in _first_frames(thread, 6)]
    if any(SAFE_POINT_FUNCTION in name for name in names):
        return "at a safe point"
    if not _runs_module(thread, module):
        return "out of the cell's code"
    if _blocked_in_kernel(thread.GetFrameAtIndex(0)):
        return f"blocked in {names[0]}"
    return None


def _runs_a_task(thread: Any) -> bool:
    """Say whether ``thread`` runs a task: LLDB names its frames after the async functions it resumed."""
    return any(_ASYNC_FRAME in (frame.GetFunctionName() or "") for frame in _first_frames(thread, 8))


def _frames(thread: Any) -> list[Frame]:
    frames = []
    last = None
    for index in range(_FRAMES_READ):
        frame = thread.GetFrameAtIndex(index)
        if not frame.IsValid():
            break
        frames.append(_frame_of(frame.GetDisplayFunctionName() or "??", frame.GetLineEntry()))
        last = frame
    # A cell's top-level code is its `main`; below it LLDB's unwinder has always found the REPL.
    if last is not None and len(frames) < _FRAMES_READ and _in_cell_code(last.GetModule()):
        if last.GetFunctionName() != "main":
            frames += _callers_on_the_stack(thread, last, _FRAMES_READ - len(frames))
    return frames


def _callers_on_the_stack(thread: Any, frame: Any, limit: int) -> list[Frame]:
    """Find the cell frames above ``frame`` that LLDB's unwinder could not reach, from the stack.

    LLDB unwinds a function JIT-compiled from an earlier cell by profiling its instructions, and
    gets the frame's size wrong where it pushes arguments for a call: for ``explode(_:)`` calling
    ``_assertionFailure`` it takes the CFA as rsp+40 where it is rsp+48 (measured, ``log enable lldb
    unwind``), reads the return address from the wrong slot (-1) and stops. The callers' return
    addresses are still on the stack above the frame. A word there counts as one when it points
    into cell code, not at a function's first instruction, just after a call instruction; its
    frame is the function and line of that call. The search ends at a cell's top-level code.
    A stale return address left in a frame's unused slots would pass these tests; none was seen.
    """
    lldb = sys.modules["lldb"]
    process = thread.GetProcess()
    target = process.GetTarget()
    size = target.GetAddressByteSize()
    error = lldb.SBError()
    # Partial when the stack ends sooner; the error then only says so.
    stack = process.ReadMemory(frame.GetSP(), _STACK_SEARCHED, error) or b""
    order: Literal["little", "big"] = "little" if target.GetByteOrder() == lldb.eByteOrderLittle else "big"
    found: list[Frame] = []
    for offset in range(0, len(stack) - size + 1, size):
        if len(found) >= limit:
            break
        address = int.from_bytes(stack[offset : offset + size], order)
        if not _is_return_address(process, target, address):
            continue
        call = target.ResolveLoadAddress(address - 1).GetSymbolContext(lldb.eSymbolContextEverything)
        function = call.GetFunction().GetDisplayName() if call.GetFunction().IsValid() else None
        found.append(_frame_of(function or call.GetSymbol().GetName() or "??", call.GetLineEntry()))
        if function == "main":
            break
    return found


def _is_return_address(process: Any, target: Any, address: int) -> bool:
    """Say whether ``address`` is in cell code right after a call instruction (see _callers_on_the_stack)."""
    lldb = sys.modules["lldb"]
    resolved = target.ResolveLoadAddress(address)
    if not resolved.IsValid() or not _in_cell_code(resolved.GetModule()):
        return False
    if resolved.GetSection().GetSectionType() != lldb.eSectionTypeCode:
        return False
    symbol = resolved.GetSymbol()
    if symbol.IsValid() and symbol.GetStartAddress().GetLoadAddress(target) == address:
        return False  # a function pointer, not a place a call returns to
    error = lldb.SBError()
    # A call is 2 to 7 bytes on x86-64 (4 on arm64): one of those lengths must decode as a call.
    for length in range(2, 8):
        code = process.ReadMemory(address - length, length, error)
        if not error.Success() or not code:
            continue
        instructions = target.GetInstructions(lldb.SBAddress(address - length, target), code)
        if instructions.GetSize() == 0:
            continue
        first = instructions.GetInstructionAtIndex(0)
        mnemonic = first.GetMnemonic(target) or ""
        if first.GetByteSize() == length and (mnemonic.startswith("call") or mnemonic in ("bl", "blr")):
            return True
    return False


def _blames_safe_points(error_text: str, points: SafePoints, cell_name: str) -> bool:
    """Say whether a compile error is about the safe points put into the cell, not the user's code."""
    if SAFE_POINT_FUNCTION not in error_text:
        return False
    for match in diagnostics.DIAGNOSTIC.finditer(error_text):
        severity, file, line, column, message = match.groups()
        if severity != "error":
            continue
        if SAFE_POINT_FUNCTION in message:
            return True
        if file == cell_name and points.inside_insertion(int(line), int(column)):
            return True
    return False


# A frame header on the result channel: the kinds the prelude sends, and the payload's length.
# (`result`: the cell's value as Swift describes it; `bundle`: its MIME bundle, a JSON object.)
_FRAME_HEADER = re.compile(rb"(result|bundle|thrown|exit|plain) (\d{1,10})")
_MAX_FRAME_BYTES = 1 << 30


class ResultChannel:
    """A pipe the Swift process writes framed messages into (``kind length\npayload``).

    Read defensively: user code can find the pipe and write into it, so a line that is not a
    frame header of a known kind and sane length is dropped, and whatever is pending is
    discarded before the kernel asks for a message of its own (``discard``).
    """

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self._buffer = bytearray()
        self._lock = threading.Lock()

    @property
    def path_for_child(self) -> str:
        return child_path(self.write_fd)

    def _read_pending(self) -> None:
        with self._lock:
            while True:
                try:
                    data = os.read(self.read_fd, 1 << 16)
                except BlockingIOError:
                    break
                if not data:
                    break
                self._buffer += data

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Read the pipe on a thread while the body runs Swift code that writes into it.

        A message longer than the pipe holds (64 KiB: a long description, a table, an image)
        would otherwise block the Swift process, and with it the evaluation, for good.
        """
        wake_read, wake_write = os.pipe()

        def pump() -> None:
            while True:
                ready, _, _ = select.select([self.read_fd, wake_read], [], [])
                self._read_pending()
                if wake_read in ready:
                    return

        thread = threading.Thread(target=pump, name="swift-results", daemon=True)
        thread.start()
        try:
            yield
        finally:
            os.write(wake_write, b"x")
            thread.join()
            close_fds(wake_read, wake_write)

    def discard(self) -> None:
        """Drop everything written so far (the Swift process is stopped: it is all in the pipe)."""
        self._read_pending()
        self._buffer = bytearray()

    def read_messages(self) -> list[tuple[str, str]]:
        """Return every complete message in the pipe now."""
        self._read_pending()
        messages = []
        while b"\n" in self._buffer:
            header, rest = bytes(self._buffer).split(b"\n", 1)
            frame = _FRAME_HEADER.fullmatch(header)
            if frame is None or int(frame.group(2)) > _MAX_FRAME_BYTES:
                log.warning("dropped a line on the result channel that is not the kernel's: %r", header[:100])
                self._buffer = bytearray(rest)
                continue
            length = int(frame.group(2))
            if len(rest) < length:
                break
            messages.append((frame.group(1).decode(), rest[:length].decode("utf-8", "replace")))
            self._buffer = bytearray(rest[length:])
        return messages

    def close(self) -> None:
        close_fds(self.read_fd, self.write_fd)


# The frontend's debug request and the callable that answers it (a body, or an error text).
DebugCall = tuple[Debug, Callable[[dict[str, Any] | None, str | None], None]]
# Stop reasons (lldb.eStopReason*), named here because ``lldb`` is imported late.
_STOP_INVALID = 0
_STOP_NONE = 1
_STOP_BREAKPOINT = 3
_STOP_SIGNAL = 5
# One plan of a thread's plan stack, as ``thread plan list`` shows it.
_PLAN = re.compile(r"^\s*Element (\d+): (.*)$", re.MULTILINE)
# How long the debugger's console may run an expression in a stopped frame.
_EVALUATE_MICROSECONDS = 10_000_000
# LLDB's own breakpoint for a library loaded, as it names an evaluation that it cut short.
_LIBRARY_LOADED = "shared-library-event"
# How LLDB names the frames of a task (the async functions a thread of Swift concurrency resumed).
_ASYNC_FRAME = "partial function for "
# Signals a runtime trap stops the Swift process with (as opposed to the kernel's own SIGINT).
_TRAPS = ("SIGILL", "SIGTRAP", "SIGSEGV", "SIGBUS", "SIGFPE", "SIGABRT")


def _no_debug_requests() -> DebugCall | None:
    return None


def _ignore_debug_event(event: str, body: dict[str, Any]) -> None:
    pass


def _ignore_launch(pid: int, debug_server_pid: int) -> None:
    pass


def discard_text(text: str) -> None:
    """Drop text (the default for callbacks nobody listens to)."""


class LLDBSession:
    """Evaluate Swift cells in one ``repl_swift`` process through LLDB, and unwind what stops."""

    def __init__(
        self,
        toolchain: Toolchain,
        streams: Streams,
        environment: dict[str, str] | None = None,
        *,
        stop_flag: str = "",
        on_launch: Callable[[int, int], None] = _ignore_launch,
        on_stderr: Callable[[str], None] = discard_text,
        debug_requests: Callable[[], DebugCall | None] = _no_debug_requests,
        on_debug_event: Callable[[str, dict[str, Any]], None] = _ignore_debug_event,
    ) -> None:
        self.toolchain = toolchain
        self.environment = dict(environment or {})
        # Paths the Swift process opens for its standard streams (pipes the kernel owns).
        self._streams = streams
        # The kernel's shared stop flag, which safe points read ("": none, they never stop).
        self._stop_flag = stop_flag
        # Told the pid of every Swift process launched, and its debug server's.
        self._on_launch = on_launch
        # Text for the cell's stderr that is not the Swift process's (notes of the kernel's own).
        self._on_stderr = on_stderr
        # Set (from any thread) while the evaluation running now is being stopped by the kernel:
        # its stop is then an interrupt, and a library call runs on to cell code before unwinding.
        self.interrupted = threading.Event()
        self._results = ResultChannel()
        # What fds 1 and 2 and the result channel's fd must lead to (device, inode), the channel's
        # fd in the Swift process, and the addresses of its stdout and stderr FILEs (``keep_streams``).
        self._stream_ids: dict[int, tuple[int, int]] = {}
        self._channel_fd = -1
        self._stream_files: dict[int, int] = {}
        # (pid, LLDB's stop count) of the last keep_streams that found everything in place.
        self._streams_checked: tuple[int, int] | None = None
        self._pid = 0
        self._memory = ProcessMemory()
        self.launches = 0
        self._lldb: Any = None
        self._debugger: Any = None
        self._target: Any = None
        self._process: Any = None
        self._main_thread_id = 0
        self._options: Any = None
        self._plain_options: Any = None
        # Cells' options: the REPL's, with a cancel callback that ends a cell interrupted before
        # its code runs if this LLDB takes one (``_cancels``; else cells start with a safe point).
        self._cell_options: Any = None
        self._cancel_callback: Any = None
        self._cancels = False
        self._flag_page: mmap.mmap | None = None
        # The main thread's libdispatch state: where it is, and what it held before this cell.
        self._dispatch_state = 0
        self._dispatch_before: bytes | None = None
        # The display extras (tables, charts, images) compiled into this Swift process, and the
        # types with a bundle method that were made JupyterDisplayable there.
        self._extras_loaded = False
        self._adopter = Adopter()
        # Struct types (Swift's qualified name) whose description is their stored properties, in
        # order: values of them are read without running code (``_read_directly``). Forgotten when a cell has
        # an extension, which may give one a description of its own.
        self._plain_structs: dict[str, _PlainStruct] = {}
        # The folders LLDB searches for installed Swift and C modules (``load_installed``).
        self._found_modules = ""
        # The kernel's Swift API as a prebuilt library (None: compiled from source at each launch).
        self._prelude_module: PreludeModule | None = None
        # The Swift process's LD_PRELOAD before the kernel's library was put first in it.
        self._preload_before: str | None = None
        # The frontend's debugger: attached or not, its breakpoints (per cell file), the errors it
        # stops on, and what it may expand while a cell is stopped. ``debug_requests`` blocks for
        # the next request while a cell is stopped (None: woken by an interrupt);
        # ``on_debug_event`` sends DAP events.
        self.debugging = False
        self._debug_requests = debug_requests
        self._on_debug_event = on_debug_event
        self._breakpoints: dict[str, list[Any]] = {}
        self._conditions: dict[int, str] = {}
        # What the frontend asked for, per file: set again in a relaunched Swift process's target.
        self._breakpoint_requests: dict[str, list[dict[str, Any]]] = {}
        self._exception_filters: set[str] = set()
        self._throw_breakpoint: Any = None
        self._references = References()
        self._stopped_thread: Any = None
        self._frame_ids: list[tuple[int, int]] = []
        # Set (from the reader thread) while the kernel asks the running cell to pause, not to end.
        self.pause_requested = threading.Event()
        self._evaluating = False
        # Cell files by their last part (what frames name): the cell each was run as.
        self._cell_files: dict[str, str] = {}

    # ----- life cycle -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """Return the Swift process's pid (0 when none runs)."""
        return self._pid

    def load(self) -> None:
        """Import LLDB and create the debugger; call on the main thread, once.

        LLDB's Python support installs a SIGINT handler when a debugger is created, which Python
        allows only on the main thread; ``sys.path`` is also best changed before other threads
        run imports.
        """
        lldb = import_lldb(self.toolchain)
        self._lldb = lldb
        self._debugger = lldb.SBDebugger.Create(False)  # False: ignore ~/.lldbinit
        self._debugger.SetAsync(False)
        self._command(f"settings set target.process.thread.max-backtrace-depth {_MAX_BACKTRACE_DEPTH}")
        # Regex literals (/a+/), as swiftc has them in Swift 6 mode; LLDB leaves them off by default.
        self._command("settings set target.experimental.swift-enable-bare-slash-regex true")
        # The debugger's step in goes past the kernel's own functions (safe points, the display API).
        avoid = rf"^(std::|__swiftKernel|__SwiftKernel|{PRELUDE_MODULE}\.)"
        self._command(f"settings set target.process.thread.step-avoid-regexp {avoid}")
        # Measured: search paths and clang options given to LLDB after its first Swift expression
        # never reach its compiler. A Swift module that needs a C module then aborts LLDB
        # ("DESERIALIZATION FAILURE": swift-numerics' RealModule needs _NumericsShims), and a module
        # without its AST wrapped into the library (any release build) is not imported at all.
        # Folders given now are read when a module is first looked up (Name.swiftmodule, clang's
        # Name/module.modulemap), so a package installed later is links added there (``load_installed``).
        self._found_modules = tempfile.mkdtemp(prefix="swift-kernel-modules-")
        for kind in ("swift", "clang"):
            os.mkdir(os.path.join(self._found_modules, kind))
        self._command(f"settings append target.swift-module-search-paths {self._found_modules}/swift")
        self._command(f"settings append target.swift-extra-clang-flags -I{self._found_modules}/clang")
        # The kernel's Swift API, prebuilt once per toolchain (prelude.py); searched from the start.
        self._prelude_module = prelude_module(self.toolchain)
        if self._prelude_module is not None:
            self._command(f"settings append target.swift-module-search-paths {self._prelude_module.folder}")
        # LLDB's on-disk index of the toolchain's symbol tables: launching repl_swift reads them
        # again in every kernel otherwise (measured: launch to repl_main 0.57 s -> 0.40 s).
        index = cache_root().parent / "lldb-index"
        with contextlib.suppress(OSError):
            index.mkdir(parents=True, exist_ok=True)
            self._command(f"settings set symbols.lldb-index-cache-path {index}")
            self._command("settings set symbols.enable-lldb-index-cache true")
        # Cells keep LLDB's default of stopping at breakpoints: the debugger's, and the one-shot
        # ones that let an interrupted library call finish before the cell is unwound (measured:
        # an expression that ignores breakpoints runs past them, to the watchdog's SIGINT).
        self._options = self._expression_options(repl=True)
        self._plain_options = self._expression_options(repl=False)
        # An interrupt that comes while a cell is compiled (or before) ends it before any of its
        # code runs: it never parses, or its code is never started. (Measured: a safe point
        # compiled in front of the cell did the same, for 0.6 ms of LLDB's compile per cell.)
        self._cell_options = self._expression_options(repl=True)
        stops = (lldb.eExpressionEvaluationParse, lldb.eExpressionEvaluationExecution)
        self._cancel_callback = CancelCallback(lambda phase, baton: phase in stops and self.interrupted.is_set())
        self._cancels = set_cancel_callback(lldb, self._cell_options, self._cancel_callback)
        # What the debugger's console evaluates in a stopped frame.
        self._frame_options = self._expression_options(repl=False)
        self._frame_options.SetUnwindOnError(True)
        self._frame_options.SetTimeoutInMicroSeconds(_EVALUATE_MICROSECONDS)
        self._frame_options.SetIgnoreBreakpoints(True)
        self._console_options = self._expression_options(repl=True)
        self._console_options.SetUnwindOnError(True)
        self._console_options.SetTimeoutInMicroSeconds(_EVALUATE_MICROSECONDS)
        self._console_options.SetIgnoreBreakpoints(True)
        # Putting the standard streams back may block (a flush into a pipe nobody reads) and be
        # interrupted: LLDB then unwinds it by itself.
        self._restore_options = self._expression_options(repl=False)
        self._restore_options.SetUnwindOnError(True)

    def start(self) -> None:
        """Load LLDB if needed, launch ``repl_swift`` and run the prelude."""
        if self._debugger is None:
            self.load()
        self._launch()

    def _command(self, command: str) -> None:
        result = self._lldb.SBCommandReturnObject()
        self._debugger.GetCommandInterpreter().HandleCommand(command, result)
        if not result.Succeeded():
            log.warning("lldb command %r failed: %s", command, result.GetError())

    def _expression_options(self, repl: bool) -> Any:
        lldb = self._lldb
        options = lldb.SBExpressionOptions()
        options.SetLanguage(lldb.eLanguageTypeSwift)
        options.SetREPLMode(repl)
        # Left at the point of a crash or interrupt so its frames can be read; unwound by hand.
        options.SetUnwindOnError(False)
        options.SetGenerateDebugInfo(True)
        options.SetTimeoutInMicroSeconds(0)
        options.SetTryAllThreads(True)
        # The REPL runs with the other threads going; the default stops them after 250 ms and
        # resumes them, which makes sleep() misbehave and races with interrupts.
        options.SetStopOthers(False)
        return options

    def _launch_environment(self) -> dict[str, str]:
        """Return the Swift process's environment: the host's less the kernel's own variables, the
        kernel's Swift library first in LD_PRELOAD."""
        environment = {
            key: value
            for key, value in os.environ.items()
            if (not key.startswith(("JPY_", "SWIFT_KERNEL_")) or key == OWNER_VARIABLE) and key != "PYTHONPATH"
        }
        environment["SWIFT_BACKTRACE"] = _SWIFT_BACKTRACE
        environment.update(self.environment)
        self._preload_before = environment.get("LD_PRELOAD")
        if self._prelude_module is not None:
            # The dynamic loader maps the library as the process starts, sparing the start an
            # expression that dlopened it (README: Start-up and restart).
            # The prelude gives the variable back its value, so nothing the cells run inherits it.
            preload = [str(self._prelude_module.library), self._preload_before or ""]
            environment["LD_PRELOAD"] = ":".join(part for part in preload if part)
        return environment

    def _launch(self) -> None:
        lldb = self._lldb
        if self._target is not None:
            self._debugger.DeleteTarget(self._target)
        log.debug("start-up: launching %s", self.toolchain.repl_swift)
        target = self._debugger.CreateTarget(str(self.toolchain.repl_swift))
        if not target.IsValid():
            raise SwiftProcessEnded(f"LLDB could not load {self.toolchain.repl_swift}")
        target.BreakpointCreateByName("repl_main", target.GetExecutable().GetFilename())
        info = lldb.SBLaunchInfo([])
        if os.environ.get("SWIFT_KERNEL_DISABLE_ASLR", "1") == "0":
            # SBLaunchInfo asks for personality(ADDR_NO_RANDOMIZE) before exec, which container
            # runtimes' default seccomp profile refuses ("personality set failed"); the kernel
            # needs no fixed addresses (bench/ptrace_sandbox.py, README: Running on a cluster).
            info.SetLaunchFlags(info.GetLaunchFlags() & ~lldb.eLaunchFlagDisableASLR)
        info.SetEnvironmentEntries([f"{key}={value}" for key, value in self._launch_environment().items()], False)
        info.SetWorkingDirectory(os.getcwd())
        info.AddOpenFileAction(0, self._streams.stdin, True, False)
        info.AddOpenFileAction(1, self._streams.stdout, False, True)
        info.AddOpenFileAction(2, self._streams.stderr, False, True)
        error = lldb.SBError()
        process = target.Launch(info, error)
        if not error.Success() or not process.IsValid():
            raise SwiftProcessEnded(f"could not launch {self.toolchain.repl_swift}: {error.GetCString()}")
        signals = process.GetUnixSignals()
        # SIGINT stops the Swift code for the debugger and never reaches the program itself.
        signals.SetShouldStop(signal.SIGINT, True)
        signals.SetShouldNotify(signal.SIGINT, True)
        signals.SetShouldSuppress(signal.SIGINT, True)
        self._target, self._process = target, process
        self._pid = process.GetProcessID()
        self._main_thread_id = process.GetSelectedThread().GetThreadID()
        # Told before the prelude runs, so the kernel can signal (or kill) this process from now on.
        self._on_launch(self._pid, parent_pid(self._pid))
        log.debug("start-up: Swift process %d stopped at repl_main; running the prelude", self._pid)
        error_text = self._run_prelude()
        if error_text and self._prelude_module is not None:
            log.warning("the prelude failed with %s (%s); compiling its source", PRELUDE_MODULE, error_text)
            self._prelude_module = None
            error_text = self._run_prelude()
        if error_text:
            raise SwiftProcessEnded(f"the kernel's Swift prelude failed: {error_text}")
        self._results.read_messages()
        self._extras_loaded = False
        self._adopter.reset()
        self._plain_structs.clear()
        page = self._page()
        state = page[_DISPATCH_STATE_AT : _DISPATCH_STATE_AT + 8] if page else b""
        self._dispatch_state = int.from_bytes(state, "little")
        self.launches += 1
        log.info("start-up: Swift process %d ready", self._pid)
        self._find_streams()
        self._renew_breakpoints()

    def relaunch(self) -> None:
        """Kill the Swift process (if any) and start a fresh one; all Swift state is lost."""
        self._kill_process()
        self._launch()

    def _kill_process(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.IsValid():
            try:
                process.Kill()
            except Exception:
                log.debug("kill failed", exc_info=True)
        send_signal(self._pid, signal.SIGKILL)
        self._memory.close()
        self._pid = 0

    def _run_prelude(self) -> str:
        """Run the prelude in the new Swift process; return its error ('' when it ran)."""
        value = self._target.EvaluateExpression(self._prelude_code(), self._options)
        error_text = value.GetError().GetCString() or ""
        return "" if value.GetError().Success() or diagnostics.is_no_result(error_text) else error_text

    def _prelude_code(self) -> str:
        """Return the prelude that uses the kernel's Swift library (loaded at launch: ``LD_PRELOAD``).

        Without the library (it could not be built, or not imported), the prelude compiles its
        source along with it, as every start did before.
        """
        statements = _prelude(self._results.path_for_child, self._stop_flag)
        if self._preload_before is None:
            statements += '\nunsetenv("LD_PRELOAD")'
        else:
            statements += f'\nsetenv("LD_PRELOAD", {swift_literal(self._preload_before)}, 1)'
        if self._prelude_module is not None:
            return f"import {PRELUDE_MODULE}\n{statements}"
        return f"{PRELUDE_SOURCE.read_text()}\n{statements}"

    def set_environment(self, name: str, value: str) -> CellError | None:
        """Set an environment variable inside the Swift process (``setenv``); fresh ones get it too."""
        code = f"setenv({swift_literal(name)}, {swift_literal(value)}, 1)"
        result = self._target.EvaluateExpression(code, self._plain_options)
        if not result.GetError().Success():
            return CellError("EnvError", f"setenv in the Swift process failed: {result.GetError().GetCString()}")
        self.environment[name] = value
        return None

    def load_installed(self, installed: Installed) -> CellError | None:
        """Put built modules on LLDB's search path and load their library into the Swift process."""
        for directory in installed.module_dirs:
            for module in Path(directory).glob("*.swiftmodule"):
                self._link(Path(self._found_modules, "swift", module.name), module)
        for module_map in installed.module_maps:
            self._link_clang_modules(Path(module_map))
        # Clang flags cannot reach LLDB any more (see ``_found_modules``): what a header folder
        # holds is linked into the clang folder LLDB searches, so `#include <foo.h>` finds it.
        for folder in installed.include_dirs:
            for entry in sorted(Path(folder).glob("*")):
                link = Path(self._found_modules, "clang", entry.name)
                if not link.is_symlink():  # a module's own link comes first
                    self._link(link, entry)
        library = installed.library
        code = f"dlopen({swift_literal(library)}, RTLD_NOW | RTLD_GLOBAL) == nil ? String(cString: dlerror()) : \"\""
        result = self._target.EvaluateExpression(code, self._plain_options)
        error = result.GetError()
        if not error.Success():
            return CellError("InstallError", f"loading {library} failed: {error.GetCString()}")
        message = (result.GetSummary() or "").strip('"')
        if message:
            return CellError("InstallError", f"loading {library} failed: {message}")
        return None

    def _link_clang_modules(self, module_map: Path) -> None:
        """Make each module ``module_map`` declares findable as <clang folder>/Name/module.modulemap."""
        try:
            names = clang_module_names(module_map.read_text())
        except OSError as error:
            log.warning("module map %s not read: %s", module_map, error)
            return
        for name in names:
            # The folder, not the file: the module map's headers are named relative to it.
            self._link(Path(self._found_modules, "clang", name), module_map.parent)

    @staticmethod
    def _link(link: Path, target: Path) -> None:
        """Point ``link`` at ``target`` (another build of the module replaces an earlier one)."""
        if link.is_symlink() and os.readlink(link) == str(target):
            return
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(target, target_is_directory=target.is_dir())

    def reopen_stdin(self, path: str) -> CellError | None:
        """Make ``path`` the Swift process's standard input, now and for fresh processes."""
        self._streams = dataclasses.replace(self._streams, stdin=path)
        code = f"__SwiftKernel.reopenStdin({swift_literal(path)})"
        result = self._target.EvaluateExpression(code, self._plain_options)
        error_text = result.GetError().GetCString() or ""
        if not result.GetError().Success() and not diagnostics.is_no_result(error_text):
            return CellError("StdinError", f"reopening standard input failed: {error_text}")
        return None

    def _find_streams(self) -> None:
        """Note what the fresh Swift process's fds 1 and 2 and result channel lead to, for ``keep_streams``."""
        self._stream_ids = {}
        for fd, path in ((1, self._streams.stdout), (2, self._streams.stderr)):
            with contextlib.suppress(OSError):
                self._stream_ids[fd] = file_identity(os.stat(path))
        channel = file_identity(os.fstat(self._results.write_fd))
        ours = [fd for fd in open_fds(self._pid) if fd_identity(self._pid, fd) == channel]
        self._channel_fd = max(ours, default=-1)
        self._stream_files = {}
        self._streams_checked = None
        for fd, _, symbol in _STANDARD_STREAMS:
            found = self._target.FindSymbols(symbol)
            for index in range(found.GetSize()):
                address = found.GetContextAtIndex(index).GetSymbol().GetStartAddress()
                load_address = address.GetLoadAddress(self._target)
                if load_address != self._lldb.LLDB_INVALID_ADDRESS:
                    self._stream_files[fd] = load_address
                    break
        log.debug("streams %s, channel fd %d, FILEs %s", self._stream_ids, self._channel_fd, self._stream_files)

    def keep_streams(self, evaluated: bool = False) -> None:
        """Put back the Swift process's standard output and error and the result channel if code broke them.

        Called before and after each piece of a cell (``host.HostServer``), while the process is
        stopped. Code may close fds 1 and 2, point them elsewhere (dup2), buffer them (setvbuf: its
        output would then surface in a later cell), or close or replace the kernel's result channel.
        Checking costs a few /proc reads and two small memory reads, and nothing when the process
        has not run since the last check (LLDB's stop count, expressions included, is unchanged);
        only a broken stream costs an expression, which flushes what the cell printed and puts
        everything back. Each repair is said on the cell's stderr. ``evaluated``: LLDB has just
        evaluated an expression, so the process is alive and stopped (not asked again).
        """
        if not self._pid or self._process is None:
            return
        checked = (self._pid, self._process.GetStopID(True))
        # Unchanged since a clean check: the process has not run, so its streams are as they were.
        if checked == self._streams_checked or not (evaluated or self.is_process_alive()):
            return
        notes = []
        reopen: dict[int, str] = {}
        buffered = False
        for (fd, name, _), path in zip(_STANDARD_STREAMS, (self._streams.stdout, self._streams.stderr), strict=True):
            expected = self._stream_ids.get(fd)
            found = fd_identity(self._pid, fd)
            if expected is not None and found != expected:
                reopen[fd] = path
                if found is None:
                    notes.append(f"{name} (fd {fd}) was closed: what was written to it since went nowhere.")
                else:
                    notes.append(f"{name} (fd {fd}) led elsewhere (dup2, or a file opened in its place).")
                notes[-1] += " The kernel put it back."
            file = self._read(self._stream_files.get(fd, 0), _FILE_FILENO_AT + 4)
            if file is not None and not int.from_bytes(file[:4], "little") & _IO_UNBUFFERED:
                buffered = True
                notes.append(f"{name} was made buffered (setvbuf): the kernel flushed it and made it unbuffered again.")
        channel = file_identity(os.fstat(self._results.write_fd))
        channel_found = fd_identity(self._pid, self._channel_fd) if self._channel_fd >= 0 else channel
        reopen_channel = channel_found != channel
        if not (reopen or buffered or reopen_channel):
            self._streams_checked = checked
            return
        code = (
            f"__SwiftKernel.restoreStreams({swift_literal(reopen.get(1, ''))}, {swift_literal(reopen.get(2, ''))}, "
            f"reopenChannel: {str(reopen_channel).lower()})"
        )
        result = self._target.EvaluateExpression(code, self._restore_options)
        if not result.GetError().Success():
            log.warning("putting the standard streams back failed: %s", result.GetError().GetCString())
            self._on_stderr(f"Putting the Swift process's standard streams back failed: {' '.join(notes)}\n")
            return
        if reopen_channel:
            old, new = self._channel_fd, result.GetValueAsSigned(-1)
            self._channel_fd = new
            how = "closed" if channel_found is None else "taken for something else (dup2, or a file opened there)"
            notes.append(f"The kernel's result channel, fd {old}, was {how}: the kernel opened it again as fd {new}.")
        log.info("put the standard streams back: %s", " ".join(notes))
        self._streams_checked = (self._pid, self._process.GetStopID(True))
        self._on_stderr("".join(f"{note}\n" for note in notes))

    def kill_now(self) -> None:
        """Kill the Swift process at once; safe from any thread, even while a cell runs."""
        send_signal(self._pid, signal.SIGKILL)

    def end_before_exit(self) -> None:
        """End the Swift process and its debug server at once, as the host's last act before it exits.

        The orderly ``shutdown`` waits for LLDB to see the process killed and tears its target and
        debugger down (10-40 ms here), for a process whose exit frees all of it anyway; a restart
        waits for the kernel to end.
        """
        if self._pid:
            debug_server = parent_pid(self._pid)
            send_signal(self._pid, signal.SIGKILL)
            if debug_server > 1 and debug_server != os.getpid():
                send_signal(debug_server, signal.SIGKILL)
        self._remove_own_files()

    def shutdown(self) -> None:
        """End the Swift process and the debugger; leave no process behind."""
        self._kill_process()
        if self._debugger is not None:
            if self._target is not None:
                self._debugger.DeleteTarget(self._target)
                self._target = None
            self._lldb.SBDebugger.Destroy(self._debugger)
            self._debugger = None
        self._remove_own_files()

    def _remove_own_files(self) -> None:
        """Remove the module search folders and close the result channel (both ends of a session)."""
        if self._found_modules:
            shutil.rmtree(self._found_modules, ignore_errors=True)
        self._results.close()

    def is_process_alive(self) -> bool:
        """Say whether the Swift process is alive; only call while no evaluation runs."""
        if self._process is None or not self._process.IsValid():
            return False
        # LLDB's own state lags when the process or its debug server is killed from outside.
        if process_state(self._pid) in ("X", "Z"):
            return False
        return bool(self._process.GetState() == self._lldb.eStateStopped)

    def send_async_interrupt(self) -> None:
        """Ask LLDB to stop the Swift process (SIGSTOP); safe while an evaluation runs."""
        if self._process is not None:
            self._process.SendAsyncInterrupt()

    # ----- execution --------------------------------------------------------------------------

    def evaluate(self, code: str, as_cell: bool = False) -> Any:
        """Evaluate ``code`` with the REPL's options (``as_cell``: a cell's); return the SBValue (for benchmarks)."""
        return self._target.EvaluateExpression(code, self._cell_options if as_cell else self._options)

    def execute(
        self, code: str, cell_name: str, safe_points: bool = True, tables: bool = False, source_path: str = ""
    ) -> Outcome:
        """Compile and run one piece of a cell (named ``cell_name`` in diagnostics and frames).

        With ``safe_points`` every loop body and the cell itself start with a safe point (see
        ``safepoints.py``); should the compiler object to one (a loop in a result builder), the
        cell is compiled again as written. With ``tables`` a result that is a collection of rows
        is shown as a table. With ``source_path`` the code is compiled as that file, which the
        debugger's breakpoints name; what the kernel reports still says ``cell_name``.
        """
        if not self.is_process_alive():
            return self._process_ended("The Swift process ended before this cell ran")
        if needs_extras(code) or tables:
            self._load_extras()
        if _EXTENSION.search(code):
            self._plain_structs.clear()
        if source_path:
            self._cell_files[os.path.basename(source_path)] = cell_name
        # #sourceLocation takes its file name as written, escapes and all: a name with a quote or a
        # backslash is given, and shown in diagnostics, the way Swift writes it in a literal.
        located = swift_literal(cell_name.encode("utf-8", "replace").decode())[1:-1]
        compiled_as = swift_literal(source_path)[1:-1] if source_path else located
        source, points = compiled_source(code, compiled_as, safe_points, cell_safe_point=not self._cancels)
        self._dispatch_before = self._read(self._dispatch_state, _DISPATCH_STATE_SIZE)
        self.pause_requested.clear()
        self._evaluating = True
        try:
            value = self._target.EvaluateExpression(source, self._cell_options)
        finally:
            self._evaluating = False
        if value.GetError().Success():
            self.keep_streams(evaluated=True)  # the cell may have broken the channel its result is described through
        error_text = (value.GetError().GetCString() or "").replace(compiled_as, located)
        if safe_points and _blames_safe_points(error_text, points, located):
            log.info("the compiler refused the safe points of %s; compiling it as written", located)
            return self.execute(code, cell_name, safe_points=False, tables=tables, source_path=source_path)
        try:
            return self._finish(value, error_text, located, points, tables)
        finally:
            if self.pause_requested.is_set():
                # A pause that came as the cell ended left its SIGINT for the next cell.
                self.pause_requested.clear()
                self._absorb_pending_stops()

    def _load_extras(self) -> None:
        """Compile the display extras (``swift/display.swift``) into this Swift process, once."""
        if self._extras_loaded:
            return
        self._extras_loaded = True
        value = self._target.EvaluateExpression(EXTRAS.read_text(), self._options)
        error_text = value.GetError().GetCString() or ""
        if not value.GetError().Success() and not diagnostics.is_no_result(error_text):
            log.warning("the display extras failed to compile: %s", error_text)

    def _adopt_bundle_methods(self, code: str) -> None:
        """Make the types that have the bundle method but not the conformance JupyterDisplayable."""
        if not may_adopt(code):
            return
        found = self._target.FindFunctions(BUNDLE_METHOD)
        names = []
        for index in range(found.GetSize()):
            context = found.GetContextAtIndex(index)
            symbol = context.GetSymbol()
            name = symbol.GetName() if symbol.IsValid() else context.GetFunction().GetName()
            if name:
                names.append(name)
        declarations = self._adopter.conformances(code, names)
        if not declarations:
            return
        self._plain_structs.clear()
        log.debug("declaring %s", declarations)
        for declaration in declarations:
            result = self._target.EvaluateExpression(declaration, self._options)
            error_text = result.GetError().GetCString() or ""
            if not result.GetError().Success() and not diagnostics.is_no_result(error_text):
                log.info("%s failed: %s", declaration, error_text)

    def _finish(
        self, value: Any, error_text: str, source_name: str, points: SafePoints, tables: bool = False
    ) -> Outcome:
        error = value.GetError()
        error_text = points.restore(error_text, source_name)
        if error.Success() and (value.GetName() or "").startswith("$E") and value.GetTypeName() == "Swift.Error":
            return Outcome(thrown=self._thrown(value))
        if error.Success():
            self._adopt_bundle_methods(points.original)
            text, data = self._describe(value, tables)
            return Outcome(value=text, data=data)
        if diagnostics.is_no_result(error_text):
            self._adopt_bundle_methods(points.original)
            return Outcome()
        if error_text.strip().removeprefix("error: ").startswith(_CANCELLED):
            # The kernel's interrupt came while the cell was compiled (or before): its code never started.
            return Outcome(stop=Stop("signal SIGINT", "interrupted before the cell's code ran"))
        if diagnostics.is_process_gone(error_text) or not self.is_process_alive():
            # Only LLDB's word that the execution was cut short means the cell's code had begun: a
            # process lost while LLDB prepared the cell (a debug server that crashed while no cell
            # ran takes a while to die) was lost before it.
            ran = any(marker in error_text.lower() for marker in _EXECUTION_CUT_SHORT)
            when = "while the cell ran" if ran else "before this cell ran"
            return self._process_ended(f"The Swift process ended {when}")
        reason = diagnostics.interruption_reason(error_text)
        if reason in (None, _LIBRARY_LOADED) and diagnostics.process_left_stopped(error_text):
            # Another thread stopped the process (a trap in a thread this cell or an earlier one
            # started): LLDB gives no reason, only that the cell's thread was left where it was,
            # or names its own breakpoint for a library that a thread loaded as it crashed.
            reason = self._stop_elsewhere()
        if reason is None:
            compile_error = diagnostics.compile_error(error_text, source_name, points.original)
            if compile_error is not None:
                return Outcome(error=compile_error)
            return Outcome(error=CellError("SwiftError", error_text.strip().removeprefix("error: ")))
        log.debug("the evaluation stopped: %s", reason)
        left_stopped = diagnostics.process_left_stopped(error_text)
        if self.debugging and left_stopped:
            debugged = self._debug(reason)
            if isinstance(debugged, Outcome):
                return debugged
            reason = debugged
        return self._stopped(reason, left_stopped)

    def _stop_elsewhere(self) -> str:
        """Select the thread that stopped the process when it is not the cell's; say why it stopped.

        LLDB selects the cell's thread after an expression, even when another thread stopped the
        process (a trap or a breakpoint in a thread this cell or an earlier one started), and its
        error then gives no reason. The debugger and the crash report read the selected thread.
        """
        stopping = [
            t
            for t in self._process.threads
            if t.GetStopReason() not in (_STOP_INVALID, _STOP_NONE) and not t.IsSuspended()  # held: an old reason
        ]
        # A signal first: another thread may show LLDB's own breakpoint (a library loaded) beside it.
        stopping.sort(key=lambda t: t.GetStopReason() != _STOP_SIGNAL)
        description = ""
        if stopping:
            self._process.SetSelectedThread(stopping[0])
            description = stopping[0].GetStopDescription(256) or ""
            log.info("the cell was stopped by thread %d: %s", stopping[0].GetIndexID(), description)
        return description or "the process stopped in another thread"

    def _stopped(self, reason: str, left_stopped: bool) -> Outcome:
        """Read the frames of a cell stopped by a signal (or interrupt), unwind it, say what happened."""
        crashed = self._process.GetSelectedThread()
        stop_description = crashed.GetStopDescription(256) or ""
        stopped_by_us = self.interrupted.is_set() and "SIGINT" in reason
        thread = self._process.GetThreadByID(self._main_thread_id) if stopped_by_us else crashed
        read = [self._named(frame) for frame in _frames(thread)]
        frames = diagnostics.cell_frames(read)
        log.debug("read the stopped thread's frames")
        elsewhere = ""
        if thread.GetThreadID() != self._main_thread_id:
            elsewhere = "task" if _runs_a_task(thread) else "thread"
        crashed_elsewhere = bool(elsewhere) and any(name in stop_description for name in _TRAPS)
        if crashed_elsewhere:
            # A trap in a thread the cell (or an earlier one) started: resumed, it would trap again
            # in the next cell. LLDB keeps it suspended, as a process without a debugger would
            # have ended there. The cell's thread, stopped wherever it was, is then unwound as
            # after an interrupt (out of any library call first, so that it leaves no lock taken).
            log.info("holding thread %d for good: it crashed (%s)", thread.GetIndexID(), stop_description)
            thread.Suspend()
        held: tuple[int, int] | None = (0, 0)
        if left_stopped and crashed_elsewhere:
            self._run_to_safe_point()
        if left_stopped:
            held = self._unwind(run_to_cell_code=stopped_by_us or crashed_elsewhere)
        if held is None:
            return self._process_ended("The Swift process could not be returned to its state before the cell")
        self._absorb_pending_stops()
        reported = not stopped_by_us and diagnostics.reported_by_runtime(read)
        threads_held, threads_held_unsafely = held
        return Outcome(
            stop=Stop(reason, stop_description, tuple(frames), reported, threads_held, threads_held_unsafely, elsewhere)
        )

    def _run_to_safe_point(self) -> None:
        """Let the cell's thread, stopped where another thread crashed, run on to its next safe point.

        As an interrupt stops it (word 0 of the stop flag), so that it leaves no value half
        changed. A thread blocked in the kernel (sleep, a read) stays where it is; one that reaches
        no safe point within its budget (``_RETURN_CPU_NS``) is stopped wherever it is by a SIGINT (``_unwind``
        then brings it back to cell code, as after an interrupt). A cell that would end first is
        stopped at its last instruction (one-shot breakpoints on the returns of its top-level
        code): past it, LLDB no longer knows the expression, which could then not be unwound.
        """
        thread = self._process.GetThreadByID(self._main_thread_id)
        if not thread.IsValid() or _blocked_in_kernel(thread.GetFrameAtIndex(0)):
            return
        returns = self._cell_returns()
        if not returns:
            return
        self._set_word(0, 1)
        try:
            self._run_main_to(returns)
        finally:
            self._set_word(0, 0)

    def _cell_returns(self) -> list[Any]:
        """Return the addresses of the return instructions of the running cell's top-level code."""
        name = self._expression_module()
        module = next((m for m in self._target.module_iter() if m.GetFileSpec().GetFilename() == name), None)
        if module is None:
            return []
        found = module.FindSymbols("main")  # the REPL compiles a cell's top-level code as its main
        returns = []
        for index in range(found.GetSize()):
            instructions = found.GetContextAtIndex(index).GetSymbol().GetInstructions(self._target)
            for at in range(instructions.GetSize()):
                instruction = instructions.GetInstructionAtIndex(at)
                if (instruction.GetMnemonic(self._target) or "").startswith("ret"):
                    returns.append(instruction.GetAddress())
        return returns

    def _return_to_cell_code(self, thread: Any) -> Any:
        """Let a thread stopped inside a library run on until it is back in cell code.

        An interrupt can land inside malloc while it holds the heap lock (or inside any other
        library lock); unwinding the cell from there leaves the lock taken for ever and the next
        cell that allocates hangs (measured: one interrupt in three of an allocating loop). So a
        one-shot breakpoint goes on the return address in the innermost cell frame and the
        process runs on to it. A call that does not get there within its budget (``_RETURN_CPU_NS``) is
        stopped again by a SIGINT wherever it is; calls blocked in a system call (sleep, read)
        hold no such locks and are unwound at once. Returns the thread, refreshed.
        """
        user_index = None
        for index in range(_FRAMES_READ):
            frame = thread.GetFrameAtIndex(index)
            if not frame.IsValid():
                break
            if _in_cell_code(frame.GetModule()):
                user_index = index
                break
        if not user_index:
            return thread
        innermost = thread.GetFrameAtIndex(0).GetFunctionName() or ""
        log.debug("stopped in %s, %d frames above cell code", innermost, user_index)
        if _blocked_in_kernel(thread.GetFrameAtIndex(0)):
            return thread
        return self._run_main_to([thread.GetFrameAtIndex(user_index).GetPCAddress()])

    def _run_main_to(self, addresses: list[Any]) -> Any:
        """Let the process run until the main thread gets to one of ``addresses``; return that thread.

        Breakpoints for the main thread only go on the addresses for the run. One that is not
        reached within the budget (``_RETURN_CPU_NS`` of the thread's CPU, or ``_RETURN_BLOCKED_SECONDS``
        blocked) leaves a SIGINT to stop the process wherever it is.
        """
        breakpoints = []
        for address in addresses:
            breakpoint = self._target.BreakpointCreateBySBAddress(address)
            breakpoint.SetThreadID(self._main_thread_id)
            breakpoints.append(breakpoint)
        watchdog = ProgressWatchdog(
            self._pid,
            self._main_thread_id,
            signal.SIGINT,
            cpu_ns=_RETURN_CPU_NS,
            blocked_seconds=_RETURN_BLOCKED_SECONDS,
            hang_seconds=_RETURN_HANG_SECONDS,
        )
        try:
            with watchdog:
                self._process.Continue()
        finally:
            for breakpoint in breakpoints:
                self._target.BreakpointDelete(breakpoint.GetID())
        thread = self._process.GetThreadByID(self._main_thread_id)
        log.debug(
            "ran on to %s (%s)%s",
            thread.GetFrameAtIndex(0).GetFunctionName(),
            thread.GetStopDescription(100),
            f"; stopped by SIGINT: {watchdog.fired}" if watchdog.fired else "",
        )
        return thread

    def _unwind(self, run_to_cell_code: bool) -> tuple[int, int] | None:
        """Return the main thread to its state before the expression; None if that failed.

        ``run_to_cell_code`` only after the kernel's own SIGINT or a crash held in another thread
        (``_stopped``): a crashed thread would crash again.
        Other threads running the cell's code are stopped for good first (``_hold_cell_threads``);
        returns how many, and how many of those outside a safe point.
        """
        thread = self._process.GetThreadByID(self._main_thread_id)
        if not thread.IsValid():
            return None
        if run_to_cell_code:
            thread = self._return_to_cell_code(thread)
        if not self.is_process_alive() or not thread.IsValid():
            return None
        held = self._hold_cell_threads(thread, run=run_to_cell_code)
        if not self.is_process_alive():
            return None
        thread = self._process.GetThreadByID(self._main_thread_id)
        guard = self._main_queue_guard()
        result = thread.UnwindInnermostExpression()
        if not result.Success():
            log.warning("unwinding the expression failed: %s", result.GetCString())
            return None
        self._process.SetSelectedThread(thread)
        self._restore_dispatch_state()
        if guard:
            self._write(guard, bytes(4))
            log.info("ended the main queue's drain the unwind cut short")
        return held

    def _main_queue_guard(self) -> int:
        """Return the address of the main queue's drain guard while it is set (a drain under way), else 0.

        While a cell awaits, it runs the main queue's jobs (SwiftKernelPrelude's ``wait(for:)``,
        through libdispatch's ``_dispatch_main_queue_callback_4CF``), which sets the guard for the
        drain and clears it at its end. Only the main thread drains, so a guard still set when its
        cell is unwound belongs to a drain the unwind cuts short; left set, every later drain
        returned at once and the main actor never ran again. The guard is ``dq_side_suspend_cnt``
        of ``_dispatch_main_q`` (swift-corelibs-libdispatch's ``queue_internal.h``), used only
        where the queue's label lies where that layout puts it.
        """
        found = self._target.FindSymbols(_MAIN_QUEUE)
        addresses = [
            found.GetContextAtIndex(index).GetSymbol().GetStartAddress().GetLoadAddress(self._target)
            for index in range(found.GetSize())
        ]
        queue = next((a for a in addresses if a not in (0, self._lldb.LLDB_INVALID_ADDRESS)), 0)
        label = self._read(queue + _MAIN_QUEUE_LABEL_AT, 8) if queue else None
        if label is None or self._read(int.from_bytes(label, "little"), len(_MAIN_QUEUE_LABEL)) != _MAIN_QUEUE_LABEL:
            return 0
        guard = queue + _MAIN_QUEUE_GUARD_AT
        return guard if self._read(guard, 4) == (1).to_bytes(4, "little") else 0

    def _write(self, address: int, data: bytes) -> bool:
        """Write the Swift process's memory (through LLDB, which keeps its caches right); say if it worked."""
        error = self._lldb.SBError()
        self._process.WriteMemory(address, data, error)
        if not error.Success():
            log.warning("writing %d bytes at %#x failed: %s", len(data), address, error.GetCString())
        return bool(error.Success())

    def _hold_cell_threads(self, main: Any, run: bool) -> tuple[int, int]:
        """Stop, for good, the other threads that run the code of the expression being unwound.

        A concurrentPerform's workers run the cell's closure, whose context lives on the main
        thread's stack: left running once the cell is unwound, they write into whatever the next
        cell puts there (measured: 12 interrupts in 12 corrupted the process). With ``run`` they
        first run on, the main thread and every other thread held, until each stops at a safe
        point (word 2 of the stop flag asks for that) or returns from the cell's code to the
        library that called it (a one-shot breakpoint); one that does neither within its CPU
        budget, or sleeps in the kernel, is stopped where it is. Then each is suspended: LLDB
        never resumes it, so no cell code of an unwound expression runs again. Returns how many
        threads were held and how many of them outside such a place.
        """
        module = self._expression_module()
        if module is None:
            return 0, 0
        # A concurrentPerform's worker between two calls of the closure is in libdispatch, about
        # to call it again, and one that has not started yet will: the apply is told that no
        # iteration is left. Should its record not be found, such workers are held too.
        applying = _calls_apply(main) and not self._end_apply(main)
        pending = {
            t.GetThreadID(): t
            for t in self._process.threads
            if not t.IsSuspended() and (_runs_module(t, module) or (applying and _calls_apply(t)))
        }
        pending.pop(self._main_thread_id, None)
        if not pending:
            return 0, 0
        log.info("stopping %d other threads running the interrupted code", len(pending))
        if not run:
            for thread in pending.values():
                thread.Suspend()
            return len(pending), len(pending)
        bystanders = [t for t in self._process.threads if t.GetThreadID() not in pending and not t.IsSuspended()]
        for thread in bystanders:
            thread.Suspend()
        breakpoints = {}
        for tid, thread in pending.items():
            caller = _caller_of_module(thread, module)
            if caller is not None:
                breakpoint = self._target.BreakpointCreateBySBAddress(caller.GetPCAddress())
                breakpoint.SetThreadID(tid)
                breakpoints[tid] = breakpoint
        cpu_before = {tid: thread_cpu_ns(self._pid, tid) for tid in pending}
        unsafe = 0
        self._set_word(_HOLD_WORD, 1)
        try:
            for _ in range(_HOLD_MAX_SLICES):
                for tid in list(pending):
                    thread = self._process.GetThreadByID(tid)
                    where = _hold_point(thread, module, breakpoints.get(tid))
                    spent = thread_cpu_ns(self._pid, tid) - cpu_before[tid]
                    if where is None and spent < _HOLD_CPU_NS:
                        continue
                    log.debug("holding thread %d (%s)", tid, where or f"outside a safe point after {spent} ns")
                    unsafe += where is None
                    thread.Suspend()
                    del pending[tid]
                if not pending or not self.is_process_alive():
                    break
                watchdog = threading.Timer(_HOLD_SLICE_SECONDS, self._end_slice, args=(list(pending),))
                watchdog.start()
                try:
                    self._process.Continue()
                finally:
                    watchdog.cancel()
            for tid in pending:  # the hang guard: never unwind under a thread still in the code
                self._process.GetThreadByID(tid).Suspend()
                unsafe += 1
        finally:
            self._set_word(_HOLD_WORD, 0)
            for breakpoint in breakpoints.values():
                self._target.BreakpointDelete(breakpoint.GetID())
            for thread in bystanders:
                thread.Resume()
        held = len(cpu_before)
        log.info("held %d threads (%d outside a safe point)", held, unsafe)
        return held, unsafe

    def _end_slice(self, threads: list[int]) -> None:
        """Stop the process at the end of a hold slice, unless it has stopped already.

        SIGSTOP, as no thread can block it: libdispatch's workers block SIGINT, so a SIGINT sent to
        the process while every thread that takes it is held would stay pending, and the slice
        would never end. A process that has stopped (all-stop: every thread traced) is left alone,
        so that no stray SIGSTOP waits for the next cell; ``_absorb_pending_stops`` takes one that
        slips through.
        """
        if all(thread_state(self._pid, tid) in ("t", "X") for tid in threads):
            return
        send_signal(self._pid, signal.SIGSTOP)

    def _expression_module(self) -> str | None:
        """Return the module LLDB compiled the stopped expression into: the newest one it made."""
        for index in reversed(range(self._target.GetNumModules())):
            name = self._target.GetModuleAtIndex(index).GetFileSpec().GetFilename() or ""
            if name.startswith("$__lldb_expr"):
                return name
        return None

    def _end_apply(self, main: Any) -> bool:
        """Tell the dispatch_apply the main thread is in that no iteration is left; say if it worked.

        libdispatch hands out iterations from a counter in its apply record (``struct
        dispatch_apply_s``: the continuation, the next index, the count left, the iterations);
        a worker stops asking once the index reaches the iterations. The record is found among
        the values the apply frames keep (callee-saved registers, their stack slots) by its
        shape: its continuation lives on the main thread's stack, its counters fit its size.
        """
        stack_low = main.GetFrameAtIndex(0).GetSP()
        stack_high = stack_low + _MAIN_STACK_SPAN
        for frame in _first_frames(main):
            if not (frame.GetFunctionName() or "").startswith(_APPLY):
                continue
            for candidate in self._values_kept_by(frame):
                record = self._read(candidate, 40)
                if record is None:
                    continue
                dc, next_index, todo, iterations, _nested = (
                    int.from_bytes(record[at : at + 8], "little") for at in range(0, 40, 8)
                )
                counters_fit = 0 < iterations and todo <= iterations and next_index <= iterations + 1024
                if stack_low <= dc < stack_high and counters_fit:
                    log.info("ending a dispatch_apply at iteration %d of %d", next_index, iterations)
                    return self._write(candidate + 8, iterations.to_bytes(8, "little"))
        log.info("found no dispatch_apply record to end")
        return False

    def _values_kept_by(self, frame: Any) -> list[int]:
        """Return the callee-saved registers' values in ``frame`` and the words of its stack."""
        values = []
        for name in _CALLEE_SAVED:
            register = frame.FindRegister(name)
            if register.IsValid() and register.GetValueAsUnsigned(0):
                values.append(register.GetValueAsUnsigned(0))
        low, high = frame.GetSP(), frame.GetCFA()
        words = self._read(low, high - low) if 0 < high - low <= 4096 else None
        if words:
            values += [int.from_bytes(words[at : at + 8], "little") for at in range(0, len(words) - 7, 8)]
        return values

    def _restore_dispatch_state(self) -> None:
        """Put the main thread's libdispatch state back as it was before the unwound cell."""
        before = self._dispatch_before
        if before is None or self._read(self._dispatch_state, 4) != before[:4]:
            return  # unknown, or not this thread's (its id differs)
        for start, end in _DISPATCH_RESTORED:
            self._write(self._dispatch_state + start, before[start:end])

    def _read(self, address: int, size: int) -> bytes | None:
        """Read the Swift process's memory (None for address 0 or on failure).

        Through /proc first: LLDB's read is a round trip to lldb-server whenever the process has
        run since the last one, and the kernel reads a few words around every cell.
        """
        if not address or self._process is None:
            return None
        data = self._memory.read(self._pid, address, size) if self._pid else None
        if data is not None:
            return data
        error = self._lldb.SBError()
        data = self._process.ReadMemory(address, size, error)
        return bytes(data) if error.Success() and data is not None else None

    def _page(self) -> mmap.mmap | None:
        """Map the kernel's stop flag page here too (None without one)."""
        if self._flag_page is None and self._stop_flag:
            try:
                with open(self._stop_flag, "r+b") as flag:
                    self._flag_page = mmap.mmap(flag.fileno(), mmap.PAGESIZE)
            except OSError:
                log.warning("cannot map the stop flag %s", self._stop_flag, exc_info=True)
        return self._flag_page

    def _set_word(self, offset: int, value: int) -> None:
        page = self._page()
        if page is not None:
            page[offset : offset + 4] = value.to_bytes(4, "little")

    def _absorb_pending_stops(self) -> None:
        """Swallow a SIGINT or SIGSTOP queued for the stopped Swift process, so it cannot stop the next cell.

        One is left by an interrupt that came as the code stopped by itself, or a hold slice's end
        that raced with the slice's own stop. (Called after an interrupt only: run before every
        cell, the absorbing evaluation of a signal someone sent between cells was measured to
        leave the process crashing in the next cell, SIGSEGV at 0x50, after some cell sequences.)
        """
        if not self._pid:
            return
        queued = proc_status(self._pid)[1]
        pending = [signum for signum in (signal.SIGINT, signal.SIGSTOP) if queued & signal_bit(signum)]
        if not pending:
            return
        log.info("absorbing %s still pending for the Swift process", ", ".join(signal.Signals(s).name for s in pending))
        signals = self._process.GetUnixSignals()
        for signum in pending:
            signals.SetShouldStop(signum, False)
            signals.SetShouldNotify(signum, False)
        try:
            self._target.EvaluateExpression("__SwiftKernel.noop()", self._plain_options)
        finally:
            for signum in pending:
                signals.SetShouldStop(signum, True)
                signals.SetShouldNotify(signum, True)

    # ----- the frontend's debugger ------------------------------------------------------------

    def _named(self, frame: Frame) -> Frame:
        """Return ``frame`` naming its cell as the kernel does (``<Cell N>``), not by the cell's file."""
        name = self._cell_files.get(frame.file or "")
        return dataclasses.replace(frame, file=name) if name else frame

    def pause(self) -> dict[str, Any]:
        """Stop the running cell where it is, for the debugger; safe from any thread (the reader's)."""
        if self._evaluating and self.debugging and not self.pause_requested.is_set():
            self.pause_requested.set()
            send_signal(self._pid, signal.SIGINT)
        return {}

    def _debug(self, reason: str) -> Outcome | str:
        """Hold a cell stopped by the debugger and answer the frontend until it goes on.

        Returns the outcome of a cell that ran to its end or whose process ended, or the stop
        reason the usual path then unwinds and reports: the kernel's interrupt (``signal SIGINT``)
        or a trap the frontend has seen.
        """
        while True:
            kind = self._stop_kind(reason)
            if kind is None:
                return reason
            # A pause's signal may land on any thread; the cell's code runs on the main thread.
            selected = self._process.GetSelectedThread()
            thread = self._process.GetThreadByID(self._main_thread_id) if kind == "pause" else selected
            shown = kind != "breakpoint" or self._condition_holds(thread)
            command: str | None = "continue"
            if shown:
                body: dict[str, Any] = {"reason": kind, "threadId": thread.GetThreadID(), "allThreadsStopped": True}
                if kind == "exception":
                    body["description"] = body["text"] = thread.GetStopDescription(256) or reason
                log.debug("stopped in the debugger: %s (%s)", kind, reason)
                self._stopped_thread = thread
                self._on_debug_event("stopped", body)
                command = self._serve_stop()
                self._references.clear()
                self._frame_ids.clear()
                self._stopped_thread = None
            if command is None or self.interrupted.is_set():
                return "signal SIGINT"
            if kind == "exception" and reason.startswith("signal"):
                return reason  # a trap: the cell ends with its error, its frames read, unwound
            if shown:
                self._on_debug_event("continued", {"threadId": thread.GetThreadID(), "allThreadsContinued": True})
            self._resume(command, thread)
            if not self.is_process_alive():
                return self._process_ended("The Swift process ended while the cell ran")
            if self._cell_done():
                log.debug("the cell ran to its end in the debugger")
                return self._result_after_debugging()
            reason = self._process.GetSelectedThread().GetStopDescription(256) or "step"

    def _condition_holds(self, thread: Any) -> bool:
        """Say whether the condition of the breakpoint ``thread`` stopped at holds (true without one).

        Evaluated here, in the stopped frame, as the debugger's console does: LLDB's own
        evaluation of Swift conditions was measured to stop at every hit. A condition that does
        not compile stops, as LLDB does, and the log says why.
        """
        condition = self._conditions.get(thread.GetStopReasonDataAtIndex(0))
        if not condition:
            return True
        value = thread.GetFrameAtIndex(0).EvaluateExpression(condition, self._frame_options)
        if not value.GetError().Success():
            log.info("breakpoint condition %r failed: %s", condition, value.GetError().GetCString())
            return True
        return value.GetValue() in ("true", "1")  # LLDB shows a Swift Bool either way

    def _stop_kind(self, reason: str) -> str | None:
        """Say how the debugger shows a stop (breakpoint, step, pause, exception), or None: not its to show."""
        if self.interrupted.is_set() or not self.debugging:
            return None
        thread = self._process.GetSelectedThread()
        stop = thread.GetStopReason()
        if stop == _STOP_BREAKPOINT:
            hit = thread.GetStopReasonDataAtIndex(0)
            if self._throw_breakpoint is not None and hit == self._throw_breakpoint.GetID():
                return "exception"
            return "breakpoint"
        if stop == _STOP_SIGNAL:
            if "SIGINT" in reason or "SIGSTOP" in reason:
                if self.pause_requested.is_set():
                    self.pause_requested.clear()
                    return "pause"
                return None
            if any(name in reason for name in _TRAPS) and "swift-trap" in self._exception_filters:
                return "exception"
            return None
        return "step"

    def _serve_stop(self) -> str | None:
        """Answer debug requests while stopped; return the command that resumes (None: interrupted)."""
        while True:
            call = self._debug_requests()
            if call is None:
                if self.interrupted.is_set():
                    return None
                continue
            request, answer = call
            if self.interrupted.is_set():
                answer(None, "the cell was interrupted")
                return None
            if request.command in dap.RESUMING:
                answer({"allThreadsContinued": True}, None)
                return request.command
            try:
                body = self.debug_command(request.command, request.arguments)
            except DebugError as error:
                answer(None, str(error))
            except Exception as error:
                log.warning("debug request %s failed", request.command, exc_info=True)
                answer(None, f"{type(error).__name__}: {error}")
            else:
                answer(body, None)
                if request.command == "disconnect":
                    return "continue"

    def _resume(self, command: str, thread: Any) -> None:
        """Let the stopped cell go on (all of it, or one step of ``thread``) until it stops again."""
        lldb = self._lldb
        self._discard_steps(thread)
        self._evaluating = True
        try:
            if command == "next":
                thread.StepOver(lldb.eAllThreads)
            elif command == "stepIn":
                thread.StepInto(lldb.eAllThreads)
            elif command == "stepOut":
                thread.StepOut()
            else:
                self._process.Continue()
        finally:
            self._evaluating = False

    def _discard_steps(self, thread: Any) -> None:
        """Forget a step a breakpoint cut short: else a later Continue stops where that step ends.

        LLDB keeps the plan of an unfinished step on the thread, above the plan that runs the
        cell's expression; the SB API cannot drop it, the command interpreter can.
        """
        self._process.SetSelectedThread(thread)
        listed = self._lldb.SBCommandReturnObject()
        interpreter = self._debugger.GetCommandInterpreter()
        interpreter.HandleCommand("thread plan list", listed)
        active = (listed.GetOutput() or "").split("Discarded plan stack:")[0].split("Completed plan stack:")[0]
        plans = _PLAN.findall(active)
        calls = [int(index) for index, text in plans if text.startswith("Thread plan to call")]
        if calls and int(plans[-1][0]) > calls[-1]:
            log.debug("discarding the steps left above the cell's expression: %s", plans[calls[-1] + 1 :])
            interpreter.HandleCommand(f"thread plan discard {calls[-1] + 1}", self._lldb.SBCommandReturnObject())

    def _result_after_debugging(self) -> Outcome:
        """Return the outcome of a cell that ran to its end after a stop in the debugger.

        LLDB keeps what the expression of a cell stopped at a breakpoint gives when it ends (its
        error, as a ``$E`` variable; measured: not always a plain value), as the return value of
        the thread's completed plan. A value it did not keep is not shown.
        """
        returned = self._process.GetThreadByID(self._main_thread_id).GetStopReturnValue()
        if not returned.IsValid():
            return Outcome()
        if (returned.GetName() or "").startswith("$E"):
            return Outcome(thrown=self._thrown(returned))
        text, data = self._describe(returned)
        return Outcome(value=text, data=data)

    def _cell_done(self) -> bool:
        """Say whether the cell's code has returned: no frame of the main thread is cell code any more."""
        main = self._process.GetThreadByID(self._main_thread_id)
        return main.IsValid() and not any(_in_cell_code(frame.GetModule()) for frame in _first_frames(main))

    def debug_command(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Answer one DAP request (not ``pause`` or a resuming one); DebugError when it cannot be."""
        if command == "attach":
            self.debugging = True
            # Until the frontend chooses (setExceptionBreakpoints), the filters' defaults.
            self._set_exception_filters([str(item["filter"]) for item in dap.EXCEPTION_FILTERS if item["default"]])
            return {}
        if command == "disconnect":
            self._set_exception_filters([])
            for path in list(self._breakpoints):
                self._set_breakpoints(path, [])
            self.debugging = False
            return {}
        if command == "setBreakpoints":
            path = str((arguments.get("source") or {}).get("path") or "")
            if not path:
                raise DebugError("setBreakpoints needs source.path")
            return {"breakpoints": self._set_breakpoints(path, list(arguments.get("breakpoints") or []))}
        if command == "setExceptionBreakpoints":
            self._set_exception_filters([str(name) for name in arguments.get("filters") or []])
            return {}
        if command == "threads":
            thread = self._stopped_thread
            return {"threads": [{"id": thread.GetThreadID(), "name": "cell"}] if thread is not None else []}
        if command == "pause":
            return self.pause()
        if command not in (*dap.WHILE_STOPPED, *dap.RESUMING):
            raise DebugError(f"{command} is not supported")
        if self._stopped_thread is None:
            raise DebugError(f"{command} needs a cell stopped in the debugger")
        if command == "stackTrace":
            return self._stack_trace(int(arguments.get("startFrame") or 0), int(arguments.get("levels") or 0))
        if command == "scopes":
            return self._scopes(self._frame(arguments.get("frameId")))
        if command == "variables":
            return self._variables(arguments)
        if command == "evaluate":
            return self._evaluate(str(arguments.get("expression") or ""), arguments.get("frameId"))
        raise DebugError(f"{command} is not supported")

    def _set_breakpoints(self, path: str, wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Make ``path``'s breakpoints those of ``wanted`` (lines, conditions); return them as DAP has them.

        A breakpoint in a cell not yet run resolves when the cell is compiled under that path.
        """
        for old in self._breakpoints.pop(path, []):
            self._conditions.pop(old.GetID(), None)
            self._target.BreakpointDelete(old.GetID())
        self._breakpoint_requests.pop(path, None)
        made = []
        answers = []
        for item in wanted:
            line = int(item.get("line") or 0)
            breakpoint = self._target.BreakpointCreateByLocation(path, line)
            if item.get("condition"):
                self._conditions[breakpoint.GetID()] = str(item["condition"])
            made.append(breakpoint)
            answers.append({"id": breakpoint.GetID(), "verified": True, "line": line, "source": {"path": path}})
        if made:
            self._breakpoints[path] = made
            self._breakpoint_requests[path] = wanted
        return answers

    def _renew_breakpoints(self) -> None:
        """Set the debugger's breakpoints again in a fresh target (a relaunched Swift process)."""
        requests, self._breakpoint_requests = self._breakpoint_requests, {}
        self._breakpoints.clear()
        self._conditions.clear()
        self._throw_breakpoint = None
        for path, items in requests.items():
            self._set_breakpoints(path, items)
        self._set_exception_filters(sorted(self._exception_filters))

    def _set_exception_filters(self, filters: list[str]) -> None:
        self._exception_filters = set(filters)
        if "swift-throw" in self._exception_filters and self._throw_breakpoint is None:
            swift = self._lldb.eLanguageTypeSwift
            self._throw_breakpoint = self._target.BreakpointCreateForException(swift, False, True)
        elif "swift-throw" not in self._exception_filters and self._throw_breakpoint is not None:
            self._target.BreakpointDelete(self._throw_breakpoint.GetID())
            self._throw_breakpoint = None

    def _stack_trace(self, start: int, levels: int) -> dict[str, Any]:
        """Return the stopped thread's frames in cell code (and %include'd files), innermost first."""
        frames = []
        thread = self._stopped_thread
        for index, frame in enumerate(_first_frames(thread)):
            entry = self._line_of(frame)
            spec = entry.GetFileSpec() if entry is not None else None
            if entry is None or spec is None or not spec.IsValid():
                continue
            cell = self._cell_files.get(spec.GetFilename() or "")
            if cell is None and not (spec.GetFilename() or "").endswith(".swift"):
                continue
            self._frame_ids.append((thread.GetThreadID(), index))
            name = dap.function_name(frame.GetDisplayFunctionName() or frame.GetFunctionName() or "??")
            frames.append(
                {
                    "id": len(self._frame_ids),
                    "name": "<cell>" if name == "main" else name,
                    "source": {"name": cell or spec.GetFilename(), "path": spec.fullpath},
                    "line": entry.GetLine(),
                    "column": entry.GetColumn() or 1,
                }
            )
        shown = frames[start : start + levels] if levels > 0 else frames[start:]
        return {"stackFrames": shown, "totalFrames": len(frames)}

    def _line_of(self, frame: Any) -> Any:
        """Return the line entry a frame is at, or the statement it is in when it is at none.

        A pause can stop the code at an instruction the compiler gave no line (line 0: the code
        between statements), as can a return address: the statement is the last row of the line
        table at or before the address, within the frame's function. None outside code with lines.
        """
        entry = frame.GetLineEntry()
        if entry.IsValid() and entry.GetLine() > 0:
            return entry
        unit, function = frame.GetCompileUnit(), frame.GetFunction()
        if not unit.IsValid() or not function.IsValid():
            return None
        pc = frame.GetPC()
        start = function.GetStartAddress().GetLoadAddress(self._target)
        best, best_at = None, -1
        for index in range(unit.GetNumLineEntries()):
            row = unit.GetLineEntryAtIndex(index)
            at = row.GetStartAddress().GetLoadAddress(self._target)
            if row.GetLine() > 0 and start <= at <= pc and at > best_at:
                best, best_at = row, at
        return best

    def _frame(self, frame_id: Any) -> Any:
        """Return the frame a stackTrace answer numbered ``frame_id``."""
        if not isinstance(frame_id, int) or not 0 < frame_id <= len(self._frame_ids):
            raise DebugError(f"no frame {frame_id!r} in this stop")
        thread_id, index = self._frame_ids[frame_id - 1]
        return self._process.GetThreadByID(thread_id).GetFrameAtIndex(index)

    def _scopes(self, frame: Any) -> dict[str, Any]:
        scopes = []
        # A cell's top level is its `main`, whose variables are the cell's globals (listed below).
        if frame.GetFunctionName() != "main":
            scopes.append({"name": "Locals", "variablesReference": self._references.add(("locals", frame))})
        scopes.append({"name": "Globals", "variablesReference": self._references.add(("globals", None))})
        return {"scopes": [dict(scope, expensive=False) for scope in scopes]}

    def _variables(self, arguments: dict[str, Any]) -> dict[str, Any]:
        item = self._references.get(int(arguments.get("variablesReference") or 0))
        start, count = int(arguments.get("start") or 0), int(arguments.get("count") or 0)
        if isinstance(item, tuple) and item[0] == "locals":
            values = item[1].GetVariables(True, True, False, True)
            pairs = [(values.GetValueAtIndex(i).GetName(), values.GetValueAtIndex(i)) for i in range(values.GetSize())]
            found = dap.named(pairs, self._references)
        elif isinstance(item, tuple) and item[0] == "globals":
            found = dap.named(self.cell_global_values(), self._references)
        else:
            return {"variables": dap.children(item, self._references, start, count)}
        return {"variables": found[start : start + count] if count > 0 else found[start:]}

    def _evaluate(self, expression: str, frame_id: Any) -> dict[str, Any]:
        """Evaluate a Swift expression in a stopped frame (the debugger's console and hovers)."""
        frame = self._frame(frame_id) if frame_id is not None else self._stopped_thread.GetFrameAtIndex(0)
        value = frame.EvaluateExpression(expression, self._frame_options)
        if not value.GetError().Success():
            # LLDB's frame evaluation cannot find types declared in cells ("Missing debug
            # information"), so a global of such a type is read as a cell reads it (measured: the
            # stopped cell goes on as before); a local of such a type stays out of reach.
            as_cell = self._target.EvaluateExpression(expression, self._console_options)
            if as_cell.GetError().Success():
                value = as_cell
        error = value.GetError()
        if not error.Success():
            text = error.GetCString() or "the expression failed"
            raise DebugError(text.strip().removeprefix("error: "))
        found = dap.variable(expression, value, self._references)
        reference = found["variablesReference"]
        return {"result": found["value"], "type": dap.type_name(value), "variablesReference": reference}

    def _describe(
        self, value: Any, tables: bool = False, options: Any = None
    ) -> tuple[str | None, dict[str, str] | None]:
        """Return the cell's result the way Swift describes it, and its MIME bundle if it has one.

        (None, None) for a Void result. The bundle comes from a ``JupyterDisplayable`` value, or a
        table with ``tables``. ``options``: those of the expression that made ``value`` (a plain
        expression's result is seen only by plain ones); the cells' by default.
        """
        # Asked of the value as stored: LLDB sets up an array's formatter (1-2 ms) to name its type.
        type_name = value.GetNonSyntheticValue().GetTypeName() or ""
        if type_name in ("()", "Swift.Void", ""):
            return None, None
        # Not with tables: an array of plain structs is shown as a table.
        known = _read_directly(type_name, value, self._read, None if tables else self._plain_structs)
        if known is not None:
            log.debug("%s read without running code", type_name)
            return known, None
        name = value.GetName()
        if not name:
            return None, None
        # REPL mode: only REPL expressions can see the $R result variables.
        self._results.discard()  # anything a cell wrote into the channel is not this value
        call = f"__SwiftKernel.describe({name}, tables: true)" if tables else f"__SwiftKernel.describe({name})"
        with self._results.reading():
            described = self._target.EvaluateExpression(call, options or self._options)
        messages = self._results.read_messages()
        for kind, payload in messages:
            if kind == "plain":
                name, _, properties = payload.partition("\n")
                self._plain_structs[name] = _PlainStruct(properties.split(",") if properties else [])
        for kind, payload in reversed(messages):
            if kind == "result":
                # Types declared in cells live in per-cell modules named __lldb_expr_N.
                return dap.without_cell_modules(payload), None
            if kind == "bundle":
                data = _bundle(payload)
                if data is not None:
                    return data["text/plain"], data
        error_text = described.GetError().GetCString() or ""
        log.warning("describing %s failed: %s", name, error_text)
        if diagnostics.process_left_stopped(error_text):
            # The value's own code (a description, a bundle method) crashed or was interrupted.
            self._unwind(run_to_cell_code=False)
            self._absorb_pending_stops()
        return (value.GetSummary() or value.GetValue() or f"<{type_name}>"), None

    def _thrown(self, value: Any) -> Thrown:
        """Describe the error a cell threw and did not catch (LLDB's REPL answers it as ``$E<n>``).

        LLDB's dynamic value of the error is its payload, inside the runtime's error box (a heap
        object header, the type and the Error conformance: 32 bytes, for payloads aligned to 16
        bytes at most); the prelude describes the error from the box. Without that, LLDB's
        dynamic type names it.
        """
        dynamic = value.GetDynamicValue(self._lldb.eDynamicCanRunTarget)
        type_name = dap.without_cell_modules(dynamic.GetTypeName() or "Error")
        payload = dynamic.GetLoadAddress()
        if payload in (self._lldb.LLDB_INVALID_ADDRESS, 0) or payload < _ERROR_BOX_HEADER:
            return Thrown(type_name, "")
        self._results.discard()
        with self._results.reading():
            call = f"__SwiftKernel.describeThrown(box: {payload - _ERROR_BOX_HEADER})"
            described = self._target.EvaluateExpression(call, self._plain_options)
        for kind, payload_text in self._results.read_messages():
            if kind == "thrown":
                with contextlib.suppress(ValueError):
                    record = json.loads(payload_text)
                    return Thrown(record.get("type") or type_name, record.get("description", ""))
        error_text = described.GetError().GetCString() or ""
        log.warning("describing the uncaught error failed: %s", error_text)
        if diagnostics.process_left_stopped(error_text):
            self._unwind(run_to_cell_code=False)
            self._absorb_pending_stops()
        return Thrown(type_name, "")

    def _how_it_exited(self) -> str:
        """Say how the exited Swift process ended: an exit status, a signal, or its debug server's end.

        LLDB reports a process killed by a signal as if it had exited with the signal's number
        (SIGKILL: exit status 9), and one whose lldb-server died with status -1. The prelude's
        on_exit handler tells the two apart: only exit() runs it (``_exit`` does not either).
        """
        status = self._process.GetExitStatus()
        if status == -1 or self._process.GetExitDescription() == "lost connection":
            return "its debug server, lldb-server, ended"
        called_exit = any(kind == "exit" for kind, _ in self._results.read_messages())
        return f"exit status {status}" if called_exit or not 0 < status < signal.NSIG else describe_exit(-status)

    def _process_ended(self, why: str) -> Outcome:
        """Start a fresh Swift process after the last one ended; say what happened."""
        exit_text = ""
        if self._process is not None and self._process.IsValid():
            if self._process.GetState() == self._lldb.eStateExited:
                exit_text = f" ({self._how_it_exited()})"
        try:
            self.relaunch()
            fresh = _FRESH
        except SwiftProcessEnded as error:
            fresh = f"Starting a fresh Swift process failed: {error}"
        return Outcome(ended=Ended(why, fresh, exit_text))

    # ----- the cells' globals and plain expressions (the variable explorer) ----------------------

    def cell_global_values(self) -> list[tuple[str, Any]]:
        """Return the globals the cells declared, sorted by name, each with the SBValue of its newest declaration.

        Each cell's JIT module ``$__lldb_expr<N>`` holds the globals it declared as data symbols
        whose mangled names end in ``vp`` (a variable's storage); each is looked up in its own
        module (about 0.05 ms): a target-wide lookup by name takes over half a second and finds
        libc's and libm's globals of the same name first. A name declared again in a later cell
        is that cell's. The kernel's own globals (``__``, ``$``) are left out. Values are the
        dynamic ones LLDB can tell without running code (a class instance's own class).
        """
        lldb = self._lldb
        if self._target is None:
            return []
        modules = []
        for index in range(self._target.GetNumModules()):
            module = self._target.GetModuleAtIndex(index)
            number = _JIT_MODULE.fullmatch(module.GetFileSpec().GetFilename() or "")
            if number is not None:
                modules.append((int(number.group(1)), module))
        found: dict[str, Any] = {}
        for _, module in sorted(modules, key=lambda pair: pair[0], reverse=True):
            for index in range(module.GetNumSymbols()):
                symbol = module.GetSymbolAtIndex(index)
                if symbol.GetType() != lldb.eSymbolTypeData or not (symbol.GetMangledName() or "").endswith("vp"):
                    continue
                name = symbol.GetDisplayName() or ""
                if name in found or not _GLOBAL_NAME.fullmatch(name) or name.startswith(("__", "$")):
                    continue
                value = _global_value(self._target, module, symbol, name)
                if value is not None:
                    found[name] = value.GetDynamicValue(lldb.eDynamicDontRunTarget) or value
        return sorted(found.items())

    def cell_globals(self) -> tuple[Global, ...]:
        """Return the cells' globals (``cell_global_values``): name, type and a short value text."""
        found = self.cell_global_values()
        return tuple(Global(name, dap.type_name(value) or "?", value_text(value)) for name, value in found)

    def evaluate_expression(self, code: str, name: str) -> Outcome:
        """Evaluate a Swift expression as a plain (non-REPL) expression: nothing it declares stays.

        LLDB's REPL registers the declarations of an expression that fails after type checking
        (LLDB-NOTES); a plain expression is compiled as a function body, so a failure leaves no
        trace and its result (``$R``) is seen by no cell. ``name`` names it in diagnostics.
        """
        if not self.is_process_alive():
            return self._process_ended("The Swift process ended before this expression ran")
        located = swift_literal(name.encode("utf-8", "replace").decode())[1:-1]
        source = f'#sourceLocation(file: "{located}", line: 1)\n{code}\n'
        self._dispatch_before = self._read(self._dispatch_state, _DISPATCH_STATE_SIZE)
        value = self._target.EvaluateExpression(source, self._plain_options)
        error = value.GetError()
        if error.Success() and not (value.GetName() or "").startswith("$E"):
            text, data = self._describe(value, options=self._plain_options)
            return Outcome(value=text, data=data)
        if diagnostics.is_no_result(error.GetCString() or ""):
            return Outcome()
        return self._finish(value, error.GetCString() or "", located, SafePoints(code, code, ()))


# ----- the variable explorer's reading of values (pure over SBValue-like objects) -------------------

# The value text %whos and the Variables panel show: LLDB's formatters, cut this short.
VALUE_CHARS = 200
_JIT_MODULE = re.compile(r"\$__lldb_expr(\d+)")
# A global's name as a cell wrote it (LLDB's display names of other data say "static ...", "(x in ...)").
_GLOBAL_NAME = re.compile(r"[^\W\d]\w*")
# LLDB's summary of a Swift collection: "3 values", "1 key/value pair".
_COLLECTION_SUMMARY = re.compile(r"(\d+) (values?|key/value pairs?)")
# How many children of one value are read (each costs LLDB ~0.1 ms: 200 globals, a fifth of them
# lists of 100 numbers, took 0.35 s with 64), and how deep.
_CHILDREN_READ = 32
_DEPTH = 3


def _global_value(target: Any, module: Any, symbol: Any, name: str) -> Any:
    """Return the SBValue of the global ``symbol`` of ``module`` (the one at its address, if several match)."""
    values = module.FindGlobalVariables(target, name, 4)
    address = symbol.GetStartAddress().GetLoadAddress(target)
    candidates = [values.GetValueAtIndex(i) for i in range(values.GetSize())]
    candidates = [value for value in candidates if value.IsValid()]
    if len(candidates) == 1:
        return candidates[0]  # the usual case; reading a value's address costs as much as its lookup
    for value in candidates:
        if value.GetAddress().GetLoadAddress(target) == address:
            return value
    return candidates[0] if candidates else None


def _readable(text: str | None) -> str | None:
    """Return LLDB's text of a value, or None when it is an error LLDB put in its place."""
    if text is None or "\n" in text or text.startswith("Could not find"):
        return None
    return text


def value_text(value: Any, limit: int = VALUE_CHARS) -> str:
    """Return a short text of a value from LLDB's formatters, Swift-like, cut to ``limit`` characters with "…".

    Leaves are LLDB's summaries and values (``"hi"``, ``42``, ``nil``, ``1..<5``); collections
    are listed as ``[1, 2]`` and ``["k": 1]``, structs, classes and tuples by their stored
    properties (``Point(x: 1, y: 2)``, ``(1, "x")``). No Swift code runs.
    """
    text = _text(value, limit + 1, 0)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: Any, budget: int, depth: int) -> str:
    summary = _readable(value.GetSummary())
    count = value.GetNumChildren(_CHILDREN_READ + 1)
    collection = _COLLECTION_SUMMARY.fullmatch(summary or "")
    if collection is not None:
        pairs = collection.group(2).startswith("key")
        if count == 0:
            return "[:]" if pairs else "[]"
        if depth >= _DEPTH:
            return summary or "[…]"
        return _listed(value, count, budget, depth, opening="[", closing="]", pairs=pairs)
    # A struct inside an optional has LLDB's summary "(x = 1, y = 2)": its fields read better.
    if summary is not None and not (summary.startswith("(") and count):
        return summary
    if count == 0 or depth >= _DEPTH:
        return _readable(value.GetValue()) or summary or ("…" if count else f"<{dap.type_name(value) or '?'}>")
    type_name = dap.type_name(value).removesuffix("?")
    opening = "(" if type_name.startswith("(") else f"{type_name}("
    return _listed(value, count, budget, depth, opening=opening, closing=")", pairs=False)


def _fields(value: Any, count: int) -> Iterator[tuple[str, Any]]:
    """Yield a value's children by name, as read; a base class (a child named by its type) gives its own."""
    for index in range(min(count, _CHILDREN_READ)):
        child = value.GetChildAtIndex(index)
        name = child.GetName() or ""
        if "." in name and child.GetNumChildren(_CHILDREN_READ):
            yield from _fields(child, child.GetNumChildren(_CHILDREN_READ + 1))
        else:
            yield name, child


def _listed(value: Any, count: int, budget: int, depth: int, *, opening: str, closing: str, pairs: bool) -> str:
    """Return ``opening`` + the children's texts, comma-separated, + ``closing``; "…" where the budget ends."""
    collection = opening == "["
    children: Iterator[tuple[str, Any]] = (
        (("", value.GetChildAtIndex(index)) for index in range(min(count, _CHILDREN_READ)))
        if collection
        else _fields(value, count)
    )
    parts: list[str] = []
    used = len(opening)
    # Elements that are plain values (numbers) need only LLDB's value, not its summary too: a list
    # of numbers shows dozens. One element tells for all, unless they may differ in type ([Any]).
    plain: bool | None = False if "Any" in dap.type_name(value) else None
    # None is read past the budget.
    for name, child in children:
        if used > budget:
            parts.append("…")
            break
        if pairs:
            key, item = child.GetChildAtIndex(0), child.GetChildAtIndex(1)
            part = f"{_text(key, budget - used, depth + 1)}: {_text(item, budget - used, depth + 1)}"
        elif collection:
            if plain is None:
                plain = not child.GetNumChildren(1) and child.GetSummary() is None
            text = _readable(child.GetValue()) if plain else None
            part = text if text is not None else _text(child, budget - used, depth + 1)
        elif name.isdigit():  # a tuple's unlabeled element
            part = _text(child, budget - used, depth + 1)
        else:
            part = f"{name}: {_text(child, budget - used, depth + 1)}"
        parts.append(part)
        used += len(part) + 2
    else:
        if count > _CHILDREN_READ:
            parts.append("…")
    return opening + ", ".join(parts) + closing
