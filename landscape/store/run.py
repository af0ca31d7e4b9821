"""Reading one stored run: its index once when opened, its weights on demand, every byte verified.

A run whose bytes changed after writing — anywhere: weights, curves, attributes, HDF5 metadata —
is a one-line StoreError naming the run and what to do, never a traceback and never silently
different numbers (see files.py for the seal).
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .. import interrupts
from ..errors import StoreError
from . import layout
from .curves import Curve, with_steps
from .files import USER_BLOCK, Damaged, _parse_header, holder_of, open_bytes, read_verified

if TYPE_CHECKING:
    import h5py
    import numpy as np
    import torch

# Top-level groups of a run file that are not sections written by `RunWriter.write_section`.
RESERVED = ("config", "environment", "plan", "curves", "metrics", "checkpoints", "resume", "mask", "states")


def damaged_error(run_id: str, reason: str) -> StoreError:
    return StoreError(f"run {run_id} is damaged: {reason}",
                      f"remove it (`landscape rm {run_id}`) and rerun the command that made it; "
                      "`landscape verify` checks the whole store")


def lock_path(run_path: Path) -> Path:
    return run_path.parent / ".locks" / f"{run_path.stem}.lock"


def parts_dir(run_path: Path) -> Path:
    return run_path.parent / f"{run_path.stem}.parts"


@contextlib.contextmanager
def open_index(path: Path) -> Iterator["h5py.File"]:
    """A run file opened for reading, its seal checked first. Raises Damaged (or OSError when the
    file is absent)."""
    import h5py

    with open(path, "rb") as f:
        head = f.read(USER_BLOCK)
    if len(head) < 8:
        raise Damaged("the file is empty or truncated")
    if _parse_header(head) is not None:
        data, _ = read_verified(path)
        # HDF5 reads this copy through Python callbacks: a SIGTERM raised inside one would surface
        # as an HDF5 read error, so the stop waits until the file is closed.
        with interrupts.deferred(), open_bytes(data) as handle:
            yield handle
        return
    try:  # format 1: no seal to check; open in place (its inline weights may be large)
        handle = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - whatever HDF5 cannot read is damage
        raise Damaged(f"HDF5 cannot open it ({_short(exc)})") from None
    with handle:
        yield handle


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


@dataclass
class States:
    """Where a run's stored weights are: part files (format 2) and inline groups (format 1)."""

    parts: dict[int, dict[str, Any]] = field(default_factory=dict)
    checkpoints: list[int] = field(default_factory=list)
    resume: int | None = None
    inline_checkpoints: set[int] = field(default_factory=set)
    inline_resume: int | None = None

    @classmethod
    def read(cls, f: "h5py.File") -> "States":
        s = cls()
        if "states" in f:
            a = f["states"].attrs
            s.parts = {int(k): v for k, v in json.loads(a["parts_json"]).items()}
            s.checkpoints = [int(v) for v in json.loads(a["checkpoints_json"])]
            s.resume = int(a["resume"]) if int(a["resume"]) >= 0 else None
        if "checkpoints" in f:
            s.inline_checkpoints = {int(k) for k in f["checkpoints"]}
        if "resume" in f:
            s.inline_resume = int(f["resume"].attrs["step"])
        return s

    @property
    def checkpoint_steps(self) -> list[int]:
        return sorted(set(self.checkpoints) | self.inline_checkpoints)

    @property
    def resume_step(self) -> int | None:
        return self.resume if self.resume is not None else self.inline_resume

    def referenced(self) -> set[str]:
        """The part files this index needs."""
        keep = set(self.checkpoints) | ({self.resume} if self.resume is not None else set())
        return {self.parts[s]["file"] for s in keep if s in self.parts}


@dataclass
class Checkpoint:
    step: int
    model: dict[str, "torch.Tensor"]
    optimizer: dict[str, dict[str, "torch.Tensor"]]
    mask: dict[str, "torch.Tensor"] | None = None  # only where the mask changes during training (GMP)


def _run_attrs(f: "h5py.File") -> dict[str, Any]:
    a = layout.read_attrs(f)
    for key in ("id", "name", "kind", "status", "config_json"):
        if key not in a:
            raise Damaged(f"it has no {key!r} attribute (not a landscape run, or damaged)")
    return a


def describe_status(status: str, lock: Path, resume_step: int | None, levels_done: Any) -> str:
    """What a user should read for a run's status: 'running' only while a live process holds it."""
    if status != "running":
        return status
    holder = holder_of(lock)
    if holder is not None:
        return f"running ({holder})"
    if resume_step is not None:
        return f"interrupted (resumable from {resume_step}it)"
    if levels_done is not None:
        return f"interrupted (resumable after level {int(levels_done)})"
    return "interrupted (rerun to continue)"


