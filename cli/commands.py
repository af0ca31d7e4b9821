"""What each command does once its flags are parsed: build the request, make one library call, print."""
from __future__ import annotations

import math
import webbrowser
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from landscape.errors import ConfigError

from .progress import step_progress

out = Console(highlight=False, soft_wrap=True)


def _pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"


def train(args: dict[str, Any]) -> None:
    from landscape.api import TrainOptions, train as train_runs
    from landscape.store import Store
    from landscape.train.config import StartFrom, recipe

    if args["replicates"] < 1:
        raise ConfigError(f"--replicates {args['replicates']} must be at least 1")
    start = None
    if args["start_from"]:
        run_id, step = Store(args["store"]).resolve_checkpoint(args["start_from"])
        start = StartFrom(run=run_id, step=step)
    milestones = tuple(m for m in (args["milestones"] or "").split(",") if m.strip()) or None
    flat = {k: args[k] for k in ("steps", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
                                 "schedule", "gamma", "warmup", "augment", "val_size", "split_seed", "init",
                                 "width", "eval_every", "checkpoint_at")}
    configs = []
    for r in range(args["replicates"]):
        seed = args["seed"] + r
        seeds = {k: (args[k] + r if args[k] is not None else seed) for k in ("init_seed", "data_seed", "augment_seed")}
        config = recipe(args["model"], args["dataset"], milestones=milestones, seed=seed, **seeds, **flat)
        configs.append(replace(config, start=start).validate() if start else config)
    with step_progress(f"{args['model']} on {args['dataset']}") as progress:
        options = TrainOptions(store=args["store"], data_dir=args["data_dir"], device=args["device"],
                               path=args["population_path"], name=args["name"], progress=progress)
        runs = train_runs(configs, options)
    for run in runs:
        m = run.metrics
        out.print(f"[bold]{run.id}[/] {run.name}: test acc {_pct(m.get('final/test/acc'))}, "
                  f"val acc {_pct(m.get('final/val/acc'))}, "
                  f"{int(m.get('steps', 0))} it in {m.get('train_time_s', 0):.1f}s -> {run.path}")
    out.print(f"next: landscape report {' '.join(r.id for r in runs)}" + (
        f" --store {args['store']}" if args["store"] else ""))


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
