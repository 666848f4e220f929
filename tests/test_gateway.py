"""Enterprise Gateway pieces without a gateway: kernelspecs, the launcher's protocol, the pod manifest.

The gateway itself drives the kernel in tests/e2e/test_enterprise_gateway.py.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from swift_kernel import gateway
from swift_kernel.toolchain import find_toolchain

from .conftest import KernelPair, descendants, kernel_pid, named
from .utils import REPO, execute, register_private_kernelspec

KERNEL_ID = "6b9f4c52-8f0e-4a8c-9d43-2d1c1f0e8a11"
# Validated against the newest Kubernetes API the validator ships and the oldest still supported
# by the major clouds when this was written.
KUBERNETES_VERSIONS = [kubernetes_validate.utils.latest_version(), "1.30.0"]


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


register = load_module(REPO / "register.py")
launch_kubernetes = load_module(REPO / "deploy" / "kubernetes" / "launch_kubernetes.py")


@pytest.fixture(scope="module")
def plain_spec() -> dict[str, Any]:
    spec: dict[str, Any] = register.kernel_json(find_toolchain(), sys.executable, "message")
    return spec


# ----- kernelspecs --------------------------------------------------------------------------------


def test_ssh_kernelspec_runs_the_launcher_with_the_plain_kernelspecs_env(plain_spec: dict[str, Any]) -> None:
    spec = register.gateway_kernel_json(plain_spec, "ssh", remote_hosts="node1,node2")
    assert spec["argv"][:4] == [sys.executable, "-m", "swift_kernel_launcher", "swift_kernel.gateway"]
    for placeholder in ("{kernel_id}", "{response_address}", "{public_key}", "{port_range}"):
        assert placeholder in spec["argv"]
    proxy = spec["metadata"]["process_proxy"]
    assert proxy["class_name"] == "enterprise_gateway.services.processproxies.distributed.DistributedProcessProxy"
    assert proxy["config"] == {"remote_hosts": "node1,node2"}
    # The remote shell exports this env before the launcher: the toolchain and its loader path.
    assert spec["env"] == plain_spec["env"]
    toolchain = find_toolchain()
    assert spec["env"]["SWIFT_KERNEL_TOOLCHAIN"] == str(toolchain.root)
    assert all(str(d) in spec["env"]["LD_LIBRARY_PATH"].split(":") for d in toolchain.library_dirs)
    assert spec["interrupt_mode"] == "message"
    assert "supported_encryption" not in spec["metadata"]  # the gateway provisions no CurveZMQ keys
    assert spec["display_name"].endswith("(Enterprise Gateway, ssh)")


def test_local_kernelspec_keeps_the_plain_argv(plain_spec: dict[str, Any]) -> None:
    spec = register.gateway_kernel_json(plain_spec, "local")
    assert spec["argv"] == plain_spec["argv"]
    assert spec["env"] == plain_spec["env"]
    assert spec["metadata"]["process_proxy"] == {
        "class_name": "enterprise_gateway.services.processproxies.processproxy.LocalProcessProxy"
    }


def test_kubernetes_kernelspec_is_registered_with_its_pod_template(tmp_path: Path) -> None:
    data = register_private_kernelspec(tmp_path, "swift-k8s", "--gateway", "kubernetes", "--image", "reg/swift:1")
    folder = data / "kernels" / "swift-k8s"
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["argv"][:2] == ["python", "{resource_dir}/scripts/launch_kubernetes.py"]
    assert "{kernel_id}" in spec["argv"] and "{public_key}" in spec["argv"]
    assert spec["metadata"]["process_proxy"] == {
        "class_name": "enterprise_gateway.services.processproxies.k8s.KubernetesProcessProxy",
        "config": {"image_name": "reg/swift:1"},
    }
    # No local paths: the pod's image has its own toolchain, found by the launcher.
    assert spec["env"] == {}
    assert sorted(p.name for p in (folder / "scripts").iterdir()) == ["kernel-pod.yaml.j2", "launch_kubernetes.py"]


def test_register_refuses_an_unknown_gateway() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "register.py"), "--prefix", "/nonexistent", "--gateway", "yarn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "invalid choice: 'yarn'" in result.stderr


# ----- the launcher's protocol --------------------------------------------------------------------


def test_launcher_arguments_in_both_spellings_and_from_the_environment() -> None:
    new = gateway.parse_arguments(
        ["--kernel-id", KERNEL_ID, "--response-address", "127.0.0.1:8877", "--public-key", "KEY"], environ={}
    )
    old = gateway.parse_arguments(
        [
            f"--RemoteProcessProxy.kernel-id={KERNEL_ID}",
            "--RemoteProcessProxy.response-address=127.0.0.1:8877",
            "--RemoteProcessProxy.public-key=KEY",
            "--RemoteProcessProxy.port-range=40000..41000",
            "--RemoteProcessProxy.spark-context-initialization-mode=none",
        ],
        environ={},
    )
    from_env = gateway.parse_arguments(
        [], environ={"KERNEL_ID": KERNEL_ID, "RESPONSE_ADDRESS": "127.0.0.1:8877", "PUBLIC_KEY": "KEY"}
    )
    assert new == from_env == gateway.LaunchRequest(KERNEL_ID, ("127.0.0.1", 8877), "KEY", (0, 0), "0.0.0.0")
    assert old.port_range == (40000, 41000) and old.response_address == ("127.0.0.1", 8877)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no kernel id"),
        (["--kernel-id", "k", "--response-address", "127.0.0.1:1"], "needs the gateway's public key"),
        (["--kernel-id", "k", "--response-address", "nowhere"], "not of the form IP:PORT"),
        (["--kernel-id", "k", "--port-range", "9000..9100"], "at least 1000 ports"),
        (["--kernel-id", "k", "--port-range", "a..b"], "LOWER..UPPER"),
    ],
)
def test_launcher_refuses_bad_arguments(argv: list[str], message: str) -> None:
    with pytest.raises(gateway.LauncherError, match=message):
        gateway.parse_arguments(argv, environ={})


def test_ports_stay_in_the_port_range() -> None:
    sockets = [gateway.bind_socket((41000, 42000), "127.0.0.1") for _ in range(5)]
    try:
        assert all(41000 <= s.getsockname()[1] <= 42000 for s in sockets)
    finally:
        for s in sockets:
            s.close()


def gateway_keys() -> tuple[rsa.RSAPrivateKey, str]:
    """Return a key pair as Enterprise Gateway makes it: RSA 1024, the public half as its PEM body."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    body = pem.decode().replace("-----BEGIN PUBLIC KEY-----", "").replace("-----END PUBLIC KEY-----", "")
    return private, body.replace("\n", "")


