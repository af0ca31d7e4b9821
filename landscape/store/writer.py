"""Writing one run, at a cost that does not grow with the run.

Each stored state (a checkpoint and/or the resume state) goes to a part file of its own, written
once under a temporary name, sealed, flushed and renamed into `<id>.parts/`. Then the run file —
a small index: attributes, configuration, curves, sections and the list of parts with their
checksums — is rewritten whole the same way. The index is the commit point: a part it does not
list does not exist for readers, and is removed by the next writer of the run (or `landscape gc`).
So an update writes what it adds plus a small index, instead of copying every earlier checkpoint,
and needs free space for that much only. A kill at any instant leaves the previous index and every
part it lists intact.
"""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import StoreError
from . import layout
from .files import MAX_SUMMARY, Damaged, RunLock, is_no_space, no_space_error, deferred, is_temp, read_verified, remove_stale_temps, sealed_write, open_bytes
from .listing import facts_or_none
from .run import States, damaged_error, lock_path, parts_dir

if TYPE_CHECKING:
    import h5py
    import torch

    from .store import Store

# Runs this process is writing: a second writer of one of them here would wait for itself forever.
_HELD: set[Path] = set()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tensor_bytes(*groups) -> int:
    total = 0
    for group in groups:
        for value in group.values():
            total += _tensor_bytes(value) if isinstance(value, dict) else value.numel() * value.element_size()
    return total


def _copy_except(src: "h5py.Group", dst: "h5py.Group", skip: set[str], prefix: str = "") -> None:
    """Copy `src` into `dst` (attributes and children), leaving out the paths in `skip`."""
    for key, value in src.attrs.items():
        dst.attrs[key] = value
    for name in src:
        path = f"{prefix}{name}"
        if path in skip:
            continue
        if any(s.startswith(path + "/") for s in skip):
            _copy_except(src[name], dst.create_group(name), skip, path + "/")
        else:
            src.copy(src[name], dst, name=name)


def run_summary(f: "h5py.File", states: States) -> str:
    """The one-line JSON that `landscape ls` reads from the user block instead of opening HDF5:
    the run's identity and status, its final figures, the size of each part it lists, and what
    `ls` shows and filters on (listing.py: model, dataset, sparsity, aliases, IMP members). Trimmed
    to fit; a reader falls back to the HDF5 content when something is left out."""
    a = layout.read_attrs(f)
    metrics = layout.read_attrs(f["metrics"]) if "metrics" in f else {}
    parts = {p["file"]: p["size"] for s, p in states.parts.items() if p["file"] in states.referenced()}
    summary = {"id": a.get("id"), "name": a.get("name"), "kind": a.get("kind"), "status": a.get("status"),
               "created": a.get("created", ""), "parent": a.get("parent") or None, "levels_done": a.get("levels_done"),
               "resume": states.resume_step, "metrics": {k: v for k, v in metrics.items() if k.startswith("final/")},
               "parts": parts, "listing": facts_or_none(f)}
    for trim in ((), ("listing",), ("listing", "parts"), ("listing", "parts", "metrics")):
        line = json.dumps({**summary, **{k: None for k in trim}}, separators=(",", ":"), allow_nan=True)
        if len(line.encode()) <= MAX_SUMMARY:
            return line
    return ""


