"""%install through the real kernel and SwiftPM, with local packages (no network here)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from swift_kernel.install import InstallError, PackageWorkspace, package_identity

from .conftest import KernelPair
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
    assert "Build complete" in output and "Installed Greeter" in output
    assert value(kc, 'import Greeter\ngreet("kernel")') == '"Hello, kernel!"'
    assert value(kc, "var tally = Tally()\ntally.bump()\ntally.bump()") == "2"
    # A package with a C target, installed after the first one.
    assert execute(kc, install("CMath", "CMathSwift"), timeout=300).status == "ok"
    assert value(kc, "import CMathSwift\naddInC(2, 3)") == "5"
    # A package that does not compile: SwiftPM's error is shown, the kernel and state stay.
    broken = execute(kc, install("Broken", "Broken"), timeout=300)
    assert broken.content["ename"] == "InstallError"
    assert "cannot convert value of type 'String' to specified type 'Int'" in broken.stream("stdout")
    assert value(kc, 'before + greet("x").count') == "14"
    # The failed package is left out of later builds; installing again says what LLDB keeps.
    again = execute(kc, install("Greeter", "Greeter"), timeout=300)
    assert again.status == "ok"
    assert "changes show only after a kernel restart" in again.stream("stderr")


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


def test_install_directive_errors(kc: object) -> None:
    wrong = execute(kc, "%install Greeter")  # type: ignore[arg-type]
    assert wrong.content["ename"] == "DirectiveError"
    assert "%install takes a quoted package" in wrong.content["evalue"]


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
    assert 'type: .dynamic' in manifest
    workspace.write()
    source = (tmp_path / "Sources" / "jupyterInstalledPackages" / "jupyterInstalledPackages.swift").read_text()
    assert source == "@_exported import Local\n@_exported import Extra\n"
