"""What each command does once its flags are parsed: build the request, make one library call, print."""
from __future__ import annotations

import math
import sys
import webbrowser
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from landscape.errors import ConfigError

from .progress import step_progress

# Not on a terminal (a pipe, a log), rich would squeeze tables into 80 columns and cut IDs short.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"


def _base_config(args: dict[str, Any], replicate: int = 0):
    """The training configuration the flags describe, for replicate `replicate` (seeds shifted)."""
    from landscape.train.config import recipe

    milestones = tuple(m for m in (args["milestones"] or "").split(",") if m.strip()) or None
    flat = {k: args[k] for k in ("steps", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
                                 "schedule", "gamma", "warmup", "augment", "val_size", "split_seed", "init",
                                 "width", "eval_every", "checkpoint_at")}
    seed = args["seed"] + replicate
    seeds = {k: (args[k] + replicate if args[k] is not None else seed) for k in ("init_seed", "data_seed", "augment_seed")}
    return recipe(args["model"], args["dataset"], milestones=milestones, seed=seed, **seeds, **flat)


def _options(args: dict[str, Any], progress):
    from landscape.api import TrainOptions

    return TrainOptions(store=args["store"], data_dir=args["data_dir"], device=args["device"],
                        path=args["population_path"], name=args["name"], progress=progress)


def _print_runs(runs, store: str | None) -> None:
    for run in runs:
        m = run.metrics
        out.print(f"[bold]{run.id}[/] {run.name}: test acc {_pct(m.get('final/test/acc'))}, "
                  f"val acc {_pct(m.get('final/val/acc'))}, "
                  f"{int(m.get('steps', 0))} it in {m.get('train_time_s', 0):.1f}s -> {run.path}")
    out.print(f"next: landscape report {' '.join(r.id for r in runs)}" + (f" --store {store}" if store else ""))


def train(args: dict[str, Any]) -> None:
    from landscape.api import train as train_runs
    from landscape.store import Store
    from landscape.train.config import StartFrom

    if args["replicates"] < 1:
        raise ConfigError(f"--replicates {args['replicates']} must be at least 1")
    start = None
    if args["start_from"]:
        run_id, step = Store(args["store"]).resolve_checkpoint(args["start_from"])
        start = StartFrom(run=run_id, step=step)
    configs = [_base_config(args, r) for r in range(args["replicates"])]
    if start:
        configs = [replace(c, start=start).validate() for c in configs]
    with step_progress(f"{args['model']} on {args['dataset']}") as progress:
        runs = train_runs(configs, _options(args, progress))
    _print_runs(runs, args["store"])


def _ticket_source(text: str, output: str, store: str | None):
    """`RUN@LEVEL` as a TicketSource naming the run by its ID."""
    from landscape.imp import TicketSource
    from landscape.store import Store

    run, sep, level = text.rpartition("@")
    if not sep or not run or not level.strip().isdigit():
        raise ConfigError(f"cannot read {text!r} as a ticket", "write RUN@LEVEL, e.g. 3f9a1c@5")
    return TicketSource(run=Store(store).resolve(run), level=int(level), output=output)


