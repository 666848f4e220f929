"""Swift's description of a value read from its bytes in the Swift process: no evaluation, no LLDB formatter.

A cell that ends in an array showed Swift's ``String(reflecting:)`` of it read element by element
from LLDB's Swift formatters: each array's formatter is set up at its first use (1-2 ms), each
element's value or summary then costs a read through LLDB (0.1-0.5 ms), so an array of 100
Strings took 50 ms, twice what a second evaluation in Swift takes. Here the value's own bytes
(which LLDB holds for the result) and the memory they point at (one ``pread`` per array, see
``procfs.ProcessMemory``) are enough, for the standard library's layouts on 64-bit little-endian
targets (x86_64, arm64):

- ``Array<Element>`` is one pointer to its storage object: a 16-byte heap object header, the count
  and the capacity (shifted left by one, a flag in the low bit), then the elements, each
  ``MemoryLayout<Element>.stride`` bytes, from offset 32 for the element types read here.
- ``String`` is 16 bytes: a word of count and flags, then an object word whose top nibble says
  its form (``StringObject.swift``). A small string (b61) holds up to 15 UTF-8 bytes inline, its
  count in bits 56-59. A large one that provides fast UTF-8 (b60-b62 clear) and is tail-allocated
  (b60 of the count and flags) keeps its count in the low 48 bits of the first word and its bytes
  32 bytes after the address in the object word's low 60 bits (native storage, or a literal's
  bytes biased by the same 32). Bridged, shared and foreign strings are left to Swift.

Only text that Swift writes back as it is (printable ASCII with no quote or backslash) is shown
from here; anything else, like a NaN, returns None and Swift describes the value.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

from .numbers import swift_description

# Read ``size`` bytes at an address of the Swift process (None if it cannot be read).
Read = Callable[[int, int], bytes | None]

# The scalar element types read here, by their struct formats (their size is their stride).
_SCALARS = {
    "Swift.Int": "<q",
    "Swift.Int64": "<q",
    "Swift.Int32": "<i",
    "Swift.Int16": "<h",
    "Swift.Int8": "<b",
    "Swift.UInt": "<Q",
    "Swift.UInt64": "<Q",
    "Swift.UInt32": "<I",
    "Swift.UInt16": "<H",
    "Swift.UInt8": "<B",
    "Swift.Bool": "<B",
    "Swift.Double": "<d",
    "Swift.Float": "<f",
}
_WORD = 8
_STRING_SIZE = 16
_ARRAY_HEADER = 32
# Where a large string's bytes start after the address in its object word.
_STRING_BIAS = 32
_ADDRESS_MASK = 0x0FFF_FFFF_FFFF_FFFF
_COUNT_MASK = 0x0000_FFFF_FFFF_FFFF
_SMALL = 0x20  # of the object word's top byte
_NOT_FAST = 0x50  # bridged (b62) or foreign (b60), of the object word's top byte
_TAIL_ALLOCATED = 1 << 60  # of the count and flags word
# The longest String read here; a longer one is described by Swift.
STRING_LIMIT = 1 << 16
# Text Swift's debug description shows unchanged, between its quotes.
_PLAIN_TEXT = re.compile(rb"[ !#-\[\]-~]*")


def array_element(type_name: str) -> str | None:
    """Return the element type of an ``Array`` type name (``Swift.Array<Swift.Int>``), or None."""
    if type_name.startswith("Swift.Array<") and type_name.endswith(">"):
        return type_name[len("Swift.Array<") : -1]
    return None


def readable(type_name: str) -> bool:
    """Say whether values of ``type_name`` can be described from their bytes (see ``describe``)."""
    return _stride(type_name) is not None


def struct_layout(field_types: list[str]) -> tuple[list[int], int] | None:
    """Return where a struct's stored properties of these types lie in its bytes, and its size.

    A struct declared in a cell is laid out as written: each property at the next offset aligned
    to its type's alignment. None when a type is not one read here.
    """
    offsets = []
    end = 0
    for type_name in field_types:
        size = _stride(type_name)
        if size is None:
            return None
        alignment = min(size, _WORD)
        end = (end + alignment - 1) // alignment * alignment
        offsets.append(end)
        end += size
    return offsets, end


def describe_fields(fields: list[tuple[int, str]], raw: bytes, read: Read, elements: int) -> list[str] | None:
    """Return the texts of the properties at (offset, type name) ``fields`` in a struct's bytes ``raw``."""
    reader = _Reader(read, elements)
    texts = []
    for offset, type_name in fields:
        text = reader.describe(type_name, raw[offset:])
        if text is None:
            return None
        texts.append(text)
    return texts


