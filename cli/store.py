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


def list_runs(store_dir: str | None, as_json: bool = False) -> None:
    from landscape.errors import StoreError
    from landscape.store import Store, store_root

    path = store_root(store_dir)   # a missing store, or a file, is a one-line error (as api.context says)
    if not path.is_dir():
        what = "a file, not a directory of runs" if path.exists() else "missing (the directory does not exist)"
        raise StoreError(f"the store {path} is {what}",
                         "pass the store's directory with --store or LANDSCAPE_STORE; `landscape train` creates one")
    store = Store(path)
    summaries = store.list()
    if as_json:
        print(json.dumps([{"id": s.id, "name": s.name, "kind": s.kind, "status": s.display_status or s.status,
                           "test_acc": s.metrics.get("final/test/acc"), "created": s.created, "parent": s.parent,
                           "problem": s.problem or None} for s in summaries], indent=1))
        return
    if not summaries:
        out.print(f"no runs in {store.root} (train one with `landscape train`)")
        return
    table = Table("id", "name", "kind", "status", "test acc", "created", "parent", box=None)
    for s in summaries:
        acc = s.metrics.get("final/test/acc") if s.status == "complete" else None
        status = f"[red]{s.display_status}[/]" if s.damaged else (s.display_status or s.status)
        table.add_row(s.id, s.name, s.kind, status, _pct(acc), s.created, s.parent or "")
    out.print(table)
    damaged = [s for s in summaries if s.damaged]
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
    @app.command("ls", epilog="**Examples**\n\n    landscape ls --store runs/\n\n    landscape ls --json")
    def ls_command(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
        """List the runs in the store: status (running, interrupted, damaged...), accuracy, parent."""
        list_runs(store, as_json)

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
