"""What a container must allow for the kernel's LLDB: capabilities, the default seccomp profile, ASLR.

    python bench/ptrace_sandbox.py --profile default.json

``default.json`` is Docker's default seccomp profile (moby's ``profiles/seccomp/default.json``;
containerd's RuntimeDefault, which Kubernetes' ``seccompProfile: RuntimeDefault`` applies, is
generated from the same rules). No container engine runs on this project's machines, so each
probe runs here in a child process confined the way a container runtime confines one:

- capabilities: the bounding set cut down with ``capsh --drop`` to none at all (a pod's
  ``drop: [ALL]``), or to Docker's (and containerd's) default set, with or without CAP_SYS_PTRACE
  (as root, the permitted and effective sets follow the bounding set at exec);
- seccomp: the profile turned into a filter with libseccomp (pyseccomp) the way runc does: a rule
  whose ``includes.caps`` are not all in the container's set is left out, one whose
  ``excludes.caps`` are is left out, ``minKernel`` and ``arches`` are checked; no_new_privs is set,
  the filter loaded, then the probe's program exec'd (filters are inherited across exec);
- ASLR: LLDB's ``target.disable-aslr`` left on (its default: it calls personality(ADDR_NO_RANDOMIZE)
  before exec'ing the Swift process) or set to false.

Probes: ``lldb`` launches ``repl_swift`` through the kernel's own LLDB session class and evaluates
``40 + 2``, then interrupts ``while true {}`` with SIGINT to the Swift process; ``kernel`` starts
the installed ``swift`` kernelspec through jupyter_client (ASLR disabled as LLDB's SB API does by
default, or kept with ``SWIFT_KERNEL_DISABLE_ASLR=0``), runs a cell and interrupts a loop. Prints
one table row per combination.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from swift_kernel.toolchain import find_toolchain, loader_path

# Docker's and containerd's default capabilities (moby oci/caps/defaults.go, containerd oci/spec.go).
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]
ARCH_NAMES = {"x86_64": "amd64", "aarch64": "arm64"}

LLDB_PROBE = r"""
import json, os, signal, sys, threading, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
sys.path.insert(0, sys.argv[1])
from bench.raw_lldb import raw_session
from swift_kernel.lldb_session import LLDBSession
from swift_kernel.toolchain import find_toolchain
disable_aslr = sys.argv[2] == "on"
original_load = LLDBSession.load
class LaunchInfoWithoutASLRFlag:
    # SBLaunchInfo starts with eLaunchFlagDisableASLR set whatever target.disable-aslr says
    # (SBLaunchInfo's constructor), so both are cleared.
    def __init__(self, lldb):
        self._lldb = lldb
    def __getattr__(self, name):
        return getattr(self._lldb, name)
    def SBLaunchInfo(self, argv):
        info = self._lldb.SBLaunchInfo(argv)
        info.SetLaunchFlags(info.GetLaunchFlags() & ~self._lldb.eLaunchFlagDisableASLR)
        return info
def load(self):
    original_load(self)
    self._command(f"settings set target.disable-aslr {'true' if disable_aslr else 'false'}")
    if not disable_aslr:
        self._lldb = LaunchInfoWithoutASLRFlag(self._lldb)
LLDBSession.load = load
try:
    with raw_session(find_toolchain()) as session:
        value = session.evaluate("40 + 2").GetValue()
        def stop():
            time.sleep(0.5)
            os.kill(session.pid, signal.SIGINT)
        threading.Thread(target=stop).start()
        stopped = session.evaluate("while true {}").GetError().GetCString() or ""
        loop = stopped.splitlines()[0] if stopped else "no error"
        detail = f"40 + 2 = {value}; loop: {loop}"
        print(json.dumps({"ok": value == "42" and "SIGINT" in stopped, "detail": detail}))
except Exception as error:
    print(json.dumps({"ok": False, "detail": f"{type(error).__name__}: {error}"}))
"""

KERNEL_PROBE = r"""
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
from jupyter_client.manager import start_new_kernel
from tests.utils import execute
try:
    km, kc = start_new_kernel(kernel_name="swift", startup_timeout=60, cwd=KERNEL_CWD)
except Exception as error:
    print(json.dumps({"ok": False, "detail": f"start: {type(error).__name__}: {error}"}))
    sys.exit()
