"""Start the Swift kernel: ``python -m swift_kernel_launcher -f CONNECTION_FILE`` (the kernelspec's argv).

``python -m swift_kernel`` runs it too, but imports whatever the working directory holds first
(``swift_kernel_launcher`` says why the kernelspec goes through it).
"""

import signal

# First, before anything starts a thread: block SIGINT everywhere so that it can only be taken
# by the sigwait thread. LLDB starts threads when it loads; one with SIGINT unblocked would
# swallow jupyter_client's interrupt signal while the main thread sits in EvaluateExpression.
# Only when run (``python -m swift_kernel``): the gateway launcher imports this module and blocks
# SIGINT itself, and an importing process's children (a test's jupyter console) must get theirs.
if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

import atexit
import contextlib
import importlib
import logging
import os
import sys
import threading
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from swift_kernel.kernel import SwiftKernel
    from swift_kernel.toolchain import Toolchain


def _sigwait_loop(kernel_class: "type[SwiftKernel]") -> None:
    """Turn every SIGINT the kernel process gets into an interrupt of the running cell."""
    while True:
        signal.sigwait({signal.SIGINT})
        if kernel_class.initialized():
            kernel_class.instance().interrupt_from_signal()


def prepare(reexec_argv: list[str]) -> "Toolchain":
    """Set up the debug log and the loader path (re-running ``python *reexec_argv`` if needed)."""
    from swift_kernel.toolchain import ToolchainError, ensure_loader_path

    log_file = os.environ.get("SWIFT_KERNEL_LOG")
    if log_file:
        # A debug log of the cell controller (interrupt rungs, input requests) for bug reports;
        # the LLDB host writes its own lines (unwinding, launches) to the same file.
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
        logger = logging.getLogger("swift_kernel")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)

    try:
        return ensure_loader_path(reexec_argv)
    except ToolchainError as error:
        sys.exit(f"swift_kernel: {error}")


def answer_early(toolchain: "Toolchain", argv: list[str]) -> None:
    """Bind the kernel's sockets and answer kernel_info on them now, if ``argv`` is just ``-f CONNECTION_FILE``.

    ipykernel takes a good second to import; the kernel_info replies should not wait for it
    (``startup``). Any other command line is left to ipykernel, as is a connection file with
    anything but the plain settings.
    """
    if len(argv) != 2 or argv[0] != "-f":
        return
    from swift_kernel.kernelinfo import swift_version
    from swift_kernel.startup import EarlyKernelInfo

    EarlyKernelInfo.begin(argv[1], swift_version(toolchain))


def spawn_host() -> None:
    """Spawn the LLDB host now (``hostspawn``), for the kernel's controller to take.

    The first thing the process does after its loader path: the host's start is the longest part
    of a kernel's start (README: Start-up and restart), and it runs while this process binds its
    sockets and imports its modules and ipykernel.
    """
    from swift_kernel.hostspawn import EarlyHost
    from swift_kernel.procfs import mark_as_owner

    # This kernel's mark first: the host inherits it.
    mark_as_owner()
    EarlyHost.begin()
    logging.getLogger("swift_kernel").debug("start-up: LLDB host spawned")


def start_swift(toolchain: "Toolchain") -> None:
    """Have the LLDB host ``spawn_host`` spawned launch its Swift process, for the kernel to take once it is up."""
    from swift_kernel.procfs import end_owned_processes

    # The processes of kernels that were killed before they could end them.
    end_owned_processes()
    from swift_kernel.cells import EarlyStart

    EarlyStart.begin(toolchain)


# IPython's package imports this module only to offer ``IPython.embed`` (``import_ipython_lightly``).
_IPYTHON_TERMINAL = "IPython.terminal.embed"


@contextlib.contextmanager
def _standing_in(name: str, module: types.ModuleType | None) -> Iterator[None]:
    """Put ``module`` in the place of the module ``name`` while the body imports (None: importing it fails).

    Taken out afterwards, unless something took its place meanwhile (the real module, imported when asked for).
    """
    sys.modules[name] = module  # type: ignore[assignment]
    try:
        yield
    finally:
        if name in sys.modules and sys.modules[name] is module:
            del sys.modules[name]