class Run:
    """A stored run, read once when opened; checkpoints are read on demand."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            with open_index(self.path) as f:
                attrs = _run_attrs(f)
                self.id: str = attrs["id"]
                self.name: str = attrs["name"]
                self.kind: str = attrs["kind"]
                self.status: str = attrs["status"]
                self.parent: str | None = attrs.get("parent") or None
                self.created: str = attrs.get("created", "")
                self.format: int = int(attrs.get("format", 1))
                self.config: dict[str, Any] = json.loads(attrs["config_json"])
                self.environment: dict[str, Any] = layout.read_attrs(f["environment"]) if "environment" in f else {}
                self.curves: dict[str, Curve] = with_steps(layout.read_curves(f["curves"]) if "curves" in f else {})
                self.metrics: dict[str, float] = layout.read_attrs(f["metrics"]) if "metrics" in f else {}
                self._states = States.read(f)
                self.checkpoint_steps: list[int] = self._states.checkpoint_steps
                self.resume_step: int | None = self._states.resume_step
                self.has_mask: bool = "mask" in f
                self.plan: dict[str, int] = layout.read_attrs(f["plan"]) if "plan" in f else {}
                self._levels_done = attrs.get("levels_done")
        except FileNotFoundError:
            raise StoreError(f"no run file {self.path}", "see `landscape ls` for the runs there") from None
        except Damaged as exc:
            raise damaged_error(self.path.stem, f"{self.path.name}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - HDF5 reports damaged metadata in many ways
            raise damaged_error(self.path.stem, f"{self.path.name} cannot be read ({_short(exc)})") from None

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def display_status(self) -> str:
        """'complete', 'running (process P on host H)' or 'interrupted (resumable from Nit)'."""
        return describe_status(self.status, lock_path(self.path), self.resume_step, self._levels_done)

    @property
    def files(self) -> list[Path]:
        """Every file of this run: its index, then its part files (to copy a run to another store)."""
        return [self.path] + [parts_dir(self.path) / p["file"] for p in self._states.parts.values()
                              if p["file"] in self._states.referenced()]

    def _read(self, what: str, read):
        """Apply `read` to the run file, turning any failure into a one-line error naming the run."""
        try:
            with open_index(self.path) as f:
                return read(f)
        except FileNotFoundError:
            raise StoreError(f"run {self.id} was removed while it was being read", "rerun the command") from None
        except Damaged as exc:
            raise damaged_error(self.id, f"{self.path.name}: {exc}") from None
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise damaged_error(self.id, f"{what} cannot be read ({_short(exc)})") from None

    def _read_part(self, step: int) -> Checkpoint:
        entry = self._states.parts[step]
        path = parts_dir(self.path) / entry["file"]
        try:
            data, digest = read_verified(path)
            if digest != entry["sha256"]:
                raise Damaged("it is not the file the run's index recorded (a different checksum)")
            with interrupts.deferred(), open_bytes(data) as f:
                step_, model, optimizer = layout.read_state(f)
                mask = layout.read_state_mask(f)
        except FileNotFoundError:
            raise damaged_error(self.id, f"its weights at {step}it ({path.name}) are missing") from None
        except Damaged as exc:
            raise damaged_error(self.id, f"its weights at {step}it ({path.name}): {exc}") from None
        except Exception as exc:  # noqa: BLE001
            raise damaged_error(self.id, f"its weights at {step}it cannot be read ({_short(exc)})") from None
        return Checkpoint(step_, model, optimizer, mask)

    def checkpoint(self, step: int) -> Checkpoint:
        if step not in self.checkpoint_steps:
            have = ", ".join(f"{s}it" for s in self.checkpoint_steps) or "none"
            raise StoreError(f"run {self.id} has no checkpoint at {step}it (it has: {have})",
                             "choose a stored step, or retrain with --checkpoint-at")
        if step in self._states.parts and step in self._states.checkpoints:
            return self._read_part(step)
        return Checkpoint(*self._read(f"checkpoint {step}it",
                                      lambda f: layout.read_state(f["checkpoints"][str(step)])))

    def resume_state(self) -> Checkpoint | None:
        s = self._states
        if s.resume is not None:
            return self._read_part(s.resume)
        if s.inline_resume is not None:
            return Checkpoint(*self._read("resume state", lambda f: layout.read_state(f["resume"])))
        return None

    def section(self, path: str) -> dict[str, Any]:
        """The attributes of a group written with `RunWriter.write_section` ({} if absent)."""
        return self._read(path, lambda f: layout.read_attrs(f[path]) if path in f else {})

    def sections(self, path: str) -> list[str]:
        """The names of the groups under `path` ([] if absent)."""
        return self._read(path, lambda f: sorted(f[path].keys()) if path in f else [])

    def arrays(self, path: str) -> dict[str, np.ndarray]:
        """The datasets under a group, by their path below it."""
        return self._read(path, lambda f: layout.read_curves(f[path]) if path in f else {})

    def mask(self) -> dict[str, "torch.Tensor"] | None:
        if not self.has_mask:
            return None
        return self._read("mask", lambda f: layout.read_tensors(f["mask"]))

    def __repr__(self) -> str:
        return f"Run({self.id} {self.name!r}, {self.kind}, {self.status})"
