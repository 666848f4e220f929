"""Start the Swift kernel for Jupyter Enterprise Gateway: ``python -m swift_kernel_launcher swift_kernel.gateway ...``.

Enterprise Gateway's remote process proxies (SSH, Kubernetes, Docker, YARN) do not write a
connection file for the kernel: they run a *kernel launcher* and wait for it to call back. This is
that launcher for the Swift kernel, speaking the protocol of the gateway's own
``launch_ipykernel.py`` (payload version 1):

1. pick the kernel's five ports (inside ``--port-range`` if one is given) and write a connection
   file with a fresh key;
2. send the connection info, with this process's ``pid`` and ``pgid``, the ``comm_port`` below and
   the ``kernel_id``, to ``--response-address``: the JSON is AES-128-ECB encrypted (PKCS#7
   padding) under a random key, that key RSA PKCS#1 v1.5 encrypted with ``--public-key`` (the
   gateway's, base64 DER), and both sent base64 encoded as ``{"version": 1, "key", "conn_info"}``;
3. listen on ``comm_port``: each connection carries one JSON request, ``{"signum": N}`` (0 is the
   gateway's liveness poll; 2 is a signal-mode interrupt, which reaches the kernel's sigwait
   thread as any SIGINT does) or ``{"shutdown": 1}`` (stop listening).

Then it starts the kernel exactly as the kernelspec's argv does (SIGINT blocked before any
thread starts, the loader path, the early Swift process, the sigwait thread). The gateway's own
Python launcher cannot do that: it imports the kernel class into a process whose threads take
SIGINT, and it neither fixes the loader path nor starts the sigwait thread.

Each option falls back to the environment variable the gateway's container launchers set
(``KERNEL_ID``, ``RESPONSE_ADDRESS``, ``PUBLIC_KEY``, ``PORT_RANGE``), so a Kubernetes pod or Docker
container can run ``python -m swift_kernel_launcher swift_kernel.gateway`` with no arguments (the
launcher keeps the working directory off ``sys.path``; ``python -m swift_kernel.gateway`` works too).
"""

import signal

# As in __main__: before anything can start a thread, SIGINT is blocked everywhere. Only when run:
# a process that imports this module (the tests) must keep its SIGINT, and so must its children.
if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

import argparse
import base64
import contextlib
import json
import logging
import os
import random
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from jupyter_client.connect import write_connection_file as jupyter_write
from jupyter_core.paths import jupyter_runtime_dir

from swift_kernel import launch_arguments
from swift_kernel.__main__ import launch, prepare

log = logging.getLogger("swift_kernel.gateway")

LAUNCHER_VERSION = 1
# The gateway refuses smaller port ranges (EG_MIN_PORT_RANGE_SIZE), and passes its setting on.
DEFAULT_MIN_PORT_RANGE_SIZE = 1000
# How long one request on the communication port may take to arrive whole.
REQUEST_TIMEOUT = 5.0
KERNEL_PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port")
# How long a SIGTERM from the gateway waits for the kernel to end by itself (serve_gateway_requests).
TERM_GRACE = 3.0
# What the gateway sends on the communication port: an interrupt, and its two ways of ending a
# kernel that did not end by itself. Anyone who can reach the port can send a request (as with the
# gateway's own launchers), so nothing else is carried out.
GATEWAY_SIGNALS = frozenset({int(signal.SIGINT), int(signal.SIGTERM), int(signal.SIGKILL)})


class LauncherError(RuntimeError):
    """Raised with one line saying which launcher argument is wrong."""


@dataclass(frozen=True)
class LaunchRequest:
    """What the gateway asked for: its kernel id, where to answer, with which key, on which ports."""

    kernel_id: str
    response_address: tuple[str, int] | None
    public_key: str | None
    port_range: tuple[int, int]
    ip: str


def parse_port_range(text: str | None, min_size: int = DEFAULT_MIN_PORT_RANGE_SIZE) -> tuple[int, int]:
    """Return ``(lower, upper)`` from ``"L..U"``; ``(0, 0)`` (any port) for none or ``"0..0"``."""
    if not text:
        return 0, 0
    try:
        lower, upper = (int(part) for part in text.split(".."))
    except ValueError:
        raise LauncherError(f"port range {text!r} is not of the form LOWER..UPPER") from None
    if (lower, upper) != (0, 0) and not (0 < lower < upper <= 65535 and upper - lower >= min_size):
        raise LauncherError(f"port range {text!r}: need 0 < LOWER < UPPER <= 65535, at least {min_size} ports")
    return lower, upper


