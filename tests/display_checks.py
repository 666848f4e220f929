"""Checks the display tests share: Vega-Lite specs against the vendored v5 schema, PNGs through Pillow."""

from __future__ import annotations

import base64
import gzip
import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from PIL import Image

SCHEMA = Path(__file__).resolve().parent / "data" / "vega-lite-v5.20.1.schema.json.gz"


@cache
def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads(gzip.decompress(SCHEMA.read_bytes()))
    return jsonschema.Draft7Validator(schema)


def assert_valid_vega_lite(spec: dict[str, Any]) -> None:
    """Fail with the schema's complaints unless ``spec`` is a valid Vega-Lite v5 spec."""
    errors = sorted(_validator().iter_errors(spec), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message[:200]}" for e in errors[:5]]


def decode_png(data: str) -> Image.Image:
    """Decode a base64 PNG from a display bundle with Pillow (which checks its chunks and CRCs)."""
    raw = base64.b64decode(data, validate=True)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(raw), formats=["PNG"])
    image.load()
    return image
