"""`landscape align`, and the printing `landscape lmc --align` and `instability --align` share.

`register(app)` adds `align` to the main typer app; it parses flags, makes one call into
`landscape.api.align` and prints what the stored run holds (so a reused result prints the same).
"""
from __future__ import annotations

import json
import math
from typing import Annotated, Optional

import typer

from .flags import _flag, with_flags

ALIGN_OWN_FLAGS = [  # also on `landscape lmc`, which has its own --seed and --batch-size
    _flag("examples", int, 5000, "activations: training examples whose activations are correlated."),
    _flag("max_passes", int, 100, "weights: stop after this many passes even if still improving."),
]
ALIGN_FLAGS = [
    _flag("seed", int, 0, "Seed of the coordinate-descent order (weights) and of the training sample (activations)."),
    _flag("batch_size", int, 1000, "Batch size of the forward passes."),
] + ALIGN_OWN_FLAGS
_WHERE = [
    _flag("device", str, "auto", "cpu, cuda or auto."),
    _flag("store", Optional[str], None, "Store directory [env LANDSCAPE_STORE; default ./landscape-store].",
          show_default=False),
    _flag("data_dir", Optional[str], None, "Data root [env LANDSCAPE_DATA; default ./data].", show_default=False),
]


def out():
    from .commands import out as console

    return console


def _num(value, digits: int = 4) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def _pct(value) -> str:
    from .commands import _pct as pct

    return pct(value)


