"""Install the Swift kernelspec: kernel.json from kernel.json.in, plus logos.

    python register.py --sys-prefix                 # into the running Python's environment
    python register.py --prefix /tmp/specs --name swift-signal --interrupt-mode signal  # as tests/conftest.py does

It checks the toolchain first and never writes a kernelspec that cannot start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from swift_kernel.toolchain import Toolchain, ToolchainError, find_toolchain, loader_path


def _check_lldb_import(toolchain: Toolchain, python: str) -> None:
    env = dict(os.environ, LD_LIBRARY_PATH=loader_path(toolchain, os.environ.get("LD_LIBRARY_PATH")))
    env["PYTHONPATH"] = str(toolchain.lldb_python_dir)
    probe = subprocess.run(
        [python, "-c", "import lldb, swift_kernel"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no error text"])[-1]
        raise ToolchainError(f"{python} cannot import lldb from {toolchain.lldb_python_dir} and swift_kernel: {last}")


def kernel_json(toolchain: Toolchain, python: str, interrupt_mode: str) -> dict[str, object]:
    """Fill kernel.json.in for this toolchain and interpreter."""
    text = (HERE / "kernel.json.in").read_text()
    values = {
        "@PYTHON@": python,
        "@SWIFT_VERSION@": toolchain.short_version(),
        "@INTERRUPT_MODE@": interrupt_mode,
        "@TOOLCHAIN@": str(toolchain.root),
        "@LLDB_PYTHONPATH@": str(toolchain.lldb_python_dir),
        "@LD_LIBRARY_PATH@": loader_path(toolchain),
    }
    for key, value in values.items():
        text = text.replace(key, json.dumps(value)[1:-1])
    spec: dict[str, object] = json.loads(text)
    return spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix (the venv)")
    where.add_argument("--prefix", help="install under this prefix")
    parser.add_argument("--swift-toolchain", help="toolchain root (default: from `swift` on PATH, else /opt/swift)")
    parser.add_argument("--name", default="swift", help="kernelspec name (default: swift)")
    parser.add_argument("--display-name", help="display name (default: Swift <version>)")
    parser.add_argument("--interrupt-mode", choices=["message", "signal"], default="message")
    args = parser.parse_args(argv)

    python = sys.executable
    try:
        toolchain = find_toolchain(args.swift_toolchain)
        toolchain.validate()
        _check_lldb_import(toolchain, python)
        spec = kernel_json(toolchain, python, args.interrupt_mode)
    except ToolchainError as error:
        print(f"register.py: {error}", file=sys.stderr)
        return 1
    if args.display_name:
        spec["display_name"] = args.display_name

    from jupyter_client.kernelspec import KernelSpecManager

    prefix = sys.prefix if args.sys_prefix else args.prefix
    with tempfile.TemporaryDirectory() as staging:
        (Path(staging) / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
        for logo in (HERE / "swift_kernel" / "resources").iterdir():
            shutil.copy(logo, staging)
        destination = KernelSpecManager().install_kernel_spec(
            staging, kernel_name=args.name, user=args.user, prefix=prefix
        )
    print(f"Installed kernelspec {args.name} in {destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
