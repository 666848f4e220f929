"""%install through the real kernel and SwiftPM, with local packages (no network here)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from swift_kernel.display import progress_bundle
from swift_kernel.install import (
    BuildCompleteFilter,
    BuildProgress,
    InstallError,
    PackageWorkspace,
    clang_module_names,
    default_cache_dir,
    package_identity,
    unreachable_urls,
)

from .conftest import KernelPair, kernel_pid, start_kernel, stop_kernel
from .test_completion import complete_until
from .utils import execute, interrupt_after, value

PACKAGES = Path(__file__).resolve().parent / "packages"


def install(name: str, products: str) -> str:
    return f"%install '.package(path: \"{PACKAGES / name}\")' {products}"


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_install_in_a_later_cell_then_import(fresh_kernel: Callable[..., KernelPair]) -> None:
    _, kc = fresh_kernel("swift")
    assert execute(kc, "let before = 5").status == "ok"
    built = execute(kc, install("Greeter", "Greeter"), timeout=300)
    assert built.status == "ok", built.content
    output = built.stream("stdout")
    assert "Installed Greeter: import Greeter in the cells" in output
    # One duration, the bar's: SwiftPM's own "Build complete! (1.23s)" line is not shown.
    assert "Build complete" not in output
    # A progress bar: one display, moved in place by SwiftPM's [done/total] lines, never backwards, ending built.
    bars = [m for m in built.messages if m["msg_type"] in ("display_data", "update_display_data")]
    assert bars[0]["msg_type"] == "display_data" and len(bars) >= 3, bars
    assert {m["content"]["transient"]["display_id"] for m in bars} == {bars[0]["content"]["transient"]["display_id"]}
    # Between the first bar and the last, the bar shows SwiftPM's step lines. Lines that come in
    # one read move it once, to the last of them, so which steps show depends on the timing;
    # at least one must be shown.
    steps = {match.group(3) for match in re.finditer(r"^\[(\d+)/(\d+)\] (.*)$", output, re.MULTILINE)}
    shown = [re.fullmatch(r" *\d+% (.*)", m["content"]["data"]["text/plain"]) for m in bars[1:-1]]
    assert steps and any(match and match.group(1) in steps for match in shown), (steps, bars)
    percents = [int(m["content"]["data"]["text/plain"].split("%")[0]) for m in bars]
    assert percents == sorted(percents), percents
    final = bars[-1]["content"]["data"]
    assert re.fullmatch(r"100% built in [\d.]+ s", final["text/plain"]), final
    assert final["text/html"].startswith("<progress value=")
    assert value(kc, 'import Greeter\ngreet("kernel")') == '"Hello, kernel!"'
    assert value(kc, "var tally = Tally()\ntally.bump()\ntally.bump()") == "2"
    # A package with a C target, installed after the first one.
    assert execute(kc, install("CMath", "CMathSwift"), timeout=300).status == "ok"
    assert value(kc, "import CMathSwift\naddInC(2, 3)") == "5"
    # Completion sees the installed modules: a Swift one, and one over a C target.
    assert "greet(" in complete_until(kc, "let g = gree", "greet(")["matches"]
    assert "addInC(" in complete_until(kc, "let s = addIn", "addInC(")["matches"]
    # A package that does not compile: SwiftPM's error is shown, the kernel and state stay.
    broken = execute(kc, install("Broken", "Broken"), timeout=300)
    assert broken.content["ename"] == "InstallError"
    assert "cannot convert value of type 'String' to specified type 'Int'" in broken.stream("stdout")
    assert value(kc, 'before + greet("x").count') == "14"
    # The failed package is left out of later builds; installing an unchanged package again
    # keeps the Swift process and its state.
    again = execute(kc, install("Greeter", "Greeter"), timeout=300)
    assert again.status == "ok", again.content
    assert "restarted" not in again.stream("stderr")
    assert value(kc, "before") == "5"


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_changed_package_is_rebuilt_and_loaded_with_flags(
    fresh_kernel: Callable[..., KernelPair], tmp_path: Path
) -> None:
    package = tmp_path / "Greeter"
    shutil.copytree(PACKAGES / "Greeter", package)
    source = package / "Sources" / "Greeter" / "Greeter.swift"
    spec = f"%install '.package(path: \"{package}\")' Greeter"
    _, kc = fresh_kernel("swift")
    assert execute(kc, spec, timeout=300).status == "ok"
    assert value(kc, 'import Greeter\nlet kept = greet("a")') is None
    source.write_text(
        source.read_text().replace('"Hello, \\(name)!"', '"Hi, \\(name)!"')
        + '\npublic func farewell(_ name: String) -> String { "Bye, \\(name)." }\n'
        + "#if LOUD\npublic let loud = true\n#else\npublic let loud = false\n#endif\n"
    )
    rebuilt = execute(kc, spec, timeout=300)
    assert rebuilt.status == "ok", rebuilt.content
    assert "Greeter changed since it was loaded" in rebuilt.stream("stderr")
    # The imports went with the process, and the message says which to run again.
    assert "definitions and imports are gone" in rebuilt.stream("stderr")
    assert "Run your imports again: import Greeter." in rebuilt.stream("stderr")
    # The new code runs, the new declaration is there, and the restart is real: `kept` is gone.
    assert value(kc, 'import Greeter\ngreet("b") + " " + farewell("c")') == '"Hi, b! Bye, c."'
    assert value(kc, "loud") == "false"
    assert execute(kc, "kept").content["ename"] == "CompileError"
    # Flags reach SwiftPM: the package is compiled with LOUD defined, and loaded again.
    flagged = execute(kc, f"%install-swiftpm-flags -Xswiftc -DLOUD\n{spec}", timeout=300)
    assert flagged.status == "ok", flagged.content
    assert value(kc, "import Greeter\nloud") == "true"


@pytest.mark.lldb
@pytest.mark.timeout(600)
def test_install_build_output_is_live_and_interruptible(kernel: KernelPair, tmp_path: Path) -> None:
    km, kc = kernel
    # A package whose build runs long enough to be interrupted: a plugin-free package that sleeps
    # in its build is not possible, so interrupt a build of a fresh copy right as it starts.
    package = tmp_path / "Slow"
    (package / "Sources" / "Slow").mkdir(parents=True)
    (package / "Package.swift").write_text(
        (PACKAGES / "Greeter" / "Package.swift").read_text().replace("Greeter", "Slow")
    )
    (package / "Sources" / "Slow" / "Slow.swift").write_text("public let slow = 1\n")
    started = time.monotonic()
    execution, latency = interrupt_after(km, kc, f"%install '.package(path: \"{package}\")' Slow", 0.5, timeout=300)
    assert execution.content["ename"] == "KeyboardInterrupt", execution.content
    assert latency < 5.0
    assert time.monotonic() - started < 60
    assert value(kc, "1 + 1") == "2"


@pytest.mark.lldb
@pytest.mark.timeout(600)
def test_unreachable_url_package_fails_clearly(kc: object) -> None:
    """The url form goes to SwiftPM as is; here no host is reachable, so its error must show."""
    assert execute(kc, "let beforeUrl = 8").status == "ok"  # type: ignore[arg-type]
    spec = '%install \'.package(url: "https://example.invalid/acme/Remote.git", from: "1.0.0")\' Remote'
    failed = execute(kc, spec, timeout=300)  # type: ignore[arg-type]
    assert failed.content["ename"] == "InstallError", failed.content
    # One line that says what failed and names the way to install without the network.
    url = "https://example.invalid/acme/Remote.git"
    assert failed.content["evalue"] == (
        f"%install: the network could not be reached for {url}; use a local copy of the package: "
        f"%install-mirror {url} PATH (or %install it by path first)"
    )
    assert value(kc, "beforeUrl") == "8"  # type: ignore[arg-type]


@pytest.mark.lldb
def test_install_flags_accumulate_show_and_clear(kc: BlockingKernelClient) -> None:
    assert execute(kc, "%install-swiftpm-flags -Xswiftc -DFIRST").status == "ok"
    assert execute(kc, "%install-swiftpm-flags -c release").status == "ok"
    shown = execute(kc, "%install-swiftpm-flags")
    assert shown.stream("stdout") == "%install-swiftpm-flags: -Xswiftc -DFIRST -c release\n"
    assert execute(kc, "%install-swiftpm-flags $clear").status == "ok"
    cleared = execute(kc, "%install-swiftpm-flags")
    assert cleared.stream("stdout") == "%install-swiftpm-flags: none ($clear removes them all)\n"


def test_install_directive_errors(kc: object) -> None:
    wrong = execute(kc, "%install Greeter")  # type: ignore[arg-type]
    assert wrong.content["ename"] == "DirectiveError"
    assert "%install takes a quoted package" in wrong.content["evalue"]
    mirror = execute(kc, "%install-mirror /not/a/url")  # type: ignore[arg-type]
    assert "%install-mirror takes a package url and a local folder" in mirror.content["evalue"]
    no_package = execute(kc, "%install-mirror https://example.invalid/x/Lib.git /nonexistent")  # type: ignore[arg-type]
    expected = "%install-mirror: /nonexistent has no Package.swift: it is not a SwiftPM package"
    assert no_package.content["evalue"] == expected


def test_package_identity_and_manifest(tmp_path: Path) -> None:
    assert package_identity('.package(path: "/a/b/MyLib")') == "MyLib"
    assert package_identity('.package(url: "https://example.invalid/x/Lib.git", from: "1.0.0")') == "Lib"
    with pytest.raises(InstallError):
        package_identity(".package(name: 3)")
    workspace = PackageWorkspace(tmp_path)
    workspace.add('.package(path: "$cwd/Local")', ("Local", "Extra"))
    workspace.add('.package(path: "$cwd/Local")', ("Local",))
    manifest = workspace.manifest()
    assert manifest.count(".package(path:") == 1
    assert "$cwd" not in manifest
    assert '.product(name: "Local", package: "Local"), .product(name: "Extra", package: "Local")' in manifest
    assert "type: .dynamic" in manifest
    # The products' modules, once read from their manifest, are what the library imports.
    workspace.write()
    source_file = tmp_path / "Sources" / "jupyterInstalledPackages" / "jupyterInstalledPackages.swift"
    assert source_file.read_text() == ""
    workspace.modules = {("Local", "Local"): ("Local",), ("Extra", "Local"): ("ExtraCore", "CExtra", "Local")}
    workspace.write()
    assert source_file.read_text() == "@_exported import Local\n@_exported import ExtraCore\n@_exported import CExtra\n"


def test_build_progress_follows_step_lines_split_anywhere() -> None:
    progress = BuildProgress()
    assert (progress.percent, progress.step) == (0, "planning the build")
    # Before the first step, SwiftPM's other lines say what it does.
    assert progress.feed("Fetching https://example.invalid/x.git\nBuilding for debugging...\n[1/")
    assert (progress.percent, progress.step) == (0, "Building for debugging...")
    assert progress.feed("4] Compiling Greeter Greeter.swift\n[2/4] Emitting module Greeter\nmore")
    assert (progress.done, progress.total, progress.percent, progress.step) == (2, 4, 50, "Emitting module Greeter")
    assert not progress.feed(" text without a step\n")
    assert progress.step == "Emitting module Greeter"
    # SwiftPM raises its total as it plans: the share shown does not go back.
    assert progress.feed("[3/40] Compiling More a.swift\n")
    assert (progress.percent, progress.step) == (50, "Compiling More a.swift")
    assert progress.feed("[36/40] Linking libx.so\n")
    assert progress.percent == 90
    progress.finish("built in 3.0 s")
    assert (progress.percent, progress.step) == (100, "built in 3.0 s")


def test_build_complete_line_is_dropped_however_cut() -> None:
    shown = BuildCompleteFilter()
    text = "[4/4] Linking libx.so\nBuild complete! (12.34s)\nafter\n"
    for cut in range(len(text) + 1):
        assert shown.feed(text[:cut]) + shown.feed(text[cut:]) + shown.flush() == "[4/4] Linking libx.so\nafter\n"
    assert shown.feed("Build") + shown.flush() == "Build"
    assert shown.feed("Build complete! (1.0s)") + shown.flush() == ""


def test_progress_bundle_escapes_html() -> None:
    bundle = progress_bundle(37, "Compiling <Lib> & co")
    assert bundle["text/plain"] == " 37% Compiling <Lib> & co"
    assert bundle["text/html"] == '<progress value="37" max="100"></progress> 37% Compiling &lt;Lib&gt; &amp; co'


SHARED_PACKAGES = Path("/work/shared/packages")


@pytest.fixture(scope="module")
def numerics_kernel() -> Iterator[KernelPair]:
    """A kernel that ran cells, then installed swift-numerics (whose C target has its own module map)."""
    km, kc = start_kernel("swift")
    try:
        assert execute(kc, "let beforeNumerics = 21").status == "ok"
        spec = f"%install '.package(path: \"{SHARED_PACKAGES / 'swift-numerics'}\")' Numerics"
        built = execute(kc, spec, timeout=900)
        assert built.status == "ok", (built.content, built.stream("stdout")[-3000:])
        yield km, kc
    finally:
        stop_kernel(km, kc)


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_numerics_installed_after_cells_gives_right_values(numerics_kernel: KernelPair) -> None:
    _, kc = numerics_kernel
    assert value(kc, "import Numerics\nDouble.cos(.pi)") == "-1.0"
    assert value(kc, "Complex(3, 4).length") == "5.0"
    assert value(kc, "Double.hypot(3, 4)") == "5.0"
    # No crash on the way: the variables of the cells before the install are still there.
    assert value(kc, "beforeNumerics * 2") == "42"


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_numerics_release_build(numerics_kernel: KernelPair) -> None:
    _, kc = numerics_kernel
    spec = f"%install '.package(path: \"{SHARED_PACKAGES / 'swift-numerics'}\")' Numerics"
    built = execute(kc, f"%install-swiftpm-flags -c release\n{spec}", timeout=900)
    assert built.status == "ok", (built.content, built.stream("stdout")[-3000:])
    # Another build of loaded modules: a fresh Swift process loads the release one.
    assert "changed since it was loaded" in built.stream("stderr")
    assert value(kc, "import Numerics\nDouble.cos(.pi) + Complex(3, 4).length + Double.hypot(3, 4)") == "9.0"


def test_clang_module_names_are_the_top_level_modules() -> None:
    module_map = """// a comment: module NotThis
