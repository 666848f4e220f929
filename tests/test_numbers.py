"""Swift's text of Doubles and Floats, computed in Python (swift_kernel/numbers.py), against Swift's own."""

from __future__ import annotations

import math
import os
import random
import struct
import subprocess
from pathlib import Path

import pytest

from swift_kernel.numbers import as_float32, swift_description
from swift_kernel.toolchain import find_toolchain

# Reads "d <hex bits>" or "f <hex bits>" lines, prints String(reflecting:) of each number (what a
# cell ending in it shows).
DESCRIBE = """
while let line = readLine() {
    let parts = line.split(separator: " ")
    if parts[0] == "d" {
        print(String(reflecting: Double(bitPattern: UInt64(parts[1], radix: 16)!)))
    } else {
        print(String(reflecting: Float(bitPattern: UInt32(parts[1], radix: 16)!)))
    }
}
"""


def double_bits(value: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


def float_bits(value: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", value))[0])


def sample() -> list[tuple[str, int]]:
    """Numbers where the text's rules change, and many at random (fixed seed)."""
    chosen = random.Random(18)
    doubles: list[float] = [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 1 / 3]
    floats: list[float] = [0.0, -0.0, 1e-45, 1.17549435e-38, 3.4028234663852886e38, 0.1, 1 / 3]
    # Around the switch to exponents above: the representable numbers next to it.
    below = above = 2.0**53
    for _ in range(20):
        below, above = math.nextafter(below, 0.0), math.nextafter(above, math.inf)
        doubles += [below, above]
    # Around where Python's repr is taken as Swift's text (numbers._REPR_RANGE), either sign.
    for edge in (1e-4, 2.0**53):
        for neighbour in (math.nextafter(edge, 0.0), edge, math.nextafter(edge, math.inf)):
            doubles += [neighbour, -neighbour]
    below = above = 2.0**24
    for _ in range(20):
        below, above = as_float32(below * (1 - 1e-7)), as_float32(above * (1 + 1e-7))
        floats += [below, above]
    for power in range(-330, 310):
        for scale in ("1", "1.5", "9.999999", "1.0000001"):
            candidate = float(f"{scale}e{power}")
            if 0 < candidate < math.inf:
                doubles += [candidate, math.nextafter(candidate, math.inf)]
            if 1e-46 < candidate < 3.4e38:
                floats.append(as_float32(candidate))
    for exponent in range(-1074, 1024):
        doubles.append(2.0**exponent)
        if -149 <= exponent < 128:
            floats.append(2.0**exponent)
            floats.append(as_float32(2.0**exponent * 1.0000001))
    doubles += [10 ** chosen.uniform(-8, 19) for _ in range(4000)]
    floats += [as_float32(10 ** chosen.uniform(-8, 10)) for _ in range(4000)]
    doubles += [float(chosen.randrange(1 << 60)) for _ in range(500)]
    floats += [float(chosen.randrange(1 << 30)) for _ in range(500)]
    lines = [("d", double_bits(value)) for value in doubles]
    lines += [("f", float_bits(value)) for value in floats]
    # Any bits at all (NaNs and infinities too).
    lines += [("d", chosen.getrandbits(64)) for _ in range(4000)]
    lines += [("f", chosen.getrandbits(32)) for _ in range(4000)]
    return lines


def test_number_texts_match_swifts(tmp_path: Path) -> None:
    toolchain = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
    (tmp_path / "describe.swift").write_text(DESCRIBE)
    subprocess.run([str(toolchain.swiftc), "describe.swift", "-o", "describe"], cwd=tmp_path, check=True, timeout=300)
    lines = sample()
    given = "".join(f"{kind} {bits:x}\n" for kind, bits in lines)
    swift = subprocess.run(
        [str(tmp_path / "describe")], input=given, capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    assert len(swift) == len(lines)
    wrong = []
    compared = 0
    for (kind, bits), expected in zip(lines, swift, strict=True):
        if kind == "d":
            value = struct.unpack("<d", struct.pack("<Q", bits))[0]
        else:
            value = struct.unpack("<f", struct.pack("<I", bits))[0]
        ours = swift_description(value, single=kind == "f")
        if ours is None:
            assert math.isnan(value), (kind, hex(bits))
            continue
        compared += 1
        if ours != expected:
            wrong.append((kind, hex(bits), ours, expected))
    assert not wrong, f"{len(wrong)} of {compared} differ, first: {wrong[:10]}"
    assert compared > 15000, compared


@pytest.mark.parametrize(
    ("value", "single", "text"),
    [
        (9.5e15, False, "9.5e+15"),  # Python's repr: 9500000000000000.0
        (2.0**53, False, "9007199254740992.0"),
        (1e16, False, "1e+16"),
        (1e-5, False, "1e-05"),
        (-0.0, False, "-0.0"),
        (math.inf, False, "inf"),
        (-math.inf, True, "-inf"),
        (0.1, True, "0.1"),
        (1 / 3, True, "0.33333334"),
        (16777218.0, True, "1.6777218e+07"),
        (3.4028235e38, True, "3.4028235e+38"),
        (math.nan, False, None),
    ],
)
def test_number_texts(value: float, single: bool, text: str | None) -> None:
    assert swift_description(value, single) == text
