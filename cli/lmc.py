"""The linear-mode-connectivity commands: `landscape siblings`, `landscape lmc`, `landscape instability`.

`register(app)` adds them to the main typer app. Each parses its flags, makes its one call (landscape.calls:
`landscape.api.lmc`, siblings, instability) and prints what the stored run holds (so a reused result prints the same).
"""
from __future__ import annotations

import math
from typing import Annotated, Optional

import typer

from .align import ALIGN_OWN_FLAGS
from .flags import RENAME, _flag, with_flags

REFERENCES = """References to networks: `RUN` (its final weights; ID, ID prefix or name), `RUN:STEP` (a checkpoint:
500it, 2ep, 5k or end), `IMP@L` (level L of an IMP run: the ticket of replicate 0; `IMP@0` is the dense
network), `IMP@L/r1` (replicate 1), `IMP@L/reinit` (a control: reinit, random-prune, rescaled-reinit),
and any of these with `:STEP`."""

_WHERE = [
    _flag("device", str, "auto", "cpu, cuda or auto."),
    _flag("store", Optional[str], None, "Store directory [env LANDSCAPE_STORE; default ./landscape-store].",
          show_default=False),
    _flag("data_dir", Optional[str], None, "Data root [env LANDSCAPE_DATA; default ./data].", show_default=False),
    RENAME,
    _flag("json_", bool, False, "Print one JSON document (the run as `landscape show --json` prints it) instead of "
          "text.", "--json"),
]

LMC_FLAGS = [
    _flag("points", int, 30, "Evenly spaced α in [0, 1], endpoints included (Frankle et al.: 30)."),
    _flag("train_subset", Optional[int], None, "Evaluate the training side on a seeded subset of N examples "
          "[default: the whole training split].", show_default=False),
    _flag("seed", int, 0, "Seed of the training subset and of the BatchNorm statistics sample."),
    _flag("bn_recompute", bool, True, "Recompute BatchNorm running statistics at each α on training batches "
          "(REPAIR); off: interpolate the endpoints' statistics. No effect without BatchNorm.",
          "--bn-recompute/--no-bn-recompute"),
    _flag("bn_batches", int, 10, "Training batches the BatchNorm statistics are recomputed over."),
    _flag("batch_size", int, 1000, "Batch size of evaluation and of the BatchNorm recomputation."),
    _flag("per_example", bool, False, "Also store each training example's straight-line loss barrier: max over α of its loss minus the "
          "line between its endpoint losses (Paul et al. 2022).",
          "--per-example/--no-per-example"),
    _flag("example_threshold", float, 1e-3, "An example is linearly connected when its barrier is at most this "
          "(loss, above the straight line between its endpoint losses)."),
    _flag("alpha_chunk", Optional[int], None, "At most this many α per vmapped pass [default: as many as fit].",
          show_default=False),
    _flag("method", str, "batched", "batched (several α per pass, torch.func) or sequential (one α at a time)."),
]