module _NumericsShims {
  header "_NumericsShims.h"
  module Inner { header "inner.h" }
}
explicit module Other [system] {
  umbrella header "/abs/other.h"
  export *
}
/* module AlsoNotThis */
extern module Elsewhere "other/module.modulemap"
"""
    assert clang_module_names(module_map) == ["_NumericsShims", "Other"]


def write_package(root: Path, name: str, source: str, product: str | None = None) -> Path:
    """Write a one-target package ``name`` (its product named ``product``) under ``root``."""
    (root / "Sources" / name).mkdir(parents=True)
    (root / "Package.swift").write_text(
        "// swift-tools-version:5.9\nimport PackageDescription\n\n"
        f'let package = Package(\n    name: "{root.name}",\n'
        f'    products: [.library(name: "{product or name}", targets: ["{name}"])],\n'
        f'    targets: [.target(name: "{name}")]\n)\n'
    )
    (root / "Sources" / name / f"{name}.swift").write_text(source)
    return root


CONFIGURED = '#if DEBUG\npublic let builtAs = "debug"\n#else\npublic let builtAs = "release"\n#endif\n'


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_release_build_is_the_one_loaded(fresh_kernel: Callable[..., KernelPair], tmp_path: Path) -> None:
    package = write_package(tmp_path / "Configured", "Configured", CONFIGURED)
    spec = f"%install '.package(path: \"{package}\")' Configured"
    _, kc = fresh_kernel("swift")
    release = execute(kc, f"%install-swiftpm-flags -c release\n{spec}", timeout=300)
    assert release.status == "ok", (release.content, release.stream("stdout")[-2000:])
    assert value(kc, "import Configured\nbuiltAs") == '"release"'
    # Back to debug: the debug build is loaded (in a fresh Swift process), not the release one.
    debug = execute(kc, f"%install-swiftpm-flags $clear\n{spec}", timeout=300)
    assert debug.status == "ok", (debug.content, debug.stream("stdout")[-2000:])
    assert value(kc, "import Configured\nbuiltAs") == '"debug"'


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_respecified_package_replaces_the_old_one(fresh_kernel: Callable[..., KernelPair], tmp_path: Path) -> None:
    first = write_package(tmp_path / "a" / "Respec", "Respec", 'public let origin = "a"\n')
    second = write_package(tmp_path / "b" / "Respec", "Respec", 'public let origin = "b"\n')
    _, kc = fresh_kernel("swift")
    assert execute(kc, f"%install '.package(path: \"{first}\")' Respec", timeout=300).status == "ok"
    assert value(kc, "import Respec\norigin") == '"a"'
    again = execute(kc, f"%install '.package(path: \"{second}\")' Respec", timeout=300)
    assert again.status == "ok", (again.content, again.stream("stdout")[-2000:])
    assert value(kc, "import Respec\norigin") == '"b"'
    # A spec that fails brings the one it replaced back: the next install still builds.
    broken = execute(kc, "%install '.package(path: \"/nonexistent/Respec\")' Respec", timeout=300)
    assert broken.content["ename"] == "InstallError"
    assert execute(kc, install("Greeter", "Greeter"), timeout=300).status == "ok"
    assert value(kc, "import Greeter\nimport Respec\ngreet(origin)") == '"Hello, b!"'


def test_workspace_replaces_a_package_and_restores_after_a_failure(tmp_path: Path) -> None:
    workspace = PackageWorkspace(tmp_path)
    workspace.add('.package(path: "/a/Lib")', ("Lib",))
    before = workspace.snapshot()
    workspace.add('.package(url: "https://example.invalid/x/Lib.git", from: "1.0.0")', ("Lib",))
    assert workspace.specs == ['.package(url: "https://example.invalid/x/Lib.git", from: "1.0.0")']
    workspace.add('.package(path: "/a/Other")', ("Other",))
    workspace.restore(before)
    assert workspace.specs == ['.package(path: "/a/Lib")'] and workspace.products == [("Lib", "Lib")]
    assert '.package(path: "/a/Lib")' in (tmp_path / "Package.swift").read_text()


@pytest.mark.parametrize(
    ("flags", "configuration"),
    [
        ([], "debug"),
        (["-c", "release"], "release"),
        (["-crelease"], "release"),
        (["--configuration=release"], "release"),
        (["--configuration", "release", "-c", "debug"], "debug"),
        (["-Xswiftc", "-cross-module-optimization"], "debug"),
    ],
)
def test_build_dir_follows_the_configuration_flags(tmp_path: Path, flags: list[str], configuration: str) -> None:
    workspace = PackageWorkspace(tmp_path)
    workspace.flags = flags
    assert workspace.build_dir == tmp_path / ".build" / configuration
    workspace.flags = [*flags, "--scratch-path", str(tmp_path / "scratch")]
    assert workspace.build_dir == tmp_path / "scratch" / configuration


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_product_whose_name_is_no_module(fresh_kernel: Callable[..., KernelPair], tmp_path: Path) -> None:
    """A product "PackageWithC" made of a Swift module and a C module, neither named like it."""
    package = tmp_path / "PackageWithC"
    (package / "Sources" / "CWidget" / "include").mkdir(parents=True)
    (package / "Sources" / "WidgetCore").mkdir(parents=True)
    (package / "Package.swift").write_text(
        "// swift-tools-version:5.9\nimport PackageDescription\n\n"
        'let package = Package(\n    name: "PackageWithC",\n'
        '    products: [.library(name: "PackageWithC", targets: ["WidgetCore", "CWidget"])],\n'
        '    targets: [.target(name: "CWidget"), .target(name: "WidgetCore", dependencies: ["CWidget"])]\n)\n'
    )
    (package / "Sources" / "CWidget" / "include" / "cwidget.h").write_text("int cwidget_count(void);\n")
    (package / "Sources" / "CWidget" / "cwidget.c").write_text(
        '#include "cwidget.h"\nint cwidget_count(void) { return 7; }\n'
    )
    (package / "Sources" / "WidgetCore" / "WidgetCore.swift").write_text(
        "import CWidget\npublic func widgets() -> Int { Int(cwidget_count()) * 6 }\n"
    )
    _, kc = fresh_kernel("swift")
    installed = execute(kc, f"%install '.package(path: \"{package}\")' PackageWithC", timeout=300)
    assert installed.status == "ok", (installed.content, installed.stream("stdout")[-2000:])
    assert "Installed PackageWithC: import WidgetCore; import CWidget" in installed.stream("stdout")
    assert value(kc, "import WidgetCore\nwidgets()") == "42"
    assert value(kc, "import CWidget\ncwidget_count()") == "7"
    # A product the package does not have is named with the ones it has.
    missing = execute(kc, f"%install '.package(path: \"{package}\")' Gadgets", timeout=300)
    assert missing.content["ename"] == "InstallError"
    assert "PackageWithC has no product Gadgets; its products: PackageWithC" in missing.content["evalue"]


NUMERICS_URL = "https://github.com/apple/swift-numerics.git"


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_algorithms_offline_after_numerics_installed_by_path_and_listed(
    fresh_kernel: Callable[..., KernelPair], build_cache: Path
) -> None:
    """swift-algorithms' url dependency on swift-numerics is met by the swift-numerics installed earlier."""
    _, kc = fresh_kernel("swift")
    assert execute(kc, "%install").stream("stdout").startswith("No packages installed.\n")
    numerics = execute(kc, f"%install '.package(path: \"{SHARED_PACKAGES / 'swift-numerics'}\")' Numerics", timeout=900)
    assert numerics.status == "ok", (numerics.content, numerics.stream("stdout")[-3000:])
    spec = f'.package(path: "{SHARED_PACKAGES / "swift-algorithms"}")'
    algorithms = execute(kc, f"%install '{spec}' Algorithms", timeout=900)
    assert algorithms.status == "ok", (algorithms.content, algorithms.stream("stdout")[-3000:])
    assert value(kc, "import Algorithms\nArray([1, 2, 3].chunks(ofCount: 2).map(Array.init))") == "[[1, 2], [3]]"
    assert value(kc, "import Numerics\nDouble.hypot(3, 4)") == "5.0"
    # %install alone: the packages, where they come from, their products and the build folder.
    listing = execute(kc, "%install").stream("stdout")
    assert "Installed packages:\n  swift-numerics: .package(path:" in listing, listing
    assert f"  swift-algorithms: {spec}\n    local folder {SHARED_PACKAGES / 'swift-algorithms'}; " in listing, listing
    assert "products: Algorithms (import Algorithms)" in listing, listing
    # The build is in the cache folder the environment names (SWIFT_KERNEL_CACHE_DIR).
    folder = re.search(r"^Build folder: (.*)$", listing, re.MULTILINE)
    assert folder is not None and Path(folder.group(1)).is_relative_to(build_cache / "packages"), listing
    assert (Path(folder.group(1)) / "libjupyterInstalledPackages.so").is_file()


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_algorithms_offline_through_install_mirror(fresh_kernel: Callable[..., KernelPair], tmp_path: Path) -> None:
    """%install-mirror URL PATH: a folder named otherwise than the package stands in for the url."""
    copy = tmp_path / "numerics-copy"
    shutil.copytree(SHARED_PACKAGES / "swift-numerics", copy)
    _, kc = fresh_kernel("swift")
    assert execute(kc, f"%install-mirror {NUMERICS_URL} {copy}").status == "ok"
    spec = f"%install '.package(path: \"{SHARED_PACKAGES / 'swift-algorithms'}\")' Algorithms"
    algorithms = execute(kc, spec, timeout=900)
    assert algorithms.status == "ok", (algorithms.content, algorithms.stream("stdout")[-3000:])
    assert value(kc, "import Algorithms\nArray([1, 2, 3].chunks(ofCount: 2).map(Array.init))") == "[[1, 2], [3]]"
    assert f"Mirror: {NUMERICS_URL} -> {copy}\n" in execute(kc, "%install").stream("stdout")


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_build_cache_serves_a_fresh_kernel_and_rebuilds_a_changed_package(
    fresh_kernel: Callable[..., KernelPair], tmp_path: Path
) -> None:
    package = tmp_path / "Greeter"
    shutil.copytree(PACKAGES / "Greeter", package)
    location = tmp_path / "builds"
    cell = f"%install-location {location}\n%install '.package(path: \"{package}\")' Greeter"
    km, kc = fresh_kernel("swift")
    first = execute(kc, cell, timeout=300)
    assert first.status == "ok", first.content
    assert "Compiling" in first.stream("stdout") and "Cache hit" not in first.stream("stdout")
    assert (location / "packages").is_dir()
    stop_kernel(km, kc)
    # A fresh kernel installs the same unchanged package: nothing is compiled.
    km, kc = fresh_kernel("swift")
    started = time.monotonic()
    again = execute(kc, cell, timeout=300)
    print(f"re-install in a fresh kernel with a warm cache: {time.monotonic() - started:.2f} s")
    assert again.status == "ok", again.content
    assert "Cache hit: the build in" in again.stream("stdout"), again.stream("stdout")
    assert "Compiling" not in again.stream("stdout")
    assert value(kc, 'import Greeter\ngreet("cache")') == '"Hello, cache!"'
    stop_kernel(km, kc)
    # The package's sources change: the next kernel's install rebuilds it, never serves the old build.
    source = package / "Sources" / "Greeter" / "Greeter.swift"
    source.write_text(source.read_text().replace('"Hello, \\(name)!"', '"Hey, \\(name)!"'))
    _, kc = fresh_kernel("swift")
    changed = execute(kc, cell, timeout=300)
    assert changed.status == "ok", changed.content
    assert "Cache hit" not in changed.stream("stdout") and "Compiling" in changed.stream("stdout")
    assert value(kc, 'import Greeter\ngreet("cache")') == '"Hey, cache!"'


