"""Start the Swift kernel's container for Enterprise Gateway's DockerProcessProxy (plain Docker).

Enterprise Gateway runs this (the kernelspec's argv, written by ``register.py --gateway docker``)
with its own Python, which has the docker SDK. It starts the kernel image (docker/Dockerfile's)
with the launcher, ``python -m swift_kernel_launcher swift_kernel.gateway``, as its command, the gateway's ``KERNEL_*``
environment, the labels by which the gateway finds the container, no capability, no privilege
escalation, Docker's default seccomp profile and ASLR kept (README: Running on a cluster).
``--dry-run`` prints the container's arguments as JSON instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

LAUNCHER = ["/home/jupyter/swift_kernel/.venv/bin/python", "-m", "swift_kernel_launcher", "swift_kernel.gateway"]


def container_arguments(
    kernel_id: str, response_address: str, public_key: str, port_range: str, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Return the keyword arguments of ``docker.containers.run`` for ``kernel_id``."""
    environment = {name: value for name, value in environ.items() if name.startswith("KERNEL_")}
    environment.update(
        KERNEL_ID=kernel_id,
        RESPONSE_ADDRESS=response_address,
        PUBLIC_KEY=public_key,
        PORT_RANGE=port_range,
        SWIFT_KERNEL_DISABLE_ASLR="0",
    )
    labels = {"kernel_id": kernel_id, "component": "kernel", "app": "enterprise-gateway"}
    name = f"{environ.get('KERNEL_USERNAME', 'swift')}-{kernel_id}"
    return {
        "image": environ.get("KERNEL_IMAGE", "swift-kernel:latest"),
        "command": LAUNCHER,
        "name": name,
        "hostname": name,
        "environment": environment,
        "labels": labels,
        "network": environ.get("EG_DOCKER_NETWORK", "bridge"),
        "user": environ.get("KERNEL_UID", "1000"),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "remove": environ.get("EG_REMOVE_CONTAINER", "True").lower() == "true",
        "detach": True,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("kernel-id", "response-address", "public-key", "port-range"):
        parser.add_argument(f"--{name}", f"--RemoteProcessProxy.{name}", dest=name.replace("-", "_"), default="")
    parser.add_argument("--dry-run", action="store_true", help="print the container's arguments, start nothing")
    args = parser.parse_args(argv)
    if not args.kernel_id:
        parser.error("--kernel-id is required")
    arguments = container_arguments(args.kernel_id, args.response_address, args.public_key, args.port_range, os.environ)
    if args.dry_run:
        json.dump(arguments, sys.stdout, indent=2)
        return 0
    from docker.client import DockerClient  # noqa: PLC0415 - only the gateway's Python has it

    image = arguments.pop("image")
    DockerClient.from_env().containers.run(image, **arguments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
