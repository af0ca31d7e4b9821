"""Download the official dataset files into torchvision's layouts, verified and crash-safe.

    fetch_dataset("mnist", "data")      # -> [data/MNIST/raw/train-images-idx3-ubyte.gz, ...]

Guarantees, per file:

* A file only ever appears at its final path through `os.replace` of a download whose md5 matched
  (fsynced first), so no crash or SIGKILL at any instant leaves a damaged file where a loader looks.
  Archives are extracted into a hidden temporary folder under the data root and renamed into place
  whole, after the archive itself was verified.
* Bytes arrive in `<final name>.part` next to the final path. A rerun resumes an existing `.part`
  with an HTTP Range request; a server that ignores Range (answers 200) restarts it cleanly.
* A network failure keeps the `.part` (so the rerun resumes) and, once every URL has failed, raises
  `DataError` naming each URL and why. A download whose md5 does not match is deleted; if it was a
  resumed one it is retried once from scratch, then the next URL is tried.
* A file already at the final path with the right md5 is left alone ("already present"); one with
  the wrong md5 is never overwritten unless `force=True` (`--force`).

HTTP is the standard library's `urllib.request`, with a timeout on every socket operation and a
User-Agent. `mirror=` (or the LANDSCAPE_MIRROR environment variable) replaces every file's URLs with
`<mirror>/<file name>`; a local folder works too.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
from pathlib import Path, PurePosixPath
from typing import Iterator, Mapping
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from landscape.data.archives import extract, fsync_path, remove_stale_extractions
from landscape.data.sources import NOT_FETCHABLE, SOURCES, RemoteFile, Source, canonical_name
from landscape.errors import DataError
from landscape.fileio import fsync_dir

__all__ = ["fetch_dataset", "DEFAULT_TIMEOUT_S", "USER_AGENT"]

DEFAULT_TIMEOUT_S = 30.0
USER_AGENT = "landscape-fetch/0.1 (+https://pypi.org/project/landscape; python-urllib)"
MIRROR_ENV = "LANDSCAPE_MIRROR"
_CHUNK = 1 << 16
_LOCK_NAME = ".landscape-fetch.lock"


class _NetError(Exception):
    """One URL failed on the network side; whatever reached the .part is kept."""


def fetch_dataset(
    name: str,
    root: str | Path,
    *,
    mirror: str | None = None,
    progress: bool = True,
    force: bool = False,
    sources: Mapping[str, Source] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> list[Path]:
    """Download dataset `name` under `root` and return the paths its loaders read.

    Returns one path per file of the dataset: the verified file, or for an archive the folder it
    was extracted to (e.g. `<root>/cifar-10-batches-py`). `mirror` replaces the official URLs with
    `<mirror>/<file name>` (a URL or a local folder; default: $LANDSCAPE_MIRROR). `progress` shows
    a progress bar and one status line per file on stderr; False is silent. `force` downloads (and
    re-extracts) again even when the files are present, replacing them only once the new download
    is verified. `sources` replaces the table of `landscape.data.sources.SOURCES` (tests, private
    datasets). `timeout` bounds every connect and read, in seconds.

    Raises DataError for an unknown or unfetchable name, a failed or corrupt download, or a file in
    the way whose md5 is wrong.
    """
    table = SOURCES if sources is None else sources
    source = _resolve(name, table)
    root = Path(root).expanduser()
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    # Folders this call creates; a failed fetch removes those left empty (and its lock file in a
    # root it created), so an offline attempt leaves nothing behind.
    made = [d for d in _folders(root, source) if not d.exists()]
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the data root {root}: {e.strerror or e}",
                        fix="pass a writable data root") from e

    say = _Reporter(progress)
    paths: list[Path] = []
    try:
        with _root_lock(root, say), say.bar():
            for rf in source.files:
                urls = _urls(rf, mirror)
                paths.append(_fetch_file(rf, urls, root, force=force, timeout=timeout, say=say))
    except BaseException:
        _remove_empty(made, root)
        raise
    return paths


def _folders(root: Path, source: Source) -> list[Path]:
    """The root and the folders the files of `source` go into, deepest first."""
    out = {root}
    for rf in source.files:
        parent = root.joinpath(*PurePosixPath(rf.dest).parts).parent
        while parent != root and root in parent.parents:
            out.add(parent)
            parent = parent.parent
    return sorted(out, key=lambda p: len(p.parts), reverse=True)


def _remove_empty(made: list[Path], root: Path) -> None:
    if root in made:
        (root / _LOCK_NAME).unlink(missing_ok=True)
    for folder in made:   # deepest first
        try:
            folder.rmdir()
        except OSError:   # not empty (a partial download kept to resume), or already gone
            pass


# --------------------------------------------------------------------------------------------------
# names and URLs


def _resolve(name: str, table: Mapping[str, Source]) -> Source:
    if name in table:
        return table[name]
    key = canonical_name(name)
    if key in table:
        return table[key]
    names = ", ".join(sorted(table))
    if key in NOT_FETCHABLE:
        raise DataError(f"dataset {name!r} is not downloadable: {NOT_FETCHABLE[key]}",
                        fix=f"downloadable datasets: {names}")
    raise DataError(f"unknown dataset {name!r}", fix=f"downloadable datasets: {names}")


def _urls(rf: RemoteFile, mirror: str | None) -> tuple[str, ...]:
    if not mirror:
        return rf.urls
    if not urlsplit(mirror).scheme or re.match(r"^[A-Za-z]:[\\/]", mirror):
        base = Path(mirror).expanduser().resolve().as_uri()  # a local folder
    else:
        base = mirror
    return (base.rstrip("/") + "/" + rf.filename,)


# --------------------------------------------------------------------------------------------------
# one file


def _fetch_file(rf: RemoteFile, urls: tuple[str, ...], root: Path, *, force: bool,
                timeout: float, say: "_Reporter") -> Path:
    dest = root.joinpath(*PurePosixPath(rf.dest).parts)
    if rf.extract_to is not None:
        target = root.joinpath(*PurePosixPath(rf.extract_to).parts)
        remove_stale_extractions(root, rf.extract_to)
        if target.is_dir() and not force:
            if dest.exists():
                _check_existing(dest, rf)
            say.line(f"{rf.extract_to}: already present")
            return target

    if dest.exists() and not force:
        _check_existing(dest, rf)
        say.line(f"{rf.filename}: already present" +
                 (", extracting" if rf.extract_to is not None else ""))
    else:
        _download_verified(rf, urls, dest, force=force, timeout=timeout, say=say)

    if rf.extract_to is None:
        return dest
    target = extract(dest, root, rf.extract_to)
    say.line(f"{rf.filename}: extracted to {target}")
    return target


def _check_existing(dest: Path, rf: RemoteFile) -> None:
    got = _md5(dest)
    if got != rf.md5:
        raise DataError(
            f"{dest} already exists but its md5 is {got}, not {rf.md5}: it is damaged or not the "
            "official file, so it is left alone",
            fix="rerun with --force (force=True in Python) to replace it with a fresh verified "
                "download")


def _download_verified(rf: RemoteFile, urls: tuple[str, ...], dest: Path, *, force: bool,
                       timeout: float, say: "_Reporter") -> None:
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if force:
            part.unlink(missing_ok=True)
    except OSError as e:
        raise DataError(f"cannot prepare {dest.parent}: {e.strerror or e}",
                        fix="check permissions under the data root") from e

    failures: list[str] = []
    corrupt = 0
    task = say.task(rf.filename)
    for url in urls:
        for _attempt in range(2):  # a second go only after a resumed download failed its md5
            try:
                resumed_from = _download(url, part, timeout=timeout, say=say, task=task)
            except _NetError as e:
                failures.append(f"{url}: {e}")
                break
            except OSError as e:  # the local side: disk full, permissions...
                raise DataError(f"cannot write {part}: {e.strerror or e}",
                                fix="check free space and permissions under the data root") from e
            got = _md5(part)
            if got == rf.md5:
                fsync_path(part)
                os.replace(part, dest)
                fsync_dir(dest.parent)
                say.line(f"{rf.filename}: downloaded and verified (md5 {got})")
                return
            part.unlink(missing_ok=True)
            if resumed_from:
                continue  # the old .part may have come from another file: once more from zero
            corrupt += 1
            failures.append(f"{url}: download corrupt (md5 {got}, expected {rf.md5})")
            break

    if part.exists() and part.stat().st_size == 0:
        part.unlink(missing_ok=True)
    if part.exists():
        fix = (f"check the network or pass --mirror URL (or set {MIRROR_ENV}), then rerun the same command: it resumes from "
               f"the {part.stat().st_size} bytes kept in {part}")
    elif corrupt:
        fix = "the corrupt download was deleted; rerun the same command to download it again"
    else:
        fix = f"check the network or pass --mirror URL (or set {MIRROR_ENV}), then rerun the same command"
    head = (f"the download of {rf.filename} was corrupt" if corrupt == len(failures)
            else f"could not download {rf.filename}")
    raise DataError(f"{head}: " + "; ".join(failures), fix=fix)


def _download(url: str, part: Path, *, timeout: float, say: "_Reporter", task) -> int:
    """Bring `part` to the full content of `url`; return the offset it resumed from (0: fresh).

    Raises _NetError for anything on the network side (the .part keeps what arrived) and OSError
    for local write failures.
    """
    for _attempt in range(2):  # a second go only when a 206 started at the wrong offset
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            resp = urlopen(Request(url, headers=headers), timeout=timeout)
        except HTTPError as e:
            e.close()
            if e.code == 416 and have:
                return have  # nothing past `have`: the .part is complete (or too long; md5 decides)
            raise _NetError(f"HTTP {e.code} {e.reason}") from e
        except URLError as e:
            raise _NetError(_describe(e.reason)) from e
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise _NetError(_describe(e)) from e

        with resp:
            status = getattr(resp, "status", None) or 200  # file:// URLs have no status
            length = _int(resp.headers.get("Content-Length"))
            if have and status == 206:
                start = _range_start(resp.headers.get("Content-Range"))
                if start != have:
                    part.unlink()
                    continue
                offset = have
            elif 200 <= status < 300 and status != 206:
                offset = 0  # Range ignored (or no .part): start over cleanly
            else:
                raise _NetError(f"unexpected HTTP status {status}")
            total = offset + length if length is not None else None
            say.start(task, total=total, completed=offset)
            _copy(resp, part, offset=offset, length=length, url=url, say=say, task=task)
            return offset
    raise _NetError("the server answered the resume request with the wrong byte range twice")


def _copy(resp, part: Path, *, offset: int, length: int | None, url: str, say: "_Reporter",
          task) -> None:
    received = 0
    # read1: whatever has arrived, up to _CHUNK, so the .part and the bar follow the network closely
    read = getattr(resp, "read1", None) or resp.read
    with open(part, "ab" if offset else "wb") as out:
        while True:
            try:
                chunk = read(_CHUNK)
            except (OSError, http.client.HTTPException) as e:
                out.flush()
                raise _NetError(f"connection lost after {offset + received} bytes "
                                f"({_describe(e)})") from e
            if not chunk:
                break
            out.write(chunk)
            out.flush()  # what arrived is on disk for a rerun to resume, even after a SIGKILL
            received += len(chunk)
            say.advance(task, len(chunk))
        out.flush()
        os.fsync(out.fileno())
    if length is not None and received < length:
        raise _NetError(f"connection closed after {offset + received} of {offset + length} bytes")


# --------------------------------------------------------------------------------------------------
# small helpers


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _range_start(content_range: str | None) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)", content_range or "")
    return int(m.group(1)) if m else None


def _describe(e: object) -> str:
    if isinstance(e, http.client.IncompleteRead):
        return f"incomplete read, {len(e.partial)} bytes"
    if isinstance(e, BaseException):
        text = str(e) or type(e).__name__
        return text if type(e).__name__ in text else f"{type(e).__name__}: {text}"
    return str(e)


@contextlib.contextmanager
def _root_lock(root: Path, say: "_Reporter") -> Iterator[None]:
    """One fetch at a time per data root (POSIX); a second one waits, then finds files present."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    try:
        fh = open(root / _LOCK_NAME, "a")
    except OSError:  # read-only root: fine when everything is present, else the writes will say
        yield
        return
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say.line(f"waiting for another landscape fetch into {root} to finish")
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class _Reporter:
    """Progress bar and status lines on stderr, or nothing at all when progress is off."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._console = None
        self._progress = None
        if enabled:
            from rich.console import Console

            self._console = Console(stderr=True)

    @contextlib.contextmanager
    def bar(self) -> Iterator[None]:
        """Scope of the progress bar; it appears with the first download, not before."""
        try:
            yield
        finally:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None

    def task(self, description: str):
        if not self.enabled:
            return None
        if self._progress is None:
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                       TimeRemainingColumn, TransferSpeedColumn)

            self._progress = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), console=self._console)
            self._progress.start()
        return self._progress.add_task(description, total=None, start=False)

    def start(self, task, *, total: int | None, completed: int) -> None:
        if self._progress is not None and task is not None:
            self._progress.reset(task, total=total, completed=completed, start=True)

    def advance(self, task, n: int) -> None:
        if self._progress is not None and task is not None:
            self._progress.advance(task, n)

    def line(self, text: str) -> None:
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False, soft_wrap=True)
