"""What `landscape ls` and `landscape show` print, as plain data (also their `--json` output).

Keys are stable; fractions are fractions (0.8, not 80), sizes bytes, steps iterations.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..store import Run, Store
from .names import aliases, open_run
from .refs import ROLES, resolve_endpoint


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def size_on_disk(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def _model_dataset(config: dict[str, Any]) -> tuple[str | None, str | None]:
    train = config.get("train", config)   # imp and scores runs nest the training configuration
    model = (train.get("model") or {}).get("name") if isinstance(train.get("model"), dict) else None
    dataset = (train.get("data") or {}).get("dataset") if isinstance(train.get("data"), dict) else None
    return model, dataset


def _sparsity(run: Run) -> float | None:
    if run.kind == "imp":
        levels = run.sections("levels")
        return 1 - float(run.section(f"levels/{levels[-1]}")["density"]) if levels else None
    if run.has_mask:
        counts = layer_sparsity(run)
        kept, total = sum(c["kept"] for c in counts), sum(c["total"] for c in counts)
        return 1 - kept / total if total else None
    return None


def summary(run: Run) -> dict[str, Any]:
    """One row of `ls`: what a run is, how it ended, what it weighs."""
    model, dataset = _model_dataset(run.config)
    # The status `ls` prints too: "interrupted (resumable from 500it)" for a run whose process died.
    return {"id": run.id, "name": run.name, "aliases": aliases(run), "kind": run.kind,
            "status": getattr(run, "display_status", None) or run.status,
            "model": model, "dataset": dataset, "test_acc": _number(run.metrics.get("final/test/acc")),
            "sparsity": _sparsity(run), "size_bytes": sum(size_on_disk(p) for p in run.files),
            "created": run.created,
            "parent": run.parent}


def imp_members(store: Store, runs: list[Run]) -> dict[str, str]:
    """Member run ID -> the IMP run that indexes it."""
    out = {}
    for run in runs:
        if run.kind == "imp":
            for level in run.sections("levels"):
                record = run.section(f"levels/{level}")
                for role in ("dense", *ROLES):
                    for member in record.get(role, []) or []:
                        out[member] = run.id
    return out


@dataclass(frozen=True)
class Filters:
    kind: str | None = None
    model: str | None = None
    dataset: str | None = None
    name: str | None = None      # a glob, matched against names and aliases
    status: str | None = None
    all: bool = False            # include IMP member runs

    def keep(self, row: dict[str, Any], member_of: str | None) -> bool:
        names = [row["name"], *row["aliases"]]
        return ((self.all or member_of is None)
                and (self.kind is None or row["kind"] == self.kind)
                and (self.model is None or row["model"] == self.model)
                and (self.dataset is None or (row["dataset"] or "").split(":")[0] == self.dataset)
                and (self.status is None or row["status"].startswith(self.status))
                and (self.name is None or any(fnmatch.fnmatchcase(n, self.name) for n in names)))


def list_runs(store: Store, filters: Filters = Filters()) -> list[dict[str, Any]]:
    """`ls`: one row per run, oldest first; IMP members only with `filters.all` (with `imp` set)."""
    damaged = [s for s in store.list() if s.status == "damaged"]
    runs = store.runs()
    member_of = imp_members(store, runs)
    rows = []
    for run in runs:
        row = {**summary(run), "imp": member_of.get(run.id)}
        if filters.keep(row, member_of.get(run.id)):
            rows.append(row)
    for s in damaged:
        row = {"id": s.id, "name": s.name, "aliases": [], "kind": s.kind, "status": "damaged", "model": None,
               "dataset": None, "test_acc": None, "sparsity": None, "size_bytes": size_on_disk(s.path),
               "created": s.created, "parent": None, "imp": None}
        if filters.status in (None, "damaged") and filters.kind is None:
            rows.append(row)
    return rows


def layer_sparsity(run: Run) -> list[dict[str, Any]]:
    """Per masked tensor of a ticket: kept and total weights, and the fraction pruned."""
    mask = run.mask()
    if mask is None:
        return []
    rows = []
    for name, m in mask.items():
        kept, total = int(m.sum()), m.numel()
        rows.append({"layer": name, "kept": kept, "total": total, "sparsity": 1 - kept / total if total else 0.0})
    return rows


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(values) / len(values) if values else None


def imp_levels(store: Store, run: Run) -> list[dict[str, Any]]:
    """The level table of an IMP run: weights remaining, the ticket's test accuracy at early stopping
    (the step of least validation loss) and at the end, that step, each control, the member runs.
    Figures are means over replicates."""
    rows = []
    for level in run.sections("levels"):
        record = run.section(f"levels/{level}")
        row: dict[str, Any] = {"level": int(level), "remaining": float(record["density"]), "members": {}}
        for role in ROLES:
            ids = list(record.get(role, []) or [])
            if not ids:
                continue
            metrics = [store.open(i).metrics for i in ids]
            key = "ticket" if role == "ticket" else role
            row[f"{key}_acc_early_stop"] = _mean([m.get("min_val_loss/test/acc") for m in metrics])
            row[f"{key}_acc_final"] = _mean([m.get("final/test/acc") for m in metrics])
            if role == "ticket":
                row["early_stop_step"] = _mean([m.get("min_val_loss/step") for m in metrics])
            row["members"][key if int(level) else "dense"] = ids
        rows.append(row)
    return rows


def describe(store: Store, ref: str) -> dict[str, Any]:
    """`show REF`: a run (any reference `lmc` accepts: RUN, RUN:STEP, IMP@L[/ROLE][/rR][:STEP]) and
    what it holds: configuration, metrics, environment, checkpoints; an IMP run's level table; a
    ticket's sparsity per layer."""
    reference = None
    if ("@" in ref or ":" in ref) and not _is_plain_name(store, ref):
        end = resolve_endpoint(store, ref)
        run = end.run
        reference = {"ref": ref, "run": run.id, "step": end.step, "label": end.label,
                     **({"imp": end.imp.id, "level": end.level, "role": end.role, "replicate": end.replicate}
                        if end.imp is not None else {})}
    else:
        run = open_run(store, ref)
    out = {**summary(run), "path": str(run.path), "reference": reference, "config": run.config,
           "metrics": {k: _number(v) for k, v in sorted(run.metrics.items())},
           "environment": dict(sorted(run.environment.items())), "checkpoints": run.checkpoint_steps,
           "resume_step": run.resume_step}
    if run.kind == "imp":
        out["levels"] = imp_levels(store, run)
    if run.has_mask:
        out["layers"] = layer_sparsity(run)
    return out


def _is_plain_name(store: Store, ref: str) -> bool:
    """Names may contain @: a reference that is a run's whole name (or alias) names that run."""
    try:
        open_run(store, ref)
        return True
    except UserError:
        return False


__all__ = ["Filters", "list_runs", "summary", "describe", "imp_levels", "layer_sparsity", "size_on_disk"]
