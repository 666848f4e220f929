"""Values described from their bytes (swift_kernel/layouts.py), in a fake process memory.

The layouts themselves are checked against the real Swift process in test_execution.py
(``test_values_read_without_running_code_match_swifts_description``); here every branch of the
decoder, with memory laid out by hand as the standard library lays it out.
"""

from __future__ import annotations

import struct

import pytest

from swift_kernel.layouts import STRING_LIMIT, array_element, describe, describe_fields, readable, struct_layout


class Memory:
    """A process's memory: blocks placed at addresses, read as a whole or in part."""

    def __init__(self) -> None:
        self.blocks: dict[int, bytes] = {}
        self.reads = 0
        self._next = 0x7000_0000_0000

    def place(self, data: bytes) -> int:
        address = self._next
        self.blocks[address] = data
        self._next += (len(data) + 0x1000) & ~0xFFF
        return address

    def read(self, address: int, size: int) -> bytes | None:
        self.reads += 1
        for start, data in self.blocks.items():
            if start <= address and address + size <= start + len(data):
                return data[address - start : address - start + size]
        return None


def word(value: int) -> bytes:
    return struct.pack("<Q", value)


def array(memory: Memory, elements: bytes, count: int, capacity: int | None = None) -> bytes:
    """Return an Array's own bytes: a pointer to storage holding ``count`` elements."""
    header = (
        word(0xAAAA) + word(3) + struct.pack("<q", count) + word((capacity if capacity is not None else count) << 1)
    )
    return word(memory.place(header + elements))


def small_string(text: bytes) -> bytes:
    assert len(text) <= 15
    padded = text.ljust(15, b"\0")
    return padded + bytes([0xE0 | len(text)])  # immortal, ASCII, small; the count in the low nibble


def large_string(memory: Memory, text: bytes, *, flags: int = 0xD000, form: int = 0x80) -> bytes:
    """Return a large String's bytes: its count and flags, and its bytes' address less 32 with ``form``."""
    address = memory.place(b"\0" * 32 + text) if text else 0
    return word(flags << 48 | len(text)) + word(form << 56 | address)


def test_numbers_and_bools_from_their_bytes() -> None:
    memory = Memory()
    assert describe("Swift.Int", struct.pack("<q", -42), memory.read, 10) == "-42"
    assert describe("Swift.UInt8", b"\xff", memory.read, 10) == "255"
    assert describe("Swift.Int16", struct.pack("<h", -2), memory.read, 10) == "-2"
    assert describe("Swift.Double", struct.pack("<d", 0.1), memory.read, 10) == "0.1"
    assert describe("Swift.Double", struct.pack("<d", 1e16), memory.read, 10) == "1e+16"
    assert describe("Swift.Float", struct.pack("<f", 0.1), memory.read, 10) == "0.1"
    assert describe("Swift.Bool", b"\x01", memory.read, 10) == "true"
    assert describe("Swift.Bool", b"\x00", memory.read, 10) == "false"
    assert memory.reads == 0


def test_what_is_not_read_here_returns_none() -> None:
    memory = Memory()
    assert describe("Swift.Bool", b"\x02", memory.read, 10) is None  # not a Bool's bits
    assert describe("Swift.Double", struct.pack("<d", float("nan")), memory.read, 10) is None  # Swift's text
    assert describe("Swift.Int", b"\x01\x02", memory.read, 10) is None  # too few bytes
    assert describe("Swift.Optional<Swift.Int>", b"\0" * 9, memory.read, 10) is None
    assert describe("Swift.Array<Swift.Optional<Swift.Int>>", word(1), memory.read, 10) is None
    assert not readable("Swift.Dictionary<Swift.String, Swift.Int>")
    assert readable("Swift.Array<Swift.Array<Swift.Float>>")
    assert array_element("Swift.Array<Swift.Int>") == "Swift.Int"
    assert array_element("Swift.Set<Swift.Int>") is None


def test_small_strings_are_read_from_their_own_bytes() -> None:
    memory = Memory()
    assert describe("Swift.String", small_string(b"hello"), memory.read, 10) == '"hello"'
    assert describe("Swift.String", small_string(b""), memory.read, 10) == '""'
    assert describe("Swift.String", small_string(b"fifteen chars!!"), memory.read, 10) == '"fifteen chars!!"'
    assert memory.reads == 0


def test_large_strings_are_read_where_their_object_points() -> None:
    memory = Memory()
    text = b"a much longer literal string of text"
    assert describe("Swift.String", large_string(memory, text), memory.read, 10) == f'"{text.decode()}"'
    native = large_string(memory, b"x" * 40, flags=0x3000, form=0x00)  # native, tail-allocated
    assert describe("Swift.String", native, memory.read, 10) == f'"{"x" * 40}"'


