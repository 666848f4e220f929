"""Turn display messages from the Swift ``Jupyter`` API into Jupyter iopub messages; pure."""

from __future__ import annotations

import base64
import binascii
import html
import json
from typing import Any

from .output import Display

_IMAGE_TYPES = ("image/png", "image/jpeg")


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
    if not isinstance(data, dict) or not data:
        raise DisplayError("a display needs at least one MIME type")
    bundle: dict[str, Any] = {}
    for mime, value in data.items():
        if not isinstance(value, str):
            raise DisplayError(f"{mime}: expected text")
        if mime == "application/json":
            try:
                bundle[mime] = json.loads(value)
            except json.JSONDecodeError as error:
                raise DisplayError(f"json: not valid JSON ({error})") from None
        elif mime in _IMAGE_TYPES:
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error:
                raise DisplayError(f"{mime}: not valid base64") from None
            bundle[mime] = value
        else:
            bundle[mime] = value
    content: dict[str, Any] = {"data": bundle, "metadata": {}, "transient": {}}
    display_id = message.get("id")
    if display_id is not None:
        content["transient"]["display_id"] = str(display_id)
    if message.get("update"):
        if display_id is None:
            raise DisplayError("updateDisplay needs an id")
        return "update_display_data", content
    return "display_data", content


def progress_bundle(done: int, total: int, step: str) -> dict[str, Any]:
    """Return the MIME bundle of a progress bar: ``done`` of ``total`` steps, now at ``step``."""
    plain = f"[{done}/{total}] {step}".rstrip()
    html_step = html.escape(step)
    return {
        "text/plain": plain,
        "text/html": f'<progress value="{done}" max="{max(total, 1)}"></progress> {done}/{total} {html_step}',
    }
