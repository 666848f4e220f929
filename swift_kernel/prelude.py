"""The kernel's Swift API as a library, built once per toolchain and kept in the user's cache.

``swift/SwiftKernelPrelude.swift`` (the result channel, value descriptions, ``Jupyter`` and
``JupyterDisplayable``) took about 0.5 s of every start when LLDB compiled it into each new Swift
process; loading it as a prebuilt module takes about 0.1 s. The build (about 1 s) happens once
per toolchain and version of the source: at ``make setup`` (``python -m swift_kernel.prelude``)
or else at the first start that needs it. A build that fails (no writable cache, no ``swiftc``)
leaves the kernel compiling the same source in LLDB, as before.

    python -m swift_kernel.prelude    (prints the library's folder)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .toolchain import Toolchain, ToolchainError, find_toolchain

log = logging.getLogger(__name__)

MODULE = "SwiftKernelPrelude"
SOURCE = Path(__file__).with_name("swift") / f"{MODULE}.swift"
LIBRARY = f"lib{MODULE}.so"
_BUILD_SECONDS = 300


@dataclass(frozen=True)
class PreludeModule:
    """A built module: the folder LLDB searches for its .swiftmodule, and the library to load."""

    folder: Path

    @property
    def library(self) -> Path:
        return self.folder / LIBRARY


def cache_root(environment: Mapping[str, str] | None = None) -> Path:
    """Return where built preludes are kept: $XDG_CACHE_HOME/swift-kernel/prelude, else ~/.cache.

    Not under ``SWIFT_KERNEL_CACHE_DIR`` (the %install cache, which tests give each kernel fresh):
    the prelude depends only on the toolchain and this package's source.
    """
    variables: Mapping[str, str] = os.environ if environment is None else environment
    base = variables.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "swift-kernel" / "prelude"


def _key(toolchain: Toolchain, source: str) -> str:
    """Name a build by what it depends on: the compiler and the source text.

    The compiler is known by its path, size and time (``swift --version`` would cost 0.1 s of
    every start): a toolchain installed over the old one gets a build of its own.
    """
    compiler = os.stat(toolchain.swiftc)
    identity = f"{toolchain.swiftc}\n{compiler.st_size}\n{compiler.st_mtime_ns}\n{source}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def prelude_module(toolchain: Toolchain, root: Path | None = None) -> PreludeModule | None:
    """Return the built module for ``toolchain``, building it first if needed; None if it cannot be."""
    root = cache_root() if root is None else root
    try:
        source = SOURCE.read_text()
        module = PreludeModule(root / _key(toolchain, source))
        if module.library.exists():
            return module
        root.mkdir(parents=True, exist_ok=True)
        # Kernels starting together build it once: the others wait here, then find it built.
        with open(root / f"{module.folder.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not module.library.exists():
                _build(toolchain, source, module.folder)
        return module
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("the kernel's Swift library could not be built (%s); compiling it in LLDB instead", error)
        return None


def _build(toolchain: Toolchain, source: str, folder: Path) -> None:
    """Compile the module into a fresh folder beside ``folder``, then move it into place whole."""
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        (building / SOURCE.name).write_text(source)
        command = [
            str(toolchain.swiftc),
            "-emit-library",
            "-emit-module",
            "-module-name",
            MODULE,
            "-parse-as-library",
            # As LLDB compiles cells: debug info (the debugger's frames) and no optimisation.
            "-g",
            "-Onone",
            SOURCE.name,
            "-o",
            LIBRARY,
        ]
        done = subprocess.run(
            command, check=False, cwd=building, capture_output=True, text=True, timeout=_BUILD_SECONDS
        )
        if done.returncode != 0:
            raise subprocess.SubprocessError(f"swiftc failed: {done.stderr.strip()[-2000:]}")
        # Only what LLDB reads: the module, its source info, the library.
        for leftover in building.glob("*.o"):
            leftover.unlink()
        building.rename(folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(building)


def main() -> None:
    try:
        toolchain = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
    except ToolchainError as error:
        sys.exit(f"swift_kernel.prelude: {error}")
    module = prelude_module(toolchain)
    if module is None:
        sys.exit("swift_kernel.prelude: the library could not be built (see the warning above)")
    print(module.folder)


if __name__ == "__main__":
    logging.basicConfig(format="%(name)s: %(message)s")
    main()
