"""Turn display messages from the Swift ``Jupyter`` API into Jupyter iopub messages; pure."""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import struct
import zlib
from typing import Any

from .charts import ChartError, chart_bundle
from .output import Display
from .tables import TableError, table_bundle

_IMAGE_TYPES = ("image/png", "image/jpeg")
# The kernel's own types, which Swift's tables, charts and images send: the kernel draws them
# (``tables``, ``charts``, ``encode_png``) into the types frontends show.
_TABLE = "application/x.swift-kernel.table+json"
_CHART = "application/x.swift-kernel.chart+json"
_PIXELS = "application/x.swift-kernel.pixels+json"
# Types declared in cells live in LLDB's per-cell modules: `__lldb_expr_12.Point(x: 1)`.
_LLDB_MODULE_PREFIX = re.compile(r"\b__lldb_expr_\d+\.")


class DisplayError(ValueError):
    """A display message the kernel cannot show; the text says why."""


def display_message(event: Display) -> tuple[str, dict[str, Any]]:
    """Return (msg_type, content) for one display event, or raise DisplayError."""
    if event.error is not None:
        raise DisplayError(event.error)
    try:
        message = json.loads(event.payload)
    except json.JSONDecodeError as error:
        raise DisplayError(f"not valid JSON ({error})") from None
    if not isinstance(message, dict):
        raise DisplayError("expected a JSON object")
    kind = message.get("type")
    if kind == "clear":
        return "clear_output", {"wait": bool(message.get("wait", False))}
    if kind != "display":
        raise DisplayError(f"unknown message type {kind!r}")
    data = message.get("data")
    if not isinstance(data, dict):
        raise DisplayError("a display needs at least one MIME type")
    bundle = mime_bundle(data)
    if not bundle:
        raise DisplayError("a display needs at least one MIME type")
    content: dict[str, Any] = {"data": bundle, "metadata": {}, "transient": {}}
    display_id = message.get("id")
    if display_id is not None:
        content["transient"]["display_id"] = str(display_id)
    if message.get("update"):
        if display_id is None:
            raise DisplayError("updateDisplay needs an id")
        return "update_display_data", content
    return "display_data", content


def is_json_type(mime: str) -> bool:
    """Say whether a MIME type's payload is a JSON document (application/json, the +json types)."""
    return mime == "application/json" or mime.endswith("+json")


def mime_bundle(data: dict[str, Any]) -> dict[str, Any]:
    """Check a bundle of MIME type to text from Swift and return it as Jupyter sends it, or raise DisplayError.

    JSON types travel as JSON text and are sent as documents; images must be base64. The kernel's
    own types (tables, charts, pixels) become what they draw.
    """
    bundle: dict[str, Any] = {}
    for mime, value in data.items():
        if not isinstance(value, str):
            raise DisplayError(f"{mime}: expected text")
        if mime in (_TABLE, _CHART, _PIXELS):
            drawn = _draw(mime, value)
            bundle = drawn | bundle if "text/plain" in bundle else bundle | drawn
        elif mime == "text/plain":
            bundle[mime] = _LLDB_MODULE_PREFIX.sub("", value)
        elif is_json_type(mime):
            try:
                bundle[mime] = json.loads(value)
            except json.JSONDecodeError as error:
                name = "json" if mime == "application/json" else mime
                raise DisplayError(f"{name}: not valid JSON ({error})") from None
        elif mime in _IMAGE_TYPES:
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error:
                raise DisplayError(f"{mime}: not valid base64") from None
            bundle[mime] = value
        else:
            bundle[mime] = value
    return bundle


def _draw(mime: str, value: str) -> dict[str, Any]:
    """Turn one of the kernel's own types into the types it draws, or raise DisplayError."""
    name = {_TABLE: "table", _CHART: "chart", _PIXELS: "image"}[mime]
    try:
        fields = json.loads(value)
    except json.JSONDecodeError as error:
        raise DisplayError(f"{name}: not valid JSON ({error})") from None
    if mime == _PIXELS:
        return pixels_bundle(fields)
    try:
        return table_bundle(fields) if mime == _TABLE else chart_bundle(fields)
    except (TableError, ChartError) as error:
        raise DisplayError(f"{name}: {error}") from None


