"""`--collect`: run files travel between the client's store and workers that share no filesystem.

A task starts from the run files it needs (its own runs, if an earlier attempt left them, and every
run they refer to) copied into a scratch store on its worker; the files it writes come back as bytes
with their SHA-256, checked on arrival before they are renamed into the client's store under the
run's lock, so a file in the store is always one that a worker finished writing.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable

import h5py

from ..errors import StoreError
from ..fileio import replace_durably
from ..store import Store
from ..store.files import RunLock
from ..store.run import parts_dir
from .task import sha256

_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{12}(?![0-9a-f])")


def _strings_in(path: Path) -> Iterable[str]:
    with h5py.File(path, "r") as f:
        found: list[str] = []

        def attrs(obj) -> None:
            for value in obj.attrs.values():
                items = value.tolist() if hasattr(value, "tolist") else value
                for item in items if isinstance(items, list) else [items]:
                    if isinstance(item, bytes):
                        item = item.decode(errors="ignore")
                    if isinstance(item, str):
                        found.append(item)
        attrs(f)
        f.visititems(lambda name, obj: attrs(obj))
    return found


def referenced(store: Store, flags: dict[str, Any]) -> set[str]:
    """Runs the flags name (IDs, prefixes or names, as `RUN`, `RUN:STEP`, `RUN@L`)."""
    out = set()
    for value in flags.values():
        if not isinstance(value, str) or not value:
            continue
        head = re.split(r"[:@/]", value, maxsplit=1)[0]
        try:
            out.add(store.resolve(head))
        except StoreError:
            continue
    return out


def closure(store: Store, ids: Iterable[str]) -> list[str]:
    """`ids` present in the store and every run they refer to, transitively."""
    seen: set[str] = set()
    todo = [i for i in ids if store.exists(i)]
    while todo:
        run_id = todo.pop()
        if run_id in seen:
            continue
        seen.add(run_id)
        for text in _strings_in(store.path_for(run_id)):
            todo += [m for m in _ID.findall(text) if m not in seen and store.exists(m)]
    return sorted(seen)


def run_files(store: Store, run_id: str) -> list[str]:
    """A run's files as names relative to the store: its index `RUN.h5`, then its weights
    `RUN.parts/STEP-HASH.h5` (the index names them; without them the run is damaged)."""
    path = store.path_for(run_id)
    parts = sorted(parts_dir(path).glob("*.h5")) if parts_dir(path).is_dir() else []
    return [path.name] + [f"{parts_dir(path).name}/{p.name}" for p in parts]


def inputs_for(store: Store, run_ids: list[str] | None, flags: dict[str, Any]) -> dict[str, bytes]:
    ids = closure(store, list(run_ids or []) + sorted(referenced(store, flags)))
    return {name: (store.root / name).read_bytes() for i in ids for name in run_files(store, i)}


def receive(store: Store, files: dict[str, tuple[str, bytes]]) -> None:
    """Verify and rename each returned run file into `store` (raises StoreError on a bad hash).
    Every file is checked before any is renamed; a run's weight files land before its index, so
    the index never names weights that are not there yet."""
    store.ensure_writable()
    for name, (digest, data) in sorted(files.items()):
        if sha256(data) != digest:
            raise StoreError(f"run file {name} arrived damaged (its SHA-256 differs from the worker's)",
                             "rerun the sweep: the task's run is resumed from its last good copy")
    indexes = sorted(n for n in files if "/" not in n)
    for index in indexes:
        run_id = index.removesuffix(".h5")
        with RunLock(store.root / ".locks" / f"{run_id}.lock", run_id):
            # Weight files are named by their content hash: writing one that exists changes nothing.
            for name in sorted(n for n in files if n.startswith(f"{run_id}.parts/")):
                _land(store.root / name, files[name][1])
            _land(store.path_for(run_id), files[index][1])


def _land(final: Path, data: bytes) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp.collect.{os.getpid()}"
    tmp.write_bytes(data)
    replace_durably(tmp, final)
