"""Where the benchmarks start kernels: a folder with no ``swift_kernel`` in it.

``python -m swift_kernel`` puts its working directory first on ``sys.path``, so a kernel started
that way from this repository imports the repository's package whatever its kernelspec says, a
kernelspec whose ``PYTHONPATH`` names another build (to compare two builds) included: both sides
of such a comparison then ran the same code. Kernelspecs now run ``swift_kernel_launcher``, which
takes the working directory off the path; a build from before it (an older side of a comparison)
still runs ``python -m swift_kernel``, so the benchmarks keep starting kernels here.
"""

from __future__ import annotations

import tempfile

KERNEL_CWD = tempfile.gettempdir()
