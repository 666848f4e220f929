"""Create the Swift kernel's pod for Enterprise Gateway's KubernetesProcessProxy.

Enterprise Gateway runs this (the kernelspec's argv, written by ``register.py --gateway
kubernetes``) with its own Python, which has jinja2, PyYAML and the kubernetes client. It renders
``kernel-pod.yaml.j2`` from this folder with the gateway's ``KERNEL_*`` environment and the
launcher arguments, and creates the pod; the pod runs ``python -m swift_kernel_launcher swift_kernel.gateway``, which
sends the kernel's connection info back to the gateway. ``--dry-run`` prints the manifest instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

HERE = Path(__file__).resolve().parent
TEMPLATE = "kernel-pod.yaml.j2"


def pod_manifest(
    kernel_id: str, response_address: str, public_key: str, port_range: str, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Return the pod for ``kernel_id`` as a dict, from the template and the gateway's environment."""
    kernel_env = {name: value for name, value in environ.items() if name.startswith("KERNEL_")}
    kernel_env["KERNEL_ID"] = kernel_id
    values: dict[str, Any] = {name.lower(): value for name, value in kernel_env.items()}
    values.setdefault("kernel_pod_name", f"swift-{kernel_id}")
    values.setdefault("kernel_namespace", "default")
    values.setdefault("kernel_service_account_name", "default")
    values.setdefault("kernel_image", "swift-kernel:latest")
    # YAML, not HTML: no autoescaping; every value goes through tojson in the template.
    environment = Environment(
        loader=FileSystemLoader(HERE), undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    text = environment.get_template(TEMPLATE).render(
        **values,
        response_address=response_address,
        public_key=public_key,
        port_range=port_range,
        kernel_env=kernel_env,
    )
    manifest: dict[str, Any] = yaml.safe_load(text)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("kernel-id", "response-address", "public-key", "port-range"):
        parser.add_argument(f"--{name}", f"--RemoteProcessProxy.{name}", dest=name.replace("-", "_"), default="")
    parser.add_argument("--dry-run", action="store_true", help="print the pod manifest, create nothing")
    args = parser.parse_args(argv)
    if not args.kernel_id:
        parser.error("--kernel-id is required")
    manifest = pod_manifest(args.kernel_id, args.response_address, args.public_key, args.port_range, os.environ)
    if args.dry_run:
        yaml.safe_dump(manifest, sys.stdout, sort_keys=False)
        return 0
    from kubernetes import client, config  # noqa: PLC0415 - only the gateway's Python has it

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        config.load_kube_config()
    client.CoreV1Api().create_namespaced_pod(namespace=manifest["metadata"]["namespace"], body=manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
