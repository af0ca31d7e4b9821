"""One grid point, run on a Dask worker: the api call its command's flags ask for.

The task is the same call the command line makes. It sets the worker's thread count, waits for
runs another task is writing (grid points share runs: IMP runs differing only in their pruning rate
share their dense run) and reuses them, reports its progress to the client, and turns a user error
into a failed outcome rather than an exception, so Dask never retries what would fail again. A lost
worker is Dask's to handle: it reschedules the task, which resumes from the store.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOPIC = "landscape-sweep"
# The store refuses a run another writer holds: another process ("... by process P on host H") once
# its own wait ends, or at once another task (thread) of this worker process. Both: wait and retry.
LOCKED = "is being written by "


@dataclass(frozen=True)
class Payload:
    key: str
    command: str
    flags: dict[str, Any]
    threads: int = 1
    lock_wait_s: float = 3600.0
    inputs: dict[str, bytes] = field(default_factory=dict)  # collect mode: run files the task starts from
    collect: bool = False


@dataclass
class Outcome:
    key: str
    status: str                      # done | reused | failed
    runs: list[str] = field(default_factory=list)
    error: str = ""
    started: float = 0.0
    ended: float = 0.0
    waited_s: float = 0.0            # time spent waiting for runs other tasks were writing
    pid: int = 0
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # collect mode: name -> (sha256, bytes)


def _report(message: dict[str, Any]) -> None:
    try:
        from distributed import get_worker

        get_worker().log_event(TOPIC, message)
    except (ImportError, ValueError):
        pass  # not on a worker (a direct call): nobody to tell


class _Progress:
    """The api's (done, total) callback, forwarded to the client at most once a second."""

    def __init__(self, key: str):
        self.key, self.last = key, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0 or done == total:
            self.last = now
            _report({"key": self.key, "state": "running", "done": done, "total": total})


def set_threads(n: int) -> None:
    import torch

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def run_task(payload: Payload) -> Outcome:
    """Run one grid point; never raises for a user error (those are outcomes, not retried)."""
    from ..calls import run_call
    from ..errors import UserError

    set_threads(payload.threads)
    started = time.time()
    outcome = Outcome(payload.key, "failed", started=started, pid=os.getpid())
    _report({"key": payload.key, "state": "running"})
    scratch = _scratch(payload) if payload.collect else None
    flags = dict(payload.flags, store=str(scratch)) if scratch else payload.flags
    deadline = time.monotonic() + payload.lock_wait_s
    delay = 0.2
    try:
        while True:
            try:
                runs = run_call(payload.command, flags, _Progress(payload.key))
                break
            except UserError as exc:
                # Another task is writing a run this one needs: wait, then ask again (and reuse it).
                if LOCKED in str(exc) and time.monotonic() < deadline:
                    wait = delay * (1 + random.random())
                    time.sleep(wait)
                    outcome.waited_s += wait
                    delay = min(delay * 1.5, 5.0)
                    continue
                outcome.error = exc.line()
                return outcome
        outcome.runs = [r.id for r in runs]
        # Done when one of its runs was written now; reused when every one was stored before.
        root = Path(flags.get("store") or _default_store())
        touched = [i for i in outcome.runs if (root / f"{i}.h5").stat().st_mtime >= started - 1]
        outcome.status = "done" if touched else "reused"
        if scratch:
            outcome.files = _changed(scratch, payload.inputs)
        return outcome
    finally:
        outcome.ended = time.time()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _default_store() -> str:
    from ..store.store import store_root

    return str(store_root())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _scratch(payload: Payload) -> Path:
    """A store of this task's own on the worker, holding the run files it starts from."""
    root = Path(tempfile.mkdtemp(prefix=f"landscape-collect-{payload.key[:40]}-"))
    for name, data in payload.inputs.items():   # RUN.h5 and RUN.parts/STEP-HASH.h5
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _changed(scratch: Path, inputs: dict[str, bytes]) -> dict[str, tuple[str, bytes]]:
    """Run files the task wrote (new or changed: indexes and their weight files), with their
    hashes, to travel back to the client."""
    out = {}
    for path in sorted([*scratch.glob("*.h5"), *scratch.glob("*.parts/*.h5")]):
        name = path.relative_to(scratch).as_posix()
        data = path.read_bytes()
        if inputs.get(name) != data:
            out[name] = (sha256(data), data)
    return out
