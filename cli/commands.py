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
out = Console(highlight=False, emoji=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"


def _base_config(args: dict[str, Any], replicate: int = 0):
    """The training configuration the flags describe, for replicate `replicate` (seeds shifted)."""
    from landscape.train.config import recipe

    milestones = tuple(m for m in (args["milestones"] or "").split(",") if m.strip()) or None
    flat = {k: args[k] for k in ("steps", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay",
                                 "schedule", "gamma", "warmup", "augment", "val_size", "split_seed", "init",
                                 "width", "eval_every", "checkpoint_at")}
    flat["eval_train"] = True if args.get("eval_train") else None
    seed = args["seed"] + replicate
    seeds = {k: (args[k] + replicate if args[k] is not None else seed) for k in ("init_seed", "data_seed", "augment_seed")}
    return recipe(args["model"], args["dataset"], milestones=milestones, seed=seed, **seeds, **flat)


def _options(args: dict[str, Any], progress):
    from landscape.api import TrainOptions

    return TrainOptions(store=args["store"], data_dir=args["data_dir"], device=args["device"],
                        path=args["population_path"], name=args["name"], progress=progress,
                        wait_s=args["wait"] if args.get("wait") is not None else "default",
                        rename=args.get("rename", False), notify=note)


def emit_json(runs) -> None:
    """`--json`: the run (or {"runs": [...]}) as `landscape show --json` prints it, one document."""
    from landscape.api.inspect import describe
    from landscape.store import Store

    from .inspect import print_json

    one = not isinstance(runs, (list, tuple))
    docs = [describe(Store(r.path.parent), r.id) for r in ([runs] if one else runs)]
    print_json(docs[0] if one else {"runs": docs})


def note(text: str) -> None:
    """Something the user should know that is not the result (a name added to a run...): on stderr."""
    from .progress import stderr

    stderr.print(f"note: {text}", highlight=False, soft_wrap=True)


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
    if args.get("json_"):
        return emit_json(runs)
    _print_runs(runs, args["store"])


def _ticket_source(text: str, output: str, store: str | None):
    """`RUN@LEVEL` as a TicketSource naming the run by its ID."""
    from landscape.imp import TicketSource
    from landscape.store import Store

    run, sep, level = text.rpartition("@")
    if not sep or not run or not level.strip().isdigit():
        raise ConfigError(f"cannot read {text!r} as a ticket", "write RUN@LEVEL, e.g. 3f9a1c@5")
    return TicketSource(run=Store(store).resolve(run), level=int(level), output=output)


def _prune_config(args: dict[str, Any]):
    from landscape.imp import PruneConfig

    overrides = {}
    for item in args.get("layer_fraction") or []:
        name, sep, value = item.partition("=")
        try:
            overrides[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"cannot read --layer-fraction {item!r}", "write NAME=FRACTION, e.g. fc3.weight=0.1") from None
    if args["output_fraction"] is not None:
        overrides[_output_layer(args)] = args["output_fraction"]
    exclude = tuple(e.strip() for e in (args.get("exclude") or "").split(",") if e.strip())
    return PruneConfig(fraction=args["prune_fraction"], scope=args["scope"], criterion=args["criterion"],
                       overrides=tuple(overrides.items()), exclude=exclude)


def _output_layer(args: dict[str, Any]) -> str:
    """The model's output layer: zoo models build anywhere, so 8x8 digits suffice; a network from
    outside is built for the dataset it will train on."""
    from landscape.data import data_root, load_dataset
    from landscape.models import build_model, model_source

    if model_source(args["model"]) is None:
        return build_model(args["model"], (1, 8, 8), 10, seed=0).output_layer
    data = load_dataset(args["dataset"], data_root(args["data_dir"]))
    return build_model(args["model"], data.input_shape, data.num_classes, seed=0, init=args["init"],
                       width=args["width"]).output_layer


def _controls(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip() and c.strip() != "none")


def _pretrained(ref: str, replicates: int, store: str | None) -> tuple[str, ...]:
    """`--rewind-from`: a diet run (its pre-training runs) or a training run, one per replicate."""
    from landscape.store import Store

    run = Store(store).open(ref)
    runs = run.section("pretrain")["runs"] if run.kind == "diet" else [run.id]
    if len(runs) < replicates:
        raise ConfigError(f"--rewind-from {ref} has {len(runs)} pre-trained run(s), not one per replicate "
                          f"({replicates})", f"use --replicates {len(runs)}, or pre-train more replicates")
    return tuple(runs[:replicates])


def imp(args: dict[str, Any]) -> None:
    from landscape.api.imp import imp as run_imp
    from landscape.imp import ImpConfig

    ticket = None
    if args["ticket_from"]:
        ticket = replace(_ticket_source(args["ticket_from"], args["transfer_output"], args["store"]),
                         init=args["transfer_init"])
    elif args["transfer_init"] != "ticket":
        raise ConfigError("--transfer-init applies to a transferred ticket", "add --ticket-from RUN@LEVEL")
    if args["rewind_from"] and args["rewind"].strip() not in ("0", "0it"):
        raise ConfigError("--rewind and --rewind-from both say where tickets rewind to",
                          "drop --rewind: with --rewind-from, tickets rewind to the end of the pre-training")
    pretrained = _pretrained(args["rewind_from"], args["replicates"], args["store"]) if args["rewind_from"] else ()
    if args.get("start_from"):
        if args["rewind_from"] or args["rewind"].strip() not in ("0", "0it"):
            raise ConfigError("--from already says where the dense run starts and tickets rewind to",
                              "drop --rewind and --rewind-from")
        from landscape.store import Store

        pretrained = (Store(args["store"]).resolve(args["start_from"]),) * args["replicates"]
    config = ImpConfig(train=_base_config(args), rewind=args["rewind"], controls=_controls(args["controls"]),
                       replicates=args["replicates"], ticket_from=ticket, prune=_prune_config(args),
                       pretrained=pretrained, retrain=args["retrain"], retrain_steps=args["retrain_steps"])
    printed: set[int] = set()
    with step_progress(f"IMP {args['model']} on {args['dataset']}") as progress:
        def on_level(run, level: int) -> None:
            progress.line(level_line(run, level, args["store"]))
            printed.add(level)

        run = run_imp(config, args["levels"], _options(args, progress),
                      on_level=None if args.get("json_") else on_level)
    if args.get("json_"):
        return emit_json(run)
    print_imp(run, args["store"], printed)


def level_line(run, level: int, store_dir: str | None) -> str:
    """One IMP level's figures: weights remaining, final test accuracy of the ticket and each control."""
    from landscape.store import Store

    store = Store(store_dir) if store_dir else Store(run.path.parent)
    record = run.section(f"levels/{level:03d}")
    accs = []
    for role in ("ticket", "reinit", "random-prune", "rescaled-reinit"):
        if role in record:
            values = [store.open(i).metrics.get("final/test/acc", float("nan")) for i in record[role]]
            accs.append(f"{role} {_pct(sum(values) / len(values))}")
    return (f"  level {level:2d}  {100 * record['density']:6.2f}% remaining  final test acc: "
            + "  ".join(accs))


def print_imp(run, store_dir: str | None, printed: set[int] = frozenset()) -> None:
    out.print(f"[bold]{run.id}[/] {run.name}: {run.section('request').get('levels')} levels, "
              f"rewind to {run.config['rewind']} -> {run.path}")
    for level in run.sections("levels"):
        if int(level) not in printed:
            out.print(level_line(run, int(level), store_dir))
    out.print(f"next: landscape report {run.id}; landscape show {run.id} (the level table)"
              + (f" --store {store_dir}" if store_dir else ""))


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def report(refs: list[str], out_path: Path | None, open_browser: bool, store_dir: str | None) -> None:
    from landscape.api.context import readable_store
    from landscape.api.names import open_run
    from landscape.report import build_report, write_report

    from .progress import busy

    store = readable_store(store_dir)
    runs = [open_run(store, ref) for ref in refs]
    path = out_path or store.root / "reports" / f"{'-'.join(r.id for r in runs)[:80]}.html"
    created = not Path(path).parent.exists()
    with busy(f"report on {len(runs)} run(s)"):
        written = write_report(build_report(runs), path)
    if created:
        note(f"created the folder {Path(written).parent}")
    out.print(f"report written to {written}")
    if open_browser:
        url = Path(written).resolve().as_uri()
        try:
            opened = webbrowser.open(url)
        except Exception:  # a broken $BROWSER entry: the report is written all the same
            opened = False
        if not opened:
            note(f"no browser could be started here; open {Path(written).resolve()} in one")


def _flag_value(value: Any) -> str:
    """As it would be written on the command line: milestones 80ep,120ep, not ('80ep', '120ep')."""
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def list_models() -> None:
    from landscape.models import model_catalog
    from landscape.train.config import RECIPES

    table = Table("model", "from", "recipe", box=None)
    for name, origin in model_catalog():
        r = RECIPES.get(name, {})
        table.add_row(name, origin, ", ".join(f"{k}={_flag_value(v)}" for k, v in r.items()) or "-")
    out.print(table)
    out.print("any other network: --model package.module:factory (see README, \"Your own model and data\")")


def list_datasets() -> None:
    from landscape.data import dataset_catalog

    table = Table("dataset", "from", box=None)
    for name, origin in dataset_catalog():
        table.add_row(name, origin)
    out.print(table)
    out.print("any other data: --dataset package.module:factory (see README, \"Your own model and data\")")


def fetch(name: str, data_dir: str | None, force: bool, mirror: str | None = None) -> None:
    from landscape.data import data_root
    from landscape.data.fetch import fetch_dataset

    paths = fetch_dataset(name, data_root(data_dir), force=force, mirror=mirror)
    for p in paths:
        out.print(str(p))


def _scores_config(args: dict[str, Any], score: str):
    from landscape.diet import ScoresConfig

    return ScoresConfig(_base_config(args), method=score, at=args["at"], runs=args["runs"])


def scores(args: dict[str, Any]) -> None:
    from landscape.api.scores import scores as compute

    config = _scores_config(args, args["score"])
    with step_progress(f"{args['score']} scores, {args['model']} on {args['dataset']}") as progress:
        run = compute(config, _options(args, progress))
    if args.get("json_"):
        return emit_json(run)
    print_scores(run, args["store"])


def print_scores(run, store_dir: str | None) -> None:
    import numpy as np

    section, arrays, m = run.section("scores"), run.arrays("scores"), run.metrics
    score = arrays["score"]
    out.print(f"[bold]{run.id}[/] {run.name}: {section['method']} of {len(score):,} training examples, "
              f"mean over {run.config['runs']} run(s) at {run.config['at']} (of a {run.config['train']['steps']} "
              f"schedule) in {m.get('time_s', 0):.1f}s -> {run.path}")
    q = np.nanpercentile(score, [0, 10, 50, 90, 100])
    out.print("  min {:.4g}  10% {:.4g}  median {:.4g}  90% {:.4g}  max {:.4g}".format(*q)
              + (f"  (each run against the mean: Spearman {m['rank_agreement']:.3f})" if m.get("rank_agreement") == m.get("rank_agreement") else ""))
    out.print(f"next: landscape diet --scores-from {run.id} ... ; landscape report {run.id}"
              + (f" --store {store_dir}" if store_dir else ""))


def diet(args: dict[str, Any]) -> None:
    from landscape.api.diet import DietRequest, ImpPlan, diet as run_diet
    from landscape.store import Store

    from .diet import parse_offset

    imp_plan = ImpPlan(levels=args["levels"], prune=_prune_config(args), controls=_controls(args["controls"])) \
        if args["then_imp"] else None
    request = DietRequest(subset=args["subset"], size=args["size"], fraction=args["fraction"],
                          offset=parse_offset(args["offset"]), balanced=args["balanced"], seed=args["subset_seed"],
                          pretrain_steps=args["pretrain_steps"], score=args["score"], scores_from=args["scores_from"],
                          score_at=args["at"], score_runs=args["runs"], replicates=args["replicates"],
                          then_imp=imp_plan)
    printed: set[int] = set()
    with step_progress(f"diet {args['subset']} {args['model']} on {args['dataset']}") as progress:
        def on_level(imp_run, level: int) -> None:
            progress.line(level_line(imp_run, level, args["store"]))
            printed.add(level)

        run = run_diet(_base_config(args), request, _options(args, progress),
                       on_level=None if args.get("json_") else on_level)
    if args.get("json_"):
        return emit_json(run)
    s, p = run.section("subset"), run.section("pretrain")
    source = f"by {s['method']} scores ({s['scores']})" if s["scores"] else f"random, seed {s['seed']}"
    out.print(f"[bold]{run.id}[/] {run.name}: {s['order']} subset of {s['size']:,} examples "
              f"({100 * s['fraction']:.1f}% of {s['n_train']:,}), {source}"
              + (f", skipping {s['offset']:,}" if s["offset"] else "") + (", class-balanced" if s["balanced"] else ""))
    out.print(f"  pre-trained {p['step']}it on it: {', '.join(p['runs'])}; val acc "
              f"{_pct(run.metrics.get('pretrain/final/val/acc'))}")
    if run.section("imp"):
        print_imp(Store(args["store"]).open(run.section("imp")["run"]), args["store"], printed)
    else:
        out.print(f"next: landscape imp --rewind-from {run.id} ... (same training flags); "
                  f"landscape report {run.id}" + (f" --store {args['store']}" if args["store"] else ""))
