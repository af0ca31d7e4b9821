"""Decoded datasets kept on disk as tensors, so slow decoding happens once per set of source files.

An entry's file name carries a digest of the dataset name, the format version and every source
file's path, size and modification time: any change to the sources makes a new name, and the old
entry is removed once the new one is written.

The cache is never a reason to fail. Entries are written to a temporary file in the same folder,
fsynced and renamed into place, so a reader sees either nothing or a complete file, whatever a
concurrent or killed writer was doing. An entry that cannot be read or does not hold what it
should is ignored and rebuilt; a cache that cannot be written costs a warning, not the load.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..cachefiles import cache_dir as _cache_dir, write_sources
from ..fileio import fsync_dir
from .dataset import Dataset

FORMAT_VERSION = 1
FOLDER_NAME = ".landscape-cache"
# A temporary file older than this belongs to a writer that died; live writers finish in seconds.
STALE_TEMP_SECONDS = 3600

_TENSORS = ("train_x", "train_y", "test_x", "test_y")
log = logging.getLogger(__name__)


def cache_dir(data_root: Path | None = None) -> Path:
    """$LANDSCAPE_CACHE, else the platform's user cache folder (see landscape/cachefiles.py).
    (`data_root` is accepted for callers of the old signature and not used.)"""
    return _cache_dir()


def cached(name: str, sources: Sequence[str | Path], build: Callable[[], Dataset], directory: Path) -> Dataset:
    """The dataset `build()` makes from `sources` (absolute paths), from `directory` when an entry matches them."""
    prefix = _entry_prefix(name)
    entry = directory / f"{prefix}-{_fingerprint(name, sources)}.pt"
    dataset = _read_entry(entry, name)
    if dataset is not None:
        return dataset
    dataset = build()
    try:
        _write_entry(entry, dataset)
    except (OSError, RuntimeError) as err:  # torch.save reports failed writes as RuntimeError
        warnings.warn(f"could not cache {name} in {directory} ({err}); it will be decoded again next time "
                      f"(set LANDSCAPE_CACHE to a writable folder)", RuntimeWarning, stacklevel=2)
        return dataset
    try:   # what `landscape gc` reads to tell an entry whose dataset is gone
        write_sources(entry, [os.fspath(p) for p in sources])
    except OSError as err:
        log.info("could not record the sources of cache entry %s (%s)", entry, err)
    _remove_stale(directory, prefix, keep=entry)
    return dataset


def _entry_prefix(name: str) -> str:
    """A readable, file-system-safe stem unique to `name` (imagefolder names are whole paths)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:48]
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _fingerprint(name: str, sources: Sequence[str | Path]) -> str:
    digest = hashlib.sha256(f"{FORMAT_VERSION}\n{name}\n".encode())
    for path in sources:
        stat = os.stat(path)
        digest.update(f"{os.fspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def _read_entry(entry: Path, name: str) -> Dataset | None:
    if not entry.is_file():
        return None
    try:
        payload = torch.load(entry, map_location="cpu", weights_only=True)
        if payload.get("format") != FORMAT_VERSION or payload.get("name") != name:
            raise ValueError("written for another format version or dataset")
        return Dataset(name, *(payload[k] for k in _TENSORS), tuple(payload["classes"]))
    except Exception as err:  # noqa: BLE001 - whatever is wrong with an entry, rebuilding fixes it
        log.info("ignoring unreadable dataset cache entry %s (%s: %s)", entry, type(err).__name__, err)
        return None


def _write_entry(entry: Path, dataset: Dataset) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT_VERSION, "name": dataset.name, "classes": list(dataset.classes)}
    # torch.save writes a view's whole storage: compact views so the entry holds only this data.
    payload.update({k: _compact(getattr(dataset, k)) for k in _TENSORS})
    temp = entry.with_name(f".{entry.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, entry)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(entry.parent)


def _compact(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.is_contiguous() and tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size():
        return tensor
    return tensor.clone(memory_format=torch.contiguous_format)


def _remove_stale(directory: Path, prefix: str, keep: Path) -> None:
    """Delete this dataset's entries for older sources, and temporary files of dead writers."""
    now = time.time()
    try:
        for path in directory.glob(f"{prefix}-*.pt"):
            if path != keep:
                path.unlink(missing_ok=True)
                path.with_name(path.name + ".sources").unlink(missing_ok=True)
        for path in directory.glob(f".{prefix}-*.tmp"):
            if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                path.unlink(missing_ok=True)
    except OSError as err:
        log.info("could not tidy the dataset cache %s (%s)", directory, err)
