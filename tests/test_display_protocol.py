"""Rich results and displays through the real kernel: JupyterDisplayable, tables, charts, images."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from swift_kernel.charts import VEGA_LITE

from .conftest import KernelPair
from .display_checks import assert_valid_vega_lite, decode_png
from .utils import Execution, execute, value

pytestmark = pytest.mark.lldb

PACKAGES = Path(__file__).resolve().parent / "packages"

HEAT = """
struct Heat: JupyterDisplayable {
    var degrees: Int
    func jupyterMimeBundle() -> [String: String] {
        [
            "text/html": "<b>\\(degrees)°</b>",
            "text/markdown": "**\\(degrees)°**",
            "text/latex": "$\\(degrees)^\\\\circ$",
            "application/json": "{\\"degrees\\": \\(degrees)}",
            "image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg'/>",
            "image/png": "iVBORw0KGgo=",
        ]
    }
}
"""


def only(execution: Execution, msg_type: str) -> dict[str, Any]:
    """Return the content of the one message of ``msg_type`` the cell sent."""
    assert execution.status == "ok", execution.content
    found = execution.of_type(msg_type)
    assert len(found) == 1, [m["msg_type"] for m in execution.messages]
    return dict(found[0]["content"])


def result_data(kc: BlockingKernelClient, code: str) -> dict[str, Any]:
    return dict(only(execute(kc, code), "execute_result")["data"])


def test_cell_type_adopting_the_protocol_is_shown_with_all_its_mime_types(kc: BlockingKernelClient) -> None:
    assert execute(kc, HEAT).status == "ok"
    data = result_data(kc, "Heat(degrees: 30)")
    assert data == {
        "text/html": "<b>30°</b>",
        "text/markdown": "**30°**",
        "text/latex": "$30^\\circ$",
        "application/json": {"degrees": 30},
        "image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg'/>",
        "image/png": "iVBORw0KGgo=",
        # text/plain is always there: as Swift describes the value, when the bundle has none
        "text/plain": "Heat(degrees: 30)",
    }
    # Jupyter.display(value) anywhere in a cell, and updated in place by its id.
    shown = execute(
        kc, 'Jupyter.display(Heat(degrees: 1), id: "heat")\nJupyter.updateDisplay(id: "heat", Heat(degrees: 2))\n7'
    )
    first, update = only(shown, "display_data"), only(shown, "update_display_data")
    assert first["data"]["text/html"] == "<b>1°</b>" and first["data"]["text/plain"] == "Heat(degrees: 1)"
    assert update["data"]["text/html"] == "<b>2°</b>"
    assert first["transient"]["display_id"] == update["transient"]["display_id"] == "heat"
    assert only(shown, "execute_result")["data"] == {"text/plain": "7"}
    # Its own text/plain wins, and the existential is opened.
    own = 'struct Named: JupyterDisplayable { func jupyterMimeBundle() -> [String: String] { ["text/plain": "mine"] } }'
    assert execute(kc, own).status == "ok"
    assert result_data(kc, "let any: any JupyterDisplayable = Named()\nany") == {"text/plain": "mine"}


def test_a_type_with_only_the_method_is_shown_the_same_way(kc: BlockingKernelClient) -> None:
    cold = 'struct Cold { var t = -5\n func jupyterMimeBundle() -> [String: String] { ["text/html": "<i>\\(t)</i>"] } }'
    # Declared and used as the result in the same cell, then shown by Jupyter.display in a later one.
    data = result_data(kc, cold + "\nCold()")
    assert data == {"text/html": "<i>-5</i>", "text/plain": "Cold(t: -5)"}
    shown = only(execute(kc, "Jupyter.display(Cold(t: 3))"), "display_data")
    assert shown["data"] == {"text/html": "<i>3</i>", "text/plain": "Cold(t: 3)"}
    # Another signature is not the protocol's: plain text.
    other = "struct Odd { func jupyterMimeBundle() -> String { \"x\" } }\nOdd()"
    assert result_data(kc, other) == {"text/plain": "Odd()"}


def test_a_bad_or_crashing_bundle_leaves_the_text_and_the_kernel(kc: BlockingKernelClient) -> None:
    bad = "struct Bad: JupyterDisplayable {\n func jupyterMimeBundle() -> [String: String] {\n"
    bad += ' ["application/json": "{"] } }'
    execution = execute(kc, bad + "\nBad()")
    assert only(execution, "execute_result")["data"] == {"text/plain": "Bad()"}
    assert "JupyterDisplayable: json: not valid JSON" in execution.stream("stderr")
    crash = "struct Boom: JupyterDisplayable {\n func jupyterMimeBundle() -> [String: String] {\n"
    crash += ' fatalError("no bundle") } }'
    execution = execute(kc, crash + "\nlet kept = 5\nBoom()")
    assert execution.status == "ok"
    assert "no bundle" in execution.stream("stderr")
    assert value(kc, "kept + 1") == "6"


def test_a_result_larger_than_the_channels_pipe(kc: BlockingKernelClient) -> None:
    # 200,000 characters: more than a pipe holds, which once left the kernel waiting for good.
    started = time.monotonic()
    text = value(kc, 'String(repeating: "x", count: 200_000)')
    assert text == '"' + "x" * 200_000 + '"'
    assert time.monotonic() - started < 30


def test_tables_of_structs_tuples_and_dictionaries(kc: BlockingKernelClient) -> None:
    setup = (
        "struct Row { var name: String; var score: Double?; var tags: [String] }\n"
        'let rows = [Row(name: "a<b", score: 1.5, tags: ["x"]), Row(name: "c", score: nil, tags: [])]'
    )
    assert execute(kc, setup).status == "ok"
    data = only(execute(kc, "Jupyter.table(rows)"), "display_data")["data"]
    assert data["text/html"].startswith("<table><thead><tr><th>name</th><th>score</th><th>tags</th></tr>")
    assert "<td>a&lt;b</td><td>1.5</td><td>[&quot;x&quot;]</td>" in data["text/html"]
    assert "<td>c</td><td>nil</td><td>[]</td>" in data["text/html"]
    assert data["text/plain"].splitlines()[0].split() == ["name", "score", "tags"]
    tuples = only(execute(kc, 'Jupyter.table([(id: 1, "one"), (id: 2, "two")])'), "display_data")["data"]
    assert "<th>id</th><th>1</th>" in tuples["text/html"] and "<td>2</td><td>two</td>" in tuples["text/html"]
    pairs = only(execute(kc, 'Jupyter.table(["k": Row(name: "n", score: 2, tags: [])])'), "display_data")["data"]
    assert "<th>key</th><th>name</th><th>score</th><th>tags</th>" in pairs["text/html"]
    assert "<td>k</td><td>n</td><td>2.0</td><td>[]</td>" in pairs["text/html"]


def test_large_tables_are_cut_to_their_first_and_last_rows(kc: BlockingKernelClient) -> None:
    long = "y" * 1000
    code = (
        f'struct Big {{ var n: Int; var text: String }}\nlet long = "{long}"\n'
        "let big = (0..<1_000_000).map { Big(n: $0, text: long) }"
    )
    assert execute(kc, code, timeout=120).status == "ok"
    shown = only(execute(kc, "Jupyter.table(big)"), "display_data")["data"]
    assert len(json.dumps(shown)) < 20_000
    assert "1,000,000 rows, the first 10 and the last 10 shown" in shown["text/html"]
    assert "<td>0</td>" in shown["text/html"] and "<td>999999</td>" in shown["text/html"]
    assert "<td>10</td>" not in shown["text/html"]
    assert "y" * 199 + "…" in shown["text/html"]  # a long cell is cut too
    # %display tables on: a collection of rows that ends a cell is a table; other results are not.
    on = execute(kc, "%display tables on\nbig")
    data = only(on, "execute_result")["data"]
    assert "<th>n</th><th>text</th>" in data["text/html"] and len(json.dumps(data)) < 20_000
    assert data["text/plain"].splitlines()[0].split() == ["n", "text"]
    assert result_data(kc, "[1, 2, 3]") == {"text/plain": "[1, 2, 3]"}
    assert result_data(kc, '"text"') == {"text/plain": '"text"'}
    assert "text/html" in result_data(kc, '["a": (x: 1, y: 2)]')
    assert result_data(kc, "%display tables off\n[(x: 1, y: 2)]") == {"text/plain": "[(x: 1, y: 2)]"}


CHART_CELLS = {
    "line": 'Jupyter.plot(x: [1, 2, 3], y: [2.5, 1, 4], title: "Loss", xLabel: "epoch", yLabel: "loss")',
    "index line": "Jupyter.plot([Float(3), 2, 1])",
    "point": "Jupyter.scatter(x: [0.5, 1.5, 2.5], y: [Int32(1), 3, 2])",
    "bar": 'Jupyter.bar(labels: ["swift", "python"], values: [10, 7], title: "Stars")',
    "histogram": "Jupyter.histogram([1.0, 2, 2, 3, 3, 3, 9], bins: 4)",
}


@pytest.mark.parametrize("kind", list(CHART_CELLS))
def test_each_chart_sends_valid_vega_lite_with_data_inline_and_a_text_fallback(
    kc: BlockingKernelClient, kind: str
) -> None:
    data = only(execute(kc, CHART_CELLS[kind]), "display_data")["data"]
    assert set(data) == {VEGA_LITE, "text/plain"}
    spec = data[VEGA_LITE]
    assert_valid_vega_lite(spec)
    rows = spec["data"]["values"]
    if kind == "line":
        assert rows == [{"x": 1, "y": 2.5}, {"x": 2, "y": 1}, {"x": 3, "y": 4}]
        assert spec["title"] == "Loss" and spec["encoding"]["x"]["title"] == "epoch"
        assert data["text/plain"].startswith("Line chart: Loss")
    elif kind == "index line":
        assert rows == [{"x": 0, "y": 3}, {"x": 1, "y": 2}, {"x": 2, "y": 1}]
    elif kind == "point":
        assert spec["mark"]["type"] == "point" and [r["y"] for r in rows] == [1, 3, 2]
    elif kind == "bar":
        assert rows == [{"label": "swift", "y": 10}, {"label": "python", "y": 7}]
        assert "swift  | " in data["text/plain"]
    else:
        assert [r["y"] for r in rows] == [3, 3, 0, 1] and rows[0]["x"] == 1 and rows[-1]["x2"] == 9


def test_full_vega_lite_spec_and_a_chart_updated_in_place(kc: BlockingKernelClient) -> None:
    spec = json.dumps({
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": [{"a": 1}]},
        "mark": "tick",
        "encoding": {"x": {"field": "a", "type": "quantitative"}},
    })
    data = only(execute(kc, f"Jupyter.display(vegaLite: {json.dumps(spec)})"), "display_data")["data"]
    assert data[VEGA_LITE] == json.loads(spec)
    assert_valid_vega_lite(data[VEGA_LITE])
    broken = execute(kc, 'Jupyter.display(vegaLite: "{")')
    assert "not valid JSON" in broken.stream("stderr") and not broken.of_type("display_data")
    # A live training-loss curve: one chart, then updates of it by its id.
    live = execute(
        kc,
        'var losses: [Double] = []\nJupyter.plot(losses, title: "loss", id: "loss")\n'
        'for epoch in 1...5 {\n    losses.append(1.0 / Double(epoch))\n'
        '    Jupyter.plot(losses, title: "loss", id: "loss", update: true)\n}',
    )
    first = only(live, "display_data")
    updates = live.of_type("update_display_data")
    assert first["transient"]["display_id"] == "loss" and first["data"][VEGA_LITE]["data"]["values"] == []
    assert len(updates) == 5 and {u["content"]["transient"]["display_id"] for u in updates} == {"loss"}
    last = updates[-1]["content"]["data"][VEGA_LITE]
    assert_valid_vega_lite(last)
    assert [row["y"] for row in last["data"]["values"]] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])


def test_images_from_pixels_are_real_pngs(kc: BlockingKernelClient) -> None:
    pixels = "255, 0, 0, 255,  0, 255, 0, 255,  0, 0, 255, 128,  9, 8, 7, 6"
    rgba = execute(kc, f"Jupyter.image(width: 2, height: 2, rgba: [{pixels}])")
    image = decode_png(only(rgba, "display_data")["data"]["image/png"])
    assert image.size == (2, 2) and image.mode == "RGBA"
    assert [image.getpixel((x, y)) for y in range(2) for x in range(2)] == [
        (255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 128), (9, 8, 7, 6)
    ]
    # A heat map from numbers: the least black, the greatest white, one line.
    heat = execute(kc, "Jupyter.image(width: 64, height: 32, gray: (0..<2048).map { Double($0 % 64) * 0.5 - 3 })")
    data = only(heat, "display_data")["data"]
    image = decode_png(data["image/png"])
    assert image.size == (64, 32) and image.mode == "L"
    assert image.getpixel((0, 5)) == 0 and image.getpixel((63, 5)) == 255 and image.getpixel((21, 0)) == 85
    assert data["text/plain"] == "<grayscale image, 64x32 pixels>"
    gray = execute(kc, "Jupyter.image(width: 3, height: 1, gray: [UInt8(0), 128, 255])")
    image = decode_png(only(gray, "display_data")["data"]["image/png"])
    assert [image.getpixel((x, 0)) for x in range(3)] == [0, 128, 255]
    wrong = execute(kc, "Jupyter.image(width: 3, height: 3, rgba: [1, 2, 3])")
    assert "image: 3x3 pixels need 36 bytes" in wrong.stream("stderr") and not wrong.of_type("display_data")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_package_adopts_the_protocol_by_the_method_alone(fresh_kernel: Callable[..., KernelPair]) -> None:
    """Thermometer (tests/packages) depends on nothing of the kernel's and declares only the method."""
    _, kc = fresh_kernel("swift")
    built = execute(kc, f"%install '.package(path: \"{PACKAGES / 'Thermometer'}\")' Thermometer", timeout=300)
    assert built.status == "ok", built.content
    data = result_data(kc, "import Thermometer\nReading(celsius: 30)")
    assert data == {
        "text/html": '<span style="color: red">30.0 °C</span>',
        "text/markdown": "**30.0 °C**",
        "text/plain": "Thermometer.Reading(celsius: 30.0)",
    }
    shown = only(execute(kc, "Jupyter.display(Reading(celsius: 3))"), "display_data")["data"]
    assert shown["text/markdown"] == "**3.0 °C**"
    assert result_data(kc, "Impostor()") == {"text/plain": "Thermometer.Impostor()"}