def test_unreachable_urls_are_the_ones_fetched_and_never_got() -> None:
    output = (
        "Fetching https://example.invalid/a.git\nFetching https://example.invalid/b.git\n"
        "Fetched https://example.invalid/a.git from cache (0.1s)\n"
        "error: Git command 'git -C /root/.cache/org.swift.swiftpm/repositories/b config' failed\n"
    )
    assert unreachable_urls(output) == ["https://example.invalid/b.git"]
    assert unreachable_urls("error: no such module\n") == []


def test_mirror_is_a_path_dependency_named_as_the_url(tmp_path: Path) -> None:
    numerics = tmp_path / "numerics-copy"
    numerics.mkdir()
    (numerics / "Package.swift").write_text("// swift-tools-version:5.9\n")
    workspace = PackageWorkspace(tmp_path / "package")
    workspace.add_mirror("https://github.com/apple/swift-numerics.git", str(numerics))
    workspace.add('.package(path: "/a/swift-algorithms")', ("Algorithms",))
    workspace.write()
    link = tmp_path / "package" / "mirrors" / "swift-numerics"
    assert f'.package(path: "{link}")' in workspace.manifest()
    assert link.resolve() == numerics
    # Installed by path itself, the package needs no stand-in.
    workspace.add(f'.package(path: "{tmp_path}/swift-numerics")', ("Numerics",))
    assert "mirrors" not in workspace.manifest()
    with pytest.raises(InstallError, match=r"has no Package\.swift"):
        workspace.add_mirror("https://example.invalid/x.git", str(tmp_path / "nothing"))


