"""Run the Swift kernel, its LLDB host or its gateway launcher with the working directory off ``sys.path``.

    python -m swift_kernel_launcher -f CONNECTION_FILE               (the kernel: the kernelspec's argv)
    python -m swift_kernel_launcher swift_kernel.host FD             (the LLDB host, spawned by the kernel)
    python -m swift_kernel_launcher swift_kernel.gateway [OPTIONS]   (Enterprise Gateway's launcher)

Jupyter starts a kernel in its notebook's folder, and ``python -m`` puts the working directory
first on ``sys.path``: a ``swift_kernel`` folder there (a checkout of this project), or a
``queue.py`` or ``zmq.py`` beside the notebook, would be imported in place of the kernel's own
modules, and the kernel would fail to start or run foreign code. ipykernel guards against the
same with its ``ipykernel_launcher``; this is that guard for this kernel. Only this module's own
name is looked up in the working directory, before the guard runs. Swift code still runs in the
notebook's folder: only Python's module search changes.
"""

import os
import runpy
import sys

# The entry points that may be named as the first argument; without one, the kernel.
ENTRY_POINTS = ("swift_kernel.host", "swift_kernel.gateway")


def main() -> None:
    """Take the working directory off ``sys.path``, then run the entry point as ``python -m`` would."""
    try:
        here: str | None = os.getcwd()
    except OSError:  # the folder was removed: python -m then put nothing on the path for it
        here = None
    if sys.path and sys.path[0] in ("", here):
        del sys.path[0]
    module = "swift_kernel"
    if len(sys.argv) > 1 and sys.argv[1] in ENTRY_POINTS:
        module = sys.argv.pop(1)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
