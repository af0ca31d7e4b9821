"""Sealed, atomically written files and the per-run writer lock.

HDF5 has no journal: a process killed in the middle of a write can leave a file that no longer
opens. So a store file is never modified in place: it is built whole in memory, written under a
temporary name beside its final one by plain Python file I/O (so a full disk is an OSError, never a
failure inside HDF5's C flush), sealed, flushed to disk and renamed over the final name (`os.replace` is
atomic on POSIX). A kill at any instant leaves the old file or the new one, both complete; a stray
temporary file is removed by the next writer of the run, or by `landscape gc`.

Sealing: a file of format 2 starts with a 4096-byte HDF5 user block (space HDF5 reserves for the
application and never reads) holding the SHA-256 of every byte after it. Any damage anywhere in the
file — data, attributes, HDF5's own metadata, the seal itself — is a mismatch on read. Files of
format 1 (stores written before the seal) have no user block and are read unverified.

One writer per run at a time: an exclusive `flock` on a lock file, which the kernel releases when
the process dies, so a killed writer never leaves a stale lock. The holder writes its process ID
and host into the lock file, so that another command that needs the run can say whom it waits for.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Callable, Iterator

from ..errors import StoreError
from ..fileio import fsync_dir
from .. import interrupts

USER_BLOCK = 4096
MAGIC = b"landscape-store-file 2\n"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# The user block holds: the magic line, "sha256 <digest>", and a one-line JSON summary of a run
# (what `landscape ls` shows, so listing never needs HDF5), padded with newlines. The digest covers
# the summary line and every byte after the user block; the padding is checked to be padding.
MAX_SUMMARY = USER_BLOCK - len(MAGIC) - len("sha256 \n") - 64 - 2


class Damaged(Exception):
    """A file's bytes are not what was written (seal mismatch, unreadable HDF5, truncation)."""


# ------------------------------------------------------------------------------------------------
# Sealed files
# ------------------------------------------------------------------------------------------------

def _digest(summary: bytes):
    return hashlib.sha256(summary + b"\n")


def _write_sealed(path: Path, image: memoryview, summary: str = "") -> str:
    """Write the HDF5 file `image` (built in memory, its user block still blank) to `path`, with the
    digest of `summary` and of everything after the user block sealed into that block."""
    line = summary.encode()
    if len(line) > MAX_SUMMARY or b"\n" in line:
        line = b""
    digest = _digest(line)
    digest.update(image[USER_BLOCK:])
    hexdigest = digest.hexdigest()
    with open(path, "wb") as f:
        f.write(_header(hexdigest, line))
        f.write(image[USER_BLOCK:])
        f.flush()
        os.fsync(f.fileno())
    return hexdigest


def _parse_header(head: bytes) -> tuple[str, bytes] | None:
    """The digest a sealed file claims and its summary line; None for an unsealed (format 1) HDF5 file."""
    if head.startswith(HDF5_SIGNATURE):
        return None
    if not head.startswith(MAGIC):
        raise Damaged("it is neither a sealed landscape file nor an HDF5 file (damaged header)")
    lines = head[len(MAGIC):].split(b"\n", 2)
    kind, _, value = lines[0].decode("ascii", "replace").partition(" ")
    summary = lines[1] if len(lines) > 2 else b""
    if kind != "sha256" or len(value) != 64 or head[:USER_BLOCK] != _header(value, summary):
        raise Damaged("its seal is unreadable (damaged header)")
    return value, summary


def _header(hexdigest: str, summary: bytes = b"") -> bytes:
    return (MAGIC + f"sha256 {hexdigest}\n".encode() + summary + b"\n").ljust(USER_BLOCK, b"\n")


def read_verified(path: Path) -> tuple[bytes, str | None]:
    """The whole file, checked against its seal; (bytes, digest or None when unsealed)."""
    data = path.read_bytes()
    claimed = _check(data)
    return data, (claimed[0] if claimed else None)


def _check(data: bytes) -> tuple[str, bytes] | None:
    claimed = _parse_header(data[:USER_BLOCK])
    if claimed is not None:
        digest = _digest(claimed[1])
        digest.update(memoryview(data)[USER_BLOCK:])
        if digest.hexdigest() != claimed[0]:
            raise Damaged("its checksum does not match its contents (the bytes changed after writing)")
    return claimed


def read_summary(path: Path) -> str | None:
    """The verified summary line of a sealed run file ('' when it has none); None when unsealed."""
    claimed = _check(path.read_bytes())
    return claimed[1].decode() if claimed is not None else None


def verify_file(path: Path, expected: str | None = None) -> str | None:
    """Stream `path` through its checksum without keeping it in memory; the digest (None: unsealed)."""
    with open(path, "rb") as f:
        claimed = _parse_header(f.read(USER_BLOCK))
        if claimed is None:
            return None
        digest = _digest(claimed[1])
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    if digest.hexdigest() != claimed[0]:
        raise Damaged("its checksum does not match its contents (the bytes changed after writing)")
    if expected is not None and claimed[0] != expected:
        raise Damaged("it is not the file the run's index recorded (a different checksum)")
    return claimed[0]


def open_bytes(data: bytes):
    """An HDF5 file opened read-only from memory."""
    import h5py

    return h5py.File(io.BytesIO(data), "r")


def temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp.{os.getpid()}.{secrets.token_hex(3)}")


def is_temp(path: Path) -> bool:
    return path.name.startswith(".") and ".tmp." in path.name


def remove_stale_temps(directory: Path, prefix: str = ".") -> int:
    """Remove temporary files of killed writers in `directory` whose names start with `prefix`
    (call with the run's lock held); the bytes freed."""
    freed = 0
    if not directory.is_dir():
        return 0
    for stale in directory.iterdir():
        if is_temp(stale) and stale.name.startswith(prefix):
            with contextlib.suppress(FileNotFoundError):
                freed += stale.stat().st_size
                stale.unlink()
    return freed


