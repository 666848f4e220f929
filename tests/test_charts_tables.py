"""The kernel's drawing of charts, tables and images, and its display bundles; pure, no kernel."""

from __future__ import annotations

import base64
import json

import pytest

from swift_kernel.charts import VEGA_LITE, ChartError, chart_bundle
from swift_kernel.display import DisplayError, encode_png, mime_bundle, result_bundle
from swift_kernel.displayable import Adopter, needs_extras
from swift_kernel.tables import table_bundle

from .display_checks import assert_valid_vega_lite, decode_png

CHARTS = [
    {"mark": "line", "x": [1, 2, 3], "y": [1.5, None, 9], "title": "t", "xLabel": "epoch", "yLabel": "loss"},
    {"mark": "line", "y": [3, 2, 1]},
    {"mark": "point", "x": [0.5, 1e-7, -2], "y": [1, 2, 3]},
    {"mark": "bar", "labels": ["a", "<b>"], "y": [2, 5]},
    {"mark": "histogram", "y": [1, 2, 2, 3, 3, 3], "bins": 3},
    {"mark": "histogram", "y": [], "bins": 4},
]


@pytest.mark.parametrize("fields", CHARTS, ids=lambda f: str(f["mark"]))
def test_each_chart_is_valid_vega_lite_with_its_data_inline_and_a_text_drawing(fields: dict[str, object]) -> None:
    bundle = chart_bundle(fields)
    spec = bundle[VEGA_LITE]
    assert_valid_vega_lite(spec)
    assert spec["$schema"] == "https://vega.github.io/schema/vega-lite/v5.json"
    values = spec["data"]["values"]
    y = fields["y"]
    if fields["mark"] == "histogram":
        assert sum(row["y"] for row in values) == len(y)  # type: ignore[arg-type]
        assert len(values) == fields["bins"]
    else:
        assert [row["y"] for row in values] == [None if v is None else float(v) for v in y]  # type: ignore[attr-defined]
    assert isinstance(bundle["text/plain"], str) and bundle["text/plain"]


def test_chart_labels_and_title_reach_the_spec_and_the_text() -> None:
    bundle = chart_bundle(CHARTS[0])
    spec = bundle[VEGA_LITE]
    assert spec["title"] == "t"
    assert spec["encoding"]["x"]["title"] == "epoch" and spec["encoding"]["y"]["title"] == "loss"
    assert spec["mark"]["type"] == "line"
    assert bundle["text/plain"].startswith("Line chart: t\n")
    histogram = chart_bundle(CHARTS[4])
    flat = [value for r in histogram[VEGA_LITE]["data"]["values"] for value in (r["x"], r["x2"], r["y"])]
    assert flat == pytest.approx([1, 5 / 3, 1, 5 / 3, 7 / 3, 2, 7 / 3, 3, 3])
    assert histogram["text/plain"].splitlines()[3].endswith("███ 3")


def test_bad_chart_data_is_refused() -> None:
    with pytest.raises(ChartError):
        chart_bundle({"mark": "pie", "y": [1]})
    with pytest.raises(ChartError):
        chart_bundle({"mark": "line", "y": ["a"]})
    with pytest.raises(ChartError):
        chart_bundle({"mark": "histogram", "y": [1], "bins": 0})


def test_table_is_html_and_aligned_text_with_the_gap_and_count_noted() -> None:
    rows = [["0", "a<b"], ["1", None], ["98", "x"], ["99", "y"]]
    bundle = table_bundle({"columns": ["n", "s"], "rows": rows, "total": 100, "gap": 2, "omittedColumns": 0})
    html = bundle["text/html"]
    assert html.startswith("<table><thead><tr><th>n</th><th>s</th></tr></thead>")
    assert "<td>a&lt;b</td>" in html and "<td>…</td><td>…</td>" in html
    assert "100 rows, the first 2 and the last 2 shown" in html
    assert bundle["text/plain"].splitlines() == [
        "n   s",
        "--  ---",
        "0   a<b",
        "1",
        "…   …",
        "98  x",
        "99  y",
        "(100 rows, the first 2 and the last 2 shown)",
    ]


