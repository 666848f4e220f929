"""Charts from the data ``Jupyter.plot``/``scatter``/``bar``/``histogram`` send: Vega-Lite and text; pure.

JupyterLab draws ``application/vnd.vegalite.v5+json`` by itself; the spec carries its data inline.
Frontends without Vega-Lite (jupyter console, nbconvert to text) get the chart drawn in characters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

VEGA_LITE = "application/vnd.vegalite.v5+json"
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
_KINDS = {"line": "Line chart", "point": "Scatter plot", "bar": "Bar chart", "histogram": "Histogram"}
_TEXT_COLUMNS = 60
_TEXT_ROWS = 12
_TEXT_BAR = 40
_TEXT_BARS = 40


class ChartError(ValueError):
    """Chart data the kernel cannot draw; the text says why."""


@dataclass(frozen=True)
class Chart:
    """One chart: its kind (a Vega-Lite mark, or histogram), its data and its labels."""

    mark: str
    x: list[float | None]
    y: list[float | None]
    labels: list[str]
    x2: list[float]
    title: str | None
    x_label: str
    y_label: str


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ChartError(f"expected numbers, got {value!r}")
    return float(value) if math.isfinite(value) else None


def parse_chart(fields: Any) -> Chart:
    """Read the chart data Swift sends: mark, y, and x, labels or bins; raise ChartError."""
    if not isinstance(fields, dict) or fields.get("mark") not in _KINDS or not isinstance(fields.get("y"), list):
        raise ChartError("expected a mark and numbers")
    mark = str(fields["mark"])
    y = [_number(v) for v in fields["y"]]
    x: list[float | None] = [float(i) for i in range(len(y))]
    labels: list[str] = []
    x2: list[float] = []
    x_default, y_default = ("index", "value") if "x" not in fields else ("x", "y")
    if isinstance(fields.get("x"), list):
        x = [_number(v) for v in fields["x"]]
    if mark == "bar":
        labels = [str(label) for label in fields.get("labels", [])]
        x_default, y_default = "label", "value"
    elif mark == "histogram":
        bins = fields.get("bins", 10)
        if not isinstance(bins, int) or isinstance(bins, bool) or not 1 <= bins <= 10_000:
            raise ChartError(f"bins must be a whole number from 1 to 10000, not {bins!r}")
        x, x2, y = _histogram([v for v in y if v is not None], bins)
        x_default, y_default = "value", "count"
    count = min(len(x), len(y)) if mark != "bar" else min(len(labels), len(y))
    title = fields.get("title")
    return Chart(
        mark,
        x[:count],
        y[:count],
        labels[:count],
        x2[:count],
        str(title) if title is not None else None,
        str(fields.get("xLabel", x_default)),
        str(fields.get("yLabel", y_default)),
    )


def _histogram(values: list[float], bins: int) -> tuple[list[float | None], list[float], list[float | None]]:
    """Return bin starts, bin ends and counts: ``bins`` bins of equal width from the least value to the greatest."""
    low = min(values, default=0.0)
    high = max(values, default=0.0)
    width = (high - low) / bins if high > low else 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    starts: list[float | None] = [low + i * width for i in range(bins)]
    return starts, [low + (i + 1) * width for i in range(bins)], [float(c) for c in counts]


def vega_lite(chart: Chart) -> dict[str, Any]:
    """Return the chart's Vega-Lite v5 spec, its data inline."""
    if chart.mark == "bar":
        rows = [{"label": label, "y": y} for label, y in zip(chart.labels, chart.y, strict=True)]
        x: dict[str, Any] = {"field": "label", "type": "nominal", "sort": None, "title": chart.x_label}
        encoding: dict[str, Any] = {"x": x}
    elif chart.mark == "histogram":
        rows = [{"x": a, "x2": b, "y": y} for a, b, y in zip(chart.x, chart.x2, chart.y, strict=True)]
        x = {"field": "x", "type": "quantitative", "bin": {"binned": True}, "title": chart.x_label}
        encoding = {"x": x, "x2": {"field": "x2"}}
    else:
        rows = [{"x": a, "y": y} for a, y in zip(chart.x, chart.y, strict=True)]
        encoding = {"x": {"field": "x", "type": "quantitative", "title": chart.x_label}}
    encoding["y"] = {"field": "y", "type": "quantitative", "title": chart.y_label}
    spec: dict[str, Any] = {"$schema": VEGA_LITE_SCHEMA}
    if chart.title is not None:
        spec["title"] = chart.title
    mark = "bar" if chart.mark == "histogram" else chart.mark
    spec |= {
        "width": 400,
        "height": 250,
        "data": {"values": rows},
        "mark": {"type": mark, "tooltip": True},
        "encoding": encoding,
    }
    return spec


def short(value: float | None) -> str:
    """Return a number in a few significant digits."""
    if value is None:
        return "nan"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def text_chart(chart: Chart) -> str:
    """Draw the chart in characters: bars for bar charts and histograms, a grid of dots otherwise."""
    kind = _KINDS[chart.mark]
    lines = [f"{kind}: {chart.title}" if chart.title else kind]
    finite = [y for y in chart.y if y is not None]
    if not finite:
        return "\n".join([*lines, "(no data)"])
    top, bottom = max(finite), min(finite)
    if chart.mark in ("bar", "histogram"):
        if chart.mark == "bar":
            names = [label[:20] for label in chart.labels]
        else:
            names = [f"{short(a)} to {short(b)}" for a, b in zip(chart.x, chart.x2, strict=True)]
        width = max(len(name) for name in names)
        for name, y in list(zip(names, chart.y, strict=True))[:_TEXT_BARS]:
            length = round(max(0.0, y or 0.0) / top * _TEXT_BAR) if top > 0 else 0
            lines.append(f"{name.ljust(width)} | {'█' * length} {short(y)}")
        if len(names) > _TEXT_BARS:
            lines.append(f"({len(names) - _TEXT_BARS} more)")
        return "\n".join(lines)
    points = [(x, y) for x, y in zip(chart.x, chart.y, strict=True) if x is not None and y is not None]
    left, right = min(p[0] for p in points), max(p[0] for p in points)
    grid = [[" "] * _TEXT_COLUMNS for _ in range(_TEXT_ROWS)]
    for x, y in points:
        column = round((x - left) / (right - left) * (_TEXT_COLUMNS - 1)) if right > left else 0
        row = round((top - y) / (top - bottom) * (_TEXT_ROWS - 1)) if top > bottom else _TEXT_ROWS // 2
        grid[row][column] = "•" if chart.mark == "line" else "o"
    labels = [short(top), *[""] * (_TEXT_ROWS - 2), short(bottom)]
    pad = max(len(label) for label in labels)
    lines += [f"{label.rjust(pad)} |{''.join(row).rstrip()}" for label, row in zip(labels, grid, strict=True)]
    lines.append(f"{' ' * pad} +{'-' * _TEXT_COLUMNS}")
    axis = f"{chart.x_label}: {short(left)} … {short(right)} ({len(points)} points); {chart.y_label}"
    lines.append(f"{' ' * (pad + 2)}{axis}")
    return "\n".join(lines)


def chart_bundle(fields: Any) -> dict[str, Any]:
    """Return the MIME bundle of the chart data Swift sends: Vega-Lite and a text drawing."""
    chart = parse_chart(fields)
    return {VEGA_LITE: vega_lite(chart), "text/plain": text_chart(chart)}
