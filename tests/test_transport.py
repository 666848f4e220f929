"""How the kernel is reached: IPC and CurveZMQ-encrypted TCP as the README documents, a quiet log, orjson."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from .conftest import stop_kernel
from .utils import execute

pytestmark = [pytest.mark.lldb, pytest.mark.timeout(180)]

TCP_WARNING = "Kernel is running over TCP without encryption"


@contextmanager
def kernel_with_log(log: Path, **manager_options: Any) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """Start the installed `swift` kernel with ``manager_options``, its stdout and stderr going to ``log``."""
    km = KernelManager(kernel_name="swift", **manager_options)
    with log.open("wb") as output:
        km.start_kernel(stdout=output, stderr=output)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        stop_kernel(km, kc)


def first_result(kc: BlockingKernelClient) -> str | None:
    execution = execute(kc, "1 + 1")
    assert execution.status == "ok", execution.content
    return execution.result


def test_ipc_transport(tmp_path: Path) -> None:
    """`--transport=ipc` (jupyter lab, jupyter console): Unix sockets, and no TCP warning."""
    log = tmp_path / "kernel.log"
    with kernel_with_log(log, transport="ipc", ip=str(tmp_path / "kernel-ipc")) as (km, kc):
        assert km.transport == "ipc"
        assert first_result(kc) == "2"
    assert TCP_WARNING not in log.read_text()


def test_curve_encrypted_tcp(tmp_path: Path) -> None:
    """transport_encryption='required' works because the kernelspec declares Curve support."""
    log = tmp_path / "kernel.log"
    with kernel_with_log(log, transport_encryption="required") as (km, kc):
        assert km.get_connection_info().get("curve_publickey"), "no Curve keys were provisioned"
        assert first_result(kc) == "2"
    assert TCP_WARNING not in log.read_text()


def test_the_kernels_own_log_is_quiet_at_the_default_level(tmp_path: Path) -> None:
    """A start, a cell, a Tab and a shutdown log nothing but ipykernel's own TCP warning."""
    log = tmp_path / "kernel.log"
    with kernel_with_log(log) as (_, kc):
        assert first_result(kc) == "2"
        kc.complete("pri", 3, reply=True, timeout=30)
        time.sleep(1)  # sourcekit-lsp's warm-up, and anything it would log, finish
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    ours = [line for line in lines if TCP_WARNING not in line and "eavesdropping" not in line]
    assert ours == [], "\n".join(lines)


def test_messages_are_packed_by_orjson(kc: BlockingKernelClient) -> None:
    """jupyter_client's Session packs with orjson when it is installed: 0.4 ms a trivial cell sooner here.

    orjson writes JSON without the spaces the json module puts after ``:`` and ``,``, so the
    bytes of the reply's content say which packer made them.
    """
    packed: list[bytes] = []
    unpack = kc.session.unpack

    def recording(data: bytes) -> Any:
        packed.append(bytes(data))
        return unpack(data)

    kc.session.unpack = recording
    try:
        assert execute(kc, "40 + 2").result == "42"
    finally:
        kc.session.unpack = unpack
    headers = [data for data in packed if b'"msg_type"' in data and b'"execute_reply"' in data]
    assert headers, packed
    assert all(b'"msg_type":"execute_reply"' in data for data in headers), headers