def result_bundle(text: str, data: dict[str, str] | None) -> tuple[dict[str, Any], str | None]:
    """Return the bundle of a cell's result and what was wrong with its rich part, if anything.

    ``text`` (text/plain) is always there: a bundle that cannot be sent leaves the text alone.
    """
    if not data:
        return {"text/plain": text}, None
    # A table's text is the table drawn; any other value's is its own, as Swift describes it.
    table = _TABLE in data
    try:
        bundle = mime_bundle({mime: value for mime, value in data.items() if not (table and mime == "text/plain")})
    except DisplayError as error:
        return {"text/plain": text}, str(error)
    if not table:
        bundle["text/plain"] = text
    return bundle, None


def pixels_bundle(pixels: Any) -> dict[str, Any]:
    """Encode raw pixels from ``Jupyter.image`` as a PNG; return its bundle, or raise DisplayError."""
    if not isinstance(pixels, dict):
        raise DisplayError("pixels: expected an object")
    sizes = [pixels.get(name) for name in ("width", "height", "channels")]
    whole = [n for n in sizes if isinstance(n, int) and not isinstance(n, bool)]
    if len(whole) != 3:
        raise DisplayError("image: width, height and channels must be whole numbers")
    width, height, channels = whole
    try:
        raw = base64.b64decode(str(pixels.get("data", "")), validate=True)
    except binascii.Error:
        raise DisplayError("image: pixels not valid base64") from None
    try:
        png = encode_png(width, height, channels, raw)
    except ValueError as error:
        raise DisplayError(f"image: {error}") from None
    kind = "RGBA" if channels == 4 else "grayscale"
    return {
        "image/png": base64.b64encode(png).decode("ascii"),
        "text/plain": f"<{kind} image, {width}x{height} pixels>",
    }


# PNG color types by bytes per pixel: gray, gray and alpha, RGB, RGBA.
_PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
# Large enough for any picture a notebook shows; an image beyond it is surely a mistake.
MAX_IMAGE_PIXELS = 1 << 26


def encode_png(width: int, height: int, channels: int, pixels: bytes) -> bytes:
    """Return a PNG of 8-bit pixels, ``channels`` bytes each (1 gray, 4 RGBA), rows from the top."""
    if channels not in _PNG_COLOR_TYPES:
        raise ValueError(f"{channels} bytes per pixel (1 gray, 2 gray and alpha, 3 RGB or 4 RGBA)")
    if width <= 0 or height <= 0 or width * height > MAX_IMAGE_PIXELS:
        raise ValueError(f"{width}x{height} pixels: each side must be positive, and at most {MAX_IMAGE_PIXELS} in all")
    stride = width * channels
    if len(pixels) != stride * height:
        raise ValueError(f"{width}x{height} pixels need {stride * height} bytes ({channels} each), got {len(pixels)}")
    # Each row starts with its filter type: 0, none.
    rows = b"".join(b"\x00" + pixels[row * stride : (row + 1) * stride] for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOR_TYPES[channels], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b"")


def progress_bundle(percent: int, step: str) -> dict[str, Any]:
    """Return the MIME bundle of a progress bar at ``percent`` done, now at ``step``."""
    return {
        "text/plain": f"{percent:3d}% {step}".rstrip(),
        "text/html": f'<progress value="{percent}" max="100"></progress> {percent}% {html.escape(step)}',
    }


def variables_bundle(rows: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Return the table of ``%whos`` (name, type, value per variable) as text/html and text/plain."""
    return table_bundle({"columns": ["Name", "Type", "Value"], "rows": [list(row) for row in rows]})
