"""Store commands: ls, verify, rm, gc. None of them imports torch, so they start in a blink."""
from __future__ import annotations

import json
import math
import sys
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .progress import step_progress

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)

StoreOpt = Annotated[Optional[str], typer.Option("--store", help="Store directory [env LANDSCAPE_STORE; default ./landscape-store].", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def _pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


NAME_WIDTH = 40     # longer names are shortened in the `ls` table (middle elided), never wrapped
STATUS_WIDTH = 48   # a damaged run's reason is long: `verify` and `ls --json` ("problem") give it whole


def _short(text: str, width: int = NAME_WIDTH) -> str:
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: keep - keep // 2] + "…" + text[-(keep // 2):]


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def list_runs(store_dir: str | None, filters: Any = None, as_json: bool = False) -> None:
    from landscape.errors import StoreError
    from landscape.store import Store, store_root
    from landscape.store.listing import Filters, list_runs as listing

    filters = filters or Filters()
    path = store_root(store_dir)   # a missing store, or a file, is a one-line error (as api.context says)
    if not path.is_dir():
        what = "a file, not a directory of runs" if path.exists() else "missing (the directory does not exist)"
        raise StoreError(f"the store {path} is {what}",
                         "pass the store's directory with --store or LANDSCAPE_STORE; `landscape train` creates one")
    store = Store(path)
    found = listing(store, filters)
    if as_json:
        print(json.dumps(found.rows, indent=1, allow_nan=False))
        return
    hidden = f" ({found.hidden} IMP member run(s) hidden: --all shows them)" if found.hidden else ""
    if not found.rows:
        what = "runs matching these filters" if filters.any else "runs"
        out.print(f"no {what} in {store.root}{hidden}" + ("" if filters.any or hidden else
                                                         " (train one with `landscape train`)"))
        return
    table = Table("id", "name", "kind", "status", "model", "dataset", "test acc", "sparsity", "size", "created",
                  "parent", box=None)
    shown = {r["id"] for r in found.rows}
    for r in found.rows:
        member = r["imp"] in shown   # grouped under its IMP run, the row just above its group
        name = ("  " if member else "") + _short(r["name"], NAME_WIDTH - (2 if member else 0))
        status = r["status"] if len(r["status"]) <= STATUS_WIDTH else r["status"][:STATUS_WIDTH - 1] + "…"
        table.add_row(r["id"], name, r["kind"], f"[red]{status}[/]" if r["problem"] else status,
                      r["model"] or "-", r["dataset"] or "-", _pct(r["test_acc"]),
                      "-" if r["sparsity"] is None else f"{100 * r['sparsity']:.1f}%", _size(r["size_bytes"]),
                      r["created"], r["parent"] or "")
    for column in table.columns:   # a cell never breaks over lines: long ones were shortened instead
        column.no_wrap = True
    out.print(table)
    out.print(f"{len(found.rows)} run(s){hidden}")
    damaged = [r for r in found.rows if r["problem"]]
    if damaged:
        out.print(f"{len(damaged)} damaged run(s): `landscape rm ID` and rerun the command that made it "
                  "(`landscape verify` checks every byte)")


def verify(refs: list[str], store_dir: str | None, as_json: bool) -> None:
    from landscape.store import Store
    from landscape.store.maintenance import verify as check

    store = Store(store_dir)
    with step_progress("verifying runs") as progress:
        verdicts = check(store, refs, progress=lambda done, total: progress(done, total))
    bad = [v for v in verdicts if v.state == "damaged"]
    old = [v for v in verdicts if v.state == "unverified"]
    if as_json:
        print(json.dumps([v.__dict__ for v in verdicts], indent=1))
    else:
        size = sum(v.bytes for v in verdicts)
        out.print(f"checked {len(verdicts)} run(s), {_mb(size)}: {len(verdicts) - len(bad) - len(old)} ok, "
                  f"{len(bad)} damaged" + (f", {len(old)} unverified (written before checksums)" if old else ""))
        if bad:
            table = Table("id", "name", "problem", box=None, title="damaged runs", title_justify="left")
            for v in bad:
                table.add_row(v.id, v.name, v.problem)
            out.print(table)
            out.print("repair: `landscape rm ID` for each, then rerun the commands that made them "
                      "(an IMP command recomputes its missing members)")
    if bad:
        raise typer.Exit(1)


def rm(refs: list[str], store_dir: str | None, with_dependents: bool, dry_run: bool) -> None:
    from landscape.store import Store
    from landscape.store.maintenance import plan_removal, remove_run

    store = Store(store_dir)
    plan = plan_removal(store, refs, with_dependents)
    for run_id, users in plan.kept_dependents.items():
        out.print(f"note: damaged run {run_id} is used by {', '.join(users)}; rerunning the command that made it "
                  "recomputes it identically")
    freed = 0
    for run_id in plan.ids:
        if dry_run:
            out.print(f"would remove {run_id}")
        else:
            freed += remove_run(store, run_id)
            out.print(f"removed {run_id}")
    verb = "would free" if dry_run else "freed"
    out.print(f"{len(plan.ids)} run(s), {verb} {_mb(plan.bytes if dry_run else freed)}")


def gc(store_dir: str | None, dry_run: bool) -> None:
    from landscape.cachefiles import cache_dir, orphaned_entries
    from landscape.store import Store
    from landscape.store.maintenance import collect

    done = collect(Store(store_dir), dry_run=dry_run)
    # Decoded datasets whose source files are gone: no dataset can use them any more.
    cache = cache_dir()
    orphans = orphaned_entries(cache)
    cache_bytes = sum(p.stat().st_size for p in orphans)
    if not dry_run:
        for path in orphans:
            path.unlink(missing_ok=True)
    total = done.bytes + cache_bytes
    entries = sum(1 for p in orphans if p.suffix == ".pt")
    verb = "would free" if dry_run else "freed"
    out.print(f"{done.temps} temporary file(s) of killed writes, {done.parts} unlisted part file(s), "
              f"{done.locks} unused lock file(s), {entries} decoded dataset(s) whose files are gone "
              f"(in {cache}): {verb} {total:,} bytes ({_mb(total)})")


def register(app: typer.Typer) -> None:
    @app.command("ls", epilog="""**Examples**

    landscape ls --store runs/

    landscape ls --kind imp --dataset mnist --name 'fc-*'

    landscape ls --all --name 'fc-L2-*'     # IMP members, each under its IMP run

    landscape ls --status interrupted       # rerun their commands to continue

    landscape ls --json | jq '.[].id'

`--json` prints one JSON list, one object per run listed (the filters apply), with the keys
"id", "name", "aliases", "kind", "status", "model", "dataset", "test_acc", "sparsity",
"size_bytes", "created", "parent", "imp" (the IMP run that indexes it) and "problem" (why a damaged
run is damaged); fractions as fractions, null where a figure does not apply.
""")
    def ls_command(
        store: StoreOpt = None,
        kind: Annotated[Optional[str], typer.Option(help="Only runs of this kind: train, imp, lmc, instability, scores, diet, prune...", show_default=False)] = None,
        model: Annotated[Optional[str], typer.Option(help="Only runs of this model, e.g. lenet_300_100.", show_default=False)] = None,
        dataset: Annotated[Optional[str], typer.Option(help="Only runs on this dataset, e.g. mnist.", show_default=False)] = None,
        name: Annotated[Optional[str], typer.Option(help="Only runs whose name (or an alias) matches this glob, e.g. 'fc-*'.", show_default=False)] = None,
        status: Annotated[Optional[str], typer.Option(help="Only runs with this status: complete, running, interrupted, damaged.", show_default=False)] = None,
        all_: Annotated[bool, typer.Option("--all", help="Also list IMP member runs (dense, tickets, controls), each under its IMP run.")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """List the runs in the store: kind, status (running, interrupted, damaged...), model, dataset,
        test accuracy, sparsity, size on disk, parent.

        IMP member runs are hidden under their IMP run unless --all. Filters combine (all must match).
        """
        from landscape.store.listing import Filters

        list_runs(store, Filters(kind, model, dataset, name, status, all_), as_json)

    @app.command("verify", epilog="""**Examples**

    landscape verify

    landscape verify 3f9a1c 7be204 --store runs/
""")
    def verify_command(
        runs: Annotated[Optional[list[str]], typer.Argument(help="Runs to check (default: all).", show_default=False)] = None,
        store: StoreOpt = None, as_json: JsonOpt = False,
    ) -> None:
        """Check every checksum of the store's runs (index and weights); list the damaged ones.

        Exit status 1 when a run is damaged.
        """
        verify(runs or [], store, as_json)

    @app.command("rm", epilog="""**Examples**

    landscape rm 3f9a1c

    landscape rm 3f9a1c --with-dependents --dry-run
""")
    def rm_command(
        runs: Annotated[list[str], typer.Argument(help="Runs to remove (ID, prefix or name).")],
        with_dependents: Annotated[bool, typer.Option("--with-dependents", help="Also remove the runs that use them (IMP runs, siblings, LMC runs...).")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be removed; remove nothing.")] = False,
        store: StoreOpt = None,
    ) -> None:
        """Remove runs. Refuses runs that others depend on unless --with-dependents.

        A damaged run can always be removed alone: rerunning the command that made it recomputes it.
        """
        rm(runs, store, with_dependents, dry_run)

    @app.command("gc", epilog="**Examples**\n\n    landscape gc\n\n    landscape gc --dry-run --store runs/")
    def gc_command(
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be freed; remove nothing.")] = False,
        store: StoreOpt = None,
    ) -> None:
        """Remove what killed writes left (temporary files, unlisted part files, unused lock files) and decoded datasets whose source files are gone."""
        gc(store, dry_run)