@pytest.mark.parametrize(
    ("text", "flags", "form"),
    [
        (b"shared storage, not tail-allocated", 0xC000, 0x00),
        (b"a bridged string from elsewhere", 0xD000, 0x40),
        (b"a foreign string of another form", 0xD000, 0x10),
        (b"x" * (STRING_LIMIT + 1), 0xD000, 0x80),
    ],
)
def test_strings_of_other_forms_are_left_to_swift(text: bytes, flags: int, form: int) -> None:
    memory = Memory()
    assert describe("Swift.String", large_string(memory, text, flags=flags, form=form), memory.read, 10) is None


@pytest.mark.parametrize("text", [b'quote "', b"back\\slash", b"tab\there", "é".encode(), b"bell \x07"])
def test_text_swift_escapes_is_left_to_swift(text: bytes) -> None:
    memory = Memory()
    assert describe("Swift.String", small_string(text), memory.read, 10) is None
    assert describe("Swift.String", large_string(memory, text * 4), memory.read, 10) is None


def test_arrays_of_numbers_bools_and_strings() -> None:
    memory = Memory()
    ints = array(memory, struct.pack("<3q", 1, -2, 3), 3)
    assert describe("Swift.Array<Swift.Int>", ints, memory.read, 10) == "[1, -2, 3]"
    floats = array(memory, struct.pack("<2f", 0.5, 0.1), 2, capacity=4)
    assert describe("Swift.Array<Swift.Float>", floats, memory.read, 10) == "[0.5, 0.1]"
    bools = array(memory, b"\x01\x00", 2)
    assert describe("Swift.Array<Swift.Bool>", bools, memory.read, 10) == "[true, false]"
    strings = array(memory, small_string(b"a") + large_string(memory, b"b c d e f g h i j k"), 2)
    assert describe("Swift.Array<Swift.String>", strings, memory.read, 10) == '["a", "b c d e f g h i j k"]'
    empty = array(memory, b"", 0)
    assert describe("Swift.Array<Swift.String>", empty, memory.read, 10) == "[]"


def test_nested_arrays_share_one_bound_on_elements() -> None:
    memory = Memory()
    inner = [array(memory, struct.pack("<2q", 1, 2), 2), array(memory, struct.pack("<q", 3), 1)]
    outer = array(memory, b"".join(inner), 2)
    assert describe("Swift.Array<Swift.Array<Swift.Int>>", outer, memory.read, 5) == "[[1, 2], [3]]"
    assert describe("Swift.Array<Swift.Array<Swift.Int>>", outer, memory.read, 4) is None  # 2 + 2 + 1 elements


def test_arrays_that_cannot_be_read_are_left_to_swift() -> None:
    memory = Memory()
    assert describe("Swift.Array<Swift.Int>", word(0), memory.read, 10) is None  # no storage
    assert describe("Swift.Array<Swift.Int>", word(0x1234), memory.read, 10) is None  # unreadable
    beyond = array(memory, struct.pack("<2q", 1, 2), 3)  # the count says more than is there
    assert describe("Swift.Array<Swift.Int>", beyond, memory.read, 10) is None
    over_capacity = array(memory, struct.pack("<2q", 1, 2), 2, capacity=1)
    assert describe("Swift.Array<Swift.Int>", over_capacity, memory.read, 10) is None
    with_nan = array(memory, struct.pack("<2d", 1.0, float("nan")), 2)
    assert describe("Swift.Array<Swift.Double>", with_nan, memory.read, 10) is None
    escaped = array(memory, small_string(b"ok") + small_string(b"not\nok"), 2)
    assert describe("Swift.Array<Swift.String>", escaped, memory.read, 10) is None


def test_a_structs_properties_are_laid_out_in_order_each_aligned() -> None:
    types = ["Swift.Int8", "Swift.Int16", "Swift.Float", "Swift.Bool", "Swift.String", "Swift.Array<Swift.Int>"]
    assert struct_layout(types) == ([0, 2, 4, 8, 16, 32], 40)
    assert struct_layout(["Swift.Bool", "Swift.Double", "Swift.Bool"]) == ([0, 8, 16], 17)
    assert struct_layout([]) == ([], 0)
    assert struct_layout(["Swift.Int", "__lldb_expr_3.Point"]) is None


def test_a_structs_properties_are_read_from_its_bytes() -> None:
    memory = Memory()
    raw = b"\xff\0" + struct.pack("<h", 300) + struct.pack("<f", 0.5) + b"\x01" + b"\0" * 7 + small_string(b"Ann")
    fields = [(0, "Swift.Int8"), (2, "Swift.Int16"), (4, "Swift.Float"), (8, "Swift.Bool"), (16, "Swift.String")]
    assert describe_fields(fields, raw, memory.read, 10) == ["-1", "300", "0.5", "true", '"Ann"']
    assert describe_fields([(0, "Swift.Int8"), (1, "Swift.Bool")], b"\x01\x02", memory.read, 10) is None
