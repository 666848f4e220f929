"""%install: one SwiftPM package per kernel that depends on everything installed so far.

Each %install adds a dependency to a generated package whose single dynamic library re-exports
the requested products; building it with the toolchain's SwiftPM and loading that library into
the Swift process (plus its module directory on LLDB's search path) makes ``import Product`` work
in later cells. The build goes through the cell controller's subprocess runner, so its output streams
live and an interrupt stops it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

LIBRARY = "jupyterInstalledPackages"
# SwiftPM's step lines: "[12/40] Compiling Greeter Greeter.swift".
_STEP = re.compile(r"^\[(\d+)/(\d+)\] (.*)$")
_BUILD_COMPLETE = re.compile(r"^Build complete! \([\d.]+s\)$")


# A top-level module declaration in a module map: "module Name", "explicit module Name", "framework module Name".
_MODULE_DECLARATION = re.compile(r"^(?:explicit\s+|framework\s+)*module\s+([A-Za-z_]\w*)")


def clang_module_names(module_map: str) -> list[str]:
    """Return the top-level modules a module map declares (not its submodules or ``extern`` ones)."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", module_map, flags=re.DOTALL)
    names, depth, line_start = [], 0, True
    for line in text.split("\n"):
        match = _MODULE_DECLARATION.match(line.strip()) if depth == 0 and line_start else None
        if match is not None:
            names.append(match.group(1))
        depth = max(0, depth + line.count("{") - line.count("}"))
    return names


class InstallError(RuntimeError):
    """An %install that cannot go ahead; the text says why."""


def package_identity(spec: str) -> str:
    """Return the package identity SwiftPM gives a ``.package(...)`` spec (its last path part)."""
    match = re.search(r"""(?:path|url)\s*:\s*"([^"]+)\"""", spec)
    if match is None:
        raise InstallError(f"cannot find path: or url: in {spec}")
    last = match.group(1).rstrip("/").rsplit("/", 1)[-1]
    return last.removesuffix(".git")