def parse_response_address(text: str | None) -> tuple[str, int] | None:
    """Return ``(ip, port)`` from ``"IP:PORT"``, or None when the gateway gave none."""
    if not text:
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise LauncherError(f"response address {text!r} is not of the form IP:PORT")
    return host, int(port)


def parse_arguments(argv: list[str], environ: dict[str, str] | os._Environ[str] = os.environ) -> LaunchRequest:
    """Read the gateway's arguments, in both of its spellings, with the environment as fallback."""
    parser = argparse.ArgumentParser(prog="python -m swift_kernel.gateway", description=__doc__.splitlines()[0])
    for name, metavar in [
        ("kernel-id", "ID"),
        ("response-address", "IP:PORT"),
        ("public-key", "KEY"),
        ("port-range", "LOWER..UPPER"),
    ]:
        dest = name.replace("-", "_")
        # The gateway's own kernelspecs write --RemoteProcessProxy.kernel-id and so on.
        parser.add_argument(f"--{name}", f"--RemoteProcessProxy.{name}", dest=dest, metavar=metavar)
    parser.add_argument("--ip", default="0.0.0.0", help="address the kernel's ports listen on (default: all)")
    # Arguments the gateway's Python launcher takes that mean nothing for Swift.
    for ignored in ("spark-context-initialization-mode", "cluster-type", "kernel-class-name"):
        parser.add_argument(f"--{ignored}", f"--RemoteProcessProxy.{ignored}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    kernel_id = args.kernel_id or environ.get("KERNEL_ID")
    if not kernel_id:
        raise LauncherError("no kernel id: give --kernel-id or set KERNEL_ID")
    response_address = parse_response_address(args.response_address or environ.get("RESPONSE_ADDRESS"))
    public_key = args.public_key or environ.get("PUBLIC_KEY")
    if response_address and not public_key:
        raise LauncherError("a response address needs the gateway's public key: give --public-key or set PUBLIC_KEY")
    min_size = int(environ.get("EG_MIN_PORT_RANGE_SIZE", DEFAULT_MIN_PORT_RANGE_SIZE))
    port_range = parse_port_range(args.port_range or environ.get("PORT_RANGE"), min_size)
    return LaunchRequest(kernel_id, response_address, public_key, port_range, args.ip)


def bind_socket(port_range: tuple[int, int], ip: str = "0.0.0.0", retries: int = 20) -> socket.socket:
    """Return a TCP socket bound to a free port of ``port_range`` (any free port for ``(0, 0)``)."""
    lower, upper = port_range
    for _ in range(retries):
        candidate = 0 if (lower, upper) == (0, 0) else random.randint(lower, upper)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((ip, candidate))
        except OSError:
            sock.close()
            continue
        return sock
    raise LauncherError(f"no free port in {lower}..{upper} after {retries} tries")


def write_connection_file(path: Path, request: LaunchRequest) -> dict[str, Any]:
    """Write a connection file with a fresh key and five free ports; return its content."""
    probes = [bind_socket(request.port_range, request.ip) for _ in KERNEL_PORT_NAMES]
    ports = {name: probe.getsockname()[1] for name, probe in zip(KERNEL_PORT_NAMES, probes, strict=True)}
    for probe in probes:
        probe.close()
    key = os.urandom(16).hex().encode()
    _, info = jupyter_write(str(path), ip=request.ip, key=key, kernel_name="swift", **ports)
    return dict(info)


def encrypt_payload(connection_info: dict[str, Any], public_key: str) -> bytes:
    """Return the version-1 payload the gateway's ResponseManager decrypts (see the module docstring)."""
    aes_key = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(connection_info).encode()) + padder.finalize()
    # ECB because the gateway decrypts with ECB (AES.MODE_ECB in its processproxy.py); the key is
    # fresh per payload and the payload is sent once.
    encryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
    conn_info = encryptor.update(plain) + encryptor.finalize()
    rsa_key = serialization.load_der_public_key(base64.b64decode(public_key))
    if not isinstance(rsa_key, RSAPublicKey):
        raise LauncherError("the gateway's public key is not an RSA key")
    encrypted_key = rsa_key.encrypt(aes_key, rsa_padding.PKCS1v15())
    payload = {
        "version": LAUNCHER_VERSION,
        "key": base64.b64encode(encrypted_key).decode(),
        "conn_info": base64.b64encode(conn_info).decode(),
    }
    return base64.b64encode(json.dumps(payload).encode())


