"""`landscape`: the command line. Each command parses its flags and makes one call into the library."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import run_guarded

app = typer.Typer(
    name="landscape", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    help="Loss-landscape diagnostics for lottery-ticket research: train, prune, interpolate, report.",
    epilog="Start with `landscape train --help`. Runs go to ./landscape-store (or --store / LANDSCAPE_STORE).",
)
data_app = typer.Typer(no_args_is_help=True, help="Datasets: list them, fetch the official files.")
app.add_typer(data_app, name="data")

StoreOpt = Annotated[Optional[str], typer.Option("--store", help="Store directory [env LANDSCAPE_STORE; default ./landscape-store].", show_default=False)]
DataDirOpt = Annotated[Optional[str], typer.Option("--data-dir", help="Data root [env LANDSCAPE_DATA; default ./data].", show_default=False)]


@app.command(epilog="""**Examples**

    landscape train --model lenet_300_100 --dataset mnist --steps 10ep --data-dir ../shared/data

    landscape train --model resnet20 --dataset imagefolder:../shared/data/cifar10-jpeg --width 0.5 --steps 2ep

    landscape train --model lenet_300_100 --dataset digits --replicates 4 --steps 500it

    landscape train --model lenet_300_100 --dataset mnist --from 3f9a1c:500it --data-seed 1
""")
def train(
    model: Annotated[str, typer.Option(help="Network, e.g. lenet_300_100, conv4, resnet20 (see `landscape models`).")] = "lenet_300_100",
    dataset: Annotated[str, typer.Option(help="Dataset: mnist, cifar10, digits, imagefolder:PATH... (see `landscape data list`).")] = "digits",
    steps: Annotated[Optional[str], typer.Option(help="Training length: 500it, 2ep or 50k. [default: the model's recipe]", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size. [default: recipe]", show_default=False)] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="sgd, adam or adamw. [default: recipe]", show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate. [default: recipe]", show_default=False)] = None,
    momentum: Annotated[Optional[float], typer.Option(help="SGD momentum.", show_default=False)] = None,
    nesterov: Annotated[Optional[bool], typer.Option("--nesterov/--no-nesterov", help="Nesterov momentum.", show_default=False)] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Weight decay.", show_default=False)] = None,
    schedule: Annotated[Optional[str], typer.Option(help="constant, step or cosine.", show_default=False)] = None,
    milestones: Annotated[Optional[str], typer.Option(help="Step-schedule milestones, e.g. 80ep,120ep.", show_default=False)] = None,
    gamma: Annotated[Optional[float], typer.Option(help="Step-schedule factor.", show_default=False)] = None,
    warmup: Annotated[Optional[str], typer.Option(help="Linear warm-up length, e.g. 500it.", show_default=False)] = None,
    augment: Annotated[Optional[str], typer.Option(help="none, flip, crop or crop-flip. [default: by dataset]", show_default=False)] = None,
    val_size: Annotated[Optional[int], typer.Option(help="Validation examples held out of train. [default: 10%, at most 5000]", show_default=False)] = None,
    split_seed: Annotated[int, typer.Option(help="Seed of the train/validation split.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for init, data order and augmentation alike.")] = 0,
    init_seed: Annotated[Optional[int], typer.Option(help="Seed of the initial weights. [default: --seed]", show_default=False)] = None,
    data_seed: Annotated[Optional[int], typer.Option(help="Seed of the data order. [default: --seed]", show_default=False)] = None,
    augment_seed: Annotated[Optional[int], typer.Option(help="Seed of the augmentation. [default: --seed]", show_default=False)] = None,
    replicates: Annotated[int, typer.Option(help="Train K runs with seeds seed..seed+K-1 as one population.")] = 1,
    init: Annotated[str, typer.Option(help="kaiming_normal, kaiming_uniform, glorot_normal or glorot_uniform.")] = "kaiming_normal",
    width: Annotated[float, typer.Option(help="Width multiplier of the network.")] = 1.0,
    checkpoint_at: Annotated[str, typer.Option(help="Steps to keep weights at, e.g. 0,100it,2ep,end.")] = "0,end",
    eval_every: Annotated[str, typer.Option(help="Evaluate on validation and test every this many steps.")] = "1ep",
    start_from: Annotated[Optional[str], typer.Option("--from", help="Start from a stored checkpoint RUN:STEP and continue its schedule.", show_default=False)] = None,
    name: Annotated[Optional[str], typer.Option(help="A readable name for the run.", show_default=False)] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    population_path: Annotated[str, typer.Option(help="Population layout: auto, loop or vmap.")] = "auto",
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Train a network (or K replicates) into the store, with checkpoints and learning curves.

    Rerunning the same command reuses a finished run and continues an interrupted one.
    """
    from landscape.cli import commands

    commands.train(locals())


@app.command("ls", epilog="**Example**\n\n    landscape ls --store runs/")
def list_runs(store: StoreOpt = None) -> None:
    """List the runs in the store."""
    from landscape.cli import commands

    commands.list_runs(store)


@app.command(epilog="**Examples**\n\n    landscape show 3f9a1c\n\n    landscape show lenet_300_100-mnist-adam-s0")
def show(run: Annotated[str, typer.Argument(help="Run ID, unique ID prefix, or name.")], store: StoreOpt = None) -> None:
    """Show one run: configuration, metrics, checkpoints, environment."""
    from landscape.cli import commands

    commands.show(run, store)


@app.command(epilog="""**Examples**

    landscape report 3f9a1c

    landscape report 3f9a1c 7be204 --out mnist.html --open
""")
def report(
    runs: Annotated[list[str], typer.Argument(help="Runs to report on (ID, prefix or name); several overlay.")],
    out: Annotated[Optional[Path], typer.Option(help="HTML file to write. [default: <store>/reports/<runs>.html]", show_default=False)] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the report in a browser.")] = False,
    store: StoreOpt = None,
) -> None:
    """Write a self-contained interactive HTML report (works offline)."""
    from landscape.cli import commands

    commands.report(runs, out, open_, store)


@app.command(epilog="**Example**\n\n    landscape models")
def models() -> None:
    """List the networks in the model zoo."""
    from landscape.cli import commands

    commands.list_models()


@data_app.command("list", epilog="**Example**\n\n    landscape data list")
def data_list() -> None:
    """List the datasets landscape can read."""
    from landscape.cli import commands

    commands.list_datasets()


@data_app.command("fetch", epilog="""**Examples**

    landscape data fetch mnist --data-dir data

    LANDSCAPE_DATA=~/data landscape data fetch cifar10
""")
def data_fetch(
    name: Annotated[str, typer.Argument(help="mnist, fashion-mnist, cifar10, cifar100 or svhn.")],
    data_dir: DataDirOpt = None,
    force: Annotated[bool, typer.Option(help="Download again even if a file is present.")] = False,
) -> None:
    """Download a dataset's official files, verify their md5, resume partial downloads."""
    from landscape.cli import commands

    commands.fetch(name, data_dir, force)


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_guarded(typer.main.get_command(app), argv))


if __name__ == "__main__":
    main()
