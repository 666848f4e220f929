"""Jupyter Enterprise Gateway for the tests and bench/gateway.py: its venv, a private sshd, the gateway itself.

Enterprise Gateway 3.3 needs jupyter_client 6 and jupyter_server 1, which cannot share the kernel's
venv (jupyter_client 8, ipykernel 7): scripts/setup.sh installs it in a venv of its own,
``.venv/enterprise-gateway``. It starts kernels with the argv of the kernelspecs that
``register.py --gateway`` writes, which name the kernel's own Python.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..utils import register_private_kernelspec
from .helpers import REPO, Server, free_port, jupyter_env, jupyter_server_argv, running_server

GATEWAY_VENV = REPO / ".venv" / "enterprise-gateway"
SSHD = Path("/usr/sbin/sshd")
# A loopback address that is not 127.0.0.1: Enterprise Gateway's DistributedProcessProxy starts a
# kernel on a host it takes for itself (jupyter_client's local IPs: 127.0.0.1 and the machine's own
# addresses) with a plain Popen, never over SSH (distributed.py, _launch_remote_process). Any
# 127.0.0.0/8 address reaches this machine's loopback, so 127.0.0.2 is a "remote" host that is here.
REMOTE_HOST = "127.0.0.2"
# Environment the gateway passes on to kernels (EG_INHERITED_ENVS): the test's private Jupyter and
# IPython folders, so that a kernel started over SSH writes its connection file there too.
INHERITED = ["JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "JUPYTER_PLATFORM_DIRS"]


def gateway_tool() -> str:
    """Return Enterprise Gateway's command, failing loudly when `make setup` did not install it."""
    path = GATEWAY_VENV / "bin" / "jupyter-enterprisegateway"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run `make setup` (scripts/setup.sh installs Enterprise Gateway)")
    return str(path)


def register_gateway_kernelspecs(prefix: Path) -> Path:
    """Register the `swift-eg-local` and `swift-eg-ssh` kernelspecs under ``prefix``; return the JUPYTER_PATH entry."""
    register_private_kernelspec(prefix, "swift-eg-local", "--gateway", "local")
    # Signal mode: the interrupt goes from the gateway to the launcher's communication port and
    # on to the kernel's sigwait thread (the message-mode path is the local test's).
    return register_private_kernelspec(prefix, "swift-eg-ssh", "--gateway", "ssh", "--interrupt-mode", "signal")


@dataclass
class Sshd:
    """A private OpenSSH server: its address, the client's HOME (key and known_hosts) and its log."""

    host: str
    port: int
    client_home: Path
    log: Path
    process: subprocess.Popen[bytes]


@contextmanager
def private_sshd(folder: Path, host: str = REMOTE_HOST) -> Iterator[Sshd]:
    """Run Debian's sshd on ``host`` and a free port with throwaway keys, all under ``folder``; stop it after.

    sshd insists on its privilege-separation folder /run/sshd, which only its init script or
    systemd creates. It runs in a mount namespace of its own (``unshare --mount``) with a
    private tmpfs on /run holding that folder, so nothing outside ``folder`` is created or changed;
    the kernels it starts share that namespace and need nothing from /run.
    """
    if not os.access(SSHD, os.X_OK):
        pytest.fail(f"{SSHD} is missing: run `make setup` (scripts/setup.sh installs openssh-server)")
    keygen = shutil.which("ssh-keygen")
    unshare = shutil.which("unshare")
    if keygen is None or unshare is None:
        pytest.fail("ssh-keygen and unshare are needed (openssh-client, util-linux)")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    client_home = folder / "client-home"
    (client_home / ".ssh").mkdir(parents=True, mode=0o700)
    host_key, client_key = folder / "host_ed25519", client_home / ".ssh" / "id_ed25519"
    for key in (host_key, client_key):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    authorized = folder / "authorized_keys"
    shutil.copy(client_key.with_suffix(".pub"), authorized)
    port = free_port()
    host_public = host_key.with_suffix(".pub").read_text().split()
    (client_home / ".ssh" / "known_hosts").write_text(f"[{host}]:{port} {host_public[0]} {host_public[1]}\n")
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {host}:{port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {folder / 'sshd.pid'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "PermitRootLogin prohibit-password",
                # The test's folders live under pytest's tmp, whose parents sshd's ownership check rejects.
                "StrictModes no",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    log = folder / "sshd.log"
    script = f"mount -t tmpfs -o mode=755 sshd-run /run && mkdir -m 755 /run/sshd && exec {SSHD} -D -e -f {config}"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [unshare, "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while "Server listening" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start (exit {process.poll()}):\n{log.read_text()}")
            time.sleep(0.05)
        yield Sshd(host, port, client_home, log, process)
    finally:
        process.terminate()
        process.wait(timeout=20)


def gateway_environment(home: Path, specs: Path, sshd: Sshd | None) -> dict[str, str]:
    """Return Enterprise Gateway's environment: private Jupyter folders, the kernelspecs, SSH settings."""
    env = jupyter_env(home)
    env["JUPYTER_PATH"] = str(specs)
    # Nothing leaves the loopback interface: the gateway waits for connection info on 127.0.0.1.
    env["EG_RESPONSE_IP"] = "127.0.0.1"
    env["EG_KERNEL_LOG_DIR"] = str(home)
    env["EG_INHERITED_ENVS"] = ",".join(INHERITED)
    if sshd is not None:
        env["HOME"] = str(sshd.client_home)  # paramiko takes the key and known_hosts from ~/.ssh
        env["EG_REMOTE_HOSTS"] = sshd.host
        env["EG_SSH_PORT"] = str(sshd.port)
        env.pop("SSH_AUTH_SOCK", None)
    return env


@contextmanager
def enterprise_gateway(home: Path, specs: Path, sshd: Sshd | None = None) -> Iterator[Server]:
    """Run Enterprise Gateway on 127.0.0.1 with the Swift kernelspecs; stop it and its kernels after."""
    port, token = free_port(), uuid.uuid4().hex
    argv = [
        gateway_tool(),
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--EnterpriseGatewayApp.auth_token={token}",
        # Jupyter Server lists the gateway's kernels (GET /api/kernels), which the gateway refuses by default.
        "--EnterpriseGatewayApp.list_kernels=True",
        "--debug",
    ]
    if os.geteuid() == 0:
        # The gateway refuses kernels for root by default (unauthorized_users); the tests run as root.
        argv.append("--EnterpriseGatewayApp.unauthorized_users=['nobody']")
    home.mkdir(parents=True, exist_ok=True)
    env = gateway_environment(home, specs, sshd)
    log = home / "enterprise-gateway.log"
    with running_server(argv, port=port, token=token, env=env, log=log, ready_path="/api/kernelspecs") as server:
        yield server


@contextmanager
def server_through_gateway(home: Path, gateway: Server) -> Iterator[Server]:
    """Run Jupyter Server with ``--gateway-url`` pointing at ``gateway``: its kernels are the gateway's."""
    port, token = free_port(), uuid.uuid4().hex
    (home / "root").mkdir(parents=True, exist_ok=True)
    argv = jupyter_server_argv(
        port, token, home / "root", f"--gateway-url={gateway.base_url}", f"--GatewayClient.auth_token={gateway.token}"
    )
    env = jupyter_env(home / "server")
    log = home / "jupyter-server.log"
    with running_server(argv, port=port, token=token, env=env, log=log, ready_path="/api/status") as server:
        yield server
