"""When a cell's warnings are asked of sourcekit-lsp (cellwarnings.DelayedAsk, CellWarnings), without a kernel."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from swift_kernel.cellwarnings import CellWarnings, DelayedAsk, declares


class Asks:
    """A stand-in for SourceKitLSP.diagnose: counts the asks (beside a running cell or not), answers each at once."""

    def __init__(self, error: Exception | None = None) -> None:
        self.count = 0
        self.beside: list[bool] = []
        self.error = error

    def __call__(self, beside: bool) -> concurrent.futures.Future[list[object] | None]:
        self.count += 1
        self.beside.append(beside)
        answer: concurrent.futures.Future[list[object] | None] = concurrent.futures.Future()
        if self.error is not None:
            answer.set_exception(self.error)
        else:
            answer.set_result([])
        return answer


def test_a_quick_cell_asks_when_its_code_is_done_and_once() -> None:
    async def run() -> Asks:
        asks = Asks()
        delayed = DelayedAsk(asks, 10, asyncio.get_running_loop())
        await asyncio.sleep(0.05)
        assert asks.count == 0  # not during the cell's compile
        delayed.now()
        delayed.now()
        await asyncio.sleep(0.05)
        assert delayed.found.result(timeout=1) == []
        return asks

    assert asyncio.run(run()).count == 1


def test_nothing_is_asked_before_the_code_has_gone_to_lldb() -> None:
    async def run() -> Asks:
        asks = Asks()
        delayed = DelayedAsk(asks, 0, asyncio.get_running_loop())
        await asyncio.sleep(0.05)
        assert asks.count == 0  # the cell's request is still being sent: its GIL time comes first
        await asyncio.to_thread(delayed.begin)  # as the executing thread calls it
        await asyncio.sleep(0.05)
        assert asks.count == 1 and delayed.found.done()
        delayed.begin()  # a second piece of the cell (an included file first): asked once all the same
        delayed.now()
        await asyncio.sleep(0.05)
        return asks

    assert asyncio.run(run()).count == 1


def test_a_cell_sent_as_the_kernel_ends_does_not_fail_on_the_closed_loop() -> None:
    loop = asyncio.new_event_loop()
    asks = Asks()
    delayed = DelayedAsk(asks, 0, loop)
    loop.close()
    delayed.begin()  # from the executing thread, after the kernel's loop has gone
    assert asks.count == 0


def test_a_longer_cell_asks_while_it_runs() -> None:
    async def run() -> Asks:
        asks = Asks()
        delayed = DelayedAsk(asks, 0.01, asyncio.get_running_loop())
        delayed.begin()
        await asyncio.sleep(0.2)
        assert asks.count == 1 and delayed.found.done()
        delayed.now()  # the code is done: nothing more to ask
        return asks

    assert asyncio.run(run()).beside == [True]  # at the lower priority, beside the running cell


def test_a_failed_ask_fails_the_found_future() -> None:
    async def run() -> None:
        delayed = DelayedAsk(Asks(RuntimeError("no sourcekit-lsp")), 10, asyncio.get_running_loop())
        delayed.now()
        with pytest.raises(RuntimeError, match="no sourcekit-lsp"):
            delayed.found.result(timeout=1)

    asyncio.run(run())


def begun(asks: Asks, delay: float, code: str) -> tuple[DelayedAsk, CellWarnings]:
    """Set up a cell's warnings as the kernel does, its code on its way to LLDB (on the running loop)."""
    delayed = DelayedAsk(asks, delay, asyncio.get_running_loop(), "<Cell 1>")
    warnings = CellWarnings(delayed, code, "<Cell 1>", lambda text: None)
    delayed.begin()
    return delayed, warnings


def test_a_quick_cell_is_asked_once_it_has_replied_not_when_its_code_is_done() -> None:
    async def run() -> Asks:
        asks = Asks()
        delayed, warnings = begun(asks, 10, "1")
        await warnings.finish(compile_failed=False)  # its code is done: the reply is yet to go
        await asyncio.sleep(0.05)
        assert asks.count == 0
        await warnings.settle(1)  # replied
        assert delayed.found.result(timeout=1) == []
        await warnings.settle(1)
        return asks

    assert asyncio.run(run()).beside == [False]  # nothing of the cell runs: not at a lower priority


def test_a_cell_lldb_refused_is_never_asked() -> None:
    async def run() -> Asks:
        asks = Asks()
        delayed, warnings = begun(asks, 0.01, 'let x: Int = "no"')
        await warnings.finish(compile_failed=True)  # before the delay ran out
        started = asyncio.get_running_loop().time()
        await warnings.settle(5)  # nothing to wait for
        assert asyncio.get_running_loop().time() - started < 1
        await asyncio.sleep(0.05)  # past the delay: the timer was cancelled
        assert not delayed.found.done()
        return asks

    assert asyncio.run(run()).count == 0


@pytest.mark.parametrize(
    "code",
    [
        "let x = 41",
        "var total = 0",
        "func f() -> Int { 1 }",
        "struct S {}",
        "final class C {}",
        "enum E { case a }",
        "protocol P {}",
        "extension Int { var twice: Int { self * 2 } }",
        "import Foundation",
        "typealias Name = String",
        "actor A {}",
        "infix operator <+>",
        "guard let y = Optional(1) else { fatalError() }",
        "@discardableResult func g() -> Int { 2 }",
        "#if DEBUG\nlet debug = true\n#endif",
        "print(1)\nlet late = 2",
    ],
)
def test_cells_that_declare_something_stay_in_the_warnings_document(code: str) -> None:
    assert declares(code)


@pytest.mark.parametrize(
    "code",
    [
        "x + 1",
        'print("let x = 1 // var y")',
        "total += 1",
        "for i in 0..<3 { let doubled = i * 2; print(doubled) }",
        "if true { var local = 1; local += 1 }",
        "[1, 2].map { value in let y = value; return y }",
        "// let commented = 1\nx",
        "/* func hidden() {} */ x",
        "f(x)",
        "letter + varnish",
        "s.let",
    ],
)
def test_cells_that_declare_nothing_are_left_out(code: str) -> None:
    assert not declares(code)
