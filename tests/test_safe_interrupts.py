"""Interrupts that stop the code and nothing else: safe points keep mutated globals whole.

Each loop mutates a global collection and keeps a counter of its own, updated after the mutation;
at any safe point the two agree. The loop is interrupted at random moments (some land while the
cell still compiles), then a check cell verifies the collection against the counter and uses it
(append, sum). A torn value fails the check or crashes the check cell.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from .conftest import KernelPair
from .mutations import MUTATIONS, run_trials
from .utils import collect, execute, value

pytestmark = [pytest.mark.lldb, pytest.mark.slow]

TRIALS = 50


@pytest.mark.timeout(900)
@pytest.mark.parametrize("through_function", [False, True], ids=["in the loop", "in an earlier cell's function"])
@pytest.mark.parametrize("name", list(MUTATIONS))
def test_interrupted_mutations_leave_every_global_whole(
    fresh_kernel: Callable[..., KernelPair], name: str, through_function: bool
) -> None:
    _, kc = fresh_kernel()
    trials = run_trials(kc, MUTATIONS[name], through_function, TRIALS)
    assert [trial.wrong for trial in trials if trial.wrong] == []
    # Every stop was at a safe point: none had to be made where a mutation might be under way.
    assert [trial for trial in trials if trial.outside_safe_point] == []


def test_an_interrupt_during_the_compile_of_a_quick_cell_stops_it_before_it_runs(
    fresh_kernel: Callable[..., KernelPair],
) -> None:
    km, kc = fresh_kernel()
    assert execute(kc, "var sideEffect = 0").status == "ok"
    # About a second of type checking, then a cell that would run in no time.
    slow_to_compile = "\n".join(f"let c{i} = [{i}, {i} + 1].map {{ $0 * 2 }}.reduce(0, +)" for i in range(400))
    for _ in range(3):
        msg_id = kc.execute(f"{slow_to_compile}\nsideEffect += 1")
        time.sleep(0.3)
        km.interrupt_kernel()
        reply = collect(kc, msg_id, timeout=120)
        assert reply.content["ename"] == "KeyboardInterrupt", reply.content
    assert value(kc, "sideEffect") == "0"


def test_an_interrupt_burst_cancels_only_its_own_cell(kernel: KernelPair) -> None:
    _, kc = kernel
    assert execute(kc, "var afterBurst = 0").status == "ok"
    for _ in range(10):
        msg_id = kc.execute("while true {}")
        time.sleep(0.2)
        for _ in range(10):
            kc.control_channel.send(kc.session.msg("interrupt_request", {}))
        assert collect(kc, msg_id, timeout=30).content["ename"] == "KeyboardInterrupt"
        following = execute(kc, "afterBurst += 1\nafterBurst", timeout=30)
        assert following.status == "ok", following.content
    assert value(kc, "afterBurst") == "10"


def test_a_long_library_call_is_stopped_and_says_it_was_outside_a_safe_point(kernel: KernelPair) -> None:
    km, kc = kernel
    # One call into the standard library that runs for seconds and has no safe point inside.
    msg_id = kc.execute("let big = (0..<50_000_000).map { $0 &* 7 }.sorted()")
    time.sleep(1.0)
    km.interrupt_kernel()
    reply = collect(kc, msg_id, timeout=60)
    assert reply.content["ename"] == "KeyboardInterrupt"
    assert "outside a safe point" in reply.content["evalue"], reply.content
    assert value(kc, "1 + 1") == "2"


@pytest.mark.timeout(600)
def test_the_time_limit_lets_the_first_cell_run_under_load(
    fresh_kernel: Callable[..., KernelPair], cpu_load: None
) -> None:
    # start_kernel's first cell is the warm-up `()`; under load the Swift process starts slowly.
    _, kc = fresh_kernel("swift", extra_arguments=["--SwiftKernel.cell_timeout=1.0"])
    assert value(kc, "1 + 1") == "2"
    stopped = execute(kc, "while true {}", timeout=120)
    assert stopped.content["evalue"] == "Cell time limit of 1 s exceeded"
