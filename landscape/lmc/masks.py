"""Pruning masks on the path: which weights each endpoint keeps, and what the path then keeps.

θ(α) = (1 − α)·(θA ⊙ mA) + α·(θB ⊙ mB). When the masks are equal the whole path lives in the
shared sparse subnetwork ("shared"). When they differ, every interior point keeps the union of
the two supports, so it is denser than either endpoint ("union") — a barrier then compares
networks of different sparsity, which is why the Curve records the mode and the overlap.

A mask is a dict from parameter name to a tensor of that parameter's shape (bool or 0/1); a
layer a mask does not name is dense, and a mask of None is dense everywhere.
"""
from __future__ import annotations

from typing import Mapping

import torch

from ..errors import ConfigError
from .distances import complete_masks, mask_overlap

State = dict[str, torch.Tensor]
Mask = Mapping[str, torch.Tensor]


def apply_masks(a: State, b: State, masks, parameters: set[str]) -> tuple[State, State, str, float | None]:
    """(θA ⊙ mA, θB ⊙ mB, mask_mode, overall Jaccard overlap); mode is "none", "shared" or "union"."""
    if masks is None:
        return a, b, "none", None
    if not isinstance(masks, (tuple, list)) or len(masks) != 2:
        raise ConfigError("masks must be a pair (mask_a, mask_b)",
                          "pass one mask per endpoint; use the same mask twice for a shared ticket")
    mask_a, mask_b = (_checked(m, a, parameters, label) for m, label in zip(masks, ("mask_a", "mask_b")))
    mask_a, mask_b = complete_masks(mask_a, mask_b)
    if not mask_a:  # both dense
        return a, b, "shared", 1.0
    shared = all(torch.equal(mask_a[k], mask_b[k]) for k in mask_a)
    overlap = mask_overlap(mask_a, mask_b)["overall"]
    return _masked(a, mask_a), _masked(b, mask_b), "shared" if shared else "union", overlap


def _checked(mask: Mask | None, state: State, parameters: set[str], label: str) -> dict[str, torch.Tensor]:
    if mask is None:
        return {}
    if not isinstance(mask, Mapping):
        raise ConfigError(f"{label} is a {type(mask).__name__}, not a dict of tensors by parameter name")
    checked = {}
    for name, m in mask.items():
        if name not in parameters:
            raise ConfigError(f"{label} names {name!r}, which is not a parameter of the template",
                              "masks cover parameters such as model.prunable")
        if not torch.is_tensor(m) or m.shape != state[name].shape:
            raise ConfigError(f"{label}[{name!r}] does not have the parameter's shape {tuple(state[name].shape)}")
        checked[name] = m.to(device=state[name].device) != 0
    return checked


def _masked(state: State, mask: dict[str, torch.Tensor]) -> State:
    # where() rather than a multiply: pruned entries become +0.0 even where the weight was
    # negative or not finite.
    return {k: torch.where(mask[k], v, torch.zeros((), dtype=v.dtype, device=v.device)) if k in mask else v
            for k, v in state.items()}
