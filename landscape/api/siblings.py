"""Siblings: copies of a stored checkpoint trained on with different data order and augmentation.

    kids = siblings("parent:500it", count=2, store="runs", data_dir="../shared/data")

Siblings are training runs whose configuration is the parent's with `start` at the parent's
checkpoint (the optimizer state and the rest of the schedule continue from there) and different
data-order and augmentation seeds, derived from the parent's seeds and the sibling's index; the
init seed, mask and everything else are the parent's. K siblings train together as one population.

For spawning siblings a step is required (`RUN:STEP`), except for an IMP level: `IMP@L` spawns from
the level's starting point (the dense run's weights at the rewind step, under the level's mask),
and `IMP@L:STEP` from a checkpoint of the ticket.
"""
from __future__ import annotations

import math

from dataclasses import dataclass, replace

import torch

from ..errors import ConfigError, StoreError
from ..steps import Step
from ..store import Run, Store
from ..train.config import Seeds, StartFrom, TrainConfig
from ..train.rng import derive_seed
from .context import readable_store
from .refs import Endpoint, resolve_endpoint
from .train import TrainOptions, train

_SIBLING_STREAM = 0x51B1  # sibling seeds: their own stream, apart from every other derived seed



def sibling_seeds(base: Seeds, index: int) -> Seeds:
    """Sibling `index`'s seeds: the parent's init seed; its own data-order and augmentation seeds."""
    return Seeds(init=base.init,
                 data_order=derive_seed(_SIBLING_STREAM, 1, base.data_order, index) % (2**31),
                 augment=derive_seed(_SIBLING_STREAM, 2, base.augment, index) % (2**31))


@dataclass(frozen=True)
class SiblingPlan:
    """Where siblings start and what they train: K configurations differing only in their seeds."""

    source: Endpoint
    step: int                      # the iteration they start at
    configs: list[TrainConfig]
    mask: dict[str, torch.Tensor] | None

    @property
    def parent(self) -> str:
        return self.configs[0].start.run


def plan_siblings(store: Store, source: Endpoint | str, count: int) -> SiblingPlan:
    """The configurations of `count` siblings spawned from `source` (nothing is trained or written).

    `RUN:STEP` starts at that checkpoint and continues the schedule, optimizer state included;
    `IMP@L` starts where the level's member started (its rewind point, under its mask).
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise ConfigError(f"-k {count!r}: spawn at least 2 siblings (a pair to interpolate between)")
    if isinstance(source, str):
        source = resolve_endpoint(store, source)
    run = source.run
    base = source.config
    total = int(run.plan.get("total_steps", 0))
    if run.kind == "imported":  # trained elsewhere: siblings train its configuration from its weights
        start = StartFrom(run.id, 0, with_optimizer=False)
        total = math.inf
    elif source.imp is not None and not source.step_given:
        if base.start is None:  # level 0: the dense run starts at its init
            start = StartFrom(run.id, 0)
        elif base.reinit or base.start.fresh:  # its own start weights are a fresh draw: its own checkpoint
            start = StartFrom(run.id, base.start.step)
        else:  # the ticket's start: the dense run at the rewind step, under the ticket's mask
            start = base.start
    elif not source.step_given:
        raise ConfigError(f"{source.ref}: say which checkpoint to spawn siblings from",
                          f"write RUN:STEP, e.g. {source.ref}:0 or {source.ref}:500it")
    else:
        start = StartFrom(run.id, source.step, with_optimizer=True)
    if start.step >= total:
        raise ConfigError(f"{source.ref} is at the end of training ({total}it): siblings would have nothing to train",
                          "spawn from an earlier checkpoint")
    if start.run == run.id and start.step not in run.checkpoint_steps:
        raise StoreError(f"run {run.id} has no checkpoint at {start.step}it", "choose a stored step")
    configs = [replace(base, start=start, reinit=None, seeds=sibling_seeds(base.seeds, i),
                       checkpoint_at=(str(Step(start.step)), "end")).validate() for i in range(count)]
    return SiblingPlan(source, start.step, configs, run.mask())


def siblings(source: str, count: int = 2, options: TrainOptions | None = None, **option_values) -> list[Run]:
    """Spawn `count` siblings from a stored checkpoint and train them to the end, as one population.

    Complete siblings are reused (their runs are named by their configuration), interrupted ones
    resume. Returns the sibling runs, each with `parent` set to the run it started from.
    """
    options = replace(options or TrainOptions(), **option_values)
    store = readable_store(options.store)
    plan = plan_siblings(store, source, count)
    return train_siblings(plan, options)


def train_siblings(plan: SiblingPlan, options: TrainOptions) -> list[Run]:
    """Train the siblings, named NAME-rK after `options.name`, else after their source and step."""
    base = f"{plan.source.run.name}-sib{plan.step}it"
    names = None if options.name else [f"{base}-r{i}" for i in range(len(plan.configs))]
    return train(plan.configs, options, masks=[plan.mask] * len(plan.configs), names=names)



__all__ = ["sibling_seeds", "SiblingPlan", "plan_siblings", "siblings", "train_siblings"]
