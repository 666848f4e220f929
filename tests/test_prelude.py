"""The kernel's Swift API as a prebuilt library (swift_kernel/prelude.py), and the fallback without it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from swift_kernel import prelude
from swift_kernel.toolchain import find_toolchain

from .conftest import KernelPair, named, names_of
from .utils import execute, ok

pytestmark = pytest.mark.lldb

# What a cell can use of the API: a value's description, a type that shows itself, the display
# call, and top-level await (the kernel's blockOn).
USES = """
struct Badge: JupyterDisplayable {
    func jupyterMimeBundle() -> [String: String] { ["text/html": "<b>ok</b>"] }
}
Jupyter.display(text: "shown")
func twice(_ n: Int) async -> Int { 2 * n }
let doubled = await twice(21)
"""


def uses_the_api(kc: Any) -> None:
    """Check each part of the API works in this kernel."""
    cell = ok(execute(kc, USES))
    shown = [m["content"]["data"] for m in cell.of_type("display_data")]
    assert shown == [{"text/plain": "shown"}], shown
    assert ok(execute(kc, "doubled")).result == "42"
    badge = ok(execute(kc, "Badge()")).of_type("execute_result")
    assert badge[0]["content"]["data"].get("text/html") == "<b>ok</b>", badge
    assert ok(execute(kc, '"text"')).result == '"text"'


def swift_process_maps(km: Any) -> str:
    """Return the memory map of the kernel's Swift process (the host's child)."""
    kernel = psutil.Process(km.provisioner.process.pid)
    swift = named(kernel.children(recursive=True), "repl_swift")
    assert len(swift) == 1, names_of(kernel.children(recursive=True))
    return Path(f"/proc/{swift[0].pid}/maps").read_text()


def test_a_kernel_loads_the_library_built_once(
    fresh_kernel: Callable[..., KernelPair], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    km, kc = fresh_kernel()
    built = list((tmp_path / "swift-kernel" / "prelude").glob(f"*/{prelude.LIBRARY}"))
    assert len(built) == 1, built
    assert str(built[0]) in swift_process_maps(km)
    uses_the_api(kc)
    # A second kernel takes the same build.
    stamp = built[0].stat().st_mtime_ns
    km2, kc2 = fresh_kernel()
    assert str(built[0]) in swift_process_maps(km2)
    assert list((tmp_path / "swift-kernel" / "prelude").glob(f"*/{prelude.LIBRARY}")) == built
    assert built[0].stat().st_mtime_ns == stamp
    uses_the_api(kc2)


def test_without_a_cache_the_kernel_compiles_the_api(
    fresh_kernel: Callable[..., KernelPair], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A file where the prelude's cache folder would be: nothing can be built or kept there.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    prelude.cache_root().parent.mkdir(parents=True)
    prelude.cache_root().write_text("")
    km, kc = fresh_kernel()
    assert prelude.LIBRARY not in swift_process_maps(km)
    uses_the_api(kc)


def test_a_broken_library_gives_way_to_the_source(
    fresh_kernel: Callable[..., KernelPair], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    toolchain = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
    folder = prelude.cache_root() / prelude._key(toolchain, prelude.SOURCE.read_text())
    folder.mkdir(parents=True)
    (folder / prelude.LIBRARY).write_text("not a library")
    km, kc = fresh_kernel()
    assert prelude.LIBRARY not in swift_process_maps(km)
    # The dynamic loader's complaint about the library stays out of the cells' output.
    first = ok(execute(kc, 'print("first")'))
    assert (first.stream("stdout"), first.stream("stderr")) == ("first\n", "")
    uses_the_api(kc)


# What the cells' code, and the programs it starts, see of LD_PRELOAD.
SEEN_PRELOAD = """
import Glibc
let seen = getenv("LD_PRELOAD").map { String(cString: $0) } ?? "unset"
print("cell: \\(seen)")
_ = system("echo child: ${LD_PRELOAD-unset}")
"""


@pytest.mark.parametrize("before", [None, "libm.so.6"])
def test_the_library_is_preloaded_and_ld_preload_given_back(
    fresh_kernel: Callable[..., KernelPair], monkeypatch: pytest.MonkeyPatch, before: str | None
) -> None:
    # The dynamic loader maps the library as the Swift process starts; the prelude then gives
    # LD_PRELOAD back the value the kernel had, so nothing a cell runs loads the kernel's library.
    if before is None:
        monkeypatch.delenv("LD_PRELOAD", raising=False)
    else:
        monkeypatch.setenv("LD_PRELOAD", before)
    km, kc = fresh_kernel()
    assert f"/{prelude.LIBRARY}" in swift_process_maps(km)
    seen = ok(execute(kc, SEEN_PRELOAD)).stream("stdout")
    expected = before or "unset"
    assert seen == f"cell: {expected}\nchild: {expected}\n", seen
    uses_the_api(kc)


# ----- unit tests of the build (no kernel) --------------------------------------------------------


def test_the_key_follows_the_source_and_the_compiler(tmp_path: Path) -> None:
    compiler = tmp_path / "swiftc"
    compiler.write_text("one")
    toolchain: Any = SimpleNamespace(swiftc=compiler)
    first = prelude._key(toolchain, "source")
    assert prelude._key(toolchain, "source") == first
    assert prelude._key(toolchain, "other source") != first
    compiler.write_text("a newer compiler")
    assert prelude._key(toolchain, "source") != first


def test_a_failed_build_leaves_nothing_and_says_none(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    toolchain: Any = SimpleNamespace(swiftc=Path("/bin/false"))
    assert prelude.prelude_module(toolchain, tmp_path) is None
    assert "could not be built" in caplog.text
    # The lock file stays (it is the kernels' meeting point); no half-built folder does.
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []


def test_the_cache_is_not_the_install_cache() -> None:
    root = prelude.cache_root({"XDG_CACHE_HOME": "/x", "SWIFT_KERNEL_CACHE_DIR": "/elsewhere"})
    assert root == Path("/x/swift-kernel/prelude")
    assert prelude.cache_root({"HOME": "/h"}).parts[-2:] == ("swift-kernel", "prelude")
