"""JupyterLab in a real browser: Debian's chromium, headless, driven by playwright."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from .helpers import (
    ARTIFACTS,
    REPO,
    Server,
    free_port,
    jupyter_env,
    record_artifacts,
    root_flag,
    running_server,
    system_tool,
    venv_tool,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHOTS = ARTIFACTS / "jupyterlab"
SHOT_FOLDERS = {"test_a_gutter_breakpoint_stops_a_swift_cell_in_the_debugger": ARTIFACTS / "jupyterlab-debugger"}
# Kernel start plus the first compile; generous so that only a hang fails.
KERNEL_WAIT_MS = 60_000
CELL_WAIT_MS = 30_000

# Debian's chromium, not playwright's own download (which cannot be fetched here); nothing that
# phones home, so a headless run on a machine without internet is quiet and quick.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--metrics-recording-only",
]


@pytest.fixture
def lab(tmp_path: Path, shots: Path) -> Iterator[Server]:
    """Run `jupyter lab` on 127.0.0.1 with a token, a free port and an empty temporary root.

    Its log, at debug level (it then names every kernel message), goes beside the screenshots.
    """
    root = tmp_path / "root"
    root.mkdir()
    env = jupyter_env(tmp_path / "home")
    # The news prompt would cover part of the page in the screenshots.
    notification = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port, token = free_port(), uuid.uuid4().hex
    argv = [
        venv_tool("jupyter"),
        "lab",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--no-browser",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.log_level=DEBUG",
        *root_flag("ServerApp"),
    ]
    log = shots / "lab.log"
    with running_server(argv, port=port, token=token, env=env, log=log, ready_path="/api/status") as server:
        yield server


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        executable = system_tool("chromium")
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    """The test's screenshot folder, emptied; pytest's summary names it."""
    folder = SHOT_FOLDERS.get(request.node.name, SHOTS)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    record_artifacts(request.config, folder)
    return folder


def run_cell(page: Page, code: str) -> Locator:
    """Type ``code`` into the active cell, run it with Shift+Enter and return that cell."""
    cell = page.locator(".jp-Notebook .jp-Cell.jp-mod-active")
    cell.locator(".cm-content").click()
    expect(cell.locator(".cm-editor")).to_have_class(re.compile(r"\bcm-focused\b"))
    # Key by key, as a person types; the editor's auto-closed brackets and quotes are typed over.
    for number, line in enumerate(code.split("\n")):
        if number:
            page.keyboard.press("Enter")
        page.keyboard.type(line)
    expect(cell.locator(".cm-content")).to_have_text(code.replace("\n", ""))
    index = cell.evaluate("cell => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].indexOf(cell)")
    page.keyboard.press("Shift+Enter")
    ran = page.locator(".jp-Notebook .jp-Cell").nth(index)
    # "[ ]:" after Shift+Enter means JupyterLab never sent the cell ("[*]:" while the kernel has it).
    expect(ran.locator(".jp-InputArea-prompt")).not_to_have_text("[ ]:")
    return ran


def run_first_cell(page: Page, code: str) -> Locator:
    """``run_cell`` for the notebook's first cell, which JupyterLab may not send: then run it again.

    In one fresh-clone run JupyterLab 4.6 moved on to a new cell but never sent the first one
    (still "[ ]:", kernel idle; its server log shows no request reached the kernel) although the
    toolbar already showed the kernel idle and named; a person presses Shift+Enter again, and so
    does this, once, saying so. Every later cell must go out the first time.
    """
    try:
        return run_cell(page, code)
    except AssertionError:
        first = page.locator(".jp-Notebook .jp-Cell").first
        if first.locator(".jp-InputArea-prompt").inner_text().strip() != "[ ]:":
            raise
        print("JupyterLab did not send the first cell on Shift+Enter; running it again")
        first.locator(".cm-content").click()
        page.keyboard.press("Control+Enter")
        expect(first.locator(".jp-InputArea-prompt")).not_to_have_text("[ ]:")
        page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".cm-content").click()
        return first


def kernel_status(page: Page) -> Locator:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator")


@pytest.fixture
def page(browser: Browser, shots: Path) -> Iterator[Page]:
    """A browser tab; its last picture and its console log are kept too, which tell most about a failure."""
    tab = browser.new_page(viewport={"width": 1400, "height": 900})
    console: list[str] = []
    tab.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    yield tab
    tab.screenshot(path=shots / "99-last-state.png")
    (shots / "browser-console.log").write_text("\n".join(console) + "\n")
    tab.close()


def open_swift_notebook_from_launcher(page: Page, lab: Server, shots: Path) -> str:
    """Check the launcher's Swift card (display name, logo), open a notebook with it; return the name."""
    page.goto(lab.url(f"/lab?token={lab.token}"))
    spec = lab.request("GET", "/api/kernelspecs")["kernelspecs"]["swift"]["spec"]
    display_name = str(spec["display_name"])
    assert display_name.startswith("Swift "), spec
    card = page.locator(f'.jp-LauncherCard[data-category="Notebook"][title="{display_name}"]')
    expect(card).to_be_visible(timeout=KERNEL_WAIT_MS)
    expect(card.locator(".jp-LauncherCard-label")).to_have_text(display_name)
    logo = card.locator("img")
    expect(logo).to_have_attribute("src", re.compile(r"/kernelspecs/swift/logo-"))
    assert logo.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0, "the Swift logo did not load"
    source = str(logo.get_attribute("src"))
    served = page.request.get(lab.url(source)).body()
    assert served == (REPO / "swift_kernel" / "resources" / source.rsplit("/", 1)[-1]).read_bytes(), "not our logo"
    page.screenshot(path=shots / "01-launcher.png")

    card.click()
    expect(kernel_status(page)).to_have_attribute("data-status", "idle", timeout=KERNEL_WAIT_MS)
    expect(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-KernelName")).to_have_text(display_name)
    return display_name


def save_and_read_back(page: Page, lab: Server) -> dict[str, Any]:
    """Save the notebook with Ctrl+S and return it as the server stored it."""
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
    expect(tab).to_have_class(re.compile(r"\bjp-mod-dirty\b"))
    page.keyboard.press("Control+s")
    # JupyterLab asks for a name the first time an Untitled notebook is saved.
    rename = page.locator(".jp-Dialog", has_text="Rename file")
    expect(rename).to_be_visible()
    rename.get_by_role("textbox").fill("swift-in-lab.ipynb")
    rename.locator("button", has_text="Rename and Save").click()
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")).to_have_text("swift-in-lab.ipynb")
    expect(tab).not_to_have_class(re.compile(r"\bjp-mod-dirty\b"), timeout=CELL_WAIT_MS)
    return dict(lab.request("GET", "/api/contents/swift-in-lab.ipynb?content=1")["content"])


def crash_then_exit(page: Page, shots: Path) -> None:
    """Run a crashing cell and `exit` in the open notebook (cells 6 to 8; `x` is 10)."""
    # Answering the input box made its cell the active one: go on in the empty cell below it.
    page.locator(".jp-Notebook .jp-Cell").last.locator(".cm-content").click()
    # 6. a crash is one error: the message once, the cell's line under its frame, no runtime dump
    crash = run_cell(page, "let small = [1]\nsmall[5]")
    crashed = crash.locator(".jp-OutputArea-output")
    expect(crashed.first).to_contain_text("Fatal error: Index out of range", timeout=CELL_WAIT_MS)
    expect(crashed).to_have_count(1)
    expect(crashed).to_contain_text("top-level code at <Cell 6>:2")
    expect(crashed).to_contain_text("----> 2 small[5]")
    expect(crashed).not_to_contain_text("Current stack trace")
    page.screenshot(path=shots / "09-crash.png")

    # 7. `exit`: JupyterLab ignores the ask_exit payload, so the cell says how a kernel ends here,
    # and the session goes on
    leaving = run_cell(page, "exit")
    expect(leaving.locator(".jp-OutputArea-output")).to_contain_text("Kernel > Shut Down Kernel", timeout=CELL_WAIT_MS)
    expect(kernel_status(page)).to_have_attribute("data-status", "idle")
    still = run_cell(page, "x + 1")
    expect(still.locator(".jp-OutputArea-executeResult .jp-OutputArea-output")).to_have_text("11", timeout=CELL_WAIT_MS)
    page.screenshot(path=shots / "10-exit-explained.png")


def chart_and_table(page: Page, shots: Path) -> None:
    """Draw a line chart and a table in the open notebook (cells 9 and 10): JupyterLab renders both."""
    # 9. a Vega-Lite line chart, which JupyterLab draws by itself (a canvas or an svg)
    chart = run_cell(page, 'Jupyter.plot(x: [1, 2, 3, 4], y: [1.0, 4, 9, 16], title: "Squares")')
    vega = chart.locator(".jp-OutputArea-output")
    expect(vega.locator("canvas.marks, svg.marks")).to_be_visible(timeout=CELL_WAIT_MS)
    page.screenshot(path=shots / "11-chart.png")
    # 10. a table of tuples, one column per field
    table = run_cell(page, 'Jupyter.table([(name: "ada", score: 3), (name: "bob", score: 5)])')
    rendered = table.locator('.jp-OutputArea-output[data-mime-type="text/html"] table')
    expect(rendered.locator("th")).to_have_text(["name", "score"], timeout=CELL_WAIT_MS)
    expect(rendered.locator("tbody tr")).to_have_count(2)
    expect(rendered.locator("tbody tr").last).to_contain_text("bob")
    page.screenshot(path=shots / "12-table.png")


@pytest.mark.timeout(240)
def test_jupyterlab_notebook_with_the_swift_kernel(lab: Server, page: Page, shots: Path) -> None:
    display_name = open_swift_notebook_from_launcher(page, lab, shots)

    # 1. state and print output
    hello = run_first_cell(page, 'let x = 10\nprint("hello \\(x)")')
    expect(hello.locator(".jp-OutputArea-output")).to_have_text("hello 10", timeout=KERNEL_WAIT_MS)
    # The status bar's kernel item follows the session too. (Checked after a cell: right after the
    # kernel started it once stayed "Unknown" for seconds while the toolbar already said idle.)
    idle = page.locator(".jp-StatusBar-Widget", has_text=f"{display_name} | Idle")
    expect(idle).to_be_visible(timeout=CELL_WAIT_MS)
    page.screenshot(path=shots / "02-hello.png")

    # 2. an endless loop, stopped with the toolbar's interrupt button
    loop = run_cell(page, "while true {}")
    expect(kernel_status(page)).to_have_attribute("data-status", "busy", timeout=CELL_WAIT_MS)
    expect(loop.locator(".jp-InputArea-prompt")).to_have_text("[*]:")
    page.wait_for_timeout(1000)
    page.screenshot(path=shots / "03-running.png")
    page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) [data-command="notebook:interrupt-kernel"]').click()
    stderr = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    expect(loop.locator(stderr)).to_contain_text("KeyboardInterrupt", timeout=CELL_WAIT_MS)
    expect(kernel_status(page)).to_have_attribute("data-status", "idle", timeout=CELL_WAIT_MS)
    expect(loop.locator(".jp-InputArea-prompt")).to_have_text("[2]:")
    page.screenshot(path=shots / "04-interrupted.png")

    # 3. the variable from before the interrupt is still there
    result = run_cell(page, "x + 5")
    value = result.locator(".jp-OutputArea-executeResult .jp-OutputArea-output")
    expect(value).to_have_text("15", timeout=CELL_WAIT_MS)
    page.screenshot(path=shots / "05-result.png")

    # 4. a compile error points at the cell and line
    broken = run_cell(page, 'let y = x\nlet z: Int = "ten"')
    error = broken.locator(stderr)
    expect(error).to_contain_text("<Cell 4>:2:14", timeout=CELL_WAIT_MS)
    expect(error).to_contain_text("cannot convert value of type 'String' to specified type 'Int'")
    expect(kernel_status(page)).to_have_attribute("data-status", "idle")
    page.screenshot(path=shots / "06-compile-error.png")

    # 5. readLine() asks for a line in the notebook's input box; the typed text reaches Swift
    asking = run_cell(page, 'print("Name? ", terminator: "")\nlet name = readLine() ?? "none"\nprint("hi \\(name)")')
    box = asking.locator(".jp-Stdin-input")
    expect(box).to_be_visible(timeout=CELL_WAIT_MS)
    # The unfinished line printed before readLine() is the box's prompt, as Python's input() has it.
    expect(asking.locator(".jp-Stdin-prompt")).to_have_text("Name? ")
    page.screenshot(path=shots / "07-input-request.png")
    box.fill("Ada")
    box.press("Enter")
    expect(asking.locator(".jp-OutputArea-output").last).to_contain_text("hi Ada", timeout=CELL_WAIT_MS)
    expect(asking.locator(".jp-OutputArea-output").first).to_have_text("Name? Ada")
    expect(kernel_status(page)).to_have_attribute("data-status", "idle", timeout=CELL_WAIT_MS)
    page.screenshot(path=shots / "08-input-answered.png")

    crash_then_exit(page, shots)
    chart_and_table(page, shots)

    # JupyterLab saves it as a Swift notebook, outputs included.
    saved = save_and_read_back(page, lab)
    assert saved["metadata"]["kernelspec"]["name"] == "swift"
    texts = json.dumps([cell["outputs"] for cell in saved["cells"] if cell["cell_type"] == "code"])
    assert "hello 10" in texts and "KeyboardInterrupt" in texts and '"15"' in texts and "<Cell 4>" in texts
    assert "hi Ada" in texts
    assert "application/vnd.vegalite.v5+json" in texts and "<th>score</th>" in texts


