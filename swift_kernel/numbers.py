"""Swift's description of a Double or a Float, from its value: no evaluation in the Swift process.

A cell that ends in a number shows ``String(reflecting:)`` of it. LLDB reads the value itself (17
digits of a Double, 9 of a Float), and Swift's text follows from it: the shortest digits that
read back as the same number (for a Float: the same 32-bit number), the closest to it of those,
written in decimal unless the number is below 1e-4 (its first digit's place) or above 2^53 for a
Double, 2^24 for a Float, where Swift writes ``9.5e+15``. Python's ``repr`` of a float gives the
same digits for a Double but switches to exponents at 1e16; a Float's digits are found here.
``tests/test_numbers.py`` checks both against Swift's own text, value by value.
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal

# Above these magnitudes Swift writes exponents: every integer up to them is exact in the type.
_DECIMAL_LIMIT = {False: 2.0**53, True: 2.0**24}
# Where Python's repr of a Double is Swift's text: both write decimals there (repr up to 1e16).
_REPR_RANGE = (1e-4, _DECIMAL_LIMIT[False])
# The significant digits that read back as any Float.
_FLOAT_DIGITS = 9


def as_float32(value: float) -> float:
    """Return ``value`` rounded to the nearest 32-bit float (as a Python float, exactly)."""
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:  # beyond the largest Float, even rounded
        return math.copysign(math.inf, value)


def _shortest_float32(value: float) -> Decimal:
    """Return the shortest decimal that reads back as the 32-bit float ``value``, the closest of those.

    At each length, ``%e`` rounds the exact value to the nearest decimal; at a power of two the
    numbers that read back reach twice as far above as below, so its neighbours are tried too.
    Reading back goes through a double, which holds every decimal of up to 9 digits closer than
    a Float's rounding could tell.
    """
    exact = Decimal(value)
    for precision in range(_FLOAT_DIGITS):
        mantissa, exponent = f"{value:.{precision}e}".split("e")
        unit = Decimal(1).scaleb(-precision)
        near = (Decimal(mantissa) + step * unit for step in (0, -1, 1))
        fits = [number for number in (n.scaleb(int(exponent)) for n in near) if as_float32(float(number)) == value]
        if fits:
            return min(fits, key=lambda number: abs(number - exact))
    return exact


def swift_description(value: float, single: bool = False) -> str | None:
    """Return Swift's ``description`` of the Double (or, ``single``, the Float) ``value``.

    None for a NaN, whose text depends on bits a Python float does not keep (sign, signalling).
    """
    if single:
        value = as_float32(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if not single and _REPR_RANGE[0] <= abs(value) <= _REPR_RANGE[1]:
        return repr(value)  # the same shortest digits, and in this range the same decimal notation
    shortest = _shortest_float32(value) if single else Decimal(repr(value))
    sign, digit_tuple, exponent = shortest.normalize().as_tuple()
    assert isinstance(exponent, int)  # finite
    digits = "".join(map(str, digit_tuple))
    place = exponent + len(digits) - 1  # of the first digit: value = d.ddd * 10**place
    minus = "-" if sign else ""
    if place < -4 or abs(value) > _DECIMAL_LIMIT[single]:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        return f"{minus}{mantissa}e{'-' if place < 0 else '+'}{abs(place):02d}"
    if place < 0:
        return f"{minus}0.{'0' * (-place - 1)}{digits}"
    whole, fraction = digits[: place + 1].ljust(place + 1, "0"), digits[place + 1 :]
    return f"{minus}{whole}.{fraction or '0'}"