@contextlib.contextmanager
def sealed_write(path: Path, *, what: str, size_hint: int = 0, result: dict | None = None,
                 summary: Callable[["object"], str] | None = None) -> Iterator["object"]:
    """Open a new sealed HDF5 file for writing; on success it replaces `path` atomically (and
    `result` gets its `size` and `sha256`). `summary(file)`, called before the file is closed,
    gives the summary line to seal into its user block.

    If the block raises, `path` is untouched and the temporary file removed. A full disk becomes a
    StoreError saying what was being saved (`what`) and about how much room it needs (`size_hint`).
    """
    import h5py

    tmp = temp_name(path)
    try:
        try:
            # The HDF5 file is built in memory and only its finished bytes go to disk, by Python: a
            # full disk is then an OSError raised here. Written in place, the failure surfaced in
            # HDF5's own flush when h5py closed the file, which left the library in a state that
            # crashed the process (a segfault, no error line, the temporary file left behind). The
            # cost: one state's bytes held twice in memory for the moment it is written.
            image = io.BytesIO()
            with h5py.File(image, "w", userblock_size=USER_BLOCK) as f:
                yield f
                line = summary(f) if summary else ""
            with image.getbuffer() as view:
                digest = _write_sealed(tmp, view, line)
                size = view.nbytes
            if result is not None:
                result.update(size=size, sha256=digest)
            os.replace(tmp, path)
            fsync_dir(path.parent)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            if is_no_space(exc):
                raise no_space_error(path, what, size_hint) from None
            raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def is_no_space(exc: BaseException) -> bool:
    """A full disk or quota, however the layer below reports it (h5py puts errno in its message)."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            return True
        text = str(exc)
        if "No space left on device" in text or "errno = 28" in text or "Disk quota exceeded" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def no_space_error(path: Path, what: str, need_bytes: int) -> StoreError:
    folder = path.parent
    try:
        device = _mount_point(folder)
    except OSError:
        device = str(folder)
    free = shutil.disk_usage(folder).free if folder.exists() else 0
    need_mb = max(1, -(-int(need_bytes * 1.1 + (1 << 20)) // (1 << 20)))
    return StoreError(f"no space left on {device} while saving {what} ({free / 2**20:.1f} MB free)",
                      f"free ~{need_mb} MB and rerun the same command to continue; the last complete state is kept")


def _mount_point(path: Path) -> str:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return str(path)


# ------------------------------------------------------------------------------------------------
# The per-run lock
# ------------------------------------------------------------------------------------------------

def _describe_holder(text: str) -> str:
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    if "pid" not in fields:
        return "another process"
    return f"process {fields['pid']} on host {fields.get('host', '?')}"


def holder_of(lock_path: Path) -> str | None:
    """Who holds the lock ('process P on host H'), or None if nobody does. Never creates the file."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _describe_holder(os.pread(fd, 256, 0).decode("utf-8", "replace"))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLock:
    """An exclusive lock on one run, held for as long as a process writes it.

    `wait_s`: how long to wait for another live process that holds it (None: as long as it takes;
    0: fail at once). `notify(message, waited_s)` hears about the wait: once when it starts (with
    0.0), then about once a second, so a progress display can show the time waited.
    """

    def __init__(self, lock_path: Path, run_id: str, *, wait_s: float | None = 0.0,
                 notify: Callable[[str, float], None] | None = None):
        self.path = lock_path
        self.run_id = run_id
        self.wait_s = wait_s
        self.notify = notify
        self._fd: int | None = None

    def _try_once(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        # The previous holder removes the lock file when it is done (so none are left behind): if it
        # did so after we opened it, we hold a lock on a file nobody else will see. Try again.
        try:
            same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return self._try_once()
        with contextlib.suppress(OSError):  # on a full disk the lock still holds; only the note is lost
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid={os.getpid()} host={socket.gethostname()} since={int(time.time())}\n".encode(), 0)
        self._fd = fd
        return True

    def acquire(self) -> "RunLock":
        started = time.monotonic()
        # A reader checking whether the run is live holds a shared lock for microseconds: retry
        # briefly before calling it a wait.
        for _ in range(5):
            if self._try_once():
                return self
            time.sleep(0.01)
        holder = holder_of(self.path) or "another process"
        if self.wait_s is not None and self.wait_s <= 0:
            raise StoreError(f"run {self.run_id} is being written by {holder}",
                             "wait for it to finish (--wait SECONDS), or stop it; a killed process releases the run")
        message = f"waiting for run {self.run_id}, written by {holder}"
        if self.notify:
            self.notify(message, 0.0)
        last_note = 0.0
        while True:
            time.sleep(0.2)
            if self._try_once():
                return self
            waited = time.monotonic() - started
            if self.wait_s is not None and waited >= self.wait_s:
                raise StoreError(f"run {self.run_id} is still being written by {holder_of(self.path) or holder} "
                                 f"after {waited:.0f}s", "rerun later, or with a longer --wait")
            if self.notify and waited - last_note >= 1.0:
                last_note = waited
                self.notify(message, waited)

    def release(self, *, remove: bool = True) -> None:
        if self._fd is not None:
            if remove:  # while still held: a waiter that opened this file sees it is gone and retries
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def try_lock(lock_path: Path, run_id: str) -> RunLock | None:
    """The run's lock if nobody holds it, else None (for maintenance that must not wait)."""
    lock = RunLock(lock_path, run_id, wait_s=0)
    try:
        return lock.acquire()
    except StoreError:
        return None


def deferred():
    """Store commits run to their end before a SIGTERM/SIGINT takes effect."""
    return interrupts.deferred()