def decrypt_as_the_gateway_does(data: bytes, private: rsa.RSAPrivateKey) -> dict[str, Any]:
    """Decode a launcher payload the way Enterprise Gateway's ResponseManager._decode_payload does."""
    payload = json.loads(base64.b64decode(data))
    assert payload["version"] == 1
    aes_key = private.decrypt(base64.b64decode(payload["key"]), rsa_padding.PKCS1v15())
    decryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).decryptor()
    padded = decryptor.update(base64.b64decode(payload["conn_info"])) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    info: dict[str, Any] = json.loads(unpadder.update(padded) + unpadder.finalize())
    return info


def send_request(port: int, request: dict[str, Any] | bytes) -> None:
    """Send one request to the launcher's communication port, as the gateway's _send_listener_request does."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request if isinstance(request, bytes) else json.dumps(request).encode())


def test_connection_info_reaches_the_gateway_and_signals_come_back(tmp_path: Path) -> None:
    private, public = gateway_keys()
    response = socket.create_server(("127.0.0.1", 0))
    request = gateway.LaunchRequest(KERNEL_ID, response.getsockname(), public, (0, 0), "127.0.0.1")
    connection_file = tmp_path / "kernel.json"
    listener = gateway.announce(request, connection_file)
    assert listener is not None
    with response, response.accept()[0] as connection:
        received = b""
        while chunk := connection.recv(4096):
            received += chunk
    info = decrypt_as_the_gateway_does(received, private)
    written = json.loads(connection_file.read_text())
    assert {key: info[key] for key in written} == written  # ports, key, transport, signature scheme
    assert info["kernel_id"] == KERNEL_ID
    assert (info["pid"], info["pgid"]) == (os.getpid(), os.getpgid(0))
    assert info["comm_port"] == listener.getsockname()[1]

    # The communication port: polls (signal 0), signals the gateway never sends and garbage are
    # ignored, a signal goes to the given process, and shutdown ends the listener.
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ended = threading.Event()
    serving = threading.Thread(target=gateway.serve_gateway_requests, args=(listener, target.pid, ended.set, 0.5))
    serving.start()
    try:
        send_request(info["comm_port"], {"signum": 0})
        send_request(info["comm_port"], {"signum": int(signal.SIGUSR1)})  # not one the gateway sends
        send_request(info["comm_port"], {"signum": "2"})
        send_request(info["comm_port"], b"not json")
        assert target.poll() is None
        send_request(info["comm_port"], {"signum": int(signal.SIGTERM)})
        # SIGTERM waits its grace period: the gateway sends it while the kernel ends by itself.
        with pytest.raises(subprocess.TimeoutExpired):
            target.wait(timeout=0.2)
        assert not ended.is_set()
        assert target.wait(timeout=10) == -signal.SIGTERM
        assert ended.is_set()  # the connection file is removed first
        send_request(info["comm_port"], {"shutdown": 1})
        serving.join(timeout=10)
        assert not serving.is_alive()
    finally:
        target.kill()
        target.wait()


# ----- the Kubernetes pod -------------------------------------------------------------------------


def gateway_environment(**extra: str) -> dict[str, str]:
    """The KERNEL_* variables Enterprise Gateway's KubernetesProcessProxy sets for the launch script."""
    return {
        "KERNEL_ID": KERNEL_ID,
        "KERNEL_POD_NAME": f"swift-{KERNEL_ID}",
        "KERNEL_NAMESPACE": "notebooks",
        "KERNEL_IMAGE": "registry.example/swift-kernel:1",
        "KERNEL_SERVICE_ACCOUNT_NAME": "default",
        "KERNEL_UID": "1000",
        "KERNEL_GID": "100",
        "KERNEL_USERNAME": "alice",
        "PATH": "/usr/bin",
        **extra,
    }


