"""The least an ipykernel-based kernel can do: answer every cell with ``2`` at once.

bench/latency.py times its round trip as the floor that ipykernel's message handling puts under
any kernel built on it, the Swift kernel included.

    python bench/null_kernel.py -f CONNECTION_FILE
"""

from __future__ import annotations

from typing import Any

from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel


class NullKernel(Kernel):
    """Reply to execute_request with a constant result and nothing else."""

    implementation = "null"
    implementation_version = "1"
    banner = "null kernel"
    language_info = {"name": "text", "mimetype": "text/plain", "file_extension": ".txt"}  # noqa: RUF012 - ipykernel's shape

    async def do_execute(  # type: ignore[override]
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        *,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        if not silent:
            content = {"execution_count": self.execution_count, "data": {"text/plain": "2"}, "metadata": {}}
            self.send_response(self.iopub_socket, "execute_result", content)
        return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}


if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=NullKernel)
