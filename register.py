"""Install the Swift kernelspec: kernel.json from kernel.json.in, plus logos.

    python register.py --sys-prefix                 # into the running Python's environment
    python register.py --prefix /tmp/specs --name swift-signal --interrupt-mode signal  # as tests/conftest.py does
    python register.py --prefix /tmp/specs --name swift-ssh --gateway ssh  # for Jupyter Enterprise Gateway

It checks the toolchain first and never writes a kernelspec that cannot start. ``--gateway`` writes a
kernelspec for Jupyter Enterprise Gateway instead (gateway_kernel_json says what each holds).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from swift_kernel import launch_arguments
from swift_kernel.toolchain import Toolchain, ToolchainError, find_toolchain, loader_path


def _check_lldb_import(toolchain: Toolchain, python: str) -> None:
    env = dict(os.environ, LD_LIBRARY_PATH=loader_path(toolchain, os.environ.get("LD_LIBRARY_PATH")))
    env["PYTHONPATH"] = str(toolchain.lldb_python_dir)
    probe = subprocess.run(
        [python, "-c", "import lldb, swift_kernel, swift_kernel_launcher"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no error text"])[-1]
        raise ToolchainError(f"{python} cannot import lldb from {toolchain.lldb_python_dir} and swift_kernel: {last}")


def kernel_json(toolchain: Toolchain, python: str, interrupt_mode: str) -> dict[str, object]:
    """Fill kernel.json.in for this toolchain and interpreter."""
    text = (HERE / "kernel.json.in").read_text()
    values = {
        "@PYTHON@": python,
        "@SWIFT_VERSION@": toolchain.short_version(),
        "@INTERRUPT_MODE@": interrupt_mode,
        "@TOOLCHAIN@": str(toolchain.root),
        "@LLDB_PYTHONPATH@": str(toolchain.lldb_python_dir),
        "@LD_LIBRARY_PATH@": loader_path(toolchain),
    }
    for key, value in values.items():
        text = text.replace(key, json.dumps(value)[1:-1])
    spec: dict[str, object] = json.loads(text)
    return spec


# Enterprise Gateway's process proxies, by the name --gateway takes.
PROCESS_PROXIES = {
    "local": "enterprise_gateway.services.processproxies.processproxy.LocalProcessProxy",
    "ssh": "enterprise_gateway.services.processproxies.distributed.DistributedProcessProxy",
    "kubernetes": "enterprise_gateway.services.processproxies.k8s.KubernetesProcessProxy",
    "docker": "enterprise_gateway.services.processproxies.docker_swarm.DockerProcessProxy",
}
GATEWAY_KINDS = list(PROCESS_PROXIES)
# The gateway fills these in when it starts a remote kernel (its RemoteProcessProxy).
LAUNCHER_ARGUMENTS = [
    "--kernel-id",
    "{kernel_id}",
    "--response-address",
    "{response_address}",
    "--public-key",
    "{public_key}",
    "--port-range",
    "{port_range}",
]
# What the container kinds copy into the kernelspec's scripts/ folder, for the gateway to run.
SCRIPTS = {
    "kubernetes": [HERE / "deploy" / "kubernetes" / name for name in ("launch_kubernetes.py", "kernel-pod.yaml.j2")],
    "docker": [HERE / "deploy" / "docker" / "launch_docker.py"],
}
DEFAULT_IMAGE = "swift-kernel:latest"


def gateway_kernel_json(
    spec: dict[str, Any], kind: str, remote_hosts: str | None = None, image: str | None = None
) -> dict[str, Any]:
    """Turn the plain kernelspec ``spec`` into one for Enterprise Gateway's ``kind`` of process proxy.

    - ``local``: the plain argv (the gateway writes the connection file), run by its LocalProcessProxy.
    - ``ssh``: the DistributedProcessProxy runs ``python -m swift_kernel_launcher swift_kernel.gateway``
      on a remote host over SSH, exporting the kernelspec's env first; that env is the plain
      kernelspec's (toolchain, loader path), and the launcher does the rest of the kernel's set-up
      itself. The remote host needs this Python and toolchain at the same paths.
    - ``kubernetes``: the gateway runs ``scripts/launch_kubernetes.py`` (copied beside kernel.json),
      which creates the kernel pod from ``scripts/kernel-pod.yaml.j2``; the pod runs the launcher from
      the kernel image, which finds its toolchain itself, so this env holds no local paths.
    - ``docker``: the same with ``scripts/launch_docker.py`` and a container (plain Docker).
    """
    spec = json.loads(json.dumps(spec))
    proxy: dict[str, Any] = {"class_name": PROCESS_PROXIES[kind]}
    spec["display_name"] = f"{spec['display_name']} ({'Enterprise Gateway, ' + kind})"
    if kind == "ssh":
        spec["argv"] = [spec["argv"][0], *launch_arguments("swift_kernel.gateway"), *LAUNCHER_ARGUMENTS]
        if remote_hosts:
            proxy["config"] = {"remote_hosts": remote_hosts}
    elif kind in SCRIPTS:
        spec["argv"] = ["python", f"{{resource_dir}}/scripts/launch_{kind}.py", *LAUNCHER_ARGUMENTS]
        proxy["config"] = {"image_name": image or DEFAULT_IMAGE}
        spec["env"] = {}
    # The gateway's jupyter_client 6 provisions no CurveZMQ keys, and the launcher writes none.
    metadata = {key: value for key, value in spec["metadata"].items() if key != "supported_encryption"}
    spec["metadata"] = dict(metadata, process_proxy=proxy)
    return spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix (the venv)")
    where.add_argument("--prefix", help="install under this prefix")
    parser.add_argument("--swift-toolchain", help="toolchain root (default: from `swift` on PATH, else /opt/swift)")
    parser.add_argument("--name", default="swift", help="kernelspec name (default: swift)")
    parser.add_argument("--display-name", help="display name (default: Swift <version>)")
    parser.add_argument("--interrupt-mode", choices=["message", "signal"], default="message")
    parser.add_argument(
        "--gateway",
        choices=GATEWAY_KINDS,
        help="a kernelspec for Jupyter Enterprise Gateway's process proxy of this kind (README: Running on a cluster)",
    )
    parser.add_argument("--remote-hosts", help="--gateway ssh: hosts to start kernels on (default: EG_REMOTE_HOSTS)")
    parser.add_argument("--image", help="--gateway kubernetes|docker: the kernel image (default: swift-kernel:latest)")
    args = parser.parse_args(argv)

    python = sys.executable
    try:
        toolchain = find_toolchain(args.swift_toolchain)
        toolchain.validate()
        _check_lldb_import(toolchain, python)
        spec = kernel_json(toolchain, python, args.interrupt_mode)
        if args.gateway:
            spec = gateway_kernel_json(spec, args.gateway, remote_hosts=args.remote_hosts, image=args.image)
    except ToolchainError as error:
        print(f"register.py: {error}", file=sys.stderr)
        return 1
    if args.display_name:
        spec["display_name"] = args.display_name

    from jupyter_client.kernelspec import KernelSpecManager

    prefix = sys.prefix if args.sys_prefix else args.prefix
    with tempfile.TemporaryDirectory() as staging:
        (Path(staging) / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
        for logo in (HERE / "swift_kernel" / "resources").iterdir():
            shutil.copy(logo, staging)
        if args.gateway in SCRIPTS:
            (Path(staging) / "scripts").mkdir()
            for file in SCRIPTS[args.gateway]:
                shutil.copy(file, Path(staging) / "scripts")
        destination = KernelSpecManager().install_kernel_spec(
            staging, kernel_name=args.name, user=args.user, prefix=prefix
        )
    print(f"Installed kernelspec {args.name} in {destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