def test_png_from_pixels_decodes_to_its_size_and_pixels() -> None:
    rgba = bytes([255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120])
    image = decode_png(base64.b64encode(encode_png(3, 2, 4, rgba)).decode())
    assert image.size == (3, 2) and image.mode == "RGBA"
    assert image.getpixel((1, 0)) == (0, 255, 0, 128) and image.getpixel((2, 1)) == (90, 100, 110, 120)
    gray = decode_png(base64.b64encode(encode_png(2, 2, 1, bytes([0, 85, 170, 255]))).decode())
    assert gray.mode == "L" and [gray.getpixel((x, y)) for y in range(2) for x in range(2)] == [0, 85, 170, 255]
    with pytest.raises(ValueError, match="need 4 bytes"):
        encode_png(2, 2, 1, b"\x00")


def test_bundles_parse_json_types_and_keep_text() -> None:
    bundle = mime_bundle({"application/vnd.vegalite.v5+json": '{"mark": "bar"}', "text/plain": "__lldb_expr_3.P()"})
    assert bundle == {"application/vnd.vegalite.v5+json": {"mark": "bar"}, "text/plain": "P()"}
    with pytest.raises(DisplayError, match="not valid JSON"):
        mime_bundle({"application/vnd.vegalite.v5+json": "{"})
    # A result's rich part that cannot be sent leaves its text, and says why.
    data, bad = result_bundle("P()", {"application/json": "{", "text/plain": "P()"})
    assert data == {"text/plain": "P()"} and bad is not None and "json" in bad
    table = json.dumps({"columns": ["a"], "rows": [["1"]], "total": 1, "gap": None})
    data, bad = result_bundle("[P(a: 1)]", {"application/x.swift-kernel.table+json": table, "text/plain": "[P(a: 1)]"})
    assert bad is None and data["text/plain"] == "a\n-\n1" and "<td>1</td>" in data["text/html"]


def test_extras_are_compiled_for_the_names_that_need_them() -> None:
    assert needs_extras("Jupyter.plot(x: a, y: b)") and needs_extras("Jupyter . table(rows)")
    assert needs_extras("Jupyter.histogram(v, bins: 3)") and needs_extras("Jupyter.image(width: 1, height: 1, gray: g)")
    assert not needs_extras('Jupyter.display(html: "<b>table</b>")') and not needs_extras("let plot = 1")


def test_adopter_declares_each_method_type_once_and_package_types_once_imported() -> None:
    bundle = "jupyterMimeBundle() -> Swift.Dictionary<Swift.String, Swift.String>"
    names = [
        f"__lldb_expr_5.Heat.{bundle}",
        f"__lldb_expr_5.Outer.Inner.{bundle}",
        f"__lldb_expr_5.Conf.{bundle}",
        f"protocol witness for __lldb_expr_2.JupyterDisplayable.{bundle} in conformance "
        "__lldb_expr_5.Conf : __lldb_expr_2.JupyterDisplayable in __lldb_expr_5",
        f"Thermometer.Reading.{bundle}",
        "Thermometer.Impostor.jupyterMimeBundle() -> Swift.String",
    ]
    adopter = Adopter()
    assert adopter.conformances("struct Heat {}", names) == [
        "extension Heat: @retroactive JupyterDisplayable {}",
        "extension Outer.Inner: @retroactive JupyterDisplayable {}",
    ]
    assert adopter.conformances("let x = 1", names) == []
    assert adopter.conformances("import Thermometer", names) == [
        "extension Thermometer.Reading: @retroactive JupyterDisplayable {}"
    ]
    adopter.reset()
    assert len(adopter.conformances("", names)) == 2