# ----- the debugger ----------------------------------------------------------------------------


def type_cell(page: Page, code: str) -> None:
    """Type ``code`` into the active cell without running it."""
    cell = page.locator(".jp-Notebook .jp-Cell.jp-mod-active")
    cell.locator(".cm-content").click()
    for number, line in enumerate(code.split("\n")):
        if number:
            page.keyboard.press("Enter")
        page.keyboard.type(line)
    expect(cell.locator(".cm-content")).to_have_text(code.replace("\n", ""))


def click_gutter(page: Page, line: int) -> None:
    """Click the breakpoint gutter of the active cell beside ``line`` (from 1), as a person does.

    Returns once the Breakpoints panel lists it: JupyterLab fills the panel from the kernel's
    setBreakpoints reply, after two other round trips (dumpCell, debugInfo). A cell sent before
    then may already be compiling; the kernel keeps breakpoints given while a cell runs for the
    next stop or cell, so that cell would run through (one CI run pressed Shift+Enter that fast).
    """
    cell = page.locator(".jp-Notebook .jp-Cell.jp-mod-active")
    gutter = cell.locator(".cm-gutter.cm-breakpoint-gutter").bounding_box()
    row = cell.locator(".cm-line").nth(line - 1).bounding_box()
    assert gutter is not None and row is not None
    page.mouse.click(gutter["x"] + gutter["width"] / 2, row["y"] + row["height"] / 2)
    expect(cell.locator(".cm-breakpoint-gutter .cm-breakpoint-icon")).to_have_count(1)
    listed = page.locator(".jp-DebuggerBreakpoints .jp-DebuggerBreakpoint")
    expect(listed).to_have_count(1, timeout=CELL_WAIT_MS)
    expect(listed.first).to_contain_text(str(line))


