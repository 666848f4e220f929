"""Loops that mutate global collections, interrupted at random moments, and the checks that they stayed whole.

Used by tests/test_safe_interrupts.py and bench/safe_points.py. Each loop keeps a counter of its
own, updated after the mutation: at any safe point the collection and the counter agree.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from .utils import collect, execute


@dataclass(frozen=True)
class Mutation:
    """A global, the loop that mutates it, and the check that it is whole."""

    setup: str
    step: str
    reset: str
    check: str


MUTATIONS = {
    "array append": Mutation(
        "var arr: [Int] = []", "arr.append(n)", "arr = []", "arr.count == n && arr.reduce(0, +) == n * (n - 1) / 2"
    ),
    "dictionary default": Mutation(
        "var dict: [Int: Int] = [:]",
        "dict[n % 997, default: 0] += 1",
        "dict = [:]",
        "dict.values.reduce(0, +) == n && dict.count == min(n, 997)",
    ),
    "string append": Mutation('var text = ""', 'text += "ab"', 'text = ""', "text.utf8.count == 2 * n"),
    "set insert": Mutation("var set: Set<Int> = []", "set.insert(n)", "set = []", "set.count == n"),
    "class field append": Mutation(
        "final class Box { var items: [Int] = [] }\nlet box = Box()",
        "box.items.append(n)",
        "box.items = []",
        "box.items.count == n && box.items.last == (n > 0 ? n - 1 : nil)",
    ),
    "nested array": Mutation(
        "var grid = Array(repeating: Array(repeating: 0, count: 10), count: 10)",
        "grid[n % 10][(n / 10) % 10] += 1",
        "grid = Array(repeating: Array(repeating: 0, count: 10), count: 10)",
        "grid.joined().reduce(0, +) == n && grid.count == 10 && grid.allSatisfy { $0.count == 10 }",
    ),
}


@dataclass
class Trial:
    """One interrupt of a mutation loop: how long the reply took, and what was wrong after it."""

    latency: float
    wrong: str = ""
    outside_safe_point: bool = False


def declare(kc: Any, mutation: Mutation, through_function: bool) -> None:
    """Declare the global, its counter, the mutating function (if used) and the check."""
    assert execute(kc, f"{mutation.setup}\nvar n = 0").status == "ok"
    if through_function:
        # The mutation in a function from an earlier cell, called by the loop.
        assert execute(kc, f"func mutate() {{ {mutation.step} }}").status == "ok"
    assert execute(kc, f"func whole() -> Bool {{ {mutation.check} }}").status == "ok"


def run_trials(kc: Any, mutation: Mutation, through_function: bool, trials: int, seed: int = 12345) -> list[Trial]:
    """Interrupt the mutation loop ``trials`` times at random moments and check the global after each.

    The last trial's entry also says what was wrong, if anything, when the global was grown and
    checked once more after all the interrupts.
    """
    step = "mutate()" if through_function else mutation.step
    declare(kc, mutation, through_function)
    results: list[Trial] = []
    rng = random.Random(seed)
    for trial in range(trials):
        # Emptied in a cell of its own: freeing a large collection is a long library call.
        reset = execute(kc, f"{mutation.reset}\nn = 0", timeout=60)
        if reset.status != "ok":
            # A torn collection crashed while being freed; a fresh Swift process needs it all again.
            results.append(Trial(0.0, f"trial {trial}: emptying it failed: {reset.content.get('evalue')}"))
            declare(kc, mutation, through_function)
            continue
        msg_id = kc.execute(f"while n < 100_000_000 {{ {step}; n += 1 }}")
        # Some land while the cell compiles, most while the loop runs.
        time.sleep(rng.uniform(0.0, 0.15))
        sent = time.perf_counter()
        kc.control_channel.send(kc.session.msg("interrupt_request", {}))
        reply = collect(kc, msg_id, timeout=60)
        result = Trial(time.perf_counter() - sent)
        results.append(result)
        if reply.content.get("ename") != "KeyboardInterrupt":
            result.wrong = f"trial {trial}: the loop ended with {reply.content}"
            continue
        result.outside_safe_point = "outside a safe point" in reply.content["evalue"]
        check = execute(kc, "whole()", timeout=60)
        if check.result != "true":
            result.wrong = f"trial {trial}: check gave {check.result or check.content}"
    # Still usable afterwards: grow it and read it again.
    after = execute(kc, f"{step}; n += 1\nwhole()", timeout=60)
    if after.result != "true" and results:
        results[-1].wrong += f" after the trials: {after.result or after.content}"
    return results
