"""`landscape sweep SPEC.toml`: a grid of experiments on Dask. Parses flags, makes one call, prints."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

EPILOG = """**Examples**

    landscape sweep experiments/imp_lenet_sweep.toml --dry-run

    landscape sweep experiments/imp_lenet_sweep.toml --workers 2 --data-dir ../shared/data

    landscape sweep study.toml --scheduler tcp://10.0.0.5:8786 --gpus-per-task 0.25

    landscape sweep study.toml --scheduler tcp://10.0.0.5:8786 --collect

    landscape sweep study.toml --cluster slurm --jobs 8 --cores 8 --memory 32GB --walltime 04:00:00 --queue gpu --gpus-per-job 1

A minimal sweep file (options are the command's flags by name; [grid] lists are crossed):

    command = "train"
    [options]
    model = "lenet_300_100"
    dataset = "digits"
    steps = "30it"
    [grid]
    seed = [0, 1, 2, 3]

Rerunning a spec runs only what the store does not hold complete. Exit status: 0 all done, 1 a task
failed (see the summary), 2 bad input (nothing submitted), 130 interrupted (rerun to continue).
"""


def register(app: typer.Typer) -> None:
    @app.command("sweep", epilog=EPILOG)
    def sweep(
        spec: Annotated[Path, typer.Argument(help="The sweep file (TOML).", show_default=False)],
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List every task with its run ID and whether the store holds it complete; run nothing.")] = False,
        workers: Annotated[Optional[int], typer.Option(help="Worker processes of the local cluster [default: cores ÷ threads per task].", show_default=False)] = None,
        threads_per_task: Annotated[int, typer.Option(help="Torch/OpenMP threads of each task (set in the worker).")] = 1,
        scheduler: Annotated[Optional[str], typer.Option(help="Run on an existing Dask cluster: tcp://HOST:8786 (`dask scheduler`).", show_default=False)] = None,
        cluster: Annotated[str, typer.Option(help="local (a LocalCluster here) or slurm (jobs through dask-jobqueue).")] = "local",
        jobs: Annotated[int, typer.Option(help="SLURM: jobs to submit (one worker each; the most, with --adaptive).")] = 1,
        cores: Annotated[int, typer.Option(help="SLURM: cores per job.")] = 1,
        memory: Annotated[str, typer.Option(help="SLURM: memory per job, e.g. 16GB.")] = "4GB",
        walltime: Annotated[str, typer.Option(help="SLURM: time limit per job, HH:MM:SS.")] = "01:00:00",
        queue: Annotated[Optional[str], typer.Option(help="SLURM: partition.", show_default=False)] = None,
        gpus_per_job: Annotated[int, typer.Option(help="SLURM: GPUs per job (--gres=gpu:G, offered as the GPU resource).")] = 0,
        adaptive: Annotated[bool, typer.Option("--adaptive", help="SLURM: scale between 0 and --jobs jobs with the queue.")] = False,
        gpus_per_task: Annotated[Optional[float], typer.Option(help="GPUs each task holds; 0.25 packs four on a GPU [default: 1 where workers offer GPUs, else 0].", show_default=False)] = None,
        collect: Annotated[bool, typer.Option("--collect", help="Workers share no filesystem: run in scratch stores there and ship finished run files back (with --scheduler).")] = False,
        set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a fixed option of every stage, KEY=VALUE (repeatable), e.g. --set steps=300it for a trial run.", show_default=False)] = None,
        status_every: Annotated[float, typer.Option(help="Outside a terminal, one status line every this many seconds (0: none).")] = 30.0,
        json_out: Annotated[bool, typer.Option("--json", help="Print the summary (or the dry run) as JSON.")] = False,
        store: Annotated[Optional[str], typer.Option(help="Store directory for options that name none [env LANDSCAPE_STORE; default ./landscape-store].", show_default=False)] = None,
        data_dir: Annotated[Optional[str], typer.Option(help="Data root for options that name none [env LANDSCAPE_DATA; default ./data].", show_default=False)] = None,
    ) -> None:
        """Run a grid of experiments (a TOML sweep file) on Dask: here, on a cluster, or on SLURM.

        Each grid point is the command line of one command (train, imp, siblings, lmc, instability,
        scores, diet) and is checked before anything is submitted. Runs go straight into the store;
        stored runs are reused, interrupted ones resume.
        """
        from landscape.errors import ConfigError
        from landscape.sweep import SlurmOptions, load_spec
        from landscape.sweep import sweep as run_sweep
        from landscape.sweep.spec import parse_override, with_overrides

        if cluster not in ("local", "slurm"):
            raise ConfigError(f"unknown --cluster {cluster!r}", "use local or slurm (or --scheduler ADDRESS)")
        if cluster == "slurm" and scheduler:
            raise ConfigError("--cluster slurm and --scheduler both say where to run", "give one of them")
        slurm = SlurmOptions(jobs, cores, memory, walltime, queue, gpus_per_job, adaptive) if cluster == "slurm" else None
        if collect and not scheduler:
            raise ConfigError("--collect needs --scheduler ADDRESS",
                              "a local cluster (or a cluster sharing the store's filesystem) writes the store directly")
        parsed = load_spec(spec)
        if set_:
            parsed = with_overrides(parsed, dict(parse_override(item) for item in set_))
        result = run_sweep(parsed, store=store, data_dir=data_dir, workers=workers, threads_per_task=threads_per_task,
                           scheduler=scheduler, slurm=slurm, gpus_per_task=gpus_per_task, collect=collect,
                           dry_run=dry_run, status_every_s=status_every)
        print_result(result, json_out, dry_run)
        if result.failed and not dry_run:
            raise typer.Exit(1)


def print_result(result, as_json: bool, dry_run: bool) -> None:
    from rich.table import Table

    from .commands import out

    if as_json:
        print(json.dumps([{"stage": t.stage, "task": t.label, "key": t.key, "status": t.status, "runs": t.runs,
                           "error": t.error, "seconds": round(t.seconds, 2), "duplicates": t.duplicates}
                          for t in result.tasks], indent=1))
        return
    table = Table("stage", "task", "status", "runs", "time" if not dry_run else "key", box=None)
    for t in result.tasks:
        runs = " ".join(t.runs) or "-"
        last = t.key if dry_run else (f"{t.seconds:.1f}s" if t.seconds else "-")
        table.add_row(t.stage, t.label + (f" (+{t.duplicates} equal)" if t.duplicates else ""), t.status, runs, last)
        if t.error:
            table.add_row("", f"  {t.error}", "", "", "")
    out.print(table)
    if dry_run:
        stored = sum(1 for t in result.tasks if t.status == "stored")
        out.print(f"{len(result.tasks)} task(s): {stored} stored complete, {len(result.tasks) - stored} to run (dry run: nothing ran)")
    else:
        counts = ", ".join(f"{result.count(s)} {s}" for s in ("done", "reused", "failed", "skipped") if result.count(s))
        out.print(f"sweep: {counts or 'nothing to do'} in {result.seconds:.1f}s")
