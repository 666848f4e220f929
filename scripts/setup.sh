#!/usr/bin/env bash
# Create .venv with a Python that can load the toolchain's LLDB, install the package with its
# test and lab extras, and register the `swift` kernelspec (and `swift-signal` for tests) in it.
# Idempotent; `make setup` runs it when its inputs change, docker/Dockerfile runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(python3 swift_kernel/toolchain.py python)
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info[:2] == tuple(map(int, "'"$("$python" -c 'import sys; print(*sys.version_info[:2], sep=",")')"'".split(","))) else 1)'; then
  rm -rf .venv
  "$python" -m venv .venv
fi
# tests/e2e/test_jupyterlab.py drives Debian's chromium through playwright: playwright's own browser
# download cannot work on these machines. SWIFT_KERNEL_SETUP_BROWSER=no skips it (docker/Dockerfile).
if [ "${SWIFT_KERNEL_SETUP_BROWSER:-yes}" != no ] && ! command -v chromium >/dev/null; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,lab]'
.venv/bin/python register.py --sys-prefix --name swift
.venv/bin/python register.py --sys-prefix --name swift-signal --interrupt-mode signal --display-name "Swift (signal interrupts)"
