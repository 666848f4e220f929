"""What the kernel says about itself in kernel_info_reply: one definition for both of its senders.

The kernel answers the first kernel_info_request before ipykernel is imported (``startup``) and
every later one from ``SwiftKernel.kernel_info``; both build the content here, so the two can
never differ. Standard library only: it is imported on the start path.
"""

from __future__ import annotations

import os
from typing import Any

from . import __version__
from .toolchain import Toolchain

# The messaging protocol ipykernel implements (ipykernel._version.kernel_protocol_version, which
# cannot be imported without importing ipykernel itself; tests/test_startup.py checks they agree).
PROTOCOL_VERSION = "5.3"
IMPLEMENTATION = "swift_kernel"


def swift_version(toolchain: Toolchain) -> str:
    """Return the toolchain's version number, e.g. ``6.3.1``.

    register.py records it in the kernelspec's environment; asking ``swift --version`` costs a process.
    """
    return os.environ.get("SWIFT_KERNEL_SWIFT_VERSION") or toolchain.short_version()


def language_info(version: str) -> dict[str, Any]:
    """Return kernel_info's ``language_info`` for Swift ``version``."""
    return {
        "name": "swift",
        "version": version,
        "mimetype": "text/x-swift",
        "file_extension": ".swift",
        "pygments_lexer": "swift",
        "codemirror_mode": "swift",
    }


def banner(version: str) -> str:
    """Return the banner a console shows on connecting."""
    return f"Swift {version} kernel (swift_kernel {__version__}), running through LLDB"


def kernel_info(version: str) -> dict[str, Any]:
    """Return the content of kernel_info_reply (without its ``status``) for Swift ``version``."""
    # Not ipykernel's: it announces kernel subshells, which this kernel lacks.
    return {
        "protocol_version": PROTOCOL_VERSION,
        "implementation": IMPLEMENTATION,
        "implementation_version": __version__,
        "language_info": language_info(version),
        "banner": banner(version),
        "help_links": [],
        "supported_features": ["debugger"],
        # What frontends before the supported_features field (JupyterLab 3) look for.
        "debugger": True,
    }