def describe(type_name: str, raw: bytes, read: Read, elements: int) -> str | None:
    """Return Swift's ``String(reflecting:)`` of the value of ``type_name`` held in ``raw``; None if not read.

    ``read`` reads what the value points at; ``elements`` bounds the array elements read in all
    (nested arrays included): a bigger value is left to Swift.
    """
    return _Reader(read, elements).describe(type_name, raw)


def _stride(type_name: str) -> int | None:
    if type_name in _SCALARS:
        return struct.calcsize(_SCALARS[type_name])
    if type_name == "Swift.String":
        return _STRING_SIZE
    element = array_element(type_name)
    return _WORD if element is not None and _stride(element) is not None else None


class _Reader:
    def __init__(self, read: Read, elements: int) -> None:
        self._read = read
        self._left = elements

    def describe(self, type_name: str, raw: bytes) -> str | None:
        size = _stride(type_name)
        if size is None or len(raw) < size:
            return None
        if type_name == "Swift.String":
            return self._string(raw)
        element = array_element(type_name)
        if element is not None:
            return self._array(element, raw)
        texts = _scalars(type_name, raw[:size], 1)
        return texts[0] if texts else None

    def _array(self, element: str, raw: bytes) -> str | None:
        size = _stride(element)
        assert size is not None  # checked by ``describe``
        (storage,) = struct.unpack_from("<Q", raw)
        header = self._read(storage, _ARRAY_HEADER) if storage else None
        if header is None:
            return None
        count, capacity = struct.unpack_from("<qQ", header, _ARRAY_HEADER - 2 * _WORD)
        if not 0 <= count <= capacity >> 1 or count > self._left:
            return None
        self._left -= count
        if count == 0:
            return "[]"
        body = self._read(storage + _ARRAY_HEADER, count * size)
        if body is None:
            return None
        if element in _SCALARS:
            texts = _scalars(element, body, count)
            return f"[{', '.join(texts)}]" if texts else None
        parts = []
        for index in range(count):
            part = self.describe(element, body[index * size : (index + 1) * size])
            if part is None:
                return None
            parts.append(part)
        return f"[{', '.join(parts)}]"

    def _string(self, raw: bytes) -> str | None:
        count_and_flags, object_bits = struct.unpack_from("<QQ", raw)
        form = object_bits >> 56
        text: bytes | None
        if form & _SMALL:
            text = raw[: form & 0x0F]
        elif form & _NOT_FAST or not count_and_flags & _TAIL_ALLOCATED:
            return None
        else:
            count = count_and_flags & _COUNT_MASK
            if count > STRING_LIMIT:
                return None
            text = self._read((object_bits & _ADDRESS_MASK) + _STRING_BIAS, count) if count else b""
        if text is None or not _PLAIN_TEXT.fullmatch(text):
            return None
        return f'"{text.decode("ascii")}"'


def _scalars(type_name: str, raw: bytes, count: int) -> list[str] | None:
    """Return the texts of ``count`` numbers or Bools of ``type_name`` in ``raw``; None if one has none."""
    fmt = _SCALARS[type_name]
    numbers = struct.unpack(f"{fmt[0]}{count}{fmt[1:]}", raw)
    if type_name == "Swift.Bool":
        if not set(numbers) <= {0, 1}:
            return None
        return ["true" if number else "false" for number in numbers]
    if type_name in ("Swift.Double", "Swift.Float"):
        single = type_name == "Swift.Float"
        texts = []
        for number in numbers:
            text = swift_description(number, single=single)
            if text is None:  # a NaN
                return None
            texts.append(text)
        return texts
    return list(map(str, numbers))
