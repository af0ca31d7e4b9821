"""Atomic, locked writes of one HDF5 file.

HDF5 has no journal: a process killed in the middle of a write can leave a file that no longer
opens, losing everything in it. So a run file is never modified in place. Each change copies the
current file to a temporary name beside it, modifies the copy, flushes it to disk and renames it
over the original (`os.replace` is atomic on POSIX). A kill at any instant leaves either the old
file or the new one, both complete; a stray temporary file is removed by the next writer.

One writer per run at a time: an exclusive `flock` on a lock file, which the kernel releases when
the process dies, so a killed writer never leaves a stale lock.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path
from typing import Iterator

import h5py

from ..errors import StoreError
from ..fileio import replace_durably


class RunLock:
    """An exclusive lock on one run, held for as long as a process writes it."""

    def __init__(self, lock_path: Path, run_id: str):
        self.path = lock_path
        self.run_id = run_id
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"run {self.run_id} is being written by another process",
                             "wait for it to finish, or stop it; a killed process releases the run")
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp.{os.getpid()}")


def remove_stale_temps(path: Path) -> None:
    """Remove temporary copies of `path` left by killed writers (call with the run's lock held)."""
    for stale in path.parent.glob(f".{path.name}.tmp.*"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


@contextlib.contextmanager
def atomic_update(path: Path, *, create: bool = False) -> Iterator[h5py.File]:
    """Open a copy of `path` for writing; on success it replaces `path` atomically.

    With `create`, start from an empty file (the old one, if any, is replaced whole).
    If the block raises, the original is untouched and the copy is removed.
    """
    tmp = temp_name(path)
    try:
        if not create:
            shutil.copyfile(path, tmp)
        with h5py.File(tmp, "w" if create else "r+") as f:
            yield f
        replace_durably(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
