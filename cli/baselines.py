"""The baseline commands beside IMP: `landscape prune` (pruning at initialisation) and `landscape gmp`
(gradual magnitude pruning). `register(app)` adds them; each parses its flags, makes one call into
`landscape.api.prune` or `landscape.api.gmp`, and prints what the stored run holds."""
from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from .flags import TRAIN_FLAGS, with_flags


def _floats(text: str, what: str) -> list[float]:
    from landscape.errors import ConfigError

    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"cannot read {what} {text!r}", "write comma-separated numbers, e.g. 0.2,0.05,0.01") from None


def register(app: typer.Typer) -> None:
    """Add `prune` and `gmp` to `app`."""
    register_gmp(app)

    @app.command("prune", epilog="""**Examples**

    landscape prune --method synflow --density 0.2,0.05,0.01,0.001 --model lenet_300_100 --dataset mnist --data-dir ../shared/data --steps 2ep --controls shuffle,reinit

    landscape prune --method snip --density 0.05 --model vgg16 --width 0.25 --dataset digits --steps 200it --replicates 2

    landscape prune --method grasp-abs --density 0.1 --scope layerwise --dataset digits --steps 100it --json

Methods: random, magnitude (|θ0|), snip (|g⊙θ|), grasp (keeps the highest θ⊙Hg, Wang et al. 2020), grasp-abs
(|θ⊙Hg|, Frankle et al. 2021), synflow (Tanaka et al. 2020, iterative). Controls (Frankle et al. 2021):
shuffle (the mask shuffled within each layer), reinit (fresh weights under the mask). `landscape report RUN`
draws accuracy against weights remaining with every IMP, GMP and prune run of the same model and data.
""")
    @with_flags(TRAIN_FLAGS)
    def prune(
        method: Annotated[str, typer.Option(help="random, magnitude, snip, grasp, grasp-abs or synflow.")] = "synflow",
        density: Annotated[str, typer.Option(help="Fractions of weights kept, comma-separated, each in (0, 1).")] = "0.2,0.05,0.01",
        scope: Annotated[str, typer.Option(help="global (one threshold) or layerwise (every layer to the density).")] = "global",
        examples_per_class: Annotated[int, typer.Option(help="Pruning examples per class for snip and grasp (Synaptic-Flow: 10).")] = 10,
        iterations: Annotated[int, typer.Option(help="SynFlow pruning iterations (exponential density schedule).")] = 100,
        controls: Annotated[str, typer.Option(help="Ablations per density: shuffle, reinit (comma-separated, or none).")] = "none",
        **flags,   # TRAIN_FLAGS include --json
    ) -> None:
        """Prune at initialisation (SNIP, GraSP, SynFlow, magnitude, random) to each density, then train.

        Each density's network trains with the training flags (and --replicates) beside its controls.
        Rerunning the same command reuses finished densities; new densities are added to the run.
        """
        from landscape.cli import commands
        from landscape.api.prune import PruneInitConfig, prune as run_prune
        from landscape.calls.training import base_config, controls as control_names

        from .progress import step_progress

        args = {**flags, "json": flags["json_"]}
        config = PruneInitConfig(base_config(args), method=method, scope=scope,
                                 examples_per_class=examples_per_class, iterations=iterations,
                                 controls=control_names(controls), replicates=args["replicates"])
        densities = _floats(density, "--density")
        with step_progress(f"prune {method} {args['model']} on {args['dataset']}") as progress:
            run = run_prune(config, densities, commands.options(args, progress))
        print_prune(run, args["store"], args["json"])


def prune_table(run) -> list[dict[str, Any]]:
    """One row per density: its record and the mean final test accuracy of every role."""
    from landscape.api.prune import ROLES
    from landscape.store import Store

    store, rows = Store(run.path.parent), []
    for key in run.sections("densities"):
        record = run.section(f"densities/{key}")
        row = {"density": record["density"], "requested": record["requested"]}
        for role in ROLES:
            if role in record:
                accs = [store.open(i).metrics.get("final/test/acc", float("nan")) for i in record[role]]
                row[role] = {"runs": list(record[role]), "test_acc": accs}
        rows.append(row)
    return sorted(rows, key=lambda r: -r["density"])


