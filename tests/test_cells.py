"""The cell controller's state machine and interrupt ladder, against a fake LLDB host.

Each race the integration tests found (interrupt before start, during compile, between the check
and the mark, a storm, while idle) is replayed here deterministically and fast. The fake stands
for the LLDB host and its Swift process: the test decides what ``/proc`` says of the process
(compiling: a ptrace stop, 't'; running: 'R'), which signals stop it, and what the host answers.
Only the output pipes and ``%system``'s subprocess are real.
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from swift_kernel.cells import CellController, ExecutionResult, Phase, Sent
from swift_kernel.diagnostics import CellError, Frame
from swift_kernel.host import HOST_ENDED
from swift_kernel.messages import Ended, Evaluate, Execute, Global, Installed, Outcome, Stop, Streams
from swift_kernel.output import REPORT_HOLD_SECONDS, OutputEvent, Text
from swift_kernel.procfs import SIGINT_BIT, proc_status

FRAMES = (Frame("top-level code", "<Cell 1>", 2),)
FRESH = "A fresh Swift process has been started."
STOPPED_BY_SIGINT = Outcome(stop=Stop("signal SIGINT", "signal SIGINT", FRAMES))
HOST_PID = 4343


@dataclass
class FakeProcess:
    """The fake Swift process: what /proc says of it, which signals stop it, whether it has safe points.

    While its state is 'R' each look at its CPU time finds it 5 ms further on, as if it ran.
    """

    state: str = "R"
    pending: int = 0
    # Whether the running code reaches safe points (a loop in a cell) or not (a long library call).
    safe_points: bool = True
    cpu_ns: int = 0
    # Which signals end the running evaluation, and with what; others are recorded and ignored.
    stops_on: dict[int, Outcome] = field(
        default_factory=lambda: {signal.SIGINT: STOPPED_BY_SIGINT, signal.SIGSTOP: STOPPED_BY_SIGINT}
    )
    # SIGINTs that stay pending (the program blocks SIGINT).
    blocks_sigint: bool = False
    events: list[tuple[str, object]] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome = field(default_factory=Outcome)
    host_cpu: float = 0.0
    host_runs: bool = True
    # Whether the main thread sleeps in sleep(), read() and the like (not a lock's wait).
    in_waiting_call: bool = False

    def waiting_call(self, pid: int) -> bool:
        return self.in_waiting_call

    def status(self, pid: int) -> tuple[str, int]:
        return self.state, self.pending

    def thread_cpu(self, pid: int) -> int:
        if self.state == "R":
            self.cpu_ns += 5_000_000
        return self.cpu_ns

    def process_cpu(self, pid: int) -> float:
        if pid == HOST_PID:
            # The LLDB host: busy (compiling) unless the test says it gets no CPU.
            self.host_cpu += 0.1 if self.host_runs else 0.0
            return self.host_cpu
        return self.thread_cpu(pid) / 1e9

    def signal(self, pid: int, signum: int) -> None:
        self.events.append(("signal", signum))
        if signum == signal.SIGINT and self.blocks_sigint:
            self.pending |= SIGINT_BIT
            return
        self.stop_with(self.stops_on.get(signum))

    def stop_with(self, outcome: Outcome | None) -> None:
        if outcome is not None and not self.stopped.is_set():
            self.outcome = outcome
            self.stopped.set()

    def signals(self) -> list[int]:
        return [signum for kind, signum in self.events if kind == "signal"]  # type: ignore[misc]


class FakeHost:
    """A ``SwiftHost`` whose evaluations block until the fake process stops or finishes them."""

    def __init__(
        self, process: FakeProcess, streams: Streams, stop_flag: str, on_stderr: Callable[[str], None]
    ) -> None:
        self.process = process
        self.streams = streams
        # The controller's stop flag page, opened by path as the Swift prelude does.
        with open(stop_flag, "r+b") as page:
            self.stop_flag = mmap.mmap(page.fileno(), 4096)
        self.flag_at_start: list[int] = []
        self.on_stderr = on_stderr
        self.pid = 4242
        self.host_pid = HOST_PID
        self.ended: list[str] = []
        self.launches = 1
        self.executed: list[tuple[int, str, str]] = []
        self.executing = threading.Event()
        self.reopened: list[str] = []
        # What an evaluation does before it waits to be stopped; returning an Outcome finishes it.
        self.body: Callable[[FakeHost], Outcome | None] = lambda host: None

    def start(self) -> None:
        pass

    def execute(self, request: Execute, on_sent: Callable[[], None] | None = None) -> Outcome:
        self.executed.append((request.generation, request.code, request.cell_name))
        self.flag_at_start.append(struct.unpack_from("i", self.stop_flag, 0)[0])
        if on_sent is not None:
            on_sent()
        self.executing.set()
        finished = self.body(self)
        if finished is not None:
            return finished
        deadline = time.monotonic() + 10
        while not self.process.stopped.wait(0.001):
            assert time.monotonic() < deadline, "the fake evaluation was never stopped"
            running = self.process.state == "R"
            if running and self.process.safe_points and struct.unpack_from("i", self.stop_flag, 0)[0]:
                # What the prelude's __swiftKernelSafePoint() does: say so, then stop (SIGINT).
                struct.pack_into("i", self.stop_flag, 4, 1)
                self.process.stop_with(STOPPED_BY_SIGINT)
        return self.process.outcome

    def evaluate(self, request: Evaluate) -> Outcome:
        # Blocks and is stopped as a cell's evaluation is.
        return self.execute(Execute(request.generation, request.code, request.name))

    def globals(self) -> tuple[Global, ...]:
        return (Global("count", "Int", "1"),)

    def mark(self, generation: int, source: str) -> None:
        self.process.events.append(("mark", (generation, source)))

    def async_interrupt(self) -> None:
        self.process.events.append(("async interrupt", None))
        # LLDB's SendAsyncInterrupt stops the process with SIGSTOP.
        self.process.stop_with(self.process.stops_on.get(signal.SIGSTOP))

    def end(self, because: str) -> None:
        self.ended.append(because)
        evalue = f"{because[:1].upper()}{because[1:]}, so the LLDB host was ended while the cell ran"
        self.process.stop_with(Outcome(error=CellError(HOST_ENDED, evalue, [f"{HOST_ENDED}: {evalue}", FRESH])))

    def relaunch(self) -> None:
        self.launches += 1

    def reset(self) -> None:
        self.launches += 1

    def set_environment(self, name: str, value: str) -> CellError | None:
        return None

    def load_installed(self, installed: Installed) -> CellError | None:
        return None

    def reopen_stdin(self, path: str) -> CellError | None:
        self.reopened.append(path)
        return None

    def shutdown(self) -> None:
        pass


@dataclass
class Rig:
    controller: CellController
    host: FakeHost
    process: FakeProcess
    output: list[tuple[str, OutputEvent]]

    def run_in_background(
        self, code: str = "while true {}", time_limit: float | None = None
    ) -> Callable[[], ExecutionResult]:
        """Start a cell on another thread; return a function that waits for its result."""
        cell = self.controller.expect_cell(time_limit)
        results: list[ExecutionResult] = []
        thread = threading.Thread(target=lambda: results.append(self.controller.execute(code, "<Cell 1>", cell)))
        thread.start()

        def result() -> ExecutionResult:
            thread.join(10)
            assert not thread.is_alive(), "the cell never ended"
            self.controller.end_cell(cell)
            return results[0]

        return result

    def stderr(self) -> str:
        return "".join(e.text for name, e in self.output if name == "stderr" and isinstance(e, Text))


@pytest.fixture
def rig() -> Iterator[Rig]:
    process = FakeProcess()
    output: list[tuple[str, OutputEvent]] = []
    hosts: list[FakeHost] = []

    def make_host(streams: Streams, stop_flag: str, on_stderr: Callable[[str], None], on_debug: object) -> FakeHost:
        hosts.append(FakeHost(process, streams, stop_flag, on_stderr))
        return hosts[0]

    controller = CellController(
        make_host,
        lambda name, event: output.append((name, event)),
        interrupt_grace=2.0,
        resend_interval=0.02,
        process_status=process.status,
        signal_process=process.signal,
        thread_cpu=process.thread_cpu,
        process_cpu=process.process_cpu,
        waiting_call=process.waiting_call,
        compiling_notice_seconds=0.05,
    )
    controller.compile_grace = 2.0
    yield Rig(controller, hosts[0], process, output)
    controller.shutdown()


def assert_keyboard_interrupt(result: ExecutionResult, evalue: str = "Interrupted by user") -> None:
    assert result.error is not None and result.error.ename == "KeyboardInterrupt", result
    assert result.error.evalue.startswith(evalue), result.error


def test_a_cell_runs_and_its_value_comes_back(rig: Rig) -> None:
    rig.host.body = lambda host: Outcome(value="2")
    result = rig.controller.execute("1 + 1", "<Cell 1>")
    assert result == ExecutionResult(value="2")
    assert rig.host.executed == [(1, "1 + 1", "<Cell 1>")]
    assert rig.controller.phase is Phase.IDLE


def test_an_interrupt_while_idle_does_nothing(rig: Rig) -> None:
    assert rig.controller.interrupt("message") == "idle"
    assert rig.process.events == []
    assert not rig.controller.interrupts


def test_an_interrupt_before_the_cell_starts_runs_nothing(rig: Rig) -> None:
    cell = rig.controller.expect_cell()
    assert rig.controller.phase is Phase.ACCEPTED
    assert rig.controller.interrupt("message") == "started"
    result = rig.controller.execute("while true {}", "<Cell 1>", cell)
    assert_keyboard_interrupt(result)
    assert rig.host.executed == []
    assert rig.process.events == []  # no mark, no signal: nothing ran
    record = rig.controller.interrupts[-1]
    assert record.rung == "before start" and record.latency is not None


def test_an_interrupt_between_the_check_and_the_mark_is_caught(rig: Rig) -> None:
    cell = rig.controller.expect_cell()
    assert rig.controller.interrupted_result(cell) is None
    rig.controller.interrupt("signal")  # lands after the check, before the cell is marked running
    assert not rig.controller._mark_running(cell)
    assert not cell.running
    assert_keyboard_interrupt(rig.controller.interrupted_result(cell))  # type: ignore[arg-type]


def test_running_code_stops_at_its_next_safe_point_without_a_signal(rig: Rig) -> None:
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    assert rig.controller.phase is Phase.EVALUATING
    assert rig.controller.interrupt("message") == "started"
    outcome = result()
    assert_keyboard_interrupt(outcome)
    assert outcome.error is not None and outcome.error.evalue == "Interrupted by user"
    assert "  top-level code at <Cell 1>:2" in outcome.error.traceback
    assert rig.process.events == [("mark", (1, "message"))]  # the host is told; no signal at all
    record = rig.controller.interrupts[-1]
    assert (record.rung, record.signals_sent, record.source) == ("safe point", 0, "message")


def test_code_without_safe_points_is_signalled_once_it_used_its_cpu_budget(rig: Rig) -> None:
    rig.process.safe_points = False  # a long library call
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    rig.controller.interrupt("message")
    outcome = result()
    assert_keyboard_interrupt(outcome, "Interrupted by user (stopped outside a safe point")
    assert rig.process.events == [("mark", (1, "message")), ("signal", signal.SIGINT)]
    assert rig.process.cpu_ns >= 250_000_000  # the budget was spent first
    assert rig.controller.interrupts[-1].rung == "signal outside a safe point"


def test_code_that_cannot_run_is_not_stopped_outside_a_safe_point(rig: Rig) -> None:
    rig.process.state = "R"
    rig.process.safe_points = False
    frozen = rig.process.cpu_ns
    rig.controller._thread_cpu = lambda pid: frozen  # a busy machine: the code gets no core
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    rig.controller.interrupt("message")
    time.sleep(0.3)
    assert rig.process.signals() == []  # it waits for the code to make progress, not the clock
    rig.process.state = "S"  # then it blocks in the kernel: stopped there
    assert_keyboard_interrupt(result(), "Interrupted by user")
    assert rig.process.signals() == [signal.SIGINT]


def test_code_blocked_in_the_kernel_is_signalled_at_once(rig: Rig) -> None:
    rig.process.state = "S"  # sleep(), read(), a semaphore
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    rig.controller.interrupt("message")
    outcome = result()
    assert outcome.error is not None and outcome.error.evalue == "Interrupted by user"  # nothing torn
    assert rig.process.events == [("mark", (1, "message")), ("signal", signal.SIGINT)]
    assert rig.controller.interrupts[-1].rung == "signal"


def test_code_asleep_in_a_waiting_call_is_signalled_without_the_lock_wait_delay(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lock's wait (futex) must last before the code is stopped there; sleep() and read() need not.
    monkeypatch.setattr("swift_kernel.cells._BLOCKED_SECONDS", 3600.0)
    rig.process.state = "S"
    rig.process.in_waiting_call = True
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    rig.controller.interrupt("message")
    outcome = result()
    assert outcome.error is not None and outcome.error.evalue == "Interrupted by user"
    assert rig.process.signals() == [signal.SIGINT]


def test_an_interrupt_during_compilation_waits_for_the_code_and_says_so(rig: Rig) -> None:
    rig.process.state = "t"  # LLDB holds the process in a ptrace stop while it compiles
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    rig.controller.interrupt("message")
    deadline = time.monotonic() + 5
    while "while the compiler works on this cell" not in rig.stderr():
        assert time.monotonic() < deadline, rig.output
        time.sleep(0.01)
    assert rig.process.signals() == []  # a signal now would only queue
    rig.process.state = "R"  # the code starts: its first safe point stops it
    assert_keyboard_interrupt(result())
    assert rig.process.signals() == []
    assert rig.controller.interrupts[-1].rung == "safe point"


def test_a_compile_still_running_after_the_grace_period_ends_the_host(rig: Rig) -> None:
    rig.process.state = "t"  # compiling, and the LLDB host busy at it (its CPU time grows)
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    started = time.monotonic()
    rig.controller.interrupt("message")
    outcome = result()
    assert time.monotonic() - started >= rig.controller.compile_grace
    assert rig.host.ended and rig.host.ended[0].startswith("the compiler was still working on this cell")
    assert outcome.error is not None and outcome.error.ename == "KeyboardInterrupt"
    assert outcome.error.evalue.startswith("Interrupted by user; the compiler was still working on this cell")
    assert "so the LLDB host was ended" in outcome.error.evalue
    assert outcome.error.traceback[-1] == FRESH
    assert "the LLDB host is ended to stop it" in rig.stderr()
    assert rig.process.signals() == []
    assert rig.controller.interrupts[-1].rung == "end host"


def test_a_compile_that_gets_no_cpu_is_not_ended_after_one_grace_period(rig: Rig) -> None:
    rig.process.state = "t"
    rig.process.host_runs = False  # a busy machine: the host waits for a core
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    rig.controller.interrupt("message")
    time.sleep(rig.controller.compile_grace * 1.5)
    assert rig.host.ended == []
    rig.process.state = "R"  # the compile ends; the code stops at its first safe point
    assert_keyboard_interrupt(result())
    assert rig.controller.interrupts[-1].rung == "safe point"


def test_a_quick_cell_interrupted_while_compiling_still_ends_as_an_interrupt(rig: Rig) -> None:
    def compiled_then_finished(host: FakeHost) -> Outcome:
        rig.controller.interrupt("message")
        return Outcome(value="1")  # the code ran to its end before the interrupt could land

    rig.host.body = compiled_then_finished
    assert_keyboard_interrupt(rig.controller.execute("sideEffect = 1\n1", "<Cell 1>"))


def test_no_stop_request_outlives_its_cell(rig: Rig) -> None:
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    for _ in range(10):
        rig.controller.interrupt("message")
    assert_keyboard_interrupt(result())
    for _ in range(10):
        assert rig.controller.interrupt("message") == "idle"  # late ones find no cell
    rig.host.body = lambda host: Outcome(value="2")
    assert rig.controller.execute("1 + 1", "<Cell 2>") == ExecutionResult(value="2")
    assert rig.host.flag_at_start == [0, 0]


def test_an_interrupt_storm_gives_one_interrupt_and_one_signal(rig: Rig) -> None:
    rig.process.state = "S"
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    answers: list[str] = []
    barrier = threading.Barrier(20)

    def interrupt() -> None:
        barrier.wait()
        answers.append(rig.controller.interrupt("message"))

    threads = [threading.Thread(target=interrupt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == ["already"] * 19 + ["started"]
    assert_keyboard_interrupt(result())
    assert rig.process.signals() == [signal.SIGINT]
    assert len(rig.controller.interrupts) == 1


def test_a_swallowed_sigint_is_sent_again_then_lldbs_own_interrupt_takes_over(rig: Rig) -> None:
    rig.process.state = "S"
    rig.process.stops_on = {signal.SIGSTOP: STOPPED_BY_SIGINT}  # SIGINTs vanish, none stays pending
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    rig.controller.interrupt("message")
    assert_keyboard_interrupt(result())
    assert rig.process.signals() == [signal.SIGINT] * 3
    assert ("async interrupt", None) in rig.process.events
    assert rig.controller.interrupts[-1].rung == "async interrupt"


def test_a_blocked_sigint_is_never_sent_twice_and_lldbs_interrupt_takes_over(rig: Rig) -> None:
    rig.process.state = "S"
    rig.process.blocks_sigint = True
    rig.process.stops_on = {signal.SIGSTOP: STOPPED_BY_SIGINT}
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    rig.controller.interrupt("message")
    assert_keyboard_interrupt(result())
    assert rig.process.signals() == [signal.SIGINT]
    assert rig.controller.interrupts[-1].rung == "async interrupt"


def test_code_that_never_stops_is_killed_after_the_grace_period(rig: Rig) -> None:
    killed = Outcome(ended=Ended("The Swift process ended while the cell ran", FRESH))
    rig.process.safe_points = False
    rig.process.stops_on = {signal.SIGKILL: killed}
    rig.controller.interrupt_grace = 0.3
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    rig.controller.interrupt("message")
    outcome = result()
    assert_keyboard_interrupt(outcome, "Interrupted by user; the Swift code did not stop within 0.3 s")
    assert outcome.error is not None and outcome.error.traceback[-1] == FRESH
    assert rig.process.signals()[-1] == signal.SIGKILL
    assert rig.controller.interrupts[-1].rung == "kill"


def test_the_grace_period_waits_for_a_process_that_could_not_run(rig: Rig) -> None:
    killed = Outcome(ended=Ended("The Swift process ended while the cell ran", FRESH))
    rig.process.safe_points = False
    rig.process.stops_on = {signal.SIGKILL: killed}
    rig.controller._process_cpu = lambda pid: 0.0  # no CPU time at all: a machine under load
    rig.controller.interrupt_grace = 0.2
    result = rig.run_in_background()
    assert rig.host.executing.wait(5)
    started = time.monotonic()
    rig.controller.interrupt("message")
    assert_keyboard_interrupt(result(), "Interrupted by user; the Swift code did not stop within 0.2 s")
    assert time.monotonic() - started >= 0.6  # three grace periods, not one


def test_an_interrupt_the_same_client_sent_before_the_cell_is_not_this_cells(rig: Rig) -> None:
    now = datetime.now(timezone.utc)
    cell = rig.controller.expect_cell(sent=Sent("client", now))
    # A late one of a burst for the cell before: ignored.
    assert rig.controller.interrupt("message", Sent("client", now - timedelta(milliseconds=1))) == "earlier"
    assert cell.interrupt is None
    # Another client's clock says nothing about this one's (a server interrupting a browser's cell).
    assert rig.controller.interrupt("message", Sent("server", now - timedelta(seconds=5))) == "started"
    assert_keyboard_interrupt(rig.controller.interrupted_result(cell))  # type: ignore[arg-type]
    rig.controller.end_cell(cell)
    later = rig.controller.expect_cell(sent=Sent("client", now))
    assert rig.controller.interrupt("message", Sent("client", now + timedelta(milliseconds=1))) == "started"
    rig.controller.end_cell(later)


def test_an_interrupt_that_overtook_its_cells_request_stops_that_cell(rig: Rig) -> None:
    now = datetime.now(timezone.utc)
    # The client sent the cell, then the interrupt, which arrived first (control is another socket).
    assert rig.controller.interrupt("message", Sent("client", now + timedelta(milliseconds=1))) == "idle"
    cell = rig.controller.expect_cell(sent=Sent("client", now))
    assert_keyboard_interrupt(rig.controller.execute("while true {}", "<Cell 1>", cell))
    assert rig.host.executed == []
    rig.controller.end_cell(cell)
    # It is used up, and a cell sent after an interrupt is never its.
    assert rig.controller.interrupt("message", Sent("client", now + timedelta(milliseconds=2))) == "idle"
    later = rig.controller.expect_cell(sent=Sent("client", now + timedelta(milliseconds=3)))
    rig.host.body = lambda host: Outcome(value="1")
    assert rig.controller.execute("1", "<Cell 2>", later) == ExecutionResult(value="1")
    rig.controller.end_cell(later)


def test_a_signal_that_overtook_its_cells_request_stops_that_cell(rig: Rig) -> None:
    # jupyter_client's SIGINT is handled at once; on a busy machine the execute_request it was
    # meant for can still be waiting on the shell socket (test_stress_interrupts_in_a_row hung so).
    sent = datetime.now(timezone.utc)
    assert rig.controller.interrupt("signal") == "idle"
    cell = rig.controller.expect_cell(sent=Sent("client", sent))
    assert_keyboard_interrupt(rig.controller.execute("while true {}", "<Cell 1>", cell))
    assert rig.host.executed == []
    rig.controller.end_cell(cell)
    # A cell sent after the signal is not its, whichever client sent it.
    assert rig.controller.interrupt("signal") == "idle"
    later = rig.controller.expect_cell(sent=Sent("another client", datetime.now(timezone.utc)))
    rig.host.body = lambda host: Outcome(value="1")
    assert rig.controller.execute("1", "<Cell 2>", later) == ExecutionResult(value="1")
    rig.controller.end_cell(later)


def test_the_time_limit_interrupts_like_a_user(rig: Rig) -> None:
    result = rig.run_in_background(time_limit=0.1)
    assert_keyboard_interrupt(result(), "Cell time limit of 0.1 s exceeded")
    assert rig.controller.interrupts[-1].source == "time limit"


def test_the_time_limit_counts_from_when_the_code_runs(rig: Rig) -> None:
    cell = rig.controller.expect_cell(0.5)
    time.sleep(0.8)  # the Swift process starting, or the kernel's queue: not the cell's time
    assert cell.interrupt is None
    rig.host.body = lambda host: Outcome(value="done")
    assert rig.controller.execute("quick()", "<Cell 1>", cell) == ExecutionResult(value="done")
    rig.controller.end_cell(cell)


def test_a_compile_error_of_an_interrupted_cell_is_the_interrupt(rig: Rig) -> None:
    def compile_fails_after_the_interrupt(host: FakeHost) -> Outcome:
        rig.controller.interrupt("message")
        return Outcome(error=CellError("CompileError", "<Cell 1>:1:1: cannot find 'x' in scope"))

    rig.host.body = compile_fails_after_the_interrupt
    assert_keyboard_interrupt(rig.controller.execute("x", "<Cell 1>"))


def crash_writing(stderr_text: str, reported_by_runtime: bool) -> Callable[[FakeHost], Outcome]:
    """Return a host body that writes ``stderr_text`` as the Swift process and then traps."""

    def crash(host: FakeHost) -> Outcome:
        with open(host.streams.stderr, "w") as stderr:
            stderr.write(stderr_text)
        return Outcome(stop=Stop("signal SIGILL: illegal instruction operand", "", FRAMES, reported_by_runtime))

    return crash


RUNTIME_REPORT = (
    "Swift/ContiguousArrayBuffer.swift:692: Fatal error: Index out of range\n"
    "Current stack trace:\n"
    "0    libswiftCore.so                    0x00007ffff775f130 swift_reportError + 33\n"
    "5    <unknown>                          0x00007ffff7d25072\n"
)


def test_a_crash_through_the_runtimes_report_shows_its_message_once_in_the_error(rig: Rig) -> None:
    rig.host.body = crash_writing("the cell's own line\n" + RUNTIME_REPORT, reported_by_runtime=True)
    result = rig.controller.execute("print(1)\n[1][2]", "<Cell 1>")
    assert result.error is not None
    assert (result.error.ename, result.error.evalue) == ("Fatal error", "Index out of range")
    # The report is not output: only what the cell wrote itself is.
    assert rig.stderr() == "the cell's own line\n"
    assert result.error.traceback == [
        "Fatal error: Index out of range",
        "  top-level code at <Cell 1>:2",
        "  ----> 2 [1][2]",
    ]


def test_a_crash_the_runtime_did_not_report_leaves_stderr_alone(rig: Rig) -> None:
    # A line that only looks like the runtime's, then a trap of the cell's own (an overflow).
    look_alike = "Main.swift:1: Fatal error: printed by the program\n"
    rig.host.body = crash_writing(look_alike, reported_by_runtime=False)
    result = rig.controller.execute("[1][2]", "<Cell 1>")
    assert result.error is not None and result.error.ename == "SIGILL"
    assert rig.stderr() == look_alike


def test_a_report_that_went_out_already_still_names_the_error(rig: Rig) -> None:
    def report_then_run_on(host: FakeHost) -> Outcome:
        crash_writing(RUNTIME_REPORT, reported_by_runtime=True)(host)
        time.sleep(REPORT_HOLD_SECONDS + 0.3)  # another thread ran on before it trapped
        return Outcome(stop=Stop("signal SIGILL: illegal instruction operand", "", FRAMES, True))

    rig.host.body = report_then_run_on
    result = rig.controller.execute("[1][2]", "<Cell 1>")
    assert result.error is not None
    assert (result.error.ename, result.error.evalue) == ("Fatal error", "Index out of range")
    assert rig.stderr() == RUNTIME_REPORT


def test_frames_of_earlier_cells_show_their_own_lines(rig: Rig) -> None:
    rig.host.body = lambda host: Outcome()
    rig.controller.execute("// helpers\nfunc f() -> Int {\n    [1][2]\n}", "<Cell 1>")
    frames = (Frame("f()", "<Cell 1>", 3), Frame("top-level code", "<Cell 2>", 1))
    rig.host.body = lambda host: Outcome(stop=Stop("signal SIGILL", "", frames))
    result = rig.controller.execute("f()", "<Cell 2>")
    assert result.error is not None
    assert result.error.traceback[1:] == [
        "  f() at <Cell 1>:3",
        "  ----> 3     [1][2]",
        "  top-level code at <Cell 2>:1",
        "  ----> 1 f()",
    ]


def test_a_name_that_ran_two_codes_gets_no_source_line(rig: Rig) -> None:
    # A silent request runs under the number of the cell before it.
    rig.host.body = lambda host: Outcome()
    rig.controller.execute("let a = 1", "<Cell 1>")
    rig.host.body = lambda host: Outcome(stop=Stop("signal SIGILL", "", (Frame("top-level code", "<Cell 1>", 1),)))
    result = rig.controller.execute("[1][2]", "<Cell 1>")
    assert result.error is not None
    assert result.error.traceback[1:] == ["  top-level code at <Cell 1>:1"]


def test_a_process_that_ended_says_its_state_is_gone(rig: Rig) -> None:
    ended = Ended("The Swift process ended while the cell ran", FRESH, " (exit status 3)")
    rig.host.body = lambda host: Outcome(ended=ended)
    result = rig.controller.execute("exit(3)", "<Cell 1>")
    assert result.error == CellError(
        "SwiftProcessEnded",
        "The Swift process ended while the cell ran (exit status 3); its state is gone.",
        [
            "SwiftProcessEnded: The Swift process ended while the cell ran (exit status 3); its state is gone.",
            FRESH,
        ],
    )


def test_top_level_await_is_rewritten_before_the_host_sees_it(rig: Rig) -> None:
    rig.host.body = lambda host: Outcome()
    rig.controller.execute("let r = await work()", "<Cell 1>")
    assert rig.host.executed[0][1] == "let r = (__SwiftKernel.blockOn { await work() })"
    refused = rig.controller.execute("for await x in stream {}", "<Cell 2>")
    assert refused.error is not None and refused.error.ename == "AwaitError"
    assert len(rig.host.executed) == 1


def test_standard_input_is_renewed_after_its_end_or_unread_lines(rig: Rig) -> None:
    rig.host.body = lambda host: Outcome()
    rig.controller.execute("1", "<Cell 1>")
    assert rig.host.reopened == []
    rig.controller._stdin.end()  # Ctrl-D answered in an earlier cell
    rig.controller.execute("1", "<Cell 2>")
    rig.controller._stdin.give("a line nobody read\n")
    rig.controller.execute("1", "<Cell 3>")
    assert len(rig.host.reopened) == 2
    assert all(path.startswith(f"/proc/{os.getpid()}/fd/") for path in rig.host.reopened), rig.host.reopened
    assert rig.controller._stdin.unread() == 0


def test_one_thread_watches_standard_input_for_every_cell(rig: Rig) -> None:
    """Cells that may read standard input share one watcher thread: none is started per cell."""
    watchers: list[threading.Thread] = []

    def body(host: FakeHost) -> Outcome:
        watchers.extend(t for t in threading.enumerate() if t.name == "swift-stdin")
        return Outcome(value="2")

    rig.host.body = body
    rig.controller.set_input_callback(lambda take_prompt: Future())
    for _ in range(3):
        assert rig.controller.execute("1 + 1", "<Cell 1>") == ExecutionResult(value="2")
    assert len(watchers) >= 3, "no watcher ran while the cells did"
    assert len(set(watchers)) == 1, watchers


@pytest.mark.parametrize("parent", ["default", "ignoring SIGINT"])
def test_an_interrupted_subprocess_is_stopped_and_recorded(rig: Rig, parent: str) -> None:
    # A process a shell started in the background ignores SIGINT, and its children inherit that.
    before = signal.getsignal(signal.SIGINT)
    if parent == "ignoring SIGINT":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        interrupt_a_subprocess(rig)
    finally:
        signal.signal(signal.SIGINT, before)


def interrupt_a_subprocess(rig: Rig) -> None:
    cell = rig.controller.expect_cell()
    statuses: list[int | None] = []
    thread = threading.Thread(
        target=lambda: statuses.append(
            rig.controller.run_subprocess("sleep 30", dict(os.environ), lambda name, event: None, cell)
        )
    )
    thread.start()
    deadline = time.monotonic() + 5
    while rig.controller.phase is not Phase.SUBPROCESS:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    rig.controller.interrupt("message")
    thread.join(10)
    assert statuses == [None]
    record = rig.controller.interrupts[-1]
    assert record.rung == "SIGINT to the command's processes" and record.latency is not None
    assert record.latency < 5
    assert_keyboard_interrupt(rig.controller.interrupted_result(cell))  # type: ignore[arg-type]
    assert len(rig.controller.interrupts) == 1  # kept once, however often the result is asked for
    rig.controller.end_cell(cell)


def test_an_interrupt_reaches_a_command_process_that_left_the_group(rig: Rig, tmp_path: Path) -> None:
    # setsid: its own session and group, out of reach of the group's SIGINT, holding the pipes.
    pid_file = tmp_path / "pid"
    command = f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 30' & wait"
    cell = rig.controller.expect_cell()
    statuses: list[int | None] = []
    thread = threading.Thread(
        target=lambda: statuses.append(
            rig.controller.run_subprocess(command, dict(os.environ), lambda name, event: None, cell)
        )
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    escaped = int(pid_file.read_text())
    assert os.getsid(escaped) == escaped  # a session of its own
    rig.controller.interrupt("message")
    thread.join(10)
    assert statuses == [None]
    assert rig.controller.interrupts[-1].rung == "SIGINT to the command's processes"
    assert proc_status(escaped)[0] in ("X", "Z")  # gone, or a zombie its new parent has not reaped
    rig.controller.end_cell(cell)


def test_an_expression_runs_for_its_cell_and_an_interrupt_stops_it_like_a_cells_code(rig: Rig) -> None:
    cell = rig.controller.expect_cell()
    results: list[ExecutionResult] = []
    thread = threading.Thread(
        target=lambda: results.append(rig.controller.evaluate("while true {}", "<expression x>", cell))
    )
    thread.start()
    assert rig.host.executing.wait(5)
    assert rig.controller.phase is Phase.EVALUATING
    assert rig.controller.interrupt("message") == "started"
    thread.join(10)
    rig.controller.end_cell(cell)
    assert_keyboard_interrupt(results[0])
    assert rig.host.executed == [(cell.generation, "while true {}", "<expression x>")]
    assert rig.process.events[0] == ("mark", (cell.generation, "message"))
    assert rig.controller.phase is Phase.IDLE
    # The expression read an ended standard input; the next cell gets a fresh one.
    rig.host.body = lambda host: Outcome(value="1")
    assert rig.controller.execute("1", "<Cell 2>") == ExecutionResult(value="1")
    assert len(rig.host.reopened) == 1


def test_work_between_cells_does_not_take_an_accepted_cells_place(rig: Rig) -> None:
    accepted = rig.controller.expect_cell()
    assert rig.controller.expect_cell_if_idle() is None
    rig.controller.end_cell(accepted)
    between = rig.controller.expect_cell_if_idle()
    assert between is not None and between.generation == accepted.generation + 1
    assert rig.controller.interrupt("message") == "started"  # it is the cell an interrupt finds
    rig.controller.end_cell(between)
    assert rig.controller.globals() == (Global("count", "Int", "1"),)
