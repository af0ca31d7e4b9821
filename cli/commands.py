"""What each command does once its flags are parsed: make its one api call, print what it stored.

The call itself (flags to configuration to api function) is landscape.calls, which a sweep's grid
point makes too; this module adds only the progress display and the printing.
"""
from __future__ import annotations

import math
import sys
import webbrowser
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .progress import step_progress

# Not on a terminal (a pipe, a log), rich would squeeze tables into 80 columns and cut IDs short.
out = Console(highlight=False, emoji=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"


def call(name: str, args: dict[str, Any], progress=None, **hooks):
    """`landscape NAME`'s api call for these flags (landscape.calls), telling notes as `note: ...`."""
    from landscape.calls import run_call

    return run_call(name, args, progress, notify=note, **hooks)


def call_progress(name: str, args: dict[str, Any]):
    """The progress display of `landscape NAME`, titled as landscape.calls titles the call."""
    from landscape.calls import title

    return step_progress(title(name, args))


def options(args: dict[str, Any], progress=None):
    """Where and how to compute, for commands that are not a landscape.calls call (prune, gmp, import)."""
    from landscape.calls import options as call_options

    return call_options(args, progress, notify=note)


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
    with call_progress("train", args) as progress:
        runs = call("train", args, progress)
    if args.get("json_"):
        return emit_json(runs)
    _print_runs(runs, args["store"])


def _call_printing_levels(name: str, args: dict[str, Any]):
    """imp, diet: the call, printing each IMP level's figures as it is recorded (not with --json).
    Returns the run and the levels printed."""
    printed: set[int] = set()
    with call_progress(name, args) as progress:
        def on_level(imp_run, level: int) -> None:
            progress.line(level_line(imp_run, level, args["store"]))
            printed.add(level)

        [run] = call(name, args, progress, on_level=None if args.get("json_") else on_level)
    return run, printed


def imp(args: dict[str, Any]) -> None:
    run, printed = _call_printing_levels("imp", args)
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


def scores(args: dict[str, Any]) -> None:
    with call_progress("scores", args) as progress:
        [run] = call("scores", args, progress)
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
    from landscape.store import Store

    run, printed = _call_printing_levels("diet", args)
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
