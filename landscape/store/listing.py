"""What `landscape ls` lists: one row per run, filtered, with IMP member runs grouped under their
IMP run. Torch-free: rows come from the summary line sealed into each run file (store.py), and only
runs written before that line carried these facts are opened (with h5py, never torch).

Row keys (also `landscape ls --json`; stable, null where a figure does not apply):
  id, name, aliases (other names), kind, status (as `ls` prints it; its first word is one of
  STATUSES), model, dataset, test_acc (final test accuracy, a fraction), sparsity (fraction of the
  prunable weights removed: an IMP run's last level, a ticket's mask), size_bytes (the run file
  and its part files), created, parent, imp (the IMP run that indexes this run), problem (why a
  damaged run is damaged).
"""
from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .files import Damaged
from .run import open_index, parts_dir

if TYPE_CHECKING:
    import h5py

    from .store import RunSummary, Store

# The kinds of run the commands write (a store may hold others: those are accepted too).
KINDS = ("train", "imp", "lmc", "instability", "scores", "diet", "prune", "hessian", "surface", "aligned",
         "lmc_align", "instability_align", "imported")
STATUSES = ("complete", "running", "interrupted", "damaged")
# The member lists of an IMP run's `levels/<L>` sections (api/imp.py; the roles of api/refs.ROLES).
MEMBER_ROLES = ("dense", "ticket", "reinit", "random-prune", "rescaled-reinit")


# -- facts a listing needs beyond identity and status, computed once when a run file is written ----

def _model_dataset(config: dict[str, Any]) -> tuple[str | None, str | None]:
    # IMP and scores requests nest the training configuration; an aligned network carries its own.
    for part in (config.get("train"), config.get("network"), config):
        if isinstance(part, dict) and isinstance(part.get("model"), dict):
            data = part.get("data") if isinstance(part.get("data"), dict) else {}
            dataset = data.get("dataset")
            return part["model"].get("name"), dataset.split(":")[0] if isinstance(dataset, str) else None
    return None, None


def listing_facts(f: "h5py.File") -> dict[str, Any]:
    """model, dataset, sparsity, aliases and IMP members of the run in the open index `f`."""
    import numpy as np

    from . import layout

    model, dataset = _model_dataset(json.loads(f.attrs["config_json"]))
    sparsity, members = None, []
    if "levels" in f:   # an IMP run: the density of its last level, the runs each level trained
        levels = sorted(f["levels"].keys())
        for level in levels:
            record = layout.read_attrs(f["levels"][level])
            members += [i for role in MEMBER_ROLES for i in record.get(role) or [] if i not in members]
        density = layout.read_attrs(f["levels"][levels[-1]]).get("density") if levels else None
        sparsity = None if density is None else 1 - float(density)
    elif "mask" in f:   # a ticket or control: the mask it trained under
        kept = total = 0
        for ds in f["mask"].values():
            kept, total = kept + int(np.count_nonzero(ds[()])), total + int(ds.size)
        sparsity = 1 - kept / total if total else None
    aliases = layout.read_attrs(f["names"]).get("aliases") or [] if "names" in f else []
    return {"model": model, "dataset": dataset, "sparsity": sparsity, "aliases": list(aliases), "members": members}


def facts_or_none(f: "h5py.File") -> dict[str, Any] | None:
    """`listing_facts`, or None when a run's sections are not as expected: what `ls` shows never
    stops a run from being written or read (a None is read again, and shown as '-')."""
    try:
        return listing_facts(f)
    except Exception:  # noqa: BLE001
        return None


def facts_of(summary: "RunSummary") -> dict[str, Any]:
    """The facts sealed in the run's summary line; read from HDF5 for runs written before it had them."""
    if summary.listing is not None:
        return summary.listing
    try:
        with open_index(summary.path) as f:
            return facts_or_none(f) or {}
    except (Damaged, OSError):
        return {}


def imp_of(store: "Store", run_id: str) -> str | None:
    """The IMP run that indexes `run_id` (the oldest, if several share it), or None."""
    for s in store.list():
        if s.kind == "imp" and not s.damaged and run_id in facts_of(s).get("members", []):
            return s.id
    return None


def row_for(store: "Store", run_id: str) -> dict[str, Any]:
    """The `ls` row of one run (what `landscape show` starts from)."""
    from .store import summarize

    s = summarize(store.path_for(run_id))
    return row_of(s, facts_of(s) if not s.damaged else {}, imp_of(store, run_id))


