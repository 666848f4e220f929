"""Measure %install: a first build, a re-install in the same kernel, and an install in a fresh kernel with a warm cache.

For swift-numerics (by path) and swift-algorithms (offline: its url dependency on swift-numerics
through ``%install-mirror``), each with a build cache of its own in a temporary folder (given to
the kernels through ``SWIFT_KERNEL_CACHE_DIR``, so the user's cache is left alone). Prints the
machine and a table of seconds from the install cell's request to its reply.

    flock /tmp/swift-kernel-tests.lock .venv/bin/python bench/install.py [--packages DIR] [--kernel swift]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel
from neutral import KERNEL_CWD

NUMERICS_URL = "https://github.com/apple/swift-numerics.git"


def run(kc: BlockingKernelClient, code: str) -> tuple[float, str]:
    """Run a cell; return its seconds and its stdout (fail on an error)."""
    chunks: list[str] = []

    def hook(message: dict[str, object]) -> None:
        content = message["content"]
        if message["msg_type"] == "stream" and isinstance(content, dict) and content.get("name") == "stdout":
            chunks.append(str(content["text"]))

    started = time.monotonic()
    reply = kc.execute_interactive(code, timeout=1800, output_hook=hook)
    elapsed = time.monotonic() - started
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code!r} failed: {reply['content'].get('evalue')}")
    return elapsed, "".join(chunks)


def start(kernel: str) -> tuple[KernelManager, BlockingKernelClient]:
    km, kc = start_new_kernel(kernel_name=kernel, startup_timeout=120, cwd=KERNEL_CWD)
    run(kc, "()")  # the Swift process is up
    return km, kc


def measure(name: str, cell: str, check: str, kernel: str) -> list[tuple[str, float, str]]:
    """Return (phase, seconds, what the output said) for the three phases of one package."""
    rows = []
    km, kc = start(kernel)
    try:
        for phase in ("first build", "re-install, same kernel"):
            seconds, out = run(kc, cell)
            rows.append((phase, seconds, "cache hit" if "Cache hit" in out else "built"))
        run(kc, check)
    finally:
        km.shutdown_kernel()
        kc.stop_channels()
    km, kc = start(kernel)
    try:
        seconds, out = run(kc, cell)
        rows.append(("fresh kernel, warm cache", seconds, "cache hit" if "Cache hit" in out else "built"))
        run(kc, check)
    finally:
        km.shutdown_kernel()
        kc.stop_channels()
    return [(f"{name}: {phase}", seconds, said) for phase, seconds, said in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default=str(Path(__file__).resolve().parents[2] / "shared" / "packages"))
    parser.add_argument("--kernel", default="swift")
    arguments = parser.parse_args()
    packages = Path(arguments.packages)
    numerics, algorithms = packages / "swift-numerics", packages / "swift-algorithms"
    cases = [
        (
            "swift-numerics",
            f"%install '.package(path: \"{numerics}\")' Numerics",
            "import Numerics\nDouble.cos(.pi) + Complex(3, 4).length",
        ),
        (
            "swift-algorithms (mirror)",
            f"%install-mirror {NUMERICS_URL} {numerics}\n%install '.package(path: \"{algorithms}\")' Algorithms",
            "import Algorithms\n[1, 2, 3].chunks(ofCount: 2).count",
        ),
    ]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    rows = []
    for name, cell, check in cases:
        cache = tempfile.mkdtemp(prefix="swift-kernel-bench-cache-")
        os.environ["SWIFT_KERNEL_CACHE_DIR"] = cache
        try:
            rows += measure(name, cell, check, arguments.kernel)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    print("| install | seconds | output |")
    print("| --- | ---: | --- |")
    for phase, seconds, said in rows:
        print(f"| {phase} | {seconds:.1f} | {said} |")


if __name__ == "__main__":
    main()
