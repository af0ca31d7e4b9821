"""The lottery-ticket controls: what a winning ticket is compared against (Frankle & Carbin 2019).

* `reinit`: the ticket's mask with fresh weights from the same init distribution and a new seed
  ("random reinitialization").
* `rescaled_reinit`: the same, each unit's fresh weights scaled up to make up for its pruned
  inputs (see its docstring), so reinit is not handicapped merely by smaller activations.
* `random_mask_like`: the ticket's per-layer sparsity with the kept positions chosen at random
  ("random pruning"), to pair with the ticket's own θ0.

Each is a deterministic function of its seed and draws from its own `torch.Generator`, never
from torch's global RNG.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..models.registry import redraw
from ..models.init import check_seed
from .masks import Mask, apply_mask, check_mask


def reinit(model_template: nn.Module, mask: Mapping[str, torch.Tensor], *, seed: int,
           init: str = "kaiming_normal") -> dict[str, torch.Tensor]:
    """A state dict of `model_template`'s architecture with θ drawn afresh from `seed` and `init`
    (`landscape.models.reinitialize`), pruned weights zeroed. The template is not modified."""
    fresh = redraw(model_template, seed=seed, init=init)
    return apply_mask(fresh.state_dict(), mask)


def rescaled_reinit(model_template: nn.Module, mask: Mapping[str, torch.Tensor], *, seed: int,
                    init: str = "kaiming_normal") -> dict[str, torch.Tensor]:
    """`reinit`, with each unit's surviving weights scaled to preserve its input variance.

    A unit is an output row of a linear weight or an output channel of a conv weight; its fan-in
    is n = in_features, or in_channels x kh x kw. With k_j of its n inputs kept, its weights are
    multiplied by sqrt(n / k_j): a pre-activation sum over k_j i.i.d. terms of variance σ² then
    has variance k_j · (n / k_j) · σ² = n · σ², the dense layer's, whatever the init scheme.
    Units with no input left (k_j = 0) stay zero.
    """
    state = reinit(model_template, mask, seed=seed, init=init)
    for name, m in mask.items():
        units = m.reshape(m.shape[0], -1).to(state[name].device)
        fan_in, kept = units.shape[1], units.sum(dim=1, dtype=torch.float64)
        gain = torch.where(kept > 0, (fan_in / kept.clamp(min=1)).sqrt(), torch.zeros_like(kept))
        w = state[name]
        state[name] = (w.double() * gain.view(-1, *[1] * (w.dim() - 1))).to(w.dtype)
    return state


def random_mask_like(mask: Mapping[str, torch.Tensor], *, seed: int) -> Mask:
    """A mask with exactly `mask`'s kept count in every tensor, at random positions.

    One generator seeded with `seed` draws a `torch.randperm` per tensor, in mask order; the
    first k positions of the permutation are kept.
    """
    check_mask(mask)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(check_seed(seed))
    shuffled = {}
    for name, m in mask.items():
        flat = torch.zeros(m.numel(), dtype=torch.bool)
        flat[torch.randperm(m.numel(), generator=generator)[: int(m.sum())]] = True
        shuffled[name] = flat.reshape(m.shape).to(m.device)
    return shuffled
