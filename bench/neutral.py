"""Where the benchmarks start kernels: a folder with no ``swift_kernel`` in it.

``python -m swift_kernel`` puts its working directory first on ``sys.path``, so a kernel started
from this repository imports the repository's package whatever its kernelspec says, a kernelspec
whose ``PYTHONPATH`` names another build (to compare two builds) included: both sides of such a
comparison then ran the same code.
"""

from __future__ import annotations

import tempfile

KERNEL_CWD = tempfile.gettempdir()
