#!/usr/bin/env bash
# Create .venv with a Python that can load the toolchain's LLDB, install the package with its
# test and lab extras, and register the `swift` kernelspec in it (the tests register their
# signal-mode spec privately, tests/conftest.py). Idempotent; `make setup` runs it when its inputs
# change, docker/Dockerfile runs it too. Prints one line per step with the time it took; a step
# that fails shows its own output.
set -euo pipefail
cd "$(dirname "$0")/.."

# step NAME COMMAND...: run COMMAND with its output held back, then print "setup: NAME (N.N s)".
# Output is shown only when the command fails, so a quiet success is one line.
step() {
  local name=$1 log started elapsed
  shift
  log=$(mktemp)
  started=${EPOCHREALTIME/./}
  if ! "$@" >"$log" 2>&1; then
    echo "setup: $name FAILED:" >&2
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  elapsed=$(( (${EPOCHREALTIME/./} - started) / 100000 ))  # tenths of a second
  printf 'setup: %-44s %3d.%d s\n' "$name" $((elapsed / 10)) $((elapsed % 10))
}

make_venv() {
  python=$(python3 swift_kernel/toolchain.py python)
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info[:2] == tuple(map(int, "'"$("$python" -c 'import sys; print(*sys.version_info[:2], sep=",")')"'".split(","))) else 1)'; then
    rm -rf .venv
    "$python" -m venv .venv
  fi
}

install_browser() {
  # tests/e2e/test_jupyterlab.py drives Debian's chromium through playwright: playwright's own browser
  # download cannot work on these machines. SWIFT_KERNEL_SETUP_BROWSER=no skips it (docker/Dockerfile).
  if [ "${SWIFT_KERNEL_SETUP_BROWSER:-yes}" != no ] && ! command -v chromium >/dev/null; then
    local as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
  fi
}

install_sshd() {
  # tests/e2e/test_enterprise_gateway.py starts Debian's sshd (a private one, on a private port) for
  # Enterprise Gateway's SSH process proxy. SWIFT_KERNEL_SETUP_SSHD=no skips it (docker/Dockerfile).
  # The package's own service is not started where policy-rc.d forbids it (this project's machines).
  if [ "${SWIFT_KERNEL_SETUP_SSHD:-yes}" != no ] && [ ! -x /usr/sbin/sshd ]; then
    local as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server
  fi
}

gateway_venv() {
  # Jupyter Enterprise Gateway 3.3 needs jupyter_client 6 and jupyter_server 1, which cannot live
  # beside the kernel's (jupyter_client 8, ipykernel 7): the tests and bench/gateway.py run it from a
  # venv of its own inside .venv, with the same interpreter. SWIFT_KERNEL_SETUP_GATEWAY=no skips it
  # (docker/Dockerfile: the image is the kernel's, the gateway runs elsewhere).
  [ "${SWIFT_KERNEL_SETUP_GATEWAY:-yes}" != no ] || return 0
  if [ ! -x .venv/enterprise-gateway/bin/jupyter-enterprisegateway ]; then
    rm -rf .venv/enterprise-gateway
    "$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')/bin/python3" -m venv .venv/enterprise-gateway
  fi
  .venv/enterprise-gateway/bin/python -m pip install -q 'jupyter_enterprise_gateway==3.3.0'
}

step "venv with the Python LLDB is built for" make_venv
step "chromium for the browser test" install_browser
step "openssh-server for the gateway's SSH test" install_sshd
step "pip upgraded" .venv/bin/python -m pip install --upgrade pip
step "swift_kernel and its test and lab extras" .venv/bin/python -m pip install -e '.[test,lab]'
step "Enterprise Gateway in its own venv" gateway_venv
step "kernelspec swift registered in .venv" .venv/bin/python register.py --sys-prefix --name swift
# Compiled here: where Python does not write bytecode (PYTHONDONTWRITEBYTECODE, as on this project's
# machines, or a read-only checkout) every kernel start and LLDB host compiled them again (0.1 s).
step "the kernel's modules compiled to bytecode" .venv/bin/python -m compileall -q swift_kernel swift_kernel_launcher.py
# Built here so that no kernel start pays for it (swift_kernel/prelude.py; a kernel builds it if missing).
step "the kernel's Swift library built" .venv/bin/python -m swift_kernel.prelude
# Setups before issue 17 also registered the tests' signal-mode spec here, where users saw it.
step "no test-only kernelspec left in .venv" rm -rf .venv/share/jupyter/kernels/swift-signal