def import_ipython_lightly() -> None:
    """Import IPython without its terminal shell, which a kernel never uses.

    ipykernel imports IPython, whose package imports ``IPython.terminal.embed`` for
    ``IPython.embed``, and with it the terminal shell, prompt_toolkit and the terminal debugger:
    176 modules, 0.06-0.1 s of CPU in every start (README: Start-up and restart). A stand-in
    takes that module's place while IPython is imported. Anything asked of it (``IPython.embed``
    called, a name a later IPython imports from it) imports the real module, which a later
    ``import IPython.terminal.embed`` also gets.
    """
    if "IPython" in sys.modules or _IPYTHON_TERMINAL in sys.modules:
        return
    stand_in = types.ModuleType(_IPYTHON_TERMINAL, "Imported from IPython.terminal.embed when first used.")

    def real() -> types.ModuleType:
        if sys.modules.get(_IPYTHON_TERMINAL) is stand_in:
            del sys.modules[_IPYTHON_TERMINAL]
        return importlib.import_module(_IPYTHON_TERMINAL)

    def embed(*args: object, **kwargs: object) -> object:
        return real().embed(*args, **kwargs)

    def attribute(name: str) -> object:
        if name.startswith("__"):  # the import system's questions (``__path__``): not a package
            raise AttributeError(name)
        return getattr(real(), name)

    stand_in.embed = embed  # type: ignore[attr-defined]
    stand_in.__getattr__ = attribute  # type: ignore[method-assign]
    with _standing_in(_IPYTHON_TERMINAL, stand_in):
        import IPython  # noqa: F401 - imported here, with the stand-in in place


def jedi_kept_out() -> contextlib.AbstractContextManager[None]:
    """Keep jedi from being imported while the kernel's modules (and ipykernel's) are imported.

    ipykernel imports its Python kernel, whose IPython completer imports jedi if it can, for
    Python's completion: 0.1-0.15 s of CPU in every start. Swift's completion is sourcekit-lsp's
    and nothing here uses IPython's completer, which then says jedi is not installed. After
    this, ``import jedi`` works as usual.
    """
    if "jedi" in sys.modules:
        return contextlib.nullcontext()
    # None in sys.modules makes the import fail with ImportError, which the completer expects.
    return _standing_in("jedi", None)


def launch(toolchain: "Toolchain", argv: list[str] | None = None) -> None:
    """Start the LLDB host and the Swift process (unless ``main`` did), the SIGINT thread and
    ipykernel's application (``argv``: its options)."""
    from swift_kernel.cells import EarlyStart

    if not EarlyStart.begun():
        spawn_host()
        start_swift(toolchain)
    import_ipython_lightly()
    with jedi_kept_out():
        from swift_kernel.kernel import SwiftKernel, SwiftKernelApp

    logging.getLogger("swift_kernel").debug("start-up: kernel modules imported (ipykernel too)")

    threading.Thread(target=_sigwait_loop, args=(SwiftKernel,), name="swift-sigwait", daemon=True).start()
    SwiftKernelApp.launch_instance(argv=argv, kernel_class=SwiftKernel)


def exit_now() -> None:
    """End the process now that ipykernel's application has shut down: exit handlers, then ``_exit``.

    Python's own teardown of everything imported took 0.3 s after each shutdown (measured with
    strace: no system calls, the interpreter freeing modules), and a restart waits for this
    process to end. The exit handlers still run: ipykernel's (its sockets), logging's.
    """
    logging.getLogger("swift_kernel").debug("shutdown: the application has ended; exiting")
    atexit._run_exitfuncs()
    logging.getLogger("swift_kernel").debug("shutdown: exit handlers run")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main() -> None:
    """Launch the kernel application with the SIGINT thread running."""
    from swift_kernel import launch_arguments

    toolchain = prepare(launch_arguments(None, *sys.argv[1:]))
    logging.getLogger("swift_kernel").debug("start-up: kernel process running")
    spawn_host()
    answer_early(toolchain, sys.argv[1:])
    logging.getLogger("swift_kernel").debug("start-up: kernel sockets bound, kernel_info answered")
    start_swift(toolchain)
    launch(toolchain)
    exit_now()


if __name__ == "__main__":
    main()