def register(app: typer.Typer) -> None:
    """Add `siblings`, `lmc` and `instability` to `app`."""

    @app.command("siblings", epilog=f"""**Examples**

    landscape siblings --from 3f9a1c:0 -k 2

    landscape siblings --from lenet-parent:500it -k 4 --name lenet-sib500

    landscape siblings --from 7be204@3 -k 2 --data-dir ../shared/data

{REFERENCES} For siblings a step is required, except for an IMP level: `IMP@L` spawns from the level's
starting point (the dense run at the rewind step, under the level's mask).
""")
    @with_flags([_flag("population_path", str, "auto", "Population layout: auto, loop or vmap.")] + _WHERE)
    def siblings(
        source: Annotated[str, typer.Option("--from", help="The checkpoint to spawn from: RUN:STEP or IMP@L.",
                                            show_default=False)],
        count: Annotated[int, typer.Option("-k", "--count", help="How many siblings.")] = 2,
        name: Annotated[Optional[str], typer.Option(help="Name the siblings NAME-r0, NAME-r1... "
                                                    "[default: PARENT-sibSTEP-rI].", show_default=False)] = None,
        **flags,
    ) -> None:
        """Spawn K siblings from a stored checkpoint and train them to the end, as one population.

        Siblings share the checkpoint's weights, mask, optimizer state and remaining schedule, and
        differ only in their data-order and augmentation seeds. Each is a training run whose parent
        is the run it started from. Rerunning reuses finished siblings and resumes interrupted ones.
        """
        from .commands import _print_runs, call, call_progress

        args = {**flags, "source": source, "count": count, "name": name}
        with call_progress("siblings", args) as progress:
            runs = call("siblings", args, progress)
        if args["json_"]:
            from .commands import emit_json

            return emit_json(runs)
        _print_runs(runs, args["store"])
        if len(runs) >= 2:
            out().print(f"next: landscape lmc --run-a {runs[0].id} --run-b {runs[1].id}"
                        + (f" --store {args['store']}" if args["store"] else ""))

    @app.command("lmc", epilog=f"""**Examples**

    landscape lmc --run-a 3f9a1c --run-b 7be204

    landscape lmc --run-a sib-r0 --run-b sib-r1 --train-subset 10000 --per-example --data-dir ../shared/data

    landscape lmc --run-a imp-run@3 --run-b imp-run@4 --points 15

    landscape lmc --run-a imp-run@5 --run-b imp-run@0 --no-bn-recompute

    landscape lmc --run-a parent:500it --run-b parent:end

    landscape lmc --run-a seed0 --run-b seed1 --align weights --repair

    landscape lmc --run-a imp-run@4 --run-b imp-run@4/r1 --align activations --examples 5000

{REFERENCES}
""")
    @with_flags(LMC_FLAGS + ALIGN_OWN_FLAGS + _WHERE)
    def lmc(
        run_a: Annotated[str, typer.Option("--run-a", help="Network A (α = 0).", show_default=False)],
        run_b: Annotated[str, typer.Option("--run-b", help="Network B (α = 1).", show_default=False)],
        name: Annotated[Optional[str], typer.Option(help="A readable name for the result.", show_default=False)] = None,
        align: Annotated[Optional[str], typer.Option(help="Also align B to A (weights or activations) and measure "
                                                     "the barrier before and after.", show_default=False)] = None,
        repair: Annotated[bool, typer.Option("--repair", help="With --align: also REPAIR the aligned path (Jordan "
                                             "et al. 2022); BatchNorm networks use the recomputation instead.")] = False,
        **flags,
    ) -> None:
        """Linear mode connectivity: error and loss along θ(α) = (1 − α)·θA + α·θB, on test and train.

        Prints the error barrier (max over α of the error minus the mean of the endpoint errors:
        Frankle et al.'s instability, stable below 2%), the α where that maximum lies, and beside it
        the straight-line barrier (max over α of the error minus the line between the endpoint
        errors); a maximum at an endpoint is flagged, since the barrier is then half the endpoint
        gap, not a rise along the path. The same for the loss. The per-example barriers are
        straight-line loss barriers. Distances between A and B: L2 (raw, and normalised:
        ‖(θA − PA) − (θB − PB)‖ / mean(‖θA − PA‖, ‖θB − PB‖), PA and PB their common parent under
        each one's mask, in [0, 2]),
        angular distance 2·angle/π (0 same direction, 1 orthogonal, 2 opposite) on the weights both
        keep, the fraction of test examples on which they disagree, and the overlap of their masks.
        With masks, each endpoint is masked by its own mask. The result is stored as a run of kind
        lmc; asking again for the same request reuses it.
        """
        from landscape.calls import title

        from .align import print_lmc_align
        from .commands import call, emit_json
        from .progress import busy

        args = {**flags, "run_a": run_a, "run_b": run_b, "name": name, "align": align, "repair": repair}
        if align is not None or repair:  # its own table, or with --json the comparison run
            [run] = call("lmc", args)
            if args["json_"]:
                return emit_json(run)
            print_lmc_align(run)
            out().print(f"next: landscape report {run.id}" + (f" --store {args['store']}" if args["store"] else ""))
            return
        with busy(title("lmc", args)):
            [run] = call("lmc", args)
        if args["json_"]:
            return emit_json(run)
        print_lmc(run, args["example_threshold"])
        out().print(f"next: landscape report {run.id}" + (f" --store {args['store']}" if args["store"] else ""))

    @app.command("instability", epilog=f"""**Examples**

    landscape instability --run 3f9a1c --at 0,100it,500it,2000it --siblings 2

    landscape instability --run 3f9a1c --find-onset --threshold 0.02

    landscape instability --run lenet-parent --at 0 --points 30 --data-dir ../shared/data

    landscape instability --run lenet-parent --at 0,500it --align weights

{REFERENCES} `--run` names a run without a step; `--at` lists stored checkpoints of it.
""")
    @with_flags(LMC_FLAGS + ALIGN_OWN_FLAGS + [_flag("population_path", str, "auto", "Population layout: auto, "
                                                     "loop or vmap.")] + _WHERE)
    def instability(
        run: Annotated[str, typer.Option("--run", help="The run to spawn siblings from (RUN or IMP@L).",
                                         show_default=False)],
        at: Annotated[Optional[str], typer.Option(help="Steps to spawn at, stored checkpoints of the run, e.g. "
                                                  "0,100it,500it [default: every stored checkpoint before the end].",
                                                  show_default=False)] = None,
        siblings: Annotated[int, typer.Option("--siblings", help="Siblings per step; every pair is interpolated.")] = 2,
        find_onset: Annotated[bool, typer.Option("--find-onset", help="Bisect over the steps (--at, or every "
                                                 "stored checkpoint) for the earliest stable one, training as few "
                                                 "sibling sets as possible.")] = False,
        threshold: Annotated[float, typer.Option(help="Stable: mean test-error barrier below this (Frankle et al.: 2%).")] = 0.02,
        name: Annotated[Optional[str], typer.Option(help="A readable name for the analysis.", show_default=False)] = None,
        align: Annotated[Optional[str], typer.Option(help="Also measure every pair after aligning one sibling to "
                                                     "the other (weights or activations): barrier vs k before and "
                                                     "after.", show_default=False)] = None,
        **flags,
    ) -> None:
        """Instability analysis: the barrier between siblings against the step k they were spawned at.

        At each step, K siblings are spawned from the run's checkpoint, trained to the end, and every
        pair is interpolated; barrier vs k (mean and spread over pairs) is stored as a run of kind
        instability. With --find-onset, only the steps a bisection needs are measured (it assumes
        that once stable, the network stays stable). Rerunning reuses every measured step.
        """
        from .align import print_instability_align
        from .commands import call, call_progress, emit_json

        args = {**flags, "run": run, "at": at, "siblings": siblings, "find_onset": find_onset, "threshold": threshold,
                "name": name, "align": align}
        quiet = args["json_"]
        with call_progress("instability", args) as progress:
            # --json prints the analysis (with --align, the before/after one) and nothing else
            [result] = call("instability", args, progress,
                            on_measured=None if quiet else print_instability,
                            on_point=None if quiet else lambda p: progress.line(f"measured {_point_line(p, threshold)}"))
        if quiet:
            return emit_json(result)
        if align is not None:
            print_instability_align(result)
        out().print(f"next: landscape report {result.id}" + (f" --store {args['store']}" if args["store"] else ""))