def imp(args: dict[str, Any]) -> None:
    from landscape.api.imp import imp as run_imp
    from landscape.imp import ImpConfig, PruneConfig
    from landscape.models import build_model
    from landscape.store import Store

    overrides = {}
    for item in args["layer_fraction"] or []:
        name, sep, value = item.partition("=")
        try:
            overrides[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"cannot read --layer-fraction {item!r}", "write NAME=FRACTION, e.g. fc3.weight=0.1") from None
    if args["output_fraction"] is not None:
        output = build_model(args["model"], (1, 8, 8), 10, seed=0).output_layer
        overrides[output] = args["output_fraction"]
    controls = tuple(c.strip() for c in args["controls"].split(",") if c.strip() and c.strip() != "none")
    ticket = None
    if args["ticket_from"]:
        ticket = _ticket_source(args["ticket_from"], args["transfer_output"], args["store"])
    exclude = tuple(e.strip() for e in (args["exclude"] or "").split(",") if e.strip())
    config = ImpConfig(train=_base_config(args), rewind=args["rewind"], controls=controls,
                       replicates=args["replicates"], ticket_from=ticket,
                       prune=PruneConfig(fraction=args["prune_fraction"], scope=args["scope"],
                                         criterion=args["criterion"], overrides=tuple(overrides.items()),
                                         exclude=exclude))
    with step_progress(f"IMP {args['model']} on {args['dataset']}") as progress:
        run = run_imp(config, args["levels"], _options(args, progress))
    out.print(f"[bold]{run.id}[/] {run.name}: {run.section('request').get('levels')} levels -> {run.path}")
    store = Store(args["store"])
    for level in run.sections("levels"):
        record = run.section(f"levels/{level}")
        accs = []
        for role in ("ticket", "reinit", "random-prune", "rescaled-reinit"):
            if role in record:
                values = [store.open(i).metrics.get("final/test/acc", float("nan")) for i in record[role]]
                accs.append(f"{role} {_pct(sum(values) / len(values))}")
        out.print(f"  level {int(level):2d}  {100 * record['density']:6.2f}% remaining  " + "  ".join(accs))
    out.print(f"next: landscape report {run.id}" + (f" --store {args['store']}" if args["store"] else ""))


def list_runs(store_dir: str | None) -> None:
    from landscape.store import Store
    from landscape.store.store import Run

    store = Store(store_dir)
    summaries = store.list()
    if not summaries:
        out.print(f"no runs in {store.root} (train one with `landscape train`)")
        return
    table = Table("id", "name", "kind", "status", "test acc", "created", "parent", box=None)
    for s in summaries:
        acc = Run(s.path).metrics.get("final/test/acc") if s.status == "complete" else None
        table.add_row(s.id, s.name, s.kind, s.status, _pct(acc), s.created, s.parent or "")
    out.print(table)


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def show(ref: str, store_dir: str | None) -> None:
    from landscape.store import Store

    run = Store(store_dir).open(ref)
    out.print(f"[bold]{run.id}[/] {run.name} ({run.kind}, {run.status})  {run.path}")
    if run.parent:
        out.print(f"parent: {run.parent}")
    for title, rows in (("configuration", _flatten(run.config)), ("metrics", sorted(run.metrics.items())),
                        ("environment", sorted(run.environment.items()))):
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        for key, value in rows:
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
        out.print(table)
    checkpoints = ", ".join(f"{s}it" for s in run.checkpoint_steps) or "none"
    out.print(f"checkpoints: {checkpoints}")
    if run.resume_step is not None:
        out.print(f"resumable from: {run.resume_step}it (rerun the command that made it to continue)")


def report(refs: list[str], out_path: Path | None, open_browser: bool, store_dir: str | None) -> None:
    from landscape.report import build_report, write_report
    from landscape.store import Store

    store = Store(store_dir)
    runs = [store.open(ref) for ref in refs]
    path = out_path or store.root / "reports" / f"{'-'.join(r.id for r in runs)[:80]}.html"
    written = write_report(build_report(runs), path)
    out.print(f"report written to {written}")
    if open_browser:
        webbrowser.open(Path(written).resolve().as_uri())


def list_models() -> None:
    from landscape.models import model_names
    from landscape.train.config import RECIPES

    table = Table("model", "recipe", box=None)
    for name in model_names():
        r = RECIPES.get(name, {})
        table.add_row(name, ", ".join(f"{k}={v}" for k, v in r.items()) or "-")
    out.print(table)


def list_datasets() -> None:
    from landscape.data import dataset_names

    for name in dataset_names():
        out.print(name)


def fetch(name: str, data_dir: str | None, force: bool) -> None:
    from landscape.data import data_root
    from landscape.data.fetch import fetch_dataset

    paths = fetch_dataset(name, data_root(data_dir), force=force)
    for p in paths:
        out.print(str(p))
