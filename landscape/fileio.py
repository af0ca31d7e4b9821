"""Durable file replacement, shared by every layer that writes: the store, the data cache, the
downloader and the reports. A file appears at its final path only by an atomic rename of a
complete, flushed file, so a reader sees the old file or the new one, never half of one."""
from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: str | os.PathLike) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename in `directory` durable; not every platform can open a folder, and that is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_durably(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Flush `tmp`, rename it over `final` and flush the rename."""
    fsync_file(tmp)
    os.replace(tmp, final)
    fsync_dir(Path(final).parent)