try:
    first = execute(kc, "var kept = 41\nkept + 1", timeout=60)
    threading.Timer(1.0, km.interrupt_kernel).start()
    loop = execute(kc, "while true { kept &+= 0 }", timeout=60)
    after = execute(kc, "kept + 1", timeout=60)
    ok = first.result == "42" and loop.content.get("ename") == "KeyboardInterrupt" and after.result == "42"
    shown = first.result or first.content.get("evalue", "")[:120]
    detail = f"first: {shown}; interrupt: {loop.content.get('ename')}; after: {after.result}"
    print(json.dumps({"ok": ok, "detail": detail}))
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
"""

SECCOMP_EXEC = r"""
import json, os, platform, sys
import pyseccomp as seccomp
profile_path, caps, arch = sys.argv[1], set(sys.argv[2].split(",")), sys.argv[3]
profile = json.load(open(profile_path))
kernel = tuple(int(p) for p in platform.release().split("-")[0].split(".")[:2])
actions = {"SCMP_ACT_ALLOW": seccomp.ALLOW}
def action(rule, default_errno):
    if rule["action"] == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(rule.get("errnoRet", default_errno))
    return actions[rule["action"]]
ops = {"SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ}
errno_default = profile.get("defaultErrnoRet", 1)
f = seccomp.SyscallFilter(seccomp.ERRNO(errno_default))
for rule in profile["syscalls"]:
    inc, exc = rule.get("includes", {}), rule.get("excludes", {})
    if not set(inc.get("caps", [])) <= caps or set(exc.get("caps", [])) & caps:
        continue
    if inc.get("arches") and arch not in inc["arches"] or arch in exc.get("arches", []):
        continue
    if inc.get("minKernel") and kernel < tuple(int(p) for p in inc["minKernel"].split(".")):
        continue
    args = []
    for a in rule.get("args") or []:
        if a["op"] == "SCMP_CMP_MASKED_EQ":
            args.append(seccomp.Arg(a["index"], seccomp.MASKED_EQ, a["value"], a.get("valueTwo", 0)))
        else:
            args.append(seccomp.Arg(a["index"], ops[a["op"]], a["value"]))
    for name in rule["names"]:
        try:
            f.add_rule(action(rule, errno_default), name, *args)
        except (ValueError, RuntimeError, OSError):
            pass  # a syscall this architecture lacks
f.load()
os.execv(sys.argv[4], sys.argv[4:])
"""


def confined(argv: list[str], caps: list[str], profile: Path | None) -> list[str]:
    """Return ``argv`` wrapped so that it runs with only ``caps`` and, if given, the seccomp profile."""
    all_caps = subprocess.run(["capsh", "--print"], capture_output=True, text=True, check=True).stdout
    bounding = next(line for line in all_caps.splitlines() if line.startswith("Bounding set"))
    present = [c.strip().upper() for c in bounding.split("=", 1)[1].split(",") if c.strip()]
    drop = [c.lower() for c in present if c not in caps]
    inner = argv
    if profile is not None:
        arch = ARCH_NAMES.get(platform.machine(), platform.machine())
        inner = [sys.executable, "-c", SECCOMP_EXEC, str(profile), ",".join(caps), arch, *argv]
    # capsh runs bash with what follows "--": bash -c 'exec "$0" "$@"' ARGV...
    return [shutil.which("capsh") or "capsh", f"--drop={','.join(drop)}", "--", "-c", 'exec "$0" "$@"', *inner]


def run_probe(name: str, caps: list[str], profile: Path | None, aslr: str) -> dict[str, object]:
    toolchain = find_toolchain()
    env = dict(os.environ, LD_LIBRARY_PATH=loader_path(toolchain, os.environ.get("LD_LIBRARY_PATH")))
    code = LLDB_PROBE if name == "lldb" else KERNEL_PROBE
    if aslr == "off":
        env["SWIFT_KERNEL_DISABLE_ASLR"] = "0"  # the kernel's switch (swift_kernel/lldb_session.py)
    argv = [sys.executable, "-c", code, str(HERE.parent), aslr]
    result = subprocess.run(
        confined(argv, caps, profile), capture_output=True, text=True, env=env, timeout=300, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"ok": False, "detail": f"exit {result.returncode}: {result.stderr.strip().splitlines()[-1:]}"}
    outcome: dict[str, object] = json.loads(lines[-1])
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, required=True, help="Docker's default seccomp profile (JSON)")
    parser.add_argument("--probes", default="lldb,kernel")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, Linux {platform.release()}, {os.cpu_count()} cores, uid {os.geteuid()}")
    print("| probe | capabilities | seccomp | target.disable-aslr | works | what happened |")
    print("| --- | --- | --- | --- | --- | --- |")
    for probe in args.probes.split(","):
        # "none": a pod's `capabilities: {drop: [ALL]}`, what a non-root process has anyway.
        for cap_name, caps in [
            ("none", []),
            ("default", DEFAULT_CAPS),
            ("default + SYS_PTRACE", [*DEFAULT_CAPS, "CAP_SYS_PTRACE"]),
        ]:
            for profile in (None, args.profile):
                for aslr in ("on", "off"):
                    outcome = run_probe(probe, caps, profile, aslr)
                    print(
                        f"| {probe} | {cap_name} | "
                        f"{'default profile' if profile else 'none'} | {'true' if aslr == 'on' else 'false'} | "
                        f"{'yes' if outcome['ok'] else 'no'} | {outcome['detail']} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