# ------------------------------------------------------------------------------------------------
# Printing
# ------------------------------------------------------------------------------------------------

def out():
    from .commands import out as console

    return console


def _pct(value) -> str:
    from .commands import _pct as pct

    return pct(value)


def _num(value, digits: int = 4) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def median(values) -> float:
    """The median (the mean of the two middle values for an even count), not the upper middle one."""
    import numpy as np

    return float(np.median(np.asarray(values, dtype=np.float64)))


def _bn_line(info: dict) -> str:
    if info["bn_recompute"]:
        return f"recomputed at each α over {info['bn_examples']} training inputs (REPAIR)"
    if info["bn_recompute_requested"]:
        return "none to recompute (the network has no BatchNorm)"
    return "not recomputed (--no-bn-recompute): the endpoints' running statistics are interpolated"


def print_lmc(run, threshold: float | None = None) -> None:
    from rich.table import Table

    from landscape.lmc import STABILITY_THRESHOLD, endpoint_note

    m, info = run.metrics, run.section("lmc")
    console = out()
    console.print(f"[bold]{run.id}[/] {run.name} -> {run.path}")
    console.print(f"  A: {info['a_label']}")
    console.print(f"  B: {info['b_label']}")
    console.print(f"  {len(run.curves.get('alpha', []))} points; BatchNorm: {_bn_line(info)}")
    console.print(f"  masks: {info['mask_note']}")
    train_label = ("train" if info["num_train"] == info["train_total"]
                   else f"train ({info['num_train']} of {info['train_total']})")
    table = Table("", f"test ({info['num_test']})", train_label, box=None, padding=(0, 2))
    for key, label, fmt in (("error", "error", _pct), ("loss", "loss", _num)):
        table.add_row(f"{label} at A", *(fmt(m.get(f"{s}/{key}_a")) for s in ("test", "train")))
        table.add_row(f"{label} at B", *(fmt(m.get(f"{s}/{key}_b")) for s in ("test", "train")))
        table.add_row(f"[bold]{label} barrier[/]",
                      *(f"{fmt(m.get(f'{s}/{key}_barrier'))} (max at α={m.get(f'{s}/{key}_barrier_alpha', 0):.2f})"
                        for s in ("test", "train")))
        table.add_row(f"{label} barrier, straight line", *(fmt(m.get(f"{s}/{key}_barrier_straight"))
                                                           for s in ("test", "train")))
    console.print(table)
    console.print("  barrier: max over α minus the mean of the endpoints (Frankle et al.); straight line: max over "
                  "α of the curve minus the line between the endpoint values")
    for s in ("test", "train"):
        for key in ("error", "loss"):
            note = endpoint_note(m.get(f"{s}/{key}_barrier_alpha", 0.0), bool(m.get(f"{s}/{key}_barrier_at_endpoint")),
                                 m.get(f"{s}/{key}_barrier", 0.0))
            if note:
                console.print(f"  [yellow]{s} {key}: {note}[/] (straight-line barrier "
                              f"{(_pct if key == 'error' else _num)(m.get(f'{s}/{key}_barrier_straight'))})")
    stable = m["test/error_barrier"] < STABILITY_THRESHOLD
    console.print(f"  {'stable' if stable else 'unstable'}: test error barrier {_pct(m['test/error_barrier'])} "
                  f"{'<' if stable else '>='} {_pct(STABILITY_THRESHOLD)} (Frankle et al.)")
    parent = (f"travel from their common parent {info['parent_run']} at {info['parent_step']}it"
              if info["parent_run"] else "no common parent")
    console.print(f"  distances: L2 {_num(m.get('distance/l2'))}, normalised {_num(m.get('distance/l2_normalized'), 3)} "
                  f"({parent}; ‖(θA − PA) − (θB − PB)‖ / mean(‖θA − PA‖, ‖θB − PB‖), PA and PB the parent under each "
                  f"mask, in [0, 2]); angular {_num(m.get('distance/angular'), 3)} (2·angle/π: 0 same direction, "
                  f"1 orthogonal); disagreement {_pct(m.get('distance/disagreement'))} of test examples")
    if m.get("distance/mask_jaccard") is not None:
        layers = run.section("masks")
        per_layer = ", ".join(f"{n} {j:.3f}" for n, j in zip(layers.get("layers", []), layers.get("jaccard", [])))
        console.print(f"  mask overlap (Jaccard): {m['distance/mask_jaccard']:.3f} overall; {per_layer}; "
                      f"densities A {_pct(m.get('distance/density_a'))}, B {_pct(m.get('distance/density_b'))}")
    stored = run.section("per_example")
    if stored:
        pe = run.arrays("per_example")["barrier"]
        t = stored["threshold"] if threshold is None else threshold
        fraction = float((pe <= t).mean())
        console.print(f"  per-example (straight-line loss barrier: max over α of the example's loss minus the line "
                      f"between its endpoint losses): {_pct(fraction)} of {len(pe)} training examples linearly "
                      f"connected (barrier <= {t:g}); median {median(pe):.4g}, max {float(pe.max()):.4g}")
    console.print(f"  interpolation took {m.get('time_s', 0):.1f}s ({info['method']}, up to {info['alpha_chunk']} α per pass)")


