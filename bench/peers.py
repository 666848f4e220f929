"""This kernel against the peer Swift kernels, in one interleaved run: start, round trip, interrupt.

The peers are google/swift-jupyter (kernelspec ``swift-sj``) and its 2025 modernization
pedronahum/swift-jupyter (``swift-pj``), installed by ``bench/peers/setup.sh`` into a private
directory (``--peers-dir``, put on JUPYTER_PATH here); a peer that is not installed is left out.
For ``swift`` (this kernel's installed kernelspec) and each peer, interleaved so that load from
elsewhere weighs on all alike:

- start: ``KernelManager.start_kernel`` -> first kernel_info reply, and -> the first
  ``execute_result`` of ``1 + 1`` (median of ``--starts``);
- round trip: ``let x = 41``, then ``x + 1`` execute_request -> execute_reply, p50 and p90 of
  ``--trials`` after 10 warm-up;
- interrupt: ``var n = 0; while true { n += 1 }`` runs (its Swift process has burnt 0.1 s of CPU),
  then ``KernelManager.interrupt_kernel`` (each kernel's own interrupt_mode), again every
  ``--interrupt-grace`` seconds until the execute_reply comes; time from the first interrupt to
  the reply, how many interrupts it took, and whether ``print(n > 0)`` then prints ``true``
  (median of ``--interrupts``); ``--interrupt-after S`` waits at least S seconds after the request
  before the first interrupt (the peers lose interrupts that come early, around 0.2-0.3 s).

``--burners K`` runs K CPU-burning processes for the whole run. Every kernel runs with a private
TMPDIR (LLDB and the peers write files there) and the environment a Jupyter server would give it:
not the toolchain's LD_LIBRARY_PATH that this script re-executes itself with.

    bench/peers/setup.sh --sj /work/.mirror/google+swift-jupyter/repo --pj /work/.mirror/pedronahum+swift-jupyter/repo
    flock /tmp/swift-kernel-tests.lock .venv/bin/python bench/peers.py [--burners 3]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

# bench.latency re-executes this script with the toolchain's libraries on LD_LIBRARY_PATH; keep
# the value from before, for the kernels (setdefault: the re-executed process sees the original).
ORIGINAL_LOADER_PATH = "SWIFT_KERNEL_PEERS_LD_LIBRARY_PATH"
os.environ.setdefault(ORIGINAL_LOADER_PATH, os.environ.get("LD_LIBRARY_PATH", ""))

import psutil
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from bench.latency import TIMEOUT, machine, percentile, run
from bench.startup import burners

KERNELS = {
    "swift": "this kernel",
    "swift-sj": "google/swift-jupyter",
    "swift-pj": "pedronahum/swift-jupyter, 2025",
}
DEFAULT_PEERS_DIR = Path(tempfile.gettempdir()) / "swift-kernel-peers"
LOOP = "var n = 0; while true { n += 1 }"
# CPU time the Swift process must have burnt in the loop cell before the first interrupt: the
# loop is then surely running, past its compilation, whatever the load.
RUNNING_CPU_SECONDS = 0.1
MAX_INTERRUPTS = 5


@dataclass
class Session:
    name: str
    km: KernelManager
    kc: BlockingKernelClient


@dataclass
class Figures:
    ready: list[float] = field(default_factory=list)  # start -> first kernel_info reply
    first_result: list[float] = field(default_factory=list)  # start -> first execute_result
    first_result_text: str = ""
    round_trip: list[float] = field(default_factory=list)
    interrupt: list[float] = field(default_factory=list)  # first interrupt -> execute_reply
    interrupts_needed: list[int] = field(default_factory=list)  # 0: no reply after MAX_INTERRUPTS
    interrupt_after: list[float] = field(default_factory=list)  # execute_request -> first interrupt
    answers_after: list[bool] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def kernel_environment(tmp: Path) -> dict[str, str]:
    """Return this process's environment as a Jupyter server would pass it, with TMPDIR private."""
    env = dict(os.environ)
    original = env.pop(ORIGINAL_LOADER_PATH, "")
    if original:
        env["LD_LIBRARY_PATH"] = original
    else:
        env.pop("LD_LIBRARY_PATH", None)
    env["TMPDIR"] = str(tmp)
    return env


