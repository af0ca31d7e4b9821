"""Code from outside landscape that a name on the command line stands for: `package.module:attr`
import paths, and names that installed packages register through entry points (`landscape.models`,
`landscape.datasets`). What a run records about that code (import path, package version, module
file hash) comes from here too.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as metadata
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError


@dataclass(frozen=True)
class CodeSource:
    """Where a callable outside landscape comes from: what `--model`/`--dataset` said, the import
    path it resolved to, and how it got there ("import path" or "entry point of DIST")."""

    name: str
    target: str
    origin: str
    distribution: str | None = None

    def load(self, kind: str) -> Callable:
        return load_target(self.target, f"--{kind} {self.name}")

    def code(self) -> dict[str, Any]:
        """What a run records about the code that built it (none of it is in the run ID)."""
        module_name = self.target.partition(":")[0]
        dist = self.distribution or _distribution_of(module_name)
        return {"target": self.target, "origin": self.origin, "package": dist or "",
                "version": _version(dist) if dist else "", "file_sha256": module_file_hash(module_name)}


def is_import_path(name: str) -> bool:
    """`package.module:factory` (a Windows-free world: a colon means an import path)."""
    module, sep, attr = name.partition(":")
    return bool(sep) and bool(module.strip()) and bool(attr.strip())


def entry_points(group: str) -> dict[str, CodeSource]:
    """The names packages register under `group`, first registration of a name winning."""
    found: dict[str, CodeSource] = {}
    for ep in metadata.entry_points(group=group):
        if ep.name not in found:
            dist = ep.dist.name if ep.dist is not None else None
            found[ep.name] = CodeSource(ep.name, ep.value.replace(" ", ""),
                                        f"entry point of {dist or 'an unnamed distribution'}", dist)
    return found


def resolve_source(name: str, group: str, builtin: set[str]) -> CodeSource | None:
    """The outside code `name` stands for, or None for a built-in name (or an unknown one)."""
    if name in builtin:
        return None
    if is_import_path(name):
        return CodeSource(name, name.strip(), "import path")
    return entry_points(group).get(name)


def load_target(target: str, what: str) -> Callable:
    """Import `package.module:attr[.attr...]`; every failure is one ConfigError line."""
    module_name, _, attr = target.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        # As `python -m` would: a module file in the current directory is found (after the rest).
        sys.path.append(os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name.strip())
    except Exception as exc:  # noqa: BLE001 - any import failure of user code is the user's to fix
        raise ConfigError(f"{what}: cannot import module {module_name.strip()!r} "
                          f"({type(exc).__name__}: {one_line(exc)})",
                          "check the module path, that its folder is on PYTHONPATH, and its own imports") from None
    for part in attr.strip().split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{what}: module {module_name.strip()!r} has no attribute {attr.strip()!r}",
                              "write package.module:factory with the factory's name after the colon")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"{what}: {target} is a {type(obj).__name__}, not a callable",
                          "point at a function or class")
    return obj


def module_file_hash(module_name: str) -> str:
    """sha256 of the module's source file ('' when it has none, e.g. a built-in module)."""
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    path = getattr(module, "__file__", None)
    if not path:
        return ""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _distribution_of(module_name: str) -> str | None:
    top = module_name.split(".")[0]
    dists = metadata.packages_distributions().get(top) or []
    return dists[0] if dists else None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
