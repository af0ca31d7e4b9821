"""The run store: a directory of runs, each an index file named by the run's ID plus its parts.

The store is the contract between computing and reporting. Compute writes runs through
`RunWriter` (writer.py: part files and a small index, each sealed and renamed into place, under a
per-run lock); reports and notebooks read them through `Store` and `Run` (run.py), which verify
every byte they read and never hold a file open between calls.

Nothing here imports torch: `landscape ls`, `show`, `rm` and `verify` start fast.
"""
from __future__ import annotations

import json
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import StoreError
from .files import Damaged, read_summary
from .listing import facts_or_none
from .run import Checkpoint, Run, States, _run_attrs, _short, describe_status, lock_path, open_index, parts_dir
from .writer import RunWriter

DEFAULT_STORE = "landscape-store"

__all__ = ["Checkpoint", "Run", "RunSummary", "RunWriter", "Store", "store_root"]

_ID = re.compile(r"[0-9a-f]{12}")


def store_root(explicit: str | os.PathLike | None = None) -> Path:
    """`explicit`, else $LANDSCAPE_STORE, else ./landscape-store."""
    return Path(explicit or os.environ.get("LANDSCAPE_STORE") or DEFAULT_STORE)


def default_wait() -> float | None:
    """How long a writer waits for a run another process writes: $LANDSCAPE_WAIT seconds, else no limit."""
    value = os.environ.get("LANDSCAPE_WAIT", "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise StoreError(f"LANDSCAPE_WAIT={value!r} is not a number of seconds", "set it to e.g. 600") from None


def print_wait(message: str, waited_s: float) -> None:
    """The default notice of a wait: the line once; on a terminal, the time waited beside it."""
    if waited_s == 0.0:
        print(message, file=sys.stderr, flush=True)
    elif sys.stderr.isatty():
        print(f"\r  waited {waited_s:.0f}s", end="", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunSummary:
    """One line of `landscape ls`, read from the run file in one pass."""

    id: str
    name: str
    kind: str
    status: str  # as stored: "running", "complete"; or "damaged"
    created: str
    parent: str | None
    path: Path
    display_status: str = ""  # "running (process P on host H)", "interrupted (resumable from 500it)", "damaged: ..."
    metrics: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # why a damaged run is damaged
    listing: dict[str, Any] | None = None  # model, dataset, sparsity, aliases, members (listing.py); None: not sealed

    @property
    def damaged(self) -> bool:
        return self.status == "damaged"


def summarize(path: Path) -> RunSummary:
    """A run's summary from one verified read of its file; a damaged file becomes a 'damaged' row.
    The summary line sealed into the file's user block spares HDF5 (files without one are opened).
    Part files are checked by size only here (cheap); `verify` reads them whole."""
    try:
        line = read_summary(path)
        s = json.loads(line) if line else None
        if s is None or s.get("parts") is None or s.get("metrics") is None:
            s = _summary_from_hdf5(path)
        missing = [name for name, size in s["parts"].items() if _size(parts_dir(path) / name) != size]
        if missing:
            problem = f"its weights ({min(missing)}) are missing or truncated"
            return RunSummary(s["id"], s["name"], s["kind"], "damaged", s["created"], s["parent"], path,
                              f"damaged: {problem}", s["metrics"], problem)
        display = describe_status(s["status"], lock_path(path), s["resume"], s["levels_done"])
        return RunSummary(s["id"], s["name"], s["kind"], s["status"], s["created"], s["parent"], path, display,
                          s["metrics"], listing=s.get("listing"))
    except Damaged as exc:
        problem = str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad file never hides the others
        problem = f"it cannot be read ({_short(exc)})"
    return RunSummary(path.stem, "?", "?", "damaged", "", None, path, f"damaged: {problem}", {}, problem)


def _summary_from_hdf5(path: Path) -> dict[str, Any]:
    from . import layout

    with open_index(path) as f:
        a = _run_attrs(f)
        metrics = layout.read_attrs(f["metrics"]) if "metrics" in f else {}
        states = States.read(f)
        listing = facts_or_none(f)
    return {"id": a["id"], "name": a["name"], "kind": a["kind"], "status": a["status"], "created": a.get("created", ""),
            "parent": a.get("parent") or None, "levels_done": a.get("levels_done"), "resume": states.resume_step,
            "metrics": metrics, "parts": {p["file"]: p["size"] for p in states.parts.values()
                                          if p["file"] in states.referenced()},
            "listing": listing}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


class Store:
    """A directory of runs. Reading never changes it; see `writer` for writing.

    `wait_s`: how long a writer waits for a run that another live process is writing (None: no
    limit; default $LANDSCAPE_WAIT); `notify(message, waited_s)` hears about such waits.
    """

    def __init__(self, root: str | os.PathLike | None = None, *, wait_s: float | None | str = "default",
                 notify: Callable[[str, float], None] | None = None):
        self.root = store_root(root)
        self.wait_s = default_wait() if wait_s == "default" else wait_s
        self.notify = notify or print_wait

    def path_for(self, run_id: str) -> Path:
        return self.root / f"{run_id}.h5"

    def _files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return iter(())
        return (p for p in sorted(self.root.glob("*.h5")) if not p.name.startswith("."))

    def ensure_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # Per thread too: a Dask worker runs several tasks (threads) in one process.
            probe = self.root / f".write-test.{os.getpid()}.{threading.get_ident()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"cannot write to the store {self.root} ({exc.strerror or exc})",
                             "choose a writable directory with --store or LANDSCAPE_STORE") from None

    def writer(self, run_id: str, *, wait_s: float | None | str = "store") -> RunWriter:
        """The writer of `run_id`, once no other live process writes it (see `wait_s`)."""
        self.ensure_writable()
        return RunWriter(self, run_id, wait_s=self.wait_s if wait_s == "store" else wait_s, notify=self.notify)

    def exists(self, run_id: str) -> bool:
        return self.path_for(run_id).exists()

    def list(self) -> list[RunSummary]:
        """Every run, oldest first; damaged files are listed with status 'damaged' (never raised)."""
        return sorted((summarize(path) for path in self._files()), key=lambda r: (r.created, r.id))

    def ls(self, **filters: Any) -> list[dict[str, Any]]:
        """The rows `landscape ls --json` prints, filtered as its flags do: kind=, model=, dataset=,
        name= (a glob), status=, all= (IMP member runs too). See listing.py for the keys."""
        from .listing import Filters, list_runs

        return list_runs(self, Filters(**filters)).rows

    def resolve(self, ref: str) -> str:
        """A run ID from an ID, a unique ID prefix, or a unique name."""
        ref = ref.strip()
        if not ref:
            raise StoreError("empty run reference", "name a run by ID, ID prefix or name; see `landscape ls`")
        # An exact ID wins over names and prefixes anyway: find it without reading every file.
        if _ID.fullmatch(ref) and self.path_for(ref).exists():
            return ref
        runs = self.list()
        if any(r.id == ref for r in runs):
            return ref
        by_name = [r for r in runs if r.name == ref]
        by_prefix = [r for r in runs if r.id.startswith(ref)] if len(ref) >= 4 else []
        matches = {r.id: r for r in by_name + by_prefix}
        if len(matches) == 1:
            return next(iter(matches))
        if not matches and len(ref) < 4 and any(r.id.startswith(ref) for r in runs):
            raise StoreError(f"run ID prefix {ref!r} is too short", "give at least 4 characters of the ID")
        if not matches:
            where = f"in the store {self.root}" + ("" if runs else " (it has no runs)")
            raise StoreError(f"no run {ref!r} {where}", "see `landscape ls` for the runs there")
        ids = ", ".join(sorted(matches))
        raise StoreError(f"run reference {ref!r} is ambiguous: it matches {ids}", "use a longer ID prefix")

    def open(self, ref: str) -> Run:
        return Run(self.path_for(self.resolve(ref)))

    def resolve_checkpoint(self, ref: str) -> tuple[str, int]:
        """`RUN:STEP` (e.g. `3f9a1c:500it`, `mnist-run:2ep`, `3f9a1c:end`) as (run ID, iteration)."""
        from ..steps import Step

        run_ref, sep, step_text = ref.rpartition(":")
        if not sep or not run_ref:
            raise StoreError(f"checkpoint reference {ref!r} has no step", "write RUN:STEP, e.g. 3f9a1c:500it")
        run = self.open(run_ref)
        if step_text.strip().lower() == "end":
            step = run.plan.get("total_steps", max(run.checkpoint_steps, default=0))
        else:
            step = Step.parse(step_text).resolve(int(run.plan.get("iters_per_epoch", 1)))
        if step not in run.checkpoint_steps:
            run.checkpoint(step)  # the clear error of a step that was never stored
        return run.id, step

    def to_dataframe(self, kind: str | None = None):
        """One row per run with its configuration and metrics (pandas, an optional extra)."""
        from .frame import to_dataframe

        return to_dataframe(self, kind)

    def runs(self, kind: str | None = None) -> list[Run]:
        """Every readable run (optionally of one kind), opened."""
        return [Run(r.path) for r in self.list() if r.status != "damaged" and (kind is None or r.kind == kind)]