def print_prune(run, store_dir: str | None, as_json: bool) -> None:
    from landscape.cli.commands import _pct, out

    rows = prune_table(run)
    if as_json:
        print(json.dumps({"id": run.id, "name": run.name, "path": str(run.path), **run.config, "densities": rows}))
        return
    out.print(f"[bold]{run.id}[/] {run.name}: {run.config['method']} ({run.config['scope']}) -> {run.path}")
    for row in rows:
        cells = [f"{role} {_pct(sum(row[role]['test_acc']) / len(row[role]['test_acc']))}"
                 for role in ("ticket", "shuffle", "reinit") if role in row]
        out.print(f"  {100 * row['density']:7.3f}% remaining  " + "  ".join(cells))
    out.print(f"next: landscape report {run.id}" + (f" --store {store_dir}" if store_dir else ""))


def register_gmp(app: typer.Typer) -> None:
    @app.command("gmp", epilog="""**Examples**

    landscape gmp --final-density 0.05 --start 1ep --end 3ep --every 100it --model lenet_300_100 --dataset mnist --steps 5ep --data-dir ../shared/data

    landscape gmp --final-density 0.1 --start 20it --end 200it --every 20it --dataset digits --steps 300it --replicates 2 --json

The density follows Zhu & Gupta's cubic schedule d_t = 1 - s_t, s_t = s_f + (s_i - s_f)(1 - (t - start)/(end - start))^3,
pruning the smallest-magnitude alive weights every --every steps from --start to --end (which must come
before the end of training). The mask is saved with every checkpoint; a killed run resumes identically.
""")
    @with_flags(TRAIN_FLAGS)
    def gmp(
        final_density: Annotated[float, typer.Option(help="Density at --end (fraction of weights kept), in (0, 1).")] = 0.1,
        initial_density: Annotated[float, typer.Option(help="Density at --start.")] = 1.0,
        start: Annotated[str, typer.Option(help="First pruning step t0, e.g. 1ep or 500it.")] = "0it",
        end: Annotated[str, typer.Option(help="Last pruning step, before the end of training.")] = "1ep",
        every: Annotated[str, typer.Option(help="Steps between pruning steps, Δt.")] = "100it",
        scope: Annotated[str, typer.Option(help="global (one threshold) or layerwise.")] = "global",
        **flags,   # TRAIN_FLAGS include --json
    ) -> None:
        """Gradual magnitude pruning during training (Zhu & Gupta 2017): one run, a cubic density schedule."""
        from landscape.api.gmp import final_density as density_of, gmp as run_gmp
        from landscape.calls.training import base_config
        from landscape.cli import commands
        from landscape.train.config import GmpSpec

        from .progress import step_progress

        args = {**flags}
        spec = GmpSpec(final_density, start=start, end=end, every=every, initial_density=initial_density, scope=scope)
        with step_progress(f"gmp {args['model']} on {args['dataset']}") as progress:
            runs = run_gmp(base_config(args), spec, args["replicates"], commands.options(args, progress))
        rows = [{"id": r.id, "name": r.name, "path": str(r.path), "density": density_of(r),
                 "test_acc": r.metrics.get("final/test/acc")} for r in runs]
        if args["json_"]:
            print(json.dumps(rows))
            return
        for row in rows:
            commands.out.print(f"[bold]{row['id']}[/] {row['name']}: {100 * row['density']:.3f}% remaining, "
                               f"test acc {commands._pct(row['test_acc'])} -> {row['path']}")
        commands.out.print(f"next: landscape report {' '.join(r['id'] for r in rows)}"
                           + (f" --store {args['store']}" if args["store"] else ""))