@pytest.mark.timeout(240)
def test_a_gutter_breakpoint_stops_a_swift_cell_in_the_debugger(lab: Server, page: Page, shots: Path) -> None:
    open_swift_notebook_from_launcher(page, lab, shots)
    first = run_first_cell(page, "var counter = 5")
    expect(first.locator(".jp-InputArea-prompt")).to_have_text("[1]:", timeout=CELL_WAIT_MS)

    # The bug button is enabled for Swift notebooks (kernel_info's "debugger" feature).
    bug = page.locator(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-DebuggerBugButton button, "
        ".jp-NotebookPanel:not(.lm-mod-hidden) button.jp-DebuggerBugButton"
    ).first
    expect(bug).to_be_enabled(timeout=CELL_WAIT_MS)
    bug.click()
    expect(page.locator(".jp-DebuggerCallstack")).to_be_visible(timeout=CELL_WAIT_MS)

    page.locator(".jp-Notebook .jp-Cell").last.locator(".cm-content").click()
    type_cell(page, "let doubled = counter * 2\nprint(doubled)")
    click_gutter(page, 2)
    page.screenshot(path=shots / "02-breakpoint-set.png")
    page.keyboard.press("Shift+Enter")

    # Stopped: the call stack names the cell's frame, the variables panel shows the globals.
    frame = page.locator(".jp-DebuggerCallstackFrame").first
    expect(frame.locator(".jp-DebuggerCallstackFrame-name")).to_have_text("<cell>", timeout=CELL_WAIT_MS)
    variables = page.locator(".jp-DebuggerVariables-body:not(.lm-mod-hidden)")
    expect(variables).to_contain_text("doubled", timeout=CELL_WAIT_MS)
    expect(variables).to_contain_text("10")
    expect(variables).to_contain_text("counter")
    expect(variables).to_contain_text("5")
    expect(page.locator(".jp-Notebook .jp-DebuggerEditor-highlight")).to_have_count(1)
    page.screenshot(path=shots / "03-stopped.png")

    page.locator(".jp-DebuggerPausedButton[title='Continue']").first.click()
    ran = page.locator(".jp-Notebook .jp-Cell").nth(1)
    expect(ran.locator(".jp-OutputArea-output")).to_have_text("10", timeout=CELL_WAIT_MS)
    expect(kernel_status(page)).to_have_attribute("data-status", "idle", timeout=CELL_WAIT_MS)
    # Idle, the Variables panel lists the notebook's globals (inspectVariables), newest values.
    expect(variables).to_contain_text("doubled", timeout=CELL_WAIT_MS)
    expect(variables).to_contain_text("10")
    page.screenshot(path=shots / "04-continued.png")