def descendants(km: KernelManager) -> list[psutil.Process]:
    assert km.provisioner is not None and km.provisioner.process is not None
    with suppress(psutil.NoSuchProcess):
        root = psutil.Process(km.provisioner.process.pid)
        return [root, *root.children(recursive=True)]
    return []


def first_result(kc: BlockingKernelClient, code: str) -> tuple[float, str | None]:
    """Execute ``code``; return when its first execute_result arrived and its text, after the reply."""
    msg_id = kc.execute(code)
    arrived, text = None, None
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "execute_result" and arrived is None:
            arrived, text = time.perf_counter(), msg["content"]["data"].get("text/plain")
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    wait_reply(kc, msg_id, TIMEOUT)
    return (arrived if arrived is not None else time.perf_counter()), text


@contextmanager
def session(name: str, env: dict[str, str], cwd: Path, figures: Figures | None = None) -> Iterator[Session]:
    """Start kernel ``name``; with ``figures``, record its start times; shut it down, leaving no process."""
    km = KernelManager(kernel_name=name)
    started = time.perf_counter()
    km.start_kernel(env=env, cwd=str(cwd))
    kc = km.client()
    kc.start_channels()
    processes: list[psutil.Process] = []
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        ready = time.perf_counter() - started
        arrived, text = first_result(kc, "1 + 1")
        if figures is not None:
            figures.ready.append(ready)
            figures.first_result.append(arrived - started)
            figures.first_result_text = text or "(none)"
        processes = descendants(km)
        yield Session(name, km, kc)
    finally:
        processes = list({p.pid: p for p in [*processes, *descendants(km)]}.values())
        kc.stop_channels()
        km.shutdown_kernel(now=False)
        # A kernel killed or shut down may leave its debug server or Swift process behind.
        for process in processes:
            with suppress(psutil.NoSuchProcess):
                process.kill()


def wait_reply(kc: BlockingKernelClient, msg_id: str, timeout: float) -> dict[str, Any] | None:
    deadline = time.perf_counter() + timeout
    while (remaining := deadline - time.perf_counter()) > 0:
        try:
            reply: dict[str, Any] = kc.get_shell_msg(timeout=remaining)
        except queue.Empty:
            return None
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
    return None


def drain_to_idle(kc: BlockingKernelClient, msg_id: str) -> None:
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                return


def swift_cpu_seconds(km: KernelManager) -> float:
    """Return the CPU time the kernel's Swift processes (``repl_swift``) have used."""
    total = 0.0
    for process in descendants(km):
        with suppress(psutil.NoSuchProcess):
            if process.name() == "repl_swift":
                times = process.cpu_times()
                total += times.user + times.system
    return total


def interrupt_trial(s: Session, grace: float, run_before: float, figures: Figures) -> bool:
    """Interrupt the endless loop; record the figures; return False if the kernel never replied."""
    before = swift_cpu_seconds(s.km)
    requested = time.perf_counter()
    msg_id = s.kc.execute(LOOP)
    deadline = time.perf_counter() + TIMEOUT
    while swift_cpu_seconds(s.km) - before < RUNNING_CPU_SECONDS or time.perf_counter() - requested < run_before:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{s.name}: the loop cell never ran")
        time.sleep(0.01)
    sent, first, reply = 0, 0.0, None
    while reply is None and sent < MAX_INTERRUPTS:
        s.km.interrupt_kernel()
        sent += 1
        if not first:
            first = time.perf_counter()
            figures.interrupt_after.append(first - requested)
        reply = wait_reply(s.kc, msg_id, grace)
    if reply is None:
        figures.interrupts_needed.append(0)
        figures.notes.append(f"no execute_reply after {MAX_INTERRUPTS} interrupts; kernel restarted")
        return False
    figures.interrupt.append(time.perf_counter() - first)
    figures.interrupts_needed.append(sent)
    drain_to_idle(s.kc, msg_id)
    check = run(s.kc, "print(n > 0)")
    answered = check.status == "ok" and check.stdout.strip() == "true"
    figures.answers_after.append(answered)
    if not answered:
        said = re.sub(r"0x[0-9a-f]+", "0x…", (check.stdout.strip().splitlines() or [repr(check.result)])[0])
        figures.notes.append(f"after an interrupt, `print(n > 0)` gave {check.status}: {said}")
    return True


