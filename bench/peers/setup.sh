#!/usr/bin/env bash
# Install the two peer Swift kernels as kernelspecs for bench/peers.py, from their public
# repositories, with the minimal patches they need on this toolchain (bench/peers/*.patch):
#
#   swift-sj  google/swift-jupyter (the original, unmaintained since 2020)
#   swift-pj  pedronahum/swift-jupyter (its 2025 modernization)
#
# usage: bench/peers/setup.sh [--prefix DIR] [--python PY] [--toolchain DIR] [--sj GIT_DIR] [--pj GIT_DIR]
#
# --sj/--pj name a git repository of the peer (a bare mirror from the project's `fetch` tool, such
# as /work/.mirror/google+swift-jupyter/repo, or any clone); a peer not given is not installed.
# The commit taken is the one the patch was written against (SJ_REV / PJ_REV override it).
# Each peer's files are exported to DIR/src/NAME, patched, and registered by the peer's own
# register.py with --prefix DIR, so the kernelspecs land in DIR/share/jupyter/kernels/NAME and
# nothing touches the user's real kernelspec directories. Use them with
# JUPYTER_PATH=DIR/share/jupyter (bench/peers.py --peers-dir DIR does that itself).
# DIR defaults to ${TMPDIR:-/tmp}/swift-kernel-peers; the kernels run with PY (default: this
# repo's .venv/bin/python, the CPython 3.10 that the toolchain's LLDB module is built for).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

prefix=${TMPDIR:-/tmp}/swift-kernel-peers
python=$repo/.venv/bin/python
toolchain=/opt/swift
sj_git='' pj_git=''
# The peers' commits the patches were written and measured against.
sj_rev=${SJ_REV:-c07b554f58f2053b205928c0e46a6a650bbe9a3c}
pj_rev=${PJ_REV:-33d6f06db1b8244fc89d92317af592c1adedfe7e}

while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --toolchain) toolchain=$2; shift 2 ;;
    --sj) sj_git=$2; shift 2 ;;
    --pj) pj_git=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$sj_git$pj_git" ]; then
  echo "setup.sh: give --sj and/or --pj, the peers' git repositories (see --help)" >&2
  exit 2
fi
[ -x "$python" ] || { echo "setup.sh: no Python at $python (run make setup, or pass --python)" >&2; exit 1; }
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)

# install NAME GIT_DIR REV: export, patch, register.
install() {
  local name=$1 git_dir=$2 rev=$3 src=$prefix/src/$1 log
  rm -rf "$src" "$prefix/share/jupyter/kernels/$name"
  mkdir -p "$src"
  git -C "$git_dir" archive "$rev" | tar -x -C "$src"
  echo "$(git -C "$git_dir" rev-parse "$rev")" >"$src/PEER_COMMIT"
  patch -d "$src" -p1 --quiet --forward <"$here/$name.patch"
  log=$(mktemp)
  # register.py puts the kernel script's own directory and sys.executable into kernel.json.
  if ! (cd "$src" && "$python" register.py --prefix "$prefix" --kernel-name "$name" \
      --swift-toolchain "$toolchain") >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  echo "setup.sh: $name from $git_dir at $(cat "$src/PEER_COMMIT"), patched with bench/peers/$name.patch"
}

[ -z "$sj_git" ] || install swift-sj "$sj_git" "$sj_rev"
[ -z "$pj_git" ] || install swift-pj "$pj_git" "$pj_rev"
echo "setup.sh: kernelspecs in $prefix/share/jupyter/kernels; use JUPYTER_PATH=$prefix/share/jupyter"
echo "          or: .venv/bin/python bench/peers.py --peers-dir $prefix"