def render_pod(**extra: str) -> dict[str, Any]:
    manifest: dict[str, Any] = launch_kubernetes.pod_manifest(
        KERNEL_ID, "192.0.2.10:8877", "PUBLICKEY", "0..0", gateway_environment(**extra)
    )
    return manifest


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_pod_template_is_a_valid_pod(version: str) -> None:
    manifest = render_pod(KERNEL_CPUS="1", KERNEL_MEMORY="2Gi")
    # validate() raises on any schema error and returns the API version it checked against.
    assert kubernetes_validate.validate(manifest, version, strict=True) == ".".join(version.split(".")[:2])
    container = manifest["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}}
    # The gateway finds the pod by these labels.
    assert manifest["metadata"]["labels"]["kernel_id"] == KERNEL_ID
    assert manifest["metadata"]["labels"]["component"] == "kernel"


def test_pod_runs_the_launcher_confined() -> None:
    manifest = render_pod()
    pod, container = manifest["spec"], manifest["spec"]["containers"][0]
    assert container["command"][1:] == ["-m", "swift_kernel_launcher", "swift_kernel.gateway"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["KERNEL_ID"] == KERNEL_ID and env["RESPONSE_ADDRESS"] == "192.0.2.10:8877"
    assert env["PUBLIC_KEY"] == "PUBLICKEY" and env["PORT_RANGE"] == "0..0"
    assert "PATH" not in env  # only the gateway's KERNEL_* variables are passed on
    # Measured (bench/ptrace_sandbox.py): no capability, the default seccomp profile, ASLR kept.
    assert env["SWIFT_KERNEL_DISABLE_ASLR"] == "0"
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_pod_values_cannot_break_out_of_their_fields() -> None:
    hostile = 'x"\n    privileged: true\n  - name: evil'
    manifest = render_pod(KERNEL_USERNAME=hostile)
    env = {item["name"]: item["value"] for item in manifest["spec"]["containers"][0]["env"]}
    assert env["KERNEL_USERNAME"] == hostile
    kubernetes_validate.validate(manifest, KUBERNETES_VERSIONS[0], strict=True)


def test_the_validator_rejects_a_broken_pod() -> None:
    manifest = render_pod()
    manifest["spec"]["containers"][0]["securityContext"]["capabilitys"] = {"add": ["SYS_PTRACE"]}
    with pytest.raises(kubernetes_validate.utils.ValidationError):
        kubernetes_validate.validate(manifest, KUBERNETES_VERSIONS[0], strict=True)


def test_launch_script_dry_run_prints_the_manifest() -> None:
    script = REPO / "deploy" / "kubernetes" / "launch_kubernetes.py"
    result = subprocess.run(
        [sys.executable, str(script), "--dry-run", f"--RemoteProcessProxy.kernel-id={KERNEL_ID}", "--public-key=K"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=gateway_environment(),
    )
    manifest = yaml.safe_load(result.stdout)
    assert manifest["kind"] == "Pod" and manifest["metadata"]["labels"]["kernel_id"] == KERNEL_ID


# ----- the Docker container -----------------------------------------------------------------------


def test_docker_kernelspec_and_container(tmp_path: Path) -> None:
    data = register_private_kernelspec(tmp_path, "swift-docker", "--gateway", "docker", "--image", "reg/swift:1")
    folder = data / "kernels" / "swift-docker"
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["argv"][:2] == ["python", "{resource_dir}/scripts/launch_docker.py"]
    assert spec["metadata"]["process_proxy"] == {
        "class_name": "enterprise_gateway.services.processproxies.docker_swarm.DockerProcessProxy",
        "config": {"image_name": "reg/swift:1"},
    }
    assert [p.name for p in (folder / "scripts").iterdir()] == ["launch_docker.py"]

    launch_docker = load_module(folder / "scripts" / "launch_docker.py")
    environ = gateway_environment(EG_DOCKER_NETWORK="kernels")
    arguments = launch_docker.container_arguments(KERNEL_ID, "192.0.2.10:8877", "PUBLICKEY", "0..0", environ)
    assert arguments["image"] == "registry.example/swift-kernel:1"  # KERNEL_IMAGE, set from image_name
    assert arguments["command"][1:] == ["-m", "swift_kernel_launcher", "swift_kernel.gateway"]
    assert arguments["labels"] == {"kernel_id": KERNEL_ID, "component": "kernel", "app": "enterprise-gateway"}
    assert arguments["network"] == "kernels" and arguments["user"] == "1000"
    environment = arguments["environment"]
    assert environment["RESPONSE_ADDRESS"] == "192.0.2.10:8877" and environment["KERNEL_ID"] == KERNEL_ID
    assert environment["SWIFT_KERNEL_DISABLE_ASLR"] == "0" and "PATH" not in environment
    # As measured for the pod: no capability, the default seccomp profile (no security_opt for it).
    assert arguments["cap_drop"] == ["ALL"] and arguments["security_opt"] == ["no-new-privileges"]


# ----- ASLR, for containers -----------------------------------------------------------------------

ADDR_NO_RANDOMIZE = 0x0040000


def swift_process_personality(km: Any) -> int:
    """Return the personality flags of the kernel's Swift process (repl_swift)."""
    repl = named(descendants(kernel_pid(km)), "repl_swift")
    assert len(repl) == 1, repl
    return int(Path(f"/proc/{repl[0].pid}/personality").read_text(), 16)


@pytest.mark.lldb
@pytest.mark.timeout(120)
def test_swift_kernel_disable_aslr_0_keeps_aslr(fresh_kernel: Callable[..., KernelPair]) -> None:
    # Container runtimes' default seccomp profile refuses personality(ADDR_NO_RANDOMIZE), with
    # which LLDB starts the Swift process by default (bench/ptrace_sandbox.py).
    default_km, _ = fresh_kernel("swift")
    assert swift_process_personality(default_km) & ADDR_NO_RANDOMIZE
    km, kc = fresh_kernel("swift", env=dict(os.environ, SWIFT_KERNEL_DISABLE_ASLR="0"))
    assert not swift_process_personality(km) & ADDR_NO_RANDOMIZE
    assert execute(kc, "40 + 2").result == "42"


def test_importing_the_launchers_leaves_the_importers_sigint_alone() -> None:
    # They block SIGINT when run; a process that imports them (pytest) passed the block on to its
    # children, and jupyter console never got its Ctrl-C.
    code = (
        "import signal, swift_kernel.gateway, swift_kernel.__main__\n"
        "print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False", done.stderr
