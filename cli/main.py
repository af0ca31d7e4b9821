"""`landscape`: the command line. Each command parses its flags and makes one call into the library."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import run_guarded
from .flags import with_train_flags

app = typer.Typer(
    name="landscape", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    help="Loss-landscape diagnostics for lottery-ticket research: train, prune, interpolate, report.",
    epilog="""Start with `landscape train --help`. Runs go to ./landscape-store (or --store / LANDSCAPE_STORE).

**Environment variables**

* `LANDSCAPE_STORE`: the store directory (default ./landscape-store; --store wins)
* `LANDSCAPE_DATA`: the data root (default ./data; --data-dir wins)
* `LANDSCAPE_CACHE`: where decoded datasets are cached (default: the user cache folder, e.g. ~/.cache/landscape)
* `LANDSCAPE_PROGRESS`: progress on stderr: `bar` (live bar; the default on a terminal), `lines` (one status line every `LANDSCAPE_PROGRESS_EVERY` seconds, 30 by default; the default when stderr is not a terminal), `off`
* `LANDSCAPE_SAVE_INTERVAL`: least seconds between resume points of a training run (default 5)
* `LANDSCAPE_MIRROR`: `data fetch` downloads from this URL or folder instead of the official sites
* `OMP_NUM_THREADS`: PyTorch's CPU threads (1 is fastest for small networks on a busy machine)
""",
)


def _version(value: bool) -> None:
    if value:
        from landscape import __version__

        print(f"landscape {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", callback=_version,
                                                is_eager=True)] = False) -> None:
    pass
data_app = typer.Typer(no_args_is_help=True, help="Datasets: list them, fetch the official files.")
app.add_typer(data_app, name="data")

_DEFAULT_STORE = os.environ.get("LANDSCAPE_STORE") or "landscape-store"
StoreOpt = Annotated[Optional[str], typer.Option("--store", help="Store directory [env LANDSCAPE_STORE; default ./landscape-store].", show_default=False)]
DataDirOpt = Annotated[Optional[str], typer.Option("--data-dir", help="Data root [env LANDSCAPE_DATA; default ./data].", show_default=False)]


@app.command(epilog="""**Examples**

    landscape train --model lenet_300_100 --dataset mnist --steps 10ep --data-dir ../shared/data

    landscape train --model resnet20 --dataset imagefolder:../shared/data/cifar10-jpeg --width 0.5 --steps 2ep

    landscape train --model lenet_300_100 --dataset digits --replicates 4 --steps 500it

    landscape train --model lenet_300_100 --dataset mnist --from 3f9a1c:500it --data-seed 1
