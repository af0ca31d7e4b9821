"""Gradual magnitude pruning into the store: `landscape gmp`.

A GMP run is an ordinary training run whose configuration carries a `GmpSpec`: the engine prunes
its mask on the cubic schedule as it trains (`landscape.prune.gmp`), and every checkpoint and
resume point holds the mask with the weights, so a killed run continues to the identical result.
Replicates are a population with seeds shifted by r, as for `landscape train`.

    from landscape.api.gmp import gmp
    from landscape.train.config import GmpSpec, recipe
    runs = gmp(recipe("lenet_300_100", "mnist", steps="5ep"), GmpSpec(0.05, start="1ep", end="3ep", every="100it"),
               replicates=2, data_dir="../shared/data")
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import ConfigError
from ..store import Run
from ..train.config import GmpSpec, Seeds, TrainConfig
from .train import TrainOptions, train


def gmp_configs(config: TrainConfig, spec: GmpSpec, replicates: int = 1) -> list[TrainConfig]:
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise ConfigError(f"--replicates {replicates!r} must be at least 1")
    s = config.seeds
    return [replace(config, gmp=spec, seeds=Seeds(s.init + r, s.data_order + r, s.augment + r)).validate()
            for r in range(replicates)]


def gmp(config: TrainConfig, spec: GmpSpec, replicates: int = 1, options: TrainOptions | None = None,
        **option_values) -> list[Run]:
    """Train `replicates` networks with gradual magnitude pruning; return the stored runs."""
    return train(gmp_configs(config, spec, replicates), options, **option_values)


def final_density(run: Run) -> float:
    """The fraction of prunable weights alive at the end of a GMP run (its last checkpoint's mask)."""
    mask = run.checkpoint(run.checkpoint_steps[-1]).mask
    if mask is None:
        raise ConfigError(f"run {run.id} holds no gradual-pruning mask", "name a run made by `landscape gmp`")
    kept = sum(int(m.sum()) for m in mask.values())
    return kept / sum(m.numel() for m in mask.values())
