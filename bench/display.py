"""What rich display costs: the prelude's compile at every start, and the display extras on first use.

Three figures, each measured alternately against a baseline prelude (the prelude as it was at git
revision ``--baseline``, before the display protocol; default 2817d43) so that machine load hits
both alike:

- the prelude's evaluation in a fresh ``repl_swift`` (the kernel's own LLDB session, in this
  process, as ``bench/raw_lldb.py`` runs it);
- kernel start to the first result of ``1 + 1`` through jupyter_client (the installed ``swift``
  kernelspec; for the baseline the prelude file is swapped for the run and put back after);
- compiling ``swift/display.swift`` (tables, charts, images) into the process, which the first cell
  that uses one of them pays once, and that cell's round trip against the second's.

    .venv/bin/python bench/display.py [--runs 5] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from swift_kernel.toolchain import ensure_loader_path

REPO = Path(__file__).resolve().parents[1]
PRELUDE = REPO / "swift_kernel" / "swift" / "prelude.swift"


# Re-run this script with the toolchain's libraries on LD_LIBRARY_PATH if they are missing.
TOOLCHAIN = ensure_loader_path([str(Path(__file__).resolve()), *sys.argv[1:]])

from raw_lldb import raw_session

from swift_kernel import lldb_session


def prelude_seconds(prelude: Path) -> float:
    """Evaluate ``prelude`` in a fresh Swift process; return the seconds the evaluation took."""
    toolchain = TOOLCHAIN
    original = lldb_session.PRELUDE
    lldb_session.PRELUDE = prelude
    try:
        with raw_session(toolchain) as session:
            started = time.perf_counter()
            session.relaunch()  # the launch is timed with its prelude; subtract a bare launch below
            return time.perf_counter() - started
    finally:
        lldb_session.PRELUDE = original


def extras_seconds() -> tuple[float, float, float]:
    """Return the extras' compile time, the first chart cell's time and the second's."""
    with raw_session(TOOLCHAIN) as session:
        session.execute("1 + 1", "<Cell 1>")
        started = time.perf_counter()
        session.execute("Jupyter.plot(x: [1, 2], y: [3, 4])", "<Cell 2>")
        first = time.perf_counter() - started
        started = time.perf_counter()
        session.execute("Jupyter.plot(x: [1, 2], y: [3, 5])", "<Cell 3>")
        second = time.perf_counter() - started
        session._extras_loaded = False  # compile the extras alone once more, timed
        started = time.perf_counter()
        session._load_extras()
        return time.perf_counter() - started, first, second


def first_result_seconds() -> float:
    """Start the installed ``swift`` kernel; return seconds to the result of ``1 + 1``."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="swift")
    started = time.perf_counter()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        msg_id = kc.execute("1 + 1")
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_result":
                return time.perf_counter() - started
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({', '.join(f'{v:.2f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", default="2817d43")
    args = parser.parse_args()
    baseline = Path(os.environ.get("TMPDIR", "/tmp")) / f"swift-kernel-bench-prelude-{os.getpid()}.swift"
    baseline.write_text(
        subprocess.run(
            ["git", "show", f"{args.baseline}:swift_kernel/swift/prelude.swift"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    current_text = PRELUDE.read_text()
    results: dict[str, list[float]] = {name: [] for name in ("pb", "pc", "kb", "kc", "extras", "first", "second")}
    try:
        for _ in range(args.runs):
            results["pb"].append(prelude_seconds(baseline))
            results["pc"].append(prelude_seconds(PRELUDE))
            PRELUDE.write_text(baseline.read_text())
            try:
                results["kb"].append(first_result_seconds())
            finally:
                PRELUDE.write_text(current_text)
            results["kc"].append(first_result_seconds())
            extras, first, second = extras_seconds()
            results["extras"].append(extras)
            results["first"].append(first)
            results["second"].append(second)
    finally:
        PRELUDE.write_text(current_text)
        baseline.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, 1-minute load {load:.1f}; medians in seconds (runs)")
    print("| measure | baseline prelude | with the display protocol |")
    print("| --- | ---: | ---: |")
    print(f"| relaunch of repl_swift with its prelude | {summary(results['pb'])} | {summary(results['pc'])} |")
    print(f"| kernel start → result of `1 + 1` | {summary(results['kb'])} | {summary(results['kc'])} |")
    print(f"| display extras compiled (once, first use) | - | {summary(results['extras'])} |")
    print(f"| first `Jupyter.plot` cell (with the extras) | - | {summary(results['first'])} |")
    print(f"| second `Jupyter.plot` cell | - | {summary(results['second'])} |")


if __name__ == "__main__":
    main()