def test_default_cache_dir_follows_the_environment() -> None:
    assert default_cache_dir({"SWIFT_KERNEL_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x"}) == Path("/c")
    assert default_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/swift-kernel")
    assert default_cache_dir({}) == Path("~/.cache/swift-kernel").expanduser()


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGKILL])
def test_install_folder_of_a_terminated_or_killed_kernel_is_gone(
    fresh_kernel: Callable[..., KernelPair], signal_number: int
) -> None:
    """A kernel ended by SIGTERM or SIGKILL after an install: by the next kernel's start its folder is gone."""
    temp = Path(tempfile.gettempdir())
    km, kc = fresh_kernel("swift")
    pid = kernel_pid(km)
    assert execute(kc, install("Greeter", "Greeter"), timeout=300).status == "ok"
    assert len(list(temp.glob(f"swift-kernel-install-{pid}-*"))) == 1
    os.kill(pid, signal_number)
    assert km.provisioner is not None and km.provisioner.process is not None
    km.provisioner.process.wait(timeout=60)
    fresh_kernel("swift")
    assert list(temp.glob(f"swift-kernel-install-{pid}-*")) == []


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_extra_include_command_reaches_the_build_and_lldb(
    fresh_kernel: Callable[..., KernelPair], tmp_path: Path
) -> None:
    """A C target whose header includes a "system" header found only through the command's -I flag."""
    system = tmp_path / "system" / "include"
    system.mkdir(parents=True)
    (system / "extrainc.h").write_text("static inline int extra_answer(void) { return 40; }\n")
    package = tmp_path / "UsesSystem"
    (package / "Sources" / "CUsesSystem" / "include").mkdir(parents=True)
    (package / "Package.swift").write_text(
        "// swift-tools-version:5.9\nimport PackageDescription\n\n"
        'let package = Package(\n    name: "UsesSystem",\n'
        '    products: [.library(name: "CUsesSystem", targets: ["CUsesSystem"])],\n'
        '    targets: [.target(name: "CUsesSystem")]\n)\n'
    )
    (package / "Sources" / "CUsesSystem" / "include" / "usessystem.h").write_text(
        "#include <extrainc.h>\nint uses_system(void);\n"
    )
    (package / "Sources" / "CUsesSystem" / "usessystem.c").write_text(
        '#include "usessystem.h"\nint uses_system(void) { return extra_answer() + 2; }\n'
    )
    _, kc = fresh_kernel("swift")
    failing = execute(kc, "%install-extra-include-command echo oops >&2; exit 3")
    assert failing.content["evalue"] == (
        "%install-extra-include-command: 'echo oops >&2; exit 3' failed (exit status 3): oops"
    ), failing.content
    added = execute(kc, f"%install-extra-include-command echo -I{system} -DX")
    assert added.stream("stdout") == f"%install-extra-include-command: include folders {system}\n"
    installed = execute(kc, f"%install '.package(path: \"{package}\")' CUsesSystem", timeout=300)
    assert installed.status == "ok", (installed.content, installed.stream("stdout")[-2000:])
    # LLDB's clang finds the header too: the inline function from it is callable in a cell.
    assert value(kc, "import CUsesSystem\nuses_system() + extra_answer()") == "82"