@dataclass
class PackageWorkspace:
    """The generated package under ``root`` and what has been installed into it."""

    root: Path
    specs: list[str] = field(default_factory=list)
    products: list[tuple[str, str]] = field(default_factory=list)  # (product, package identity)
    flags: list[str] = field(default_factory=list)
    loads: int = 0
    # What the Swift process has loaded: each built module's files with their (mtime, size).
    loaded: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    # Each product's modules (its targets), read from its package's manifest (``learn_modules``).
    modules: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    # %install-mirror: package identity -> (url, local folder) that stands in for the url.
    mirrors: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Header folders from %install-extra-include-command: -Xcc -I for the build, and LLDB's clang.
    include_dirs: list[str] = field(default_factory=list)
    # Where the fresh copies of the built library go (None: ``root``); ``root`` may be a cache folder.
    library_dir: Path | None = None

    def add_mirror(self, url: str, path: str) -> None:
        """Let the local package at ``path`` satisfy every dependency on ``url``.

        SwiftPM takes a dependency of the root package by path over a url dependency of the same
        identity further down (measured with SwiftPM 6.3.1: it warns "Conflicting identity" and
        builds the local one), so the folder becomes a dependency of the generated package. A
        folder named otherwise than the url's identity is reached through a link that is.
        """
        folder = Path(path.replace("$cwd", os.getcwd())).expanduser().absolute()
        if not (folder / "Package.swift").is_file():
            raise InstallError(f"{folder} has no Package.swift: it is not a SwiftPM package")
        self.mirrors[package_identity(f'.package(url: "{url}")')] = (url, str(folder))

    def _mirror_specs(self) -> list[str]:
        """Return the dependencies that stand in for urls: mirrors of packages not installed themselves."""
        installed = {package_identity(spec).lower() for spec in self.specs}
        specs = []
        for identity, (_, folder) in sorted(self.mirrors.items()):
            if identity.lower() in installed:
                continue
            path = Path(folder) if Path(folder).name == identity else self.root / "mirrors" / identity
            specs.append(f'.package(path: "{path}")')
        return specs

    def add(self, spec: str, products: tuple[str, ...]) -> None:
        """Add a dependency (``$cwd`` stands for the kernel's working directory) and its products.

        A spec of a package already installed (same identity, say another version requirement
        or a path instead of a url) replaces the old one: two would make SwiftPM refuse the
        manifest ("Conflicting identity").
        """
        spec = spec.replace("$cwd", os.getcwd())
        identity = package_identity(spec)
        for index, old in enumerate(self.specs):
            if package_identity(old) == identity:
                self.specs[index] = spec
                break
        else:
            self.specs.append(spec)
        for product in products:
            if (product, identity) not in self.products:
                self.products.append((product, identity))

    def manifest(self) -> str:
        """Return Package.swift for everything installed so far."""
        dependencies = ",\n        ".join([*self.specs, *self._mirror_specs()])
        uses = ", ".join(f'.product(name: "{p}", package: "{i}")' for p, i in self.products)
        return f"""// swift-tools-version:5.9
// Generated by the Swift kernel's %install.
import PackageDescription

let package = Package(
    name: "{LIBRARY}",
    products: [.library(name: "{LIBRARY}", type: .dynamic, targets: ["{LIBRARY}"])],
    dependencies: [
        {dependencies}
    ],
    targets: [.target(name: "{LIBRARY}", dependencies: [{uses}])]
)
"""

    def write(self) -> None:
        """Write the manifest and the one source file that re-exports the products."""
        sources = self.root / "Sources" / LIBRARY
        sources.mkdir(parents=True, exist_ok=True)
        for identity, (_, folder) in self.mirrors.items():
            if Path(folder).name != identity:
                link = self.root / "mirrors" / identity
                link.parent.mkdir(exist_ok=True)
                if link.is_symlink() or link.exists():
                    link.unlink()
                link.symlink_to(folder)
        _write_if_changed(self.root / "Package.swift", self.manifest())
        # A product's name need not be a module's: its modules are imported, once they are known
        # (a url package's manifest is read after SwiftPM fetched it; the build links it anyway).
        names = dict.fromkeys(name for key in self.products for name in self.modules.get(key, ()))
        _write_if_changed(sources / f"{LIBRARY}.swift", "".join(f"@_exported import {name}\n" for name in names))

    def product_modules(self, product: str) -> tuple[str, ...]:
        """Return the modules of an installed product (its own name while they are not known)."""
        known = [modules for (name, _), modules in self.modules.items() if name == product]
        return known[0] if known else (product,)

    def package_dir(self, identity: str) -> Path | None:
        """Return where the sources of an installed package are (None: not fetched yet)."""
        for spec in self.specs:
            match = re.search(r'path\s*:\s*"([^"]+)"', spec)
            if match is not None and package_identity(spec) == identity:
                return self.root / match.group(1)  # a relative path is the generated package's
        try:
            state = json.loads((self.build_dir.parent / "workspace-state.json").read_text())
            dependencies = state["object"]["dependencies"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        for dependency in dependencies:
            if str(dependency.get("packageRef", {}).get("identity", "")).lower() != identity.lower():
                continue
            where = dependency.get("state", {})
            if where.get("name") == "fileSystem" and where.get("path"):
                return Path(str(where["path"]))
            if where.get("name") == "sourceControlCheckout" and dependency.get("subpath"):
                return self.build_dir.parent / "checkouts" / str(dependency["subpath"])
        return None

    def learn_modules(self, swift_package: Path, environment: dict[str, str]) -> None:
        """Read the modules of the products whose package is at hand from its manifest (``dump-package``)."""
        for key in self.products:
            product, identity = key
            directory = self.package_dir(identity)
            if key in self.modules or directory is None:
                continue
            command = [str(swift_package), "--package-path", str(directory), "dump-package"]
            try:
                dumped = subprocess.run(
                    command, capture_output=True, text=True, timeout=300, check=False, env=environment
                )
                products = json.loads(dumped.stdout)["products"] if dumped.returncode == 0 else None
            except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
                products = None
            if products is None:
                continue  # SwiftPM's build says what is wrong with the manifest
            targets = {str(p.get("name")): tuple(str(t) for t in p.get("targets", [])) for p in products}
            if product not in targets:
                raise InstallError(f"{identity} has no product {product}; its products: {', '.join(sorted(targets))}")
            self.modules[key] = targets[product]

    def build_command(self, swift_build: Path) -> str:
        """Return the shell command that builds the package."""
        words = [str(swift_build), "--package-path", str(self.root), *self.all_flags()]
        return " ".join(shlex.quote(word) for word in words)

    def all_flags(self) -> list[str]:
        """Return the flags of the build: %install-swiftpm-flags and the extra include folders."""
        return [*self.flags, *(f for folder in self.include_dirs for f in ("-Xcc", f"-I{folder}"))]

    def snapshot(self) -> tuple[list[str], list[tuple[str, str]]]:
        """Return what ``restore`` needs to undo an ``add``."""
        return list(self.specs), list(self.products)

    def restore(self, snapshot: tuple[list[str], list[tuple[str, str]]]) -> None:
        """Undo the ``add`` since ``snapshot`` (a failed install) and write the manifest again."""
        self.specs, self.products = list(snapshot[0]), list(snapshot[1])
        self.write()

    def _flag_value(self, *names: str) -> str | None:
        """Return the last value the flags give any of ``names`` (``-c release``, ``-crelease``, ``--x=v``)."""
        found = None
        words = iter(self.flags)
        for flag in words:
            if flag.startswith("-X"):
                next(words, None)  # -Xswiftc -cross-module-optimization: the compiler's, not SwiftPM's
                continue
            for name in names:
                if flag == name:
                    found = next(words, None)
                elif name.startswith("--") and flag.startswith(f"{name}="):
                    found = flag.split("=", 1)[1]
                elif not name.startswith("--") and flag.startswith(name) and not flag.startswith("--"):
                    found = flag[len(name) :]
        return found

    @property
    def configuration(self) -> str:
        """Return the configuration the flags build (SwiftPM's default: debug)."""
        return self._flag_value("-c", "--configuration") or "debug"

    @property
    def build_dir(self) -> Path:
        """Return where SwiftPM puts what it builds with these flags (``.build/debug``, ``.build/release``)."""
        scratch = self._flag_value("--scratch-path", "--build-path")
        base = Path(scratch) if scratch else self.root / ".build"
        # A relative scratch path is taken from the working directory SwiftPM runs in: the kernel's.
        return Path(os.path.abspath(base)) / self.configuration

    def module_dirs(self) -> list[Path]:
        """Return where the built Swift modules are (SwiftPM 6 puts them in Modules/)."""
        return [d for d in (self.build_dir / "Modules", self.build_dir) if d.is_dir()]

    def module_maps(self) -> list[Path]:
        """Return the module maps of C targets, which Swift imports through clang.

        SwiftPM writes a module map for a C target without one (``X.build/module.modulemap``)
        and uses a target's own ``include/module.modulemap`` as it is (swift-numerics'
        ``_NumericsShims``): the -fmodule-map-file flags it gave the generated library's compile,
        in the build's description.json, name both kinds.
        """
        maps: set[Path] = set(self.build_dir.glob("*.build/module.modulemap"))
        try:
            description = json.loads((self.build_dir / "description.json").read_text())
            commands = description.get("swiftCommands", {}).values()
        except (OSError, ValueError, AttributeError):
            commands = []
        for command in commands:
            if isinstance(command, dict) and command.get("moduleName") == LIBRARY:
                for argument in command.get("otherArguments", []):
                    if isinstance(argument, str) and argument.startswith("-fmodule-map-file="):
                        maps.add(Path(argument.removeprefix("-fmodule-map-file=")))
        return sorted(path for path in maps if path.is_file())

    def built_modules(self) -> dict[str, dict[str, tuple[int, int]]]:
        """Return each built module (target) of the dependencies with its object and module files."""
        modules: dict[str, dict[str, tuple[int, int]]] = {}
        for build in self.build_dir.glob("*.build"):
            name = build.name.removesuffix(".build")
            if name == LIBRARY or not build.is_dir():
                continue
            files = [*build.glob("*.o"), *self.build_dir.glob(f"Modules/{name}.swiftmodule")]
            stats = {str(path): path.stat() for path in files}
            modules[name] = {path: (stat.st_mtime_ns, stat.st_size) for path, stat in stats.items()}
        return modules

    def changed_since_loaded(self) -> list[str]:
        """Return the modules loaded into the Swift process whose build has changed since."""
        built = self.built_modules()
        return sorted(name for name, files in self.loaded.items() if built.get(name, files) != files)

    def mark_loaded(self) -> None:
        """Remember the build the Swift process has just loaded."""
        self.loaded = self.built_modules()

    def fresh_library(self) -> Path:
        """Copy the built library to a new name, so a rebuilt one is really loaded again."""
        built = self.build_dir / f"lib{LIBRARY}.so"
        if not built.exists():
            raise InstallError(f"the build did not produce {built}")
        self.loads += 1
        copy = (self.library_dir or self.root) / f"lib{LIBRARY}-{self.loads}.so"
        shutil.copy2(built, copy)
        return copy


    def versions(self) -> dict[str, str]:
        """Return each resolved package's version, revision or "local" (from SwiftPM's workspace state)."""
        try:
            state = json.loads((self.build_dir.parent / "workspace-state.json").read_text())
            dependencies = state["object"]["dependencies"]
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        versions: dict[str, str] = {}
        for dependency in dependencies:
            identity = str(dependency.get("packageRef", {}).get("identity", ""))
            where = dependency.get("state", {})
            checkout = where.get("checkoutState", {}) if isinstance(where, dict) else {}
            if where.get("name") == "fileSystem":
                versions[identity] = f"local folder {where.get('path', '')}"
            elif checkout.get("version"):
                versions[identity] = f"version {checkout['version']}"
            elif checkout.get("revision"):
                versions[identity] = f"revision {str(checkout['revision'])[:12]}"
        return versions

    def listing(self) -> str:
        """Return what ``%install`` alone shows: packages, versions, products, mirrors, flags, build folder."""
        if not self.specs:
            lines = ["No packages installed."]
        else:
            versions = {k.lower(): v for k, v in self.versions().items()}
            lines = ["Installed packages:"]
            for spec in self.specs:
                identity = package_identity(spec)
                products = [
                    f"{p} (import {', '.join(self.product_modules(p))})" for p, i in self.products if i == identity
                ]
                version = versions.get(identity.lower(), "not resolved yet")
                lines.append(f"  {identity}: {spec}")
                lines.append(f"    {version}; products: {', '.join(products) or 'none'}")
        for url, folder in sorted(self.mirrors.values()):
            lines.append(f"Mirror: {url} -> {folder}")
        lines.append(f"Flags: {shlex.join(self.all_flags()) if self.all_flags() else 'none'}")
        lines.append(f"Build folder: {self.build_dir}")
        return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file holds it already: an unchanged mtime lets SwiftPM skip the rebuild."""
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    path.write_text(text)


_FETCHING = re.compile(r"^(Fetching|Fetched|Cloning|Cloned) (\S+)")


def unreachable_urls(output: str) -> list[str]:
    """Return the urls SwiftPM began to fetch and never got (offline: every url it needed)."""
    started: dict[str, None] = {}
    for line in output.splitlines():
        match = _FETCHING.match(line.strip())
        if match is None:
            continue
        verb, url = match.groups()
        if verb == "Fetching":
            started[url] = None
        elif verb == "Fetched":
            started.pop(url, None)
    return list(started)


def network_error(urls: list[str]) -> str:
    """Return the one line that says which url could not be fetched and how to install without the network."""
    url = urls[0]
    more = f" (and {', '.join(urls[1:])})" if len(urls) > 1 else ""
    return (
        f"%install: the network could not be reached for {url}{more}; use a local copy of the package: "
        f"%install-mirror {url} PATH (or %install it by path first)"
    )


def default_cache_dir(environment: dict[str, str]) -> Path:
    """Return where builds are kept: $SWIFT_KERNEL_CACHE_DIR, else $XDG_CACHE_HOME/swift-kernel, else ~/.cache."""
    if environment.get("SWIFT_KERNEL_CACHE_DIR"):
        return Path(environment["SWIFT_KERNEL_CACHE_DIR"])
    base = environment.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "swift-kernel"


class BuildCache:
    """Folders for the generated package that outlive the kernel, so a later kernel's build is a no-op.

    One folder per toolchain and flags; SwiftPM's own incremental build (mtimes and dependencies)
    decides what to rebuild in it, so a local package whose sources changed is rebuilt and an
    unchanged one is not. A kernel holds a lock on each folder it uses for its whole life (the
    kernel's end, even SIGKILL, releases it); a second kernel at the same time takes the next one.
    """

    def __init__(self, location: Path, toolchain_version: str) -> None:
        self.location = location
        self.toolchain_version = toolchain_version
        self._held: dict[str, tuple[Path, IO[str]]] = {}

    def package_root(self, flags: list[str]) -> Path:
        """Return this kernel's folder for builds with ``flags`` (locked for it)."""
        key = hashlib.sha256(json.dumps([self.toolchain_version, flags]).encode()).hexdigest()[:16]
        held = self._held.get(key)
        if held is not None:
            return held[0]
        for slot in range(64):
            folder = self.location / "packages" / f"{key}-{slot}"
            folder.mkdir(parents=True, exist_ok=True)
            lock = open(folder / ".kernel.lock", "w")  # held open for the kernel's life
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            self._held[key] = (folder, lock)
            return folder
        raise InstallError(f"all build folders in {self.location} are in use by other kernels")

    def release(self) -> None:
        """Unlock every folder (the kernel shuts down)."""
        for _, lock in self._held.values():
            lock.close()
        self._held.clear()


class BuildProgress:
    """Follow SwiftPM's output as it streams: a share done that never goes back, and the step's text.

    SwiftPM raises its step total as it plans (``[5/10]`` then ``[6/40]``): the share shown is
    the largest seen so far, so the bar never moves backwards. Before the first step line, its
    other lines ("Fetching ...", "Building for debugging...") say what it is doing.
    """

    def __init__(self) -> None:
        self._partial = ""
        self.done = 0
        self.total = 0
        self.percent = 0
        self.step = "planning the build"
        # Whether a step compiled something (none: the build was already up to date).
        self.compiled = False

    def feed(self, text: str) -> bool:
        """Take more output; say whether the step or the share done changed."""
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        moved = False
        for raw in lines:
            line = raw.strip()
            match = _STEP.match(line)
            if match is not None:
                self.done, self.total, self.step = int(match.group(1)), int(match.group(2)), match.group(3)
                self.compiled = self.compiled or self.step.startswith("Compiling")
                if self.total:
                    self.percent = max(self.percent, min(100, 100 * self.done // self.total))
                moved = True
            elif line and not self.total and not _BUILD_COMPLETE.match(line):
                self.step = line
                moved = True
        return moved

    def finish(self, step: str) -> None:
        """End the bar at 100% with ``step`` as its text."""
        self.percent = 100
        self.step = step


class BuildCompleteFilter:
    """Drop SwiftPM's "Build complete! (12.3s)" line from its output, however the output is cut.

    The progress bar ends with the install's own duration: one figure, not two that differ.
    Only a line that could still become that one is held back.
    """

    _LINE = "Build complete! ("

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        """Return what of ``held + text`` can be shown now."""
        lines = (self._held + text).splitlines(keepends=True)
        self._held = ""
        if lines and not lines[-1].endswith("\n"):
            tail = lines[-1].lstrip()
            if self._LINE.startswith(tail) or tail.startswith(self._LINE):
                self._held = lines.pop()
        return "".join(line for line in lines if not _BUILD_COMPLETE.match(line.strip()))

    def flush(self) -> str:
        """Return what is still held (the output ended)."""
        held, self._held = self._held, ""
        return "" if _BUILD_COMPLETE.match(held.strip()) else held


def lsp_arguments(
    module_dirs: Iterable[os.PathLike[str] | str], module_maps: Iterable[os.PathLike[str] | str]
) -> list[str]:
    """Return the swiftc arguments that let sourcekit-lsp find the installed Swift and C modules."""
    arguments: list[str] = []
    for folder in module_dirs:
        arguments += ["-I", str(folder)]
    for module_map in module_maps:
        arguments += ["-Xcc", f"-fmodule-map-file={module_map}"]
    return arguments
