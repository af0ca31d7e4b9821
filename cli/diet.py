"""The data-diet commands: `landscape scores` and `landscape diet`.

`register(app)` adds them to the main typer app. Each parses its flags, makes its one call
(landscape.calls: `landscape.api.scores` or `landscape.api.diet`), and prints what the stored run holds.
"""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from .flags import TRAIN_FLAGS, _flag, with_flags

_SCORE_HELP = "Difficulty score: el2n, grand, forgetting or lmc."
_SCORE_FLAGS = [
    _flag("at", Optional[str], None, "Score at this step of the scoring runs (el2n: 1ep, grand and lmc: 0): "
          "step t of a normal --steps run (its schedule, stopped at t) [default: by score].", show_default=False),
    _flag("runs", Optional[int], None, "S scoring runs averaged, trained as one population (el2n, grand: 10; "
          "forgetting: 4; lmc: 2 sibling pairs) [default: by score].", show_default=False),
]
_IMP_FLAGS = [
    _flag("then_imp", bool, False, "Then run IMP on the full training set, rewinding to the pre-trained weights.",
          "--then-imp/--no-then-imp"),
    _flag("levels", int, 5, "IMP levels after the dense level 0 (with --then-imp)."),
    _flag("prune_fraction", float, 0.2, "Fraction of the remaining weights pruned per IMP level."),
    _flag("scope", str, "layerwise", "layerwise or global pruning."),
    _flag("criterion", str, "magnitude", "magnitude, rescaled-magnitude or random."),
    _flag("output_fraction", Optional[float], None, "Own fraction for the output layer.", show_default=False),
    _flag("controls", str, "reinit,random-prune", "IMP controls per level: reinit, random-prune, rescaled-reinit "
          "(comma-separated), or none; the same default as `landscape imp`."),
]


_TRAIN_NO_REPLICATES = [p for p in TRAIN_FLAGS if p.name != "replicates"]


def register(app: typer.Typer) -> None:
    """Add `scores` and `diet` to `app`."""

    @app.command("scores", epilog="""**Examples**

    landscape scores --model lenet_300_100 --dataset mnist --score el2n --at 1ep --runs 10 --data-dir ../shared/data

    landscape scores --model conv2 --dataset digits --score grand --runs 4

    landscape scores --model lenet_300_100 --dataset mnist --score forgetting --steps 5ep --runs 4

The scores of every training example (the training set less the validation examples), averaged over
the runs, are stored as a run that `landscape diet --scores-from RUN` picks subsets from. Higher is harder.
""")
    @with_flags(_SCORE_FLAGS + _TRAIN_NO_REPLICATES)
    def scores(
        score: Annotated[str, typer.Option(help=_SCORE_HELP)] = "el2n",
        **flags,
    ) -> None:
        """Score every training example's difficulty: EL2N, GraNd, forgetting events or the LMC barrier.

        The S scoring runs share the training flags (model, dataset, optimizer...) and differ in their
        seeds (seed, seed+1, ...). EL2N and GraNd score the network at step --at of a normal training
        run of --steps: the runs follow that schedule (learning rate, milestones, warm-up) and stop at
        --at, which must lie within --steps. Rerunning the same command reuses the stored scores.
        """
        from landscape.cli import commands

        commands.scores({**flags, "score": score})

    @app.command("diet", epilog="""**Examples**

    landscape diet --model lenet_300_100 --dataset mnist --subset easy --fraction 0.1 --pretrain-steps 500it --then-imp --levels 8 --data-dir ../shared/data

    landscape diet --model lenet_300_100 --dataset mnist --subset random --fraction 0.1 --pretrain-steps 500it --then-imp --levels 8

    landscape diet --model conv2 --dataset digits --subset hard --size 300 --offset 10% --scores-from 3f9a1c --pretrain-steps 100it

The protocol of Paul et al. 2022: pre-train from θ0 for T steps on the subset, then IMP on the full data
with every ticket rewound to the pre-trained weights. `--steps` is the length of IMP's training; the
pre-training is the first T steps of that schedule (its learning rate at step t is IMP's), and replicate r
pre-trains from IMP replicate r's θ0. Without --then-imp, run IMP later with `landscape imp --rewind-from DIET`.
""")
    @with_flags(_SCORE_FLAGS + _IMP_FLAGS + TRAIN_FLAGS)
    def diet(
        subset: Annotated[str, typer.Option(help="easy (lowest scores), hard (highest) or random.")] = "easy",
        size: Annotated[Optional[int], typer.Option(help="Subset size in examples (or --fraction).", show_default=False)] = None,
        fraction: Annotated[Optional[float], typer.Option(help="Subset size as a fraction of the training split, in (0, 1].", show_default=False)] = None,
        offset: Annotated[str, typer.Option(help="Skip this many examples from the start of the order first: a count or a percentage (10%).")] = "0",
        balanced: Annotated[bool, typer.Option("--balanced/--unbalanced", help="Take the subset within each class, in proportion to its size.")] = True,
        subset_seed: Annotated[int, typer.Option(help="Seed of a random subset.")] = 0,
        pretrain_steps: Annotated[str, typer.Option(help="T: pre-training steps on the subset: the first T steps of IMP's --steps schedule (500it; epochs count passes over the subset).")] = "500it",
        score: Annotated[str, typer.Option(help=_SCORE_HELP + " Computed first unless --scores-from.")] = "el2n",
        scores_from: Annotated[Optional[str], typer.Option(help="Use a stored scores run (ID, prefix or name).", show_default=False)] = None,
        **flags,
    ) -> None:
        """Data-diet pre-training: T steps on an easy, hard or random subset, as IMP's rewind point.

        Rerunning the same command reuses the scores, the pre-training and finished IMP levels.
        """
        from landscape.cli import commands

        commands.diet({**flags, **{k: v for k, v in locals().items() if k not in ("flags", "commands")}})