def progress(started: float, what: str) -> None:
    print(f"[{time.perf_counter() - started:6.1f} s] {what}", file=sys.stderr, flush=True)


def measure(names: list[str], args: argparse.Namespace, env: dict[str, str], cwd: Path) -> dict[str, Figures]:
    figures = {name: Figures() for name in names}
    started = time.perf_counter()
    progress(started, "starts")
    for _ in range(args.starts):
        for name in names:
            with session(name, env, cwd, figures[name]):
                pass
    progress(started, "round trips")
    with open_sessions(names, env, cwd) as sessions:
        for s in sessions.values():
            assert run(s.kc, "let x = 41").status == "ok", s.name
            for _ in range(10):
                run(s.kc, "x + 1")
        for _ in range(args.trials):
            for name, s in sessions.items():
                reply = run(s.kc, "x + 1")
                assert reply.status == "ok", (name, reply)
                figures[name].round_trip.append(reply.seconds)
        progress(started, "interrupts")
        for _ in range(args.interrupts):
            for name in names:
                if not interrupt_trial(sessions[name], args.interrupt_grace, args.interrupt_after, figures[name]):
                    sessions.replace(name)
        progress(started, "shutting down")
    progress(started, "done")
    return figures


class Sessions(dict[str, Session]):
    """One running session per kernel, replaceable when a kernel stops answering."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        super().__init__()
        self.env, self.cwd = env, cwd
        self._contexts: dict[str, Any] = {}

    def open(self, name: str) -> None:
        context = session(name, self.env, self.cwd)
        self[name] = context.__enter__()
        self._contexts[name] = context

    def close(self, name: str) -> None:
        context = self._contexts.pop(name)
        del self[name]
        context.__exit__(None, None, None)

    def replace(self, name: str) -> None:
        self.close(name)
        self.open(name)


@contextmanager
def open_sessions(names: list[str], env: dict[str, str], cwd: Path) -> Iterator[Sessions]:
    sessions = Sessions(env, cwd)
    try:
        for name in names:
            sessions.open(name)
        yield sessions
    finally:
        for name in list(sessions):
            sessions.close(name)


def peer_commit(name: str) -> str:
    """Return the peer's commit, from the PEER_COMMIT file setup.sh leaves beside its code."""
    spec = KernelSpecManager().get_kernel_spec(name)
    marker = Path(spec.argv[1]).parent / "PEER_COMMIT" if len(spec.argv) > 1 else None
    return marker.read_text().strip()[:12] if marker and marker.is_file() else "?"