""")
@with_train_flags
def train(
    start_from: Annotated[Optional[str], typer.Option("--from", help="Start from a stored checkpoint RUN:STEP and continue its schedule.", show_default=False)] = None,
    **flags,
) -> None:
    """Train a network (or K replicates) into the store, with checkpoints and learning curves.

    train/acc and train/loss are the network evaluated on the un-augmented training split (at the
    end; at every evaluation with --eval-train); train_running/* is the running average over the
    augmented minibatches since the previous evaluation. Rerunning the same command reuses a
    finished run and continues an interrupted one.
    """
    from landscape.cli import commands

    commands.train({**flags, "start_from": start_from})


@app.command(epilog="""**Examples**

    landscape imp --model lenet_300_100 --dataset mnist --data-dir ../shared/data --levels 10 --steps 5000it --output-fraction 0.1 --controls reinit,random-prune

    landscape imp --model conv2 --dataset digits --levels 5 --scope global --rewind 100it --replicates 2

    landscape imp --model lenet_300_100 --dataset cifar10 --ticket-from 3f9a1c@5 --levels 5 --optimizer adam

    landscape imp --model lenet_300_100 --dataset mnist --levels 8 --rewind-from diet-easy-5500

    landscape imp --model lenet_300_100 --dataset digits --levels 4 --rewind 20it --retrain lr-rewind

    landscape imp --model lenet_300_100 --dataset digits --levels 4 --retrain finetune --retrain-steps 100it

    landscape imp --model mnist1d_cnn --dataset mnist1d --levels 5 --from theirs
""")
@with_train_flags
def imp(
    levels: Annotated[int, typer.Option(help="Pruning levels after the dense level 0.")] = 5,
    prune_fraction: Annotated[float, typer.Option(help="Fraction of the remaining weights pruned per level.")] = 0.2,
    rewind: Annotated[str, typer.Option(help="Reset survivors to their value at this step of the dense run (0 = θ0).")] = "0",
    scope: Annotated[str, typer.Option(help="layerwise (Frankle & Carbin 2019) or global (Frankle et al. 2020).")] = "layerwise",
    criterion: Annotated[str, typer.Option(help="magnitude, rescaled-magnitude or random.")] = "magnitude",
    output_fraction: Annotated[Optional[float], typer.Option(help="Own fraction for the output layer (F&C: half the rate; 0 leaves it dense).", show_default=False)] = None,
    layer_fraction: Annotated[Optional[list[str]], typer.Option(help="Per-layer fraction NAME=F (repeatable).", show_default=False)] = None,
    exclude: Annotated[Optional[str], typer.Option(help="Comma-separated layers never pruned.", show_default=False)] = None,
    controls: Annotated[str, typer.Option(help="Controls per level: reinit, random-prune, rescaled-reinit (comma-separated, or none).")] = "reinit,random-prune",
    ticket_from: Annotated[Optional[str], typer.Option(help="Transfer: train the tickets of another IMP run's levels 1..L, RUN@L.", show_default=False)] = None,
    transfer_output: Annotated[str, typer.Option(help="A new output layer, when classes differ: pruned (to the ticket's density) or dense.")] = "pruned",
    rewind_from: Annotated[Optional[str], typer.Option(help="Data diet: start the dense run from a pre-training (a diet run, or a training run) and rewind there.", show_default=False)] = None,
    retrain: Annotated[str, typer.Option(help="weight-rewind (rewind weights to --rewind), lr-rewind (trained weights, replay the schedule's last R steps) or finetune (trained weights, R steps at the final rate); Renda et al. 2020.")] = "weight-rewind",
    retrain_steps: Annotated[Optional[str], typer.Option(help="R, the retraining budget of lr-rewind and finetune, e.g. 2ep [default: steps - rewind].", show_default=False)] = None,
    transfer_init: Annotated[str, typer.Option(help="With --ticket-from: ticket (its rewound weights) or trained (its trained, pruned weights, fine-tuned).")] = "ticket",
    start_from: Annotated[Optional[str], typer.Option("--from", help="Start every replicate's dense run from this network (an imported one, or a training run's end) and rewind tickets there.", show_default=False)] = None,
    **flags,
) -> None:
    """Iterative magnitude pruning with rewinding and controls: find winning tickets.

    Each level prunes the ticket, rewinds the survivors and retrains them beside the controls.
    Rerunning the same command continues at the first incomplete level; a larger --levels extends it.
    """
    from landscape.cli import commands

    commands.imp({**flags, **{k: v for k, v in locals().items() if k not in ("flags", "commands")}})


@app.command(epilog="""**Examples**

    landscape show 3f9a1c

    landscape show lenet_300_100-mnist-adam-s0

    landscape show fc-lenet              # an IMP run: its level table

    landscape show fc-lenet@3            # the level-3 ticket: its sparsity per layer

    landscape show fc-lenet@3/reinit/r1  # any reference `landscape lmc` accepts

    landscape show 3f9a1c --json

`--json` prints one document: the keys of `landscape ls --json` plus "path", "reference", "config",
"metrics", "environment", "checkpoints", "resume_step", and "levels" (IMP runs) or "layers" (runs with a mask).
""")
def show(
    run: Annotated[str, typer.Argument(help="RUN (ID, ID prefix, name), RUN:STEP or IMP@L[/ROLE][/rR].")],
    store: StoreOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")] = False,
) -> None:
    """Show one run: configuration, metrics, checkpoints, environment; IMP levels; a ticket's sparsity per layer."""
    from landscape.cli import inspect

    inspect.show(run, store, json_)


@app.command(epilog="""**Examples**

    landscape report 3f9a1c

    landscape report 3f9a1c 7be204 --out mnist.html --open
""")
def report(
    runs: Annotated[list[str], typer.Argument(help="Runs to report on (ID, prefix or name); several overlay.")],
    out: Annotated[Optional[Path], typer.Option(help=f"HTML file to write; a missing folder is created. [default: {_DEFAULT_STORE}/reports/RUN-IDS.html]", show_default=False)] = None,
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
    mirror: Annotated[Optional[str], typer.Option(help="Download every file from MIRROR/<file name> (a URL or a local folder) instead of the official sites [env LANDSCAPE_MIRROR].", show_default=False)] = None,
) -> None:
    """Download a dataset's official files, verify their md5, resume partial downloads."""
    from landscape.cli import commands

    commands.fetch(name, data_dir, force, mirror)


from .diet import register as _register_diet  # noqa: E402
from .exchange import register as _register_exchange  # noqa: E402
from .lmc import register as _register_lmc  # noqa: E402
from .sweep import register as _register_sweep  # noqa: E402
from .baselines import register as _register_baselines  # noqa: E402
from .geometry import register as _register_geometry  # noqa: E402
from .store import register as _register_store  # noqa: E402
from .align import register as _register_align  # noqa: E402
_register_lmc(app)
_register_exchange(app)
_register_diet(app)
_register_sweep(app)
_register_baselines(app)
_register_geometry(app)
_register_store(app)
_register_align(app)
def main(argv: list[str] | None = None) -> None:
    sys.exit(run_guarded(typer.main.get_command(app), argv))


if __name__ == "__main__":
    main()
