"""`landscape show`: tables for people, `--json` for scripts (landscape.api.inspect); `ls` is in store.py."""
from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.table import Table

from .commands import _flatten, _pct, out


def print_json(data: Any) -> None:
    """One JSON document on stdout (NaN as null), nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str, allow_nan=False) + "\n")


def show(ref: str, store_dir: str | None, as_json: bool) -> None:
    from landscape.api.context import readable_store
    from landscape.api.inspect import describe

    info = describe(readable_store(store_dir), ref)
    if as_json:
        print_json(info)
        return
    out.print(f"[bold]{info['id']}[/] {info['name']} ({info['kind']}, {info['status']})  {info['path']}")
    if info["aliases"]:
        out.print(f"also named: {', '.join(info['aliases'])}")
    if info["reference"]:
        out.print(f"{ref}: {info['reference']['label']}")
    if info["parent"]:
        out.print(f"parent: {info['parent']}")
    for title, rows in (("configuration", _flatten(info["config"])), ("metrics", list(info["metrics"].items())),
                        ("environment", list(info["environment"].items()))):
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        for key, value in rows:
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
        out.print(table)
    if "levels" in info:
        _print_levels(info["levels"])
    if info.get("layers"):
        _print_layers(info["layers"])
    checkpoints = ", ".join(f"{s}it" for s in info["checkpoints"]) or "none"
    out.print(f"checkpoints: {checkpoints}")
    if info["resume_step"] is not None:
        out.print(f"resumable from: {info['resume_step']}it (rerun the command that made it to continue)")


def _print_levels(levels: list[dict[str, Any]]) -> None:
    controls = [c for c in ("reinit", "random-prune", "rescaled-reinit") if any(f"{c}_acc_final" in r for r in levels)]
    table = Table(title="levels (test accuracy, mean over replicates; early stop = step of least validation loss)",
                  title_justify="left", box=None)
    for header in ("level", "weights remaining", "ticket acc (early stop)", "ticket acc (final)",
                   "early-stop step", *[f"{c} acc (final)" for c in controls], "members"):
        table.add_column(header, no_wrap=header != "members")
    for r in levels:
        step = r.get("early_stop_step")
        members = " ".join(i for ids in r["members"].values() for i in ids)
        table.add_row(str(r["level"]), f"{100 * r['remaining']:.2f}%", _pct(r.get("ticket_acc_early_stop")),
                      _pct(r.get("ticket_acc_final")), "-" if step is None or math.isnan(step) else f"{step:,.0f}it",
                      *[_pct(r.get(f"{c}_acc_final")) for c in controls], members)
    out.print(table)


def _print_layers(layers: list[dict[str, Any]]) -> None:
    table = Table(title="sparsity per layer", title_justify="left", box=None)
    for header in ("layer", "kept", "total", "pruned"):
        table.add_column(header, justify="left" if header == "layer" else "right")
    kept = total = 0
    for r in layers:
        table.add_row(r["layer"], f"{r['kept']:,}", f"{r['total']:,}", f"{100 * r['sparsity']:.2f}%")
        kept, total = kept + r["kept"], total + r["total"]
    table.add_row("all", f"{kept:,}", f"{total:,}", f"{100 * (1 - kept / total):.2f}%" if total else "-")
    out.print(table)