def code_span(text: str) -> str:
    """Return ``text`` as markdown inline code, fenced so that backticks inside it survive."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def table(names: list[str], figures: dict[str, Figures], args: argparse.Namespace) -> list[str]:
    ms = lambda seconds: f"{seconds * 1000:.0f} ms"  # noqa: E731 - a formatter
    specs = {name: KernelSpecManager().get_kernel_spec(name) for name in names}
    header = [f"`{name}` ({KERNELS.get(name, name)})" for name in names]
    drift = max(1, min(20, args.trials // 5))

    def row(label: str, cell: Any) -> str:
        return "| " + " | ".join([label, *(cell(name, figures[name]) for name in names)]) + " |"

    def needed(f: Figures) -> str:
        counts = Counter(f.interrupts_needed)
        return ", ".join(
            f"{counts[k]} never answered" if k == 0 else f"{counts[k]} with {k}"
            for k in sorted(counts, key=lambda k: k or MAX_INTERRUPTS + 1)
        )

    def interrupt_times(f: Figures) -> str:
        if not f.interrupt:
            return "—"
        return f"{ms(statistics.median(f.interrupt))} (max {ms(max(f.interrupt))})"

    return [
        "| measure | " + " | ".join(header) + " |",
        "| --- |" + " --- |" * len(names),
        row("peer commit", lambda n, f: "(this branch)" if n == "swift" else peer_commit(n)),
        row("interrupt_mode", lambda n, f: specs[n].interrupt_mode),
        row(
            f"start → first kernel_info reply, median of {args.starts}",
            lambda n, f: f"{statistics.median(f.ready):.2f} s",
        ),
        row(
            f"start → first execute_result of `1 + 1`, median of {args.starts}",
            lambda n, f: (
                f"{statistics.median(f.first_result):.2f} s (runs: {', '.join(f'{s:.2f}' for s in f.first_result)})"
            ),
        ),
        row("its text", lambda n, f: code_span(f.first_result_text.strip())),
        row(
            f"`x + 1` round trip, p50 / p90 of {args.trials}",
            lambda n, f: f"{ms(statistics.median(f.round_trip))} / {ms(percentile(f.round_trip, 0.9))}",
        ),
        row(
            f"`x + 1` p50 of the first / last {drift} round trips (growth over the session)",
            lambda n, f: (
                f"{ms(statistics.median(f.round_trip[:drift]))} / {ms(statistics.median(f.round_trip[-drift:]))}"
            ),
        ),
        row(f"interrupt → execute_reply, median of {args.interrupts}", lambda n, f: interrupt_times(f)),
        row("trials by interrupts needed", lambda n, f: needed(f)),
        row(
            "`print(n > 0)` prints `true` afterwards",
            lambda n, f: f"{sum(f.answers_after)}/{len(f.interrupts_needed)}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers-dir", type=Path, default=DEFAULT_PEERS_DIR, help="setup.sh's --prefix")
    parser.add_argument("--starts", type=int, default=5, help="kernel starts per kernel")
    parser.add_argument("--trials", type=int, default=100, help="round trips per kernel")
    parser.add_argument("--interrupts", type=int, default=10, help="interrupt trials per kernel")
    parser.add_argument("--interrupt-grace", type=float, default=2.0, help="seconds before interrupting again")
    parser.add_argument(
        "--interrupt-after", type=float, default=0.0, help="also wait this long after the loop cell's request"
    )
    parser.add_argument("--burners", type=int, default=0, help="CPU-burning processes during the run")
    parser.add_argument("--kernels", default=",".join(KERNELS), help="kernelspecs to compare, if installed")
    args = parser.parse_args()

    jupyter_path = str(args.peers_dir.resolve() / "share" / "jupyter")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [jupyter_path, os.environ.get("JUPYTER_PATH")]))
    installed = KernelSpecManager().find_kernel_specs()
    names = [name for name in args.kernels.split(",") if name in installed]
    missing = [name for name in args.kernels.split(",") if name not in installed]
    if "swift" not in names:
        sys.exit("bench/peers.py: the swift kernelspec is not installed (make setup)")

    scratch = Path(tempfile.mkdtemp(prefix="peers-bench-"))
    try:
        (scratch / "tmp").mkdir()
        env = kernel_environment(scratch / "tmp")
        with burners(args.burners):
            load_before = os.getloadavg()[0]
            figures = measure(names, args, env, scratch)
            load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(machine())
    print(f"1-minute load average: {load_before:.1f} at the start, {load_after:.1f} at the end", end="")
    print(f"; CPU burners: {args.burners}")
    if missing:
        print(f"not installed, left out: {', '.join(missing)} (bench/peers/setup.sh)")
    print(
        "interleaved: each start, round trip and interrupt trial goes to every kernel in turn; "
        f"a second interrupt is sent when no reply came {args.interrupt_grace:g} s after the previous one"
    )
    print()
    for line in table(names, figures, args):
        print(line)
    for name in names:
        for note, times in sorted(Counter(figures[name].notes).items()):
            print(f"- `{name}`, {times} times: {note}")
    print()
    print(json.dumps({name: f.__dict__ for name, f in figures.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
