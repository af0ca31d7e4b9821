"""Gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune"): the cubic schedule
and the pruning step, inside one training run.

From step t0 to t_end, every Δt steps (and at t_end), the weights are pruned to the density
1 - s_t with

    s_t = s_f + (s_i - s_f) (1 - (t - t0) / (t_end - t0))^3,

s_i = 1 - initial density, s_f = 1 - final density: fast at first, slowly at the end. Each step
removes the smallest-magnitude weights among the alive ones, to exactly floor(d_t x T) kept per
group (the IMP counting rule, `one_shot`), globally or layer by layer.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from .masks import Mask
from .pruning import one_shot


def gmp_steps(start: int, end: int, every: int) -> list[int]:
    """The pruning steps: t0, t0 + Δt, ... below t_end, and t_end."""
    return sorted(set(range(start, end, every)) | {end})


def gmp_density(step: int, *, start: int, end: int, initial: float, final: float) -> float:
    """d_t = 1 - s_t of the cubic schedule (the initial density before t0, the final after t_end)."""
    progress = min(max((step - start) / (end - start), 0.0), 1.0)
    s_i, s_f = 1 - initial, 1 - final
    return 1 - (s_f + (s_i - s_f) * (1 - progress) ** 3)


def gmp_prune(weights: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor], *, density: float,
              scope: str) -> Mask | None:
    """The mask at `density`, magnitude among the alive weights; None where there is nothing to prune
    (a density of 1)."""
    if density >= 1:
        return None
    return one_shot(weights, mask, target_density=density, scope=scope, criterion="magnitude")


class GmpSchedule:
    """The per-step mask update the training engine calls (`mask_update(step, population)`)."""

    def __init__(self, *, start: int, end: int, every: int, initial: float, final: float, scope: str):
        self.steps = frozenset(gmp_steps(start, end, every))
        self.start, self.end, self.initial, self.final, self.scope = start, end, initial, final, scope

    def density(self, step: int) -> float:
        return self.final if step == self.end else gmp_density(step, start=self.start, end=self.end,
                                                                 initial=self.initial, final=self.final)

    def __call__(self, step: int, population) -> None:
        if step not in self.steps:
            return
        for i in range(len(population)):
            mask = population.mask(i)
            new = gmp_prune(population.weights(i, list(mask)), mask, density=self.density(step), scope=self.scope)
            if new is not None:
                population.set_mask(i, new)
