"""Finding a dataset's files on disk and phrasing what is wrong with them.

Every reader reports problems the same way: which file, what is wrong with it, and how to get a good
copy. Keeping the wording here keeps the messages consistent across formats.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from ..errors import DataError


def fetch_hint(dataset: str) -> str:
    return (f"run `landscape data fetch {dataset}`, "
            "or pass --data-dir / set LANDSCAPE_DATA to the folder that holds it")


def missing_file(folder: Path, filename: str, dataset: str, root: Path) -> DataError:
    return DataError(f"{dataset} file {filename} is missing: looked in {folder} (data root {root})",
                     fetch_hint(dataset))


def bad_file(path: Path, problem: str, dataset: str) -> DataError:
    """A file that exists but cannot be what it should be: the fix is always a fresh copy."""
    return DataError(f"{dataset} file {path} {problem}", f"delete it and run `landscape data fetch {dataset}`")


def find_file(folder: Path, filename: str, dataset: str, root: Path, *, gzip_ok: bool = False) -> Path:
    """`folder/filename`, or with `gzip_ok` also `folder/filename.gz` (the plain file wins: it reads faster)."""
    candidates = [folder / filename] + ([folder / f"{filename}.gz"] if gzip_ok else [])
    for path in candidates:
        if path.is_file():
            return path
    shown = f"{filename}[.gz]" if gzip_ok else filename
    raise missing_file(folder, shown, dataset, root)


def read_bytes(path: Path, dataset: str) -> bytes:
    """The file's contents, gunzipped when its name ends in `.gz`."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{dataset} file {path} cannot be read: {err.strerror or err}",
                        "check its permissions, or delete it and fetch it again") from err
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        # BadGzipFile (an OSError) for a wrong header, EOFError for a cut-off download.
        raise bad_file(path, f"is not a complete gzip file ({err})", dataset) from err