# -- filters ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """What `ls` keeps. Values given are checked by `check` (unknown kind or status: one line)."""

    kind: str | None = None
    model: str | None = None
    dataset: str | None = None
    name: str | None = None     # a glob, matched against a run's name and aliases
    status: str | None = None   # the first word of the status: complete, running, interrupted, damaged
    all: bool = False           # IMP member runs too (grouped under their IMP run)

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name != "all")

    def check(self, kinds_here: set[str]) -> "Filters":
        if self.kind is not None and self.kind not in KINDS and self.kind not in kinds_here:
            known = ", ".join(sorted(set(KINDS) | kinds_here))
            raise ConfigError(f"unknown --kind {self.kind!r}", f"choose one of: {known}")
        if self.status is not None and self.status not in STATUSES:
            raise ConfigError(f"unknown --status {self.status!r}", f"choose one of: {', '.join(STATUSES)}")
        return self

    def keep(self, row: dict[str, Any]) -> bool:
        """Whether `row` matches every filter given (--all aside)."""
        return ((self.kind is None or row["kind"] == self.kind)
                and (self.model is None or row["model"] == self.model)
                and (self.dataset is None or row["dataset"] == self.dataset)
                and (self.status is None or status_word(row["status"]) == self.status)
                and (self.name is None or any(fnmatch.fnmatchcase(n, self.name)
                                              for n in [row["name"], *row["aliases"]])))


def status_word(status: str) -> str:
    """'interrupted (resumable from 500it)' -> 'interrupted'; 'damaged: ...' -> 'damaged'."""
    return status.split(" ", 1)[0].rstrip(":")


# -- rows ------------------------------------------------------------------------------------------

def size_on_disk(path: Path) -> int:
    """The run file and every file in its parts folder, in bytes."""
    total = path.stat().st_size if path.exists() else 0
    parts = parts_dir(path)
    if parts.is_dir():
        total += sum(p.stat().st_size for p in parts.iterdir() if p.is_file())
    return total


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def row_of(summary: "RunSummary", facts: dict[str, Any], imp: str | None) -> dict[str, Any]:
    complete = summary.status == "complete"
    return {"id": summary.id, "name": summary.name, "aliases": facts.get("aliases", []), "kind": summary.kind,
            "status": summary.display_status or summary.status, "model": facts.get("model"),
            "dataset": facts.get("dataset"),
            "test_acc": _number(summary.metrics.get("final/test/acc")) if complete else None,
            "sparsity": facts.get("sparsity"), "size_bytes": size_on_disk(summary.path),
            "created": summary.created, "parent": summary.parent, "imp": imp, "problem": summary.problem or None}


@dataclass
class Listing:
    rows: list[dict[str, Any]]   # oldest first; with --all, each IMP run's members right after it
    hidden: int                  # IMP member runs that match the filters but need --all


def list_runs(store: "Store", filters: Filters = Filters()) -> Listing:
    """`ls`: the runs of `store` that match `filters`. IMP member runs appear only with `filters.all`,
    each right after its IMP run (or in date order when its IMP run is filtered out)."""
    summaries = store.list()
    filters.check({s.kind for s in summaries if not s.damaged})
    facts = {s.id: facts_of(s) if not s.damaged else {} for s in summaries}
    member_of: dict[str, str] = {}
    for s in summaries:   # oldest first: a member shared by two IMP runs goes under the first
        for member in facts[s.id].get("members", []):
            member_of.setdefault(member, s.id)
    rows = [row_of(s, facts[s.id], member_of.get(s.id)) for s in summaries]
    kept = [r for r in rows if filters.keep(r)]
    hidden = sum(1 for r in kept if r["imp"] is not None) if not filters.all else 0
    if not filters.all:
        return Listing([r for r in kept if r["imp"] is None], hidden)
    shown = {r["id"] for r in kept}
    under: dict[str, list[dict[str, Any]]] = {}
    for r in kept:
        if r["imp"] in shown:
            under.setdefault(r["imp"], []).append(r)
    order = {member: i for imp in under for i, member in enumerate(facts[imp].get("members", []))}
    out = []
    for r in kept:
        if r["imp"] not in shown:
            out.append(r)
            out += sorted(under.get(r["id"], []), key=lambda m: order[m["id"]])
    return Listing(out, 0)


__all__ = ["Filters", "KINDS", "Listing", "STATUSES", "facts_or_none", "imp_of", "list_runs", "listing_facts",
           "row_for", "size_on_disk", "status_word"]