class RunWriter:
    """Writes one run. Hold it (it holds the run's lock) for as long as the run is computed."""

    def __init__(self, store: "Store", run_id: str, *, wait_s: float | None = 0.0,
                 notify: Callable[[str, float], None] | None = None):
        self.store = store
        self.run_id = run_id
        self.path = store.path_for(run_id)
        self.parts = parts_dir(self.path)
        key = self.path.resolve()
        if key in _HELD:
            raise StoreError(f"run {run_id} is being written by another writer in this process",
                             "close the first writer before opening a second")
        self.lock = RunLock(lock_path(self.path), run_id, wait_s=wait_s, notify=notify).acquire()
        _HELD.add(key)
        self._key = key
        try:
            remove_stale_temps(self.path.parent, prefix=f".{self.path.name}.tmp.")
            remove_stale_temps(self.parts)
            self._states = self._current_states()
            self._remove_unlisted_parts()
        except BaseException:
            self.close()
            raise

    def _current_states(self) -> States:
        if not self.path.exists():
            return States()
        try:
            data, _ = read_verified(self.path) if self._sealed() else (None, None)
            if data is None:
                import h5py
                with h5py.File(self.path, "r") as f:
                    return States.read(f)
            with open_bytes(data) as f:
                return States.read(f)
        except Damaged as exc:
            raise damaged_error(self.run_id, f"{self.path.name}: {exc}") from None
        except Exception as exc:  # noqa: BLE001
            raise damaged_error(self.run_id, f"{self.path.name} cannot be read ({exc})") from None

    def _sealed(self) -> bool:
        with open(self.path, "rb") as f:
            return not f.read(8).startswith(b"\x89HDF")

    def close(self) -> None:
        if self.lock.held:
            self.lock.release()
        _HELD.discard(getattr(self, "_key", None))

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- committing -------------------------------------------------------------------------------

    def _write_part(self, step: int, model, optimizer, mask=None) -> dict[str, Any]:
        name = f"{step:010d}-{secrets.token_hex(4)}.h5"
        what = f"run {self.run_id} at step {step}"
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if is_no_space(exc):
                raise no_space_error(self.parts, what, _tensor_bytes(model, optimizer)) from None
            raise
        result: dict[str, Any] = {}
        with sealed_write(self.parts / name, what=what, size_hint=_tensor_bytes(model, optimizer), result=result) as f:
            layout.write_state(f, model, optimizer, step, mask)
        return {"file": name, **result}

    def _commit(self, what: str, change: Callable[["h5py.File"], None], *, skip: set[str] = frozenset(),
                create: bool = False, states: States | None = None) -> None:
        """Rewrite the index: the current one minus `skip`, changed by `change`, with `states`."""
        states = states or self._states
        with sealed_write(self.path, what=what, size_hint=1 << 20, summary=lambda f: run_summary(f, states)) as f:
            if not create and self.path.exists():
                data, _ = read_verified(self.path) if self._sealed() else (self.path.read_bytes(), None)
                with open_bytes(data) as src:
                    _copy_except(src, f, set(skip) | {"states"})
            f.attrs["format"] = layout.FORMAT
            f.attrs["updated"] = _now()
            change(f)
            group = f.create_group("states")
            group.attrs["parts_json"] = json.dumps({str(k): v for k, v in sorted(states.parts.items())})
            group.attrs["checkpoints_json"] = json.dumps(sorted(states.checkpoints))
            group.attrs["resume"] = states.resume if states.resume is not None else -1
        self._states = states
        self._remove_unlisted_parts()

    def _remove_unlisted_parts(self) -> None:
        if not self.parts.is_dir():
            return
        keep = self._states.referenced()
        for part in self.parts.iterdir():
            if part.name not in keep and not is_temp(part):
                part.unlink(missing_ok=True)

    # -- the API ----------------------------------------------------------------------------------

    def create(self, *, name: str, kind: str, config: dict[str, Any], environment: dict[str, Any],
               parent: str | None = None, plan: dict[str, int] | None = None,
               mask: dict[str, "torch.Tensor"] | None = None) -> None:
        def build(f):
            f.attrs.update(id=self.run_id, name=name, kind=kind, status="running", parent=parent or "",
                           created=_now(), config_json=json.dumps(config, sort_keys=True))
            layout.write_attrs_tree(f.create_group("config"), config)
            layout.write_attrs_tree(f.create_group("environment"), environment)
            layout.write_attrs_tree(f.create_group("plan"), plan or {})
            f.create_group("curves")
            if mask:
                layout.write_tensors(f.create_group("mask"), {k: v.bool() for k, v in mask.items()})

        with deferred():
            self._commit(f"run {self.run_id}", build, create=True, states=States())

    def save(self, step: int, *, curves: dict[str, list[float]], model: dict[str, "torch.Tensor"],
             optimizer: dict[str, dict[str, "torch.Tensor"]], checkpoint: bool, resume: bool,
             mask: dict[str, "torch.Tensor"] | None = None) -> None:
        """One atomic update: the curves so far and, as asked, a checkpoint and/or the resume state.
        `mask`: a mask that changes during training (gradual pruning) is part of the state."""
        old = self._states
        states = States(dict(old.parts), list(old.checkpoints), old.resume)
        skip = {"curves"}
        with deferred():
            if checkpoint or resume:
                states.parts[step] = self._write_part(step, model, optimizer, mask)
            if checkpoint:
                states.checkpoints = sorted(set(states.checkpoints) | {step})
                skip.add(f"checkpoints/{step}")  # a format-1 inline copy of the same step
            elif step in states.checkpoints and step in old.parts:  # keep the checkpoint's own part
                states.parts[step] = old.parts[step]
            if resume:
                states.resume = step
                skip.add("resume")
            # Drop parts that neither a checkpoint nor the resume state needs any more.
            needed = set(states.checkpoints) | ({states.resume} if states.resume is not None else set())
            states.parts = {s: p for s, p in states.parts.items() if s in needed}
            self._commit(f"run {self.run_id} at step {step}",
                         lambda f: layout.write_curves(f.create_group("curves"), curves), skip=skip, states=states)

    def write_section(self, path: str, *, attrs: dict[str, Any] | None = None,
                      arrays: dict[str, Any] | None = None, run_attrs: dict[str, Any] | None = None) -> None:
        """One atomic update that (re)writes the group `path` with attributes and arrays, and
        optionally sets top-level attributes (such as `status`) in the same update."""
        import numpy as np

        def change(f):
            group = f.require_group(path)
            layout.write_attrs_tree(group, attrs or {})
            for name, values in (arrays or {}).items():
                group.create_dataset(name, data=np.asarray(values))
            for key, value in (run_attrs or {}).items():
                f.attrs[key] = value

        with deferred():
            self._commit(f"run {self.run_id}", change, skip={path})

    def finish(self, *, curves: dict[str, list[float]], metrics: dict[str, float]) -> None:
        """Mark the run complete, with its final figures, in one atomic update."""
        old = self._states
        states = States({s: p for s, p in old.parts.items() if s in old.checkpoints}, list(old.checkpoints), None)

        def change(f):
            layout.write_curves(f.create_group("curves"), curves)
            layout.write_attrs_tree(f.create_group("metrics"), metrics)
            f.attrs["status"] = "complete"

        with deferred():
            self._commit(f"run {self.run_id}", change, skip={"curves", "metrics", "resume"}, states=states)