def register(app: typer.Typer) -> None:
    """Add `align` to `app`."""

    @app.command("align", epilog="""**Examples**

    landscape align --run-a 3f9a1c --run-b 7be204

    landscape align --run-a imp-run@4 --run-b imp-run@4/r1 --method activations --examples 10000 --data-dir ../shared/data

    landscape align --run-a imp-run@5 --run-b imp-run@0 --json

    landscape lmc --run-a 3f9a1c --run-b ALIGNED_ID

References: `RUN`, `RUN:STEP`, `IMP@L`, `IMP@L/r1`, `IMP@L/reinit` (as for `landscape lmc`). The aligned
network is itself a reference: its run ID names π(B).
""")
    @with_flags(ALIGN_FLAGS + _WHERE)
    def align(
        run_a: Annotated[str, typer.Option("--run-a", help="Network A, the one B is aligned to.", show_default=False)],
        run_b: Annotated[str, typer.Option("--run-b", help="Network B, whose units are permuted.", show_default=False)],
        method: Annotated[str, typer.Option(help="weights (weight matching) or activations (activation matching).")] = "weights",
        name: Annotated[Optional[str], typer.Option(help="A readable name for the aligned network.", show_default=False)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
        **flags,
    ) -> None:
        """Permute B's hidden units to match A (Git Re-Basin), and store π(B) as a network.

        π(B) computes exactly the function B computes: its weights, biases, BatchNorm parameters and
        statistics, and its mask are permuted together, as the model's permutation spec declares
        (in ResNets one permutation per residual stream). `weights`: coordinate descent over the
        permutation groups in seeded random order, each a linear assignment, until a pass improves
        nothing (Ainsworth et al. 2023). `activations`: one assignment per group on the
        correlation of A's and B's activations on N training examples. Prints the distance before
        and after and, for masked networks, the overlap of the masks (Jaccard).
        """
        from landscape.api import TrainOptions
        from landscape.api.align import align as run_align
        from landscape.calls.measure import align_settings

        options = TrainOptions(store=flags["store"], data_dir=flags["data_dir"], device=flags["device"], name=name)
        run = run_align(run_a, run_b, align_settings(flags, method), options)
        if as_json:
            print(json.dumps({"id": run.id, "name": run.name, "path": str(run.path), **run.metrics}, default=float))
            return
        print_aligned(run)
        out().print(f"next: landscape lmc --run-a {run_a} --run-b {run.id}"
                    + (f" --store {flags['store']}" if flags["store"] else ""))


def print_aligned(run) -> None:
    m, info = run.metrics, run.section("alignment")
    console = out()
    console.print(f"[bold]{run.id}[/] {run.name} -> {run.path}")
    console.print(f"  A: {info['a_label']}")
    console.print(f"  B: {info['b_label']} (permuted: {len(info['groups'])} groups)")
    if info["method"] == "weights":
        console.print(f"  weight matching: {int(m['passes'])} improving passes ({int(m['passes_run'])} run"
                      f"{'' if m['converged'] else ', stopped at --max-passes'}); objective Σ⟨θA, π(θB)⟩ "
                      f"{_num(m['objective_before'], 6)} -> {_num(m['objective_after'], 6)}")
    else:
        console.print(f"  activation matching on {int(m['examples'])} training examples: mean correlation of "
                      f"matched units {m['correlation_before']:.3f} -> {m['correlation_after']:.3f}")
    console.print(f"  L2 distance to A: {_num(m['l2_before'])} -> {_num(m['l2_after'])}; took {m['seconds']:.2f}s")
    if "jaccard_before" in m:
        console.print(f"  mask overlap with A (Jaccard): {m['jaccard_before']:.3f} -> {m['jaccard_after']:.3f}")


def print_lmc_align(run, as_json: bool = False) -> None:
    """The before/after table of a `landscape lmc --align` result."""
    from rich.table import Table

    from landscape.api.align import comparison_runs
    from landscape.store import Store

    m, info = run.metrics, run.section("comparison")
    if as_json:
        print(json.dumps({"id": run.id, **info, **m}, default=float))
        return
    runs = comparison_runs(Store(run.path.parent), run)
    console = out()
    console.print(f"[bold]{run.id}[/] {run.name} -> {run.path}")
    console.print(f"  A: {info['a_label']}")
    console.print(f"  B: {info['b_label']}; aligned by {info['method']} -> {runs['aligned'].id}")
    console.print(f"  correction along the path: {info['correction_note']}")
    stages = [s for s in ("before", "after", "repaired") if s in runs]
    heads = {"before": "before", "after": f"after ({info['method']})", "repaired": "after + REPAIR"}
    table = Table("", *(heads[s] for s in stages), box=None, padding=(0, 2))
    for key, label, fmt in (("test/error_barrier", "test error barrier", _pct),
                            ("train/error_barrier", "train error barrier", _pct),
                            ("test/loss_barrier", "test loss barrier", _num),
                            ("train/loss_barrier", "train loss barrier", _num),
                            ("distance/l2", "L2 distance", _num),
                            ("distance/angular", "angular distance", _num),
                            ("distance/disagreement", "test disagreement", _pct),
                            ("distance/mask_jaccard", "mask Jaccard", _num)):
        values = [m.get(f"{s}/{key}") for s in stages]
        if all(v is None for v in values):
            continue
        table.add_row(label, *(fmt(v) for v in values))
    console.print(table)
    console.print("  LMC runs: " + ", ".join(f"{s} {runs[s].id}" for s in stages))


def print_instability_align(run) -> None:
    """Barrier vs k before and after alignment."""
    import numpy as np
    from rich.table import Table

    from landscape.api.instability_align import read_aligned_points

    console = out()
    console.print(f"[bold]{run.id}[/] {run.name} -> {run.path} (aligned by {run.config['method']})")
    table = Table("k", "pairs", "test error barrier before", "after", "test loss barrier before", "after",
                  "train loss barrier before", "after", box=None, padding=(0, 2))
    for p in read_aligned_points(run):
        mean = {k: float(np.mean(v)) for k, v in p.items() if k.startswith(("before/", "after/"))}
        table.add_row(f"{p['step']}it", str(len(p["comparisons"])), _pct(mean["before/test/error"]),
                      _pct(mean["after/test/error"]), _num(mean["before/test/loss"]), _num(mean["after/test/loss"]),
                      _num(mean["before/train/loss"]), _num(mean["after/train/loss"]))
    console.print(table)


__all__ = ["register", "print_aligned", "print_lmc_align", "print_instability_align", "ALIGN_FLAGS", "ALIGN_OWN_FLAGS"]
