"""The path: the straight segment θ(α) = (1 − α)·θA + α·θB between two networks in weight space.

In the "subspace × metric" view of loss-landscape tooling, this module is the subspace and
`evaluate` is the metric. A path hands out whole state dicts, one α at a time (`at`) or a chunk
of α stacked along a new leading dimension (`stacked`) for `torch.func.vmap`.

Interpolation uses `torch.lerp`, which computes a + w·(b − a) for w < 0.5 and b − (b − a)·(1 − w)
otherwise. That makes three cases exact rather than merely close: θ(0) is bitwise θA, θ(1) is
bitwise θB, and θ(α) is bitwise θA for every α when A == B. So a network's barrier against
itself is exactly zero and the curve's endpoints are exactly the endpoint networks.
"""
from __future__ import annotations

import operator
from typing import Sequence

import torch

from ..errors import ConfigError

State = dict[str, torch.Tensor]


def alpha_grid(alphas: torch.Tensor | Sequence[float] | int) -> torch.Tensor:
    """The α values to evaluate, as a 1-D float64 CPU tensor.

    An integer n gives n evenly spaced points from 0 to 1 inclusive (Frankle et al. use 30).
    Explicit values are taken as given: any order, and α outside [0, 1] extrapolates.
    """
    if isinstance(alphas, bool):
        raise ConfigError(f"alphas={alphas!r} is not a point count or a list of α values")
    if not torch.is_tensor(alphas):
        try:
            count = operator.index(alphas)
        except TypeError:
            count = None
        if count is not None:
            if count < 2:
                raise ConfigError(f"alphas={count} gives fewer than 2 points",
                                  "ask for at least 2 (the endpoints); Frankle et al. use 30")
            return torch.linspace(0.0, 1.0, count, dtype=torch.float64)
    try:
        grid = torch.as_tensor(alphas, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"alphas={alphas!r} is not a point count or a list of α values") from None
    if grid.dim() != 1 or grid.numel() == 0 or not torch.isfinite(grid).all():
        raise ConfigError("alphas must be a point count or a non-empty 1-D list of finite numbers",
                          "e.g. alphas=30 or alphas=torch.linspace(0, 1, 30)")
    return grid


class LinearPath:
    """θ(α) = (1 − α)·θA + α·θB over every floating-point entry of two matching state dicts.

    Entries that are not floating point (BatchNorm's `num_batches_tracked`) cannot be
    interpolated; they are taken from A. They only matter when running statistics are updated,
    and then BatchNorm recomputation resets them anyway.
    """

    def __init__(self, start: State, end: State):
        self.start = start
        self.end = end

    def at(self, alpha: float) -> State:
        """θ(α), a fresh state dict (safe to modify in place)."""
        weight = torch.tensor(float(alpha), dtype=torch.float64)
        return {name: self._lerp(name, weight) for name in self.start}

    def stacked(self, alphas: torch.Tensor) -> State:
        """θ(α) for each α in `alphas`, stacked: every entry gets a leading dimension len(alphas)."""
        return {name: self._lerp(name, alphas, stack=True) for name in self.start}

    def _lerp(self, name: str, alpha: torch.Tensor, stack: bool = False) -> torch.Tensor:
        a, b = self.start[name], self.end[name]
        if not a.is_floating_point():
            return a.expand(len(alpha), *a.shape).clone() if stack else a.clone()
        weight = alpha.to(device=a.device, dtype=a.dtype)
        if stack:
            weight = weight.view(-1, *([1] * a.dim()))
            a, b = a.unsqueeze(0), b.unsqueeze(0)
        return torch.lerp(a, b, weight)
