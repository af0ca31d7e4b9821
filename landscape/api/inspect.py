"""What `landscape show` prints, as plain data (also its `--json` output; `ls` rows: store/listing.py).

Keys are stable; fractions are fractions (0.8, not 80), sizes bytes, steps iterations.
"""
from __future__ import annotations

import math
from typing import Any

from ..errors import UserError
from ..store import Run, Store
from ..store.listing import row_for, size_on_disk
from .names import open_run
from .refs import ROLES, resolve_endpoint


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def summary(store: Store, run: Run) -> dict[str, Any]:
    """The row `ls` prints for `run` (the keys of `landscape ls --json`)."""
    return row_for(store, run.id)


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
    out = {**summary(store, run), "path": str(run.path), "reference": reference, "config": run.config,
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


__all__ = ["summary", "describe", "imp_levels", "layer_sparsity", "size_on_disk"]
