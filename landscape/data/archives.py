"""Extracting a verified dataset archive safely: no member outside the target, no links or special
files, and the folder appearing whole, by one rename (a reader never sees half an extraction).
"""
from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from landscape.errors import DataError
from landscape.fileio import fsync_dir


def fsync_path(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())




def remove_stale_extractions(root: Path, top: str) -> None:
    for stale in root.glob(f".{top}.extract-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _check_members(archive: Path, members: list[tarfile.TarInfo]) -> None:
    for m in members:
        p = PurePosixPath(m.name)
        unsafe = None
        if p.is_absolute() or m.name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", m.name):
            unsafe = "an absolute path"
        elif ".." in p.parts:
            unsafe = "a '..' path"
        elif m.issym() or m.islnk():
            unsafe = "a link"
        elif not (m.isfile() or m.isdir()):
            unsafe = "a special file"
        if unsafe:
            raise DataError(
                f"{archive} holds {unsafe} ({m.name!r}); refusing to extract it",
                fix="the archive is not the official one: delete it and rerun, or check --mirror")


def extract(archive: Path, root: Path, top: str) -> Path:
    """Extract the verified tar `archive` so that `<root>/<top>` appears whole, by one rename."""
    final = root.joinpath(*PurePosixPath(top).parts)
    tmp = Path(tempfile.mkdtemp(prefix=f".{top}.extract-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:*") as tf:
                members = tf.getmembers()
                _check_members(archive, members)
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(tmp, members=members, filter="data")
                else:  # Python < 3.10.12 / 3.11.4: _check_members already refused the unsafe
                    tf.extractall(tmp, members=members)
        except tarfile.TarError as e:  # includes tarfile.FilterError
            raise DataError(f"{archive} cannot be extracted: {e}",
                            fix="rerun with --force to download it again") from e
        except (EOFError, zlib.error) as e:
            raise DataError(f"{archive} is truncated or not a tar archive: {e}",
                            fix="rerun with --force to download it again") from e
        except OSError as e:
            raise DataError(f"cannot extract {archive} under {root}: {e.strerror or e}",
                            fix="check free space and permissions under the data root") from e
        src = tmp.joinpath(*PurePosixPath(top).parts)
        if not src.is_dir():
            raise DataError(f"{archive} does not contain the folder {top}/",
                            fix="the archive is not the official one: rerun with --force")
        for f in src.rglob("*"):
            if f.is_file():
                fsync_path(f)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # --force: move the old copy into tmp (deleted below), then swap
            os.rename(final, tmp / ".replaced")
        os.rename(src, final)
        fsync_dir(final.parent)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