def _point_line(point, threshold: float) -> str:
    import numpy as np

    test = np.asarray(point.barriers["test/error"])
    train = np.asarray(point.barriers["train/error"])
    spread = f" ± {_pct(float(test.std()))} ({len(test)} pairs)" if len(test) > 1 else ""
    verdict = "stable" if point.stable(threshold) else "unstable"
    return (f"k={point.step}it: test error barrier {_pct(float(test.mean()))}{spread}, train "
            f"{_pct(float(train.mean()))}, test loss barrier {float(np.mean(point.barriers['test/loss'])):.4f} "
            f"-> {verdict}")


def print_instability(run) -> None:
    import numpy as np
    from rich.table import Table

    from landscape.api.instability import read_points

    summary = run.section("summary")
    threshold = float(summary["threshold"])
    console = out()
    console.print(f"[bold]{run.id}[/] {run.name} -> {run.path}")
    table = Table("k", "pairs", "test error barrier", "(sd)", "train error barrier", "test loss barrier",
                  f"< {_pct(threshold)}", box=None, padding=(0, 2))
    for p in read_points(run):
        test = np.asarray(p.barriers["test/error"])
        table.add_row(f"{p.step}it", str(len(test)), _pct(float(test.mean())), _pct(float(test.std())),
                      _pct(p.mean("train/error")), f"{p.mean('test/loss'):.4f}",
                      "stable" if p.stable(threshold) else "unstable")
    console.print(table)
    onset = int(summary["onset"])
    candidates, tested = summary["candidates"], summary["tested"]
    where = ("no measured step is stable" if onset < 0 else f"stable from k = {onset}it")
    how = (f"bisection measured {len(set(tested))} of {len(candidates)} candidate steps ({', '.join(f'{t}it' for t in tested)})"
           if summary["method"] == "bisection" else f"scan of {len(candidates)} steps")
    console.print(f"  onset of stability (mean test error barrier < {_pct(threshold)}): {where}; {how}")
