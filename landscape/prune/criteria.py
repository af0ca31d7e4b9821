"""Pruning criteria: a score per weight; pruning removes the lowest-scoring live weights.

* "magnitude": |w| (Frankle & Carbin 2019).
* "rescaled-magnitude": |w| / s, with s the tensor's initialisation standard deviation. Under a
  global threshold plain magnitude prunes large-fan-in layers first only because their weights
  start smaller (Kaiming std sqrt(2 / fan_in)); dividing by s compares each weight with the
  distribution its layer was drawn from.
* "random": uniform scores from a `torch.Generator` seeded with `seed`, one draw per weight of
  every mask tensor in mask order, so a weight's score depends on the seed and its position
  alone, not on which tensors are excluded. This is the random-pruning control as a criterion.

Scores are float64: exact for float32 (and narrower) weights, and random draws with 53 bits
rarely tie even across millions of weights (ties that remain are broken by position).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from ..errors import ConfigError
from ..models import prunable_parameters
from ..models.init import check_init, check_seed

CRITERIA = ("magnitude", "rescaled-magnitude", "random")


def init_std(shape: tuple[int, ...], init: str = "kaiming_normal") -> float:
    """The standard deviation `landscape.models.init` draws a weight of this shape with.

    fan_in = shape[1] x kernel area, fan_out = shape[0] x kernel area (torch's convention), and
        kaiming_normal   N(0, 2 / fan_in)                  std sqrt(2 / fan_in)
        kaiming_uniform  U(±sqrt(6 / fan_in))              std sqrt(6 / fan_in) / sqrt(3),
                                                           the same
        glorot_normal    N(0, 2 / (fan_in + fan_out))      std sqrt(2 / (fan_in + fan_out))
        glorot_uniform   U(±sqrt(6 / (fan_in + fan_out)))  the same std.
    Computed from the scheme, not measured, so it is exact and needs no draw.
    """
    check_init(init)
    if len(shape) < 2 or min(shape) < 1:
        raise ConfigError(f"shape {tuple(shape)} is not a conv or linear weight's",
                          "init scales are defined for weights of two or more dimensions")
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    if init.startswith("kaiming"):
        return math.sqrt(2 / fan_in)
    if init.startswith("glorot"):
        return math.sqrt(2 / (fan_in + fan_out))
    raise ConfigError(f"no init scale rule for initialisation {init!r}",
                      "add its standard deviation to landscape.prune.criteria.init_std")


def init_scales_of(model: nn.Module, *, init: str = "kaiming_normal") -> dict[str, float]:
    """`init_std` of every prunable tensor of `model`, for the "rescaled-magnitude" criterion.

    `init` must be the scheme the model was built with (models do not record it).
    """
    return {name: init_std(tuple(p.shape), init) for name, p in prunable_parameters(model).items()}


def scores(criterion: str, weights: Mapping[str, torch.Tensor], names: list[str], *,
           init_scale: Mapping[str, float] | None, seed: int,
           draw_order: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Float64 scores for the tensors `names` (in that order), lower = pruned first.

    "random" draws for every tensor of `draw_order` (default `names`), a superset of `names` in
    mask order, and returns the draws of `names`: see the module docstring.
    """
    if criterion == "magnitude":
        return {name: weights[name].detach().double().abs() for name in names}
    if criterion == "rescaled-magnitude":
        scale = _check_scales(init_scale, names)
        return {name: weights[name].detach().double().abs() / scale[name] for name in names}
    if criterion == "random":
        generator = torch.Generator(device="cpu")
        generator.manual_seed(check_seed(seed))
        draws = {name: torch.rand(weights[name].shape, generator=generator, dtype=torch.float64)
                 for name in (names if draw_order is None else draw_order)}
        return {name: draws[name].to(weights[name].device) for name in names}
    raise ConfigError(f"unknown pruning criterion {criterion!r}",
                      f"choose one of: {', '.join(CRITERIA)}")


def _check_scales(init_scale: Mapping[str, float] | None, names: list[str]) -> dict[str, float]:
    if init_scale is None:
        raise ConfigError("criterion 'rescaled-magnitude' needs init_scale",
                          "pass init_scale=init_scales_of(model, init=...)")
    missing = [name for name in names if name not in init_scale]
    if missing:
        raise ConfigError(f"init_scale has no entry for {missing[0]!r}",
                          "pass init_scale=init_scales_of(model, init=...)")
    scale = {name: float(init_scale[name]) for name in names}
    bad = [name for name, s in scale.items() if not (math.isfinite(s) and s > 0)]
    if bad:
        raise ConfigError(f"init_scale for {bad[0]!r} is {scale[bad[0]]!r}, not a positive number")
    return scale
