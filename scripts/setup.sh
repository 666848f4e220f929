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
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,lab]'
.venv/bin/python register.py --sys-prefix --name swift
.venv/bin/python register.py --sys-prefix --name swift-signal --interrupt-mode signal --display-name "Swift (signal interrupts)"
