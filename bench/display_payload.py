"""Large display payloads: decoding time against size, alone and through the kernel (issue 14, item 11).

One run prints one markdown table (and the machine it ran on), one row per payload size:

- the kernel's frame decoder alone (``output.StreamDecoder``), fed the frame of a
  ``Jupyter.display(html:)`` of that many characters in the pump's 64 KiB reads;
- through the kernel (jupyter_client, the installed `swift` kernelspec): a cell
  ``Jupyter.display(html: String(repeating: "x", count: N))``, from execute_request to the reply,
  with the display_data checked whole; beside it the same number of characters printed as text.

Time per MB staying flat down a column means linear. A payload over the kernel's limit
(``output.MAX_DISPLAY_CHARS``, 64 MiB) is dropped with an error instead.

    .venv/bin/python bench/display_payload.py [--sizes 5,10,20,40,50] [--trials 3]

Run it with another checkout's Python (its .venv) to measure that checkout's kernel: the decoder
column always measures this checkout's code.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import psutil
from jupyter_client.manager import start_new_kernel

from swift_kernel.output import DISPLAY_END, DISPLAY_START, Display, StreamDecoder
from swift_kernel.toolchain import find_toolchain
from tests.utils import execute

MB = 1_000_000
READ_SIZE = 1 << 16


def decoder_seconds(chars: int) -> float:
    """Decode one display frame of ``chars`` characters of HTML, fed in the pump's reads."""
    payload = '{"type":"display","update":false,"data":{"text/html":"' + "x" * chars + '"}}'
    data = (DISPLAY_START + payload + DISPLAY_END).encode()
    decoder = StreamDecoder()
    started = time.perf_counter()
    events = []
    for at in range(0, len(data), READ_SIZE):
        events += decoder.feed(data[at : at + READ_SIZE], now=0.0)
    spent = time.perf_counter() - started
    assert [e for e in events if isinstance(e, Display)] == [Display(payload)]
    return spent


def kernel_seconds(kc: object, code: str, check: object) -> float:
    started = time.monotonic()
    execution = execute(kc, code, timeout=600)  # type: ignore[arg-type]
    spent = time.monotonic() - started
    assert execution.status == "ok", execution.content
    check(execution)  # type: ignore[operator]
    return spent


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"Machine: {os.cpu_count()} cores ({model}), {memory:.1f} GiB RAM, Linux {platform.release()}, "
        f"{find_toolchain(os.environ.get('SWIFT_KERNEL_TOOLCHAIN') or None).version()}, "
        f"Python {platform.python_version()}; kernel from {sys.prefix}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5,10,20,40,50", help="payload sizes in MB (10^6 characters)")
    parser.add_argument("--trials", type=int, default=3, help="best of this many runs per cell")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(machine())
    # Not from this directory: the kernel would import swift_kernel from here, whatever its Python.
    km, kc = start_new_kernel(kernel_name="swift", startup_timeout=60, cwd=tempfile.gettempdir())
    try:
        execute(kc, "()")
        rows = []
        for size in sizes:
            chars = size * MB

            def displayed(execution: object, chars: int = chars) -> None:
                shown = execution.of_type("display_data")  # type: ignore[attr-defined]
                assert [len(m["content"]["data"]["text/html"]) for m in shown] == [chars], "display incomplete"

            def printed(execution: object, chars: int = chars) -> None:
                assert len(execution.stream("stdout")) == chars + 1, "text incomplete"  # type: ignore[attr-defined]

            decoder = min(decoder_seconds(chars) for _ in range(args.trials))
            display = min(
                kernel_seconds(kc, f'Jupyter.display(html: String(repeating: "x", count: {chars}))', displayed)
                for _ in range(args.trials)
            )
            text = min(
                kernel_seconds(kc, f'print(String(repeating: "x", count: {chars}))', printed)
                for _ in range(args.trials)
            )
            rows.append((size, decoder, display, text))
            print(f"  {size} MB: decoder {decoder:.3f} s, display {display:.2f} s, text {text:.2f} s", flush=True)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    print()
    print("| payload | decoder alone | per MB | `Jupyter.display(html:)` | per MB | printed as text | per MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size, decoder, display, text in rows:
        print(
            f"| {size} MB | {decoder:.3f} s | {decoder / size * 1000:.1f} ms | {display:.2f} s | "
            f"{display / size * 1000:.0f} ms | {text:.2f} s | {text / size * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
