"""The run store: a directory of HDF5 files, one per run, named by the run's ID.

The store is the contract between computing and reporting. Compute writes runs through
`RunWriter` (atomic updates under a per-run lock, see files.py); reports and notebooks read them
through `Store` and `Run`, which never hold a file open between calls.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np
import torch

from ..errors import StoreError
from . import layout
from .files import RunLock, atomic_update, remove_stale_temps

DEFAULT_STORE = "landscape-store"


_ID = re.compile(r"[0-9a-f]{12}")


def store_root(explicit: str | os.PathLike | None = None) -> Path:
    """`explicit`, else $LANDSCAPE_STORE, else ./landscape-store."""
    return Path(explicit or os.environ.get("LANDSCAPE_STORE") or DEFAULT_STORE)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Checkpoint:
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, dict[str, torch.Tensor]]
    mask: dict[str, torch.Tensor] | None = None  # only where the mask changes during training


class Run:
    """A stored run, read once when opened; checkpoints are read on demand."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with h5py.File(path, "r") as f:
                attrs = layout.read_attrs(f)
                self.id: str = attrs["id"]
                self.name: str = attrs["name"]
                self.kind: str = attrs["kind"]
                self.status: str = attrs["status"]
                self.parent: str | None = attrs.get("parent") or None
                self.created: str = attrs.get("created", "")
                self.config: dict[str, Any] = json.loads(attrs["config_json"])
                self.environment: dict[str, Any] = layout.read_attrs(f["environment"]) if "environment" in f else {}
                self.curves: dict[str, np.ndarray] = layout.read_curves(f["curves"]) if "curves" in f else {}
                self.metrics: dict[str, float] = layout.read_attrs(f["metrics"]) if "metrics" in f else {}
                self.checkpoint_steps: list[int] = sorted(int(s) for s in f.get("checkpoints", {}))
                self.resume_step: int | None = int(f["resume"].attrs["step"]) if "resume" in f else None
                self.has_mask: bool = "mask" in f
                self.plan: dict[str, int] = layout.read_attrs(f["plan"]) if "plan" in f else {}
        except (OSError, KeyError, ValueError) as exc:
            raise StoreError(f"run file {path} is damaged or not a landscape run ({exc})",
                             "delete it and rerun the command that made it") from None

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    def checkpoint(self, step: int) -> Checkpoint:
        if step not in self.checkpoint_steps:
            have = ", ".join(f"{s}it" for s in self.checkpoint_steps) or "none"
            raise StoreError(f"run {self.id} has no checkpoint at {step}it (it has: {have})",
                             "choose a stored step, or retrain with --checkpoint-at")
        with h5py.File(self.path, "r") as f:
            step_, model, optimizer = layout.read_state(f["checkpoints"][str(step)])
            mask = layout.read_state_mask(f["checkpoints"][str(step)])
        return Checkpoint(step_, model, optimizer, mask)

    def resume_state(self) -> Checkpoint | None:
        with h5py.File(self.path, "r") as f:
            if "resume" not in f:
                return None
            step, model, optimizer = layout.read_state(f["resume"])
            mask = layout.read_state_mask(f["resume"])
        return Checkpoint(step, model, optimizer, mask)

    def section(self, path: str) -> dict[str, Any]:
        """The attributes of a group written with `RunWriter.write_section` ({} if absent)."""
        with h5py.File(self.path, "r") as f:
            return layout.read_attrs(f[path]) if path in f else {}

    def sections(self, path: str) -> list[str]:
        """The names of the groups under `path` ([] if absent)."""
        with h5py.File(self.path, "r") as f:
            return sorted(f[path].keys()) if path in f else []

    def arrays(self, path: str) -> dict[str, np.ndarray]:
        """The datasets under a group, by their path below it."""
        with h5py.File(self.path, "r") as f:
            return layout.read_curves(f[path]) if path in f else {}

    def mask(self) -> dict[str, torch.Tensor] | None:
        if not self.has_mask:
            return None
        with h5py.File(self.path, "r") as f:
            return layout.read_tensors(f["mask"])

    def __repr__(self) -> str:
        return f"Run({self.id} {self.name!r}, {self.kind}, {self.status})"


