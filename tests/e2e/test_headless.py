"""Headless runs: examples/tour.ipynb through nbconvert and nbclient, timeouts and failing notebooks."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from .helpers import REPO, jupyter_env, venv_tool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOUR = REPO / "examples" / "tour.ipynb"
KERNELSPEC = {"name": "swift", "display_name": "Swift", "language": "swift"}


def outputs_text(cell: Any) -> str:
    """Return everything a code cell showed: streams, text/plain results and error tracebacks."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            parts.append(output["data"].get("text/plain", ""))
        elif output["output_type"] == "error":
            parts.append("\n".join(output["traceback"]))
    return "".join(parts)


def assert_tour_ran_clean(nb: Any) -> None:
    """Check that every code cell of the tour ran, none failed, and the key values came out right."""
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code_cells, "the tour has no code cells"
    errors = [output for cell in code_cells for output in cell.outputs if output["output_type"] == "error"]
    assert not errors, errors
    assert [cell.execution_count for cell in code_cells] == list(range(1, len(code_cells) + 1))
    shown = [outputs_text(cell) for cell in code_cells]
    everything = "\n".join(shown)
    # One check per idea the tour shows: print output, state kept across cells, a struct's value.
    assert "Hello from Swift\n" in shown
    assert "55" in shown and "110" in shown, shown
    assert "Point(x: 3.0, y: 4.0)" in shown, shown
    assert "5.0" in shown, shown
    assert '["SWIFT", "PYTHON", "RUST"]' in shown, shown
    assert '"pi is about 3.142"' in shown, shown
    assert "%timeout" in everything
    assert "Hello, headless reader\n" in everything, shown
    assert '"Hello, notebook!"' in shown, shown
    assert "42" in shown, shown
    # A table, charts and a type that says how it looks, each with its rich MIME type.
    data = [output.get("data", {}) for cell in code_cells for output in cell.outputs]
    assert any("<th>moons</th>" in d.get("text/html", "") for d in data), data
    assert "Jupiter  95" in everything, shown
    charts = [d["application/vnd.vegalite.v5+json"] for d in data if "application/vnd.vegalite.v5+json" in d]
    assert [chart["title"] for chart in charts] == ["sin(x)", "Moons"], charts
    assert any("#f05138" in d.get("text/html", "") for d in data), data


def write_notebook(path: Path, sources: list[str]) -> Path:
    """Write a Swift notebook with one code cell per source."""
    nb = new_notebook(cells=[new_code_cell(source) for source in sources], metadata={"kernelspec": KERNELSPEC})
    nbformat.write(nb, path)
    return path


@pytest.mark.timeout(120)
def test_tour_executes_with_nbconvert(tmp_path: Path) -> None:
    result = subprocess.run(
        [venv_tool("jupyter"), "nbconvert", "--to", "notebook", "--execute", f"--output-dir={tmp_path}", str(TOUR)],
        capture_output=True,
        text=True,
        env=jupyter_env(tmp_path / "home"),
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_tour_ran_clean(nbformat.read(tmp_path / "tour.ipynb", as_version=4))


@pytest.mark.timeout(120)
def test_tour_executes_with_nbclient() -> None:
    nb = nbformat.read(TOUR, as_version=4)
    # The kernel runs in the notebook's folder, as nbconvert and JupyterLab run it ($cwd in %install).
    NotebookClient(nb, timeout=60, startup_timeout=60, resources={"metadata": {"path": str(TOUR.parent)}}).execute()
    assert_tour_ran_clean(nb)


@pytest.mark.timeout(120)
def test_nbclient_interrupts_a_looping_cell_on_timeout_and_goes_on(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "loop.ipynb",
        [
            "var counter = 0\nlet answer = 42",
            "while true { counter &+= 1 }",
            "answer",
            "counter > 0",
        ],
    )
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=2,
        # The loop cell gets the 2 s; the others get room for a first compile on a busy machine,
        # which can take longer than that and would be interrupted too.
        timeout_func=lambda cell: 2 if "while true" in cell.source else 60,
        interrupt_on_timeout=True,
        allow_errors=True,
        startup_timeout=60,
    )
    started = time.monotonic()
    client.execute()
    elapsed = time.monotonic() - started

    setup, loop, after, counted = nb.cells
    assert not any(o["output_type"] == "error" for o in setup.outputs), setup.outputs
    loop_errors = [o for o in loop.outputs if o["output_type"] == "error"]
    assert [o["ename"] for o in loop_errors] == ["KeyboardInterrupt"], loop.outputs
    # allow_errors: the cells after the interrupted one ran, and the kernel kept its state,
    # including what the interrupted cell itself changed.
    assert outputs_text(after) == "42"
    assert outputs_text(counted) == "true"
    # 2 s of loop plus kernel start and shutdown; an interrupt that only landed on a later
    # escalation (kill and relaunch) would have lost `answer` above, a missed one would hang.
    assert elapsed < 60, elapsed


@pytest.mark.timeout(120)
def test_nbconvert_fails_on_a_swift_error(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "broken.ipynb",
        ['let fine = "this cell works"', 'let count: Int = "five"', 'print("never reached")'],
    )
    out = tmp_path / "out"
    result = subprocess.run(
        [venv_tool("jupyter"), "nbconvert", "--to", "notebook", "--execute", f"--output-dir={out}", str(path)],
        capture_output=True,
        text=True,
        env=jupyter_env(tmp_path / "home"),
        timeout=110,
        check=False,
    )
    assert result.returncode != 0
    message = result.stderr
    assert "CellExecutionError" in message, message
    assert "<Cell 2>:1:18" in message, message
    assert "cannot convert value of type 'String' to specified type 'Int'" in message, message
    assert not (out / "broken.ipynb").exists(), "nbconvert wrote a notebook for a failed run"


def test_tour_says_an_input_box_appears_before_its_readline_cell() -> None:
    """In JupyterLab the tour stops at readLine() with an input box: the markdown before it says so."""
    cells = nbformat.read(TOUR, as_version=4).cells
    first = next(i for i, cell in enumerate(cells) if cell.cell_type == "code" and "readLine()" in cell.source)
    before = next(cell for cell in reversed(cells[:first]) if cell.cell_type == "markdown")
    assert "input box appears" in before.source, before.source
