"""Find the Swift toolchain and the pieces of it the kernel needs.

Pure standard library, so it also runs under whatever ``python3`` the Makefile
finds before the project's virtual environment exists.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TOOLCHAIN = Path("/opt/swift")


class ToolchainError(RuntimeError):
    """Raised with one line that names what is missing."""


@dataclass(frozen=True)
class Toolchain:
    """Paths inside one Swift toolchain."""

    root: Path

    @property
    def bin_dir(self) -> Path:
        return self.root / "usr" / "bin"

    @property
    def repl_swift(self) -> Path:
        return self.bin_dir / "repl_swift"

    @property
    def swift_build(self) -> Path:
        return self.bin_dir / "swift-build"

    @property
    def swiftc(self) -> Path:
        return self.bin_dir / "swiftc"

    @property
    def sourcekit_lsp(self) -> Path:
        return self.bin_dir / "sourcekit-lsp"

    @property
    def library_dirs(self) -> list[Path]:
        """Return the directories ``liblldb.so`` needs on the loader path."""
        lib = self.root / "usr" / "lib"
        return [lib, lib / "swift" / "linux", lib / "swift" / "host" / "compiler", lib / "swift" / "host"]

    @property
    def lldb_python_dir(self) -> Path:
        """Return the directory that holds the ``lldb`` Python package."""
        patterns = [
            "usr/local/lib/python3*/dist-packages",
            "usr/lib/python3*/site-packages",
            "usr/lib/python3*/dist-packages",
            "usr/lib/python3/dist-packages",
        ]
        for pattern in patterns:
            for candidate in sorted(glob.glob(str(self.root / pattern))):
                if (Path(candidate) / "lldb" / "__init__.py").exists():
                    return Path(candidate)
        raise ToolchainError(f"no lldb Python package found in the Swift toolchain at {self.root}")

    @property
    def lldb_python_version(self) -> tuple[int, int]:
        """Return the CPython (major, minor) the toolchain's LLDB bindings are built for."""
        for name in os.listdir(self.lldb_python_dir / "lldb"):
            match = re.match(r"_lldb\.cpython-(\d)(\d+)", name)
            if match:
                return int(match.group(1)), int(match.group(2))
        raise ToolchainError(f"no _lldb extension module in {self.lldb_python_dir / 'lldb'}")

    def version(self) -> str:
        """Return the toolchain's version line, e.g. ``Swift version 6.3.1 (swift-6.3.1-RELEASE)``."""
        # The driver leaves an empty TemporaryDirectory.XXXXXX behind in TMPDIR on every run.
        with tempfile.TemporaryDirectory(prefix="swift-kernel-version-") as scratch:
            out = subprocess.run(
                [str(self.bin_dir / "swift"), "--version"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env=dict(os.environ, TMPDIR=scratch),
            )
        for line in (out.stdout + out.stderr).splitlines():
            if "Swift version" in line:
                return line.strip()
        raise ToolchainError(f"`{self.bin_dir / 'swift'} --version` did not print a Swift version")

    def short_version(self) -> str:
        """Return just the version number, e.g. ``6.3.1``."""
        match = re.search(r"Swift version (\S+)", self.version())
        return match.group(1) if match else "unknown"

    def validate(self) -> None:
        """Raise ToolchainError naming the first missing piece."""
        for tool in (self.repl_swift, self.swift_build, self.bin_dir / "lldb-server"):
            if not os.access(tool, os.X_OK):
                raise ToolchainError(f"{tool} is missing or not executable")
        self.lldb_python_dir  # noqa: B018 - raises when missing


def find_toolchain(explicit: str | os.PathLike[str] | None = None) -> Toolchain:
    """Find the toolchain: the argument, $SWIFT_TOOLCHAIN, `swift` on PATH, then /opt/swift."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get("SWIFT_TOOLCHAIN"):
        candidates.append(Path(os.environ["SWIFT_TOOLCHAIN"]))
    else:
        swift = shutil.which("swift")
        if swift:
            candidates.append(Path(swift).resolve().parent.parent.parent)
        candidates.append(DEFAULT_TOOLCHAIN)
    for root in candidates:
        if (root / "usr" / "bin" / "repl_swift").exists():
            return Toolchain(root.resolve())
    raise ToolchainError(f"no Swift toolchain with usr/bin/repl_swift at {', '.join(map(str, candidates))}")


def loader_path(toolchain: Toolchain, existing: str | None = None) -> str:
    """Return LD_LIBRARY_PATH with the toolchain's library directories first."""
    parts = [str(d) for d in toolchain.library_dirs]
    if existing:
        parts += [p for p in existing.split(":") if p and p not in parts]
    return ":".join(parts)


def ensure_loader_path(argv: list[str]) -> Toolchain:
    """Re-run this process as ``python *argv`` if the toolchain's libraries are not on LD_LIBRARY_PATH.

    The dynamic loader reads LD_LIBRARY_PATH only at process start, and LLDB's Python module
    needs the toolchain's Swift runtime libraries; the kernelspec sets it, everything else
    (``python -m swift_kernel``, the benchmarks) gets it here. Returns the toolchain when the
    path is already right.
    """
    toolchain = find_toolchain(os.environ.get("SWIFT_KERNEL_TOOLCHAIN") or None)
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if all(str(d) in current.split(":") for d in toolchain.library_dirs):
        return toolchain
    os.environ["LD_LIBRARY_PATH"] = loader_path(toolchain, current)
    os.environ["SWIFT_KERNEL_TOOLCHAIN"] = str(toolchain.root)
    os.execv(sys.executable, [sys.executable, *argv])


def python_for_lldb(toolchain: Toolchain) -> Path:
    """Find a shared-library CPython whose minor version matches the LLDB bindings."""
    major, minor = toolchain.lldb_python_version
    name = f"python{major}.{minor}"
    candidates: list[str] = []
    if sys.version_info[:2] == (major, minor):
        candidates.append(sys.executable)
    found = shutil.which(name)
    if found:
        candidates.append(found)
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{major}.{minor}.*/bin/{name}"), reverse=True)
    candidates += [f"/usr/bin/{name}", f"/usr/local/bin/{name}"]
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sysconfig; print(sysconfig.get_config_var('Py_ENABLE_SHARED'))"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        # The bindings link against libpython, so a static interpreter would load a second copy.
        if probe.returncode == 0 and probe.stdout.strip() == "1":
            return Path(candidate)
    raise ToolchainError(
        f"the toolchain's LLDB needs a shared-library {name} (none found on PATH, in pyenv or /usr/bin)"
    )


def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--swift-toolchain")
    parser.add_argument("what", choices=["python", "root", "lldb-path", "loader-path", "version"])
    args = parser.parse_args()
    try:
        toolchain = find_toolchain(args.swift_toolchain)
        toolchain.validate()
        value = {
            "python": lambda: str(python_for_lldb(toolchain)),
            "root": lambda: str(toolchain.root),
            "lldb-path": lambda: str(toolchain.lldb_python_dir),
            "loader-path": lambda: loader_path(toolchain),
            "version": toolchain.short_version,
        }[args.what]()
    except ToolchainError as error:
        print(f"swift_kernel: {error}", file=sys.stderr)
        return 1
    print(value)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
