"""A Jupyter kernel for Swift that runs cells through the toolchain's LLDB."""

__version__ = "0.1.0"

# The module the package's processes are started with (its docstring says why: the working directory).
LAUNCHER = "swift_kernel_launcher"


def launch_arguments(entry_point: str | None = None, *arguments: str) -> list[str]:
    """Return what follows ``python`` to run ``entry_point`` (default: the kernel) through the launcher."""
    return ["-m", LAUNCHER, *([entry_point] if entry_point else []), *arguments]