class RunWriter:
    """Writes one run. Hold it (it holds the run's lock) for as long as the run is computed."""

    def __init__(self, store: "Store", run_id: str):
        self.store = store
        self.run_id = run_id
        self.path = store.path_for(run_id)
        self.lock = RunLock(store.root / ".locks" / f"{run_id}.lock", run_id).acquire()
        remove_stale_temps(self.path)

    def close(self) -> None:
        self.lock.release()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def create(self, *, name: str, kind: str, config: dict[str, Any], environment: dict[str, Any],
               parent: str | None = None, plan: dict[str, int] | None = None,
               mask: dict[str, torch.Tensor] | None = None) -> None:
        with atomic_update(self.path, create=True) as f:
            f.attrs.update(format=layout.FORMAT, id=self.run_id, name=name, kind=kind, status="running",
                           parent=parent or "", created=_now(), updated=_now(),
                           config_json=json.dumps(config, sort_keys=True))
            layout.write_attrs_tree(f.create_group("config"), config)
            layout.write_attrs_tree(f.create_group("environment"), environment)
            layout.write_attrs_tree(f.create_group("plan"), plan or {})
            f.create_group("curves")
            f.create_group("checkpoints")
            if mask:
                layout.write_tensors(f.create_group("mask"), {k: v.bool() for k, v in mask.items()})

    def save(self, step: int, *, curves: dict[str, list[float]], model: dict[str, torch.Tensor],
             optimizer: dict[str, dict[str, torch.Tensor]], checkpoint: bool, resume: bool,
             mask: dict[str, torch.Tensor] | None = None) -> None:
        """One atomic update: the curves so far and, as asked, a checkpoint and/or the resume state."""
        with atomic_update(self.path) as f:
            layout.write_curves(f["curves"], curves)
            if checkpoint:
                group = f["checkpoints"]
                if str(step) in group:
                    del group[str(step)]
                layout.write_state(group.create_group(str(step)), model, optimizer, step, mask)
            if resume:
                if "resume" in f:
                    del f["resume"]
                layout.write_state(f.create_group("resume"), model, optimizer, step, mask)
            f.attrs["updated"] = _now()

    def write_section(self, path: str, *, attrs: dict[str, Any] | None = None,
                      arrays: dict[str, Any] | None = None, run_attrs: dict[str, Any] | None = None) -> None:
        """One atomic update that (re)writes the group `path` with attributes and arrays, and
        optionally sets top-level attributes (such as `status`) in the same update."""
        with atomic_update(self.path) as f:
            if path in f:
                del f[path]
            group = f.create_group(path)
            layout.write_attrs_tree(group, attrs or {})
            for name, values in (arrays or {}).items():
                group.create_dataset(name, data=np.asarray(values))
            for key, value in (run_attrs or {}).items():
                f.attrs[key] = value
            f.attrs["updated"] = _now()

    def finish(self, *, curves: dict[str, list[float]], metrics: dict[str, float]) -> None:
        """Mark the run complete, with its final figures, in one atomic update."""
        with atomic_update(self.path) as f:
            layout.write_curves(f["curves"], curves)
            if "metrics" in f:
                del f["metrics"]
            layout.write_attrs_tree(f.create_group("metrics"), metrics)
            if "resume" in f:
                del f["resume"]
            f.attrs["status"] = "complete"
            f.attrs["updated"] = _now()


@dataclass(frozen=True)
class RunSummary:
    id: str
    name: str
    kind: str
    status: str
    created: str
    parent: str | None
    path: Path


class Store:
    """A directory of runs. Reading never changes it; see `writer` for writing."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = store_root(root)

    def path_for(self, run_id: str) -> Path:
        return self.root / f"{run_id}.h5"

    def _files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return iter(())
        return (p for p in sorted(self.root.glob("*.h5")) if not p.name.startswith("."))

    def ensure_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test.{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"cannot write to the store {self.root} ({exc.strerror or exc})",
                             "choose a writable directory with --store or LANDSCAPE_STORE") from None

    def writer(self, run_id: str) -> RunWriter:
        self.ensure_writable()
        return RunWriter(self, run_id)

    def exists(self, run_id: str) -> bool:
        return self.path_for(run_id).exists()

    def list(self) -> list[RunSummary]:
        """Every readable run, oldest first; damaged files are listed with status 'damaged'."""
        out = []
        for path in self._files():
            try:
                with h5py.File(path, "r") as f:
                    a = layout.read_attrs(f)
                    out.append(RunSummary(a["id"], a["name"], a["kind"], a["status"], a.get("created", ""),
                                          a.get("parent") or None, path))
            except (OSError, KeyError):
                out.append(RunSummary(path.stem, "?", "?", "damaged", "", None, path))
        return sorted(out, key=lambda r: (r.created, r.id))

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
        run.checkpoint(step)  # a clear error if that step was never stored
        return run.id, step

    def runs(self, kind: str | None = None) -> list[Run]:
        """Every readable run (optionally of one kind), opened."""
        return [Run(r.path) for r in self.list() if r.status != "damaged" and (kind is None or r.kind == kind)]