def send_connection_info(request: LaunchRequest, info: dict[str, Any], comm_port: int) -> None:
    """Tell the gateway where the kernel listens: connection info, pid, pgid, comm_port, kernel_id."""
    assert request.response_address is not None and request.public_key is not None
    answer = dict(info, pid=os.getpid(), pgid=os.getpgid(0), comm_port=comm_port, kernel_id=request.kernel_id)
    payload = encrypt_payload(answer, request.public_key)
    with socket.create_connection(request.response_address, timeout=30) as connection:
        connection.sendall(payload)


def read_request(listener: socket.socket) -> dict[str, Any] | None:
    """Accept one connection on the communication port and return its JSON request (None: not one)."""
    connection, _ = listener.accept()
    with connection:
        connection.settimeout(REQUEST_TIMEOUT)
        data = b""
        try:
            while chunk := connection.recv(1024):
                data += chunk
        except OSError:
            return None
    try:
        request = json.loads(data)
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def serve_gateway_requests(
    listener: socket.socket,
    pid: int,
    before_ending: Callable[[], None] = lambda: None,
    term_grace: float = TERM_GRACE,
) -> None:
    """Carry out the gateway's requests on the communication port until it asks to stop.

    Runs in a thread of the kernel process, with SIGINT blocked like every thread but the sigwait
    one, so a SIGINT sent to ``pid`` here is taken by the sigwait thread: the interrupt path of
    signal mode, as for ``kill -INT``. SIGTERM comes ``term_grace`` seconds late: the gateway sends
    it right after its shutdown_request (DistributedProcessProxy.cleanup), while the kernel is
    ending by itself, and polls for up to 5 s before it sends SIGKILL. ``before_ending`` runs
    before SIGTERM or SIGKILL is sent (it removes the connection file, which no exit code will).
    """

    def end(signum: int) -> None:
        before_ending()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    with listener:
        while True:
            request = read_request(listener)
            if request is None:
                continue
            signum = request.get("signum")
            if signum in GATEWAY_SIGNALS:
                log.debug("gateway asked for signal %d", signum)
                if signum == signal.SIGINT:
                    os.kill(pid, signum)
                elif signum == signal.SIGTERM:
                    timer = threading.Timer(term_grace, end, args=(signum,))
                    timer.daemon = True
                    timer.start()
                else:
                    end(signum)
            elif signum not in (None, 0):  # 0 is the gateway's liveness poll
                log.warning("ignored a request for signal %r on the gateway's port", signum)
            if request.get("shutdown"):
                return


def announce(request: LaunchRequest, connection_file: Path) -> socket.socket | None:
    """Write the connection file and, when the gateway waits for it, send it back with a comm port."""
    info = write_connection_file(connection_file, request)
    if request.response_address is None:
        return None
    listener = bind_socket(request.port_range, request.ip)
    listener.listen(8)
    try:
        send_connection_info(request, info, listener.getsockname()[1])
    except BaseException:
        listener.close()
        raise
    return listener


def main() -> None:
    """Answer the gateway, then run the kernel on the connection file it was told about."""
    try:
        request = parse_arguments(sys.argv[1:])
    except LauncherError as error:
        sys.exit(f"swift_kernel.gateway: {error}")
    # Before any socket exists: this may re-run the process with the toolchain's loader path.
    toolchain = prepare(launch_arguments("swift_kernel.gateway", *sys.argv[1:]))
    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(parents=True, exist_ok=True)
    # The pid too: a restart starts the next kernel under the same id while this one may still be ending.
    connection_file = runtime / f"kernel-{request.kernel_id}-{os.getpid()}.json"
    try:
        try:
            listener = announce(request, connection_file)
        except (LauncherError, OSError) as error:
            sys.exit(f"swift_kernel.gateway: cannot answer the gateway: {error}")
        if listener is not None:
            threading.Thread(
                target=serve_gateway_requests,
                args=(listener, os.getpid(), lambda: connection_file.unlink(missing_ok=True)),
                name="swift-gateway-comm",
                daemon=True,
            ).start()
        launch(toolchain, ["-f", str(connection_file), f"--ip={request.ip}"])
    finally:
        connection_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
