"""Masks: which weights of a network are kept, by parameter name.

A mask is a `dict[str, torch.Tensor]` of bool tensors shaped like the named parameters, True
where the weight is kept. Its key order is its tensor order: pruning breaks ties across tensors
by it, and `full_mask` gives the model's `prunable` order (which is `named_parameters` order).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..models import prunable_parameters

Mask = dict[str, torch.Tensor]

# Bumped if the hashed byte layout ever changes, so an old run ID can never collide with a new one.
_HASH_VERSION = b"landscape-mask-v1"
HASH_HEX_DIGITS = 16


def full_mask(model: nn.Module) -> Mask:
    """An all-True mask over `model`'s prunable weights, on their devices, in `prunable` order."""
    return {name: torch.ones_like(p, dtype=torch.bool)
            for name, p in prunable_parameters(model).items()}


def layer_report(mask: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, int]]:
    """(kept, total) weights per tensor, in mask order."""
    check_mask(mask)
    return {name: (int(m.sum()), m.numel()) for name, m in mask.items()}


def density(mask: Mapping[str, torch.Tensor]) -> float:
    """Fraction of all masked weights that are kept: kept / total, correctly rounded."""
    kept, total = _totals(mask)
    return kept / total


def sparsity(mask: Mapping[str, torch.Tensor]) -> float:
    """Fraction of all masked weights that are pruned: (total - kept) / total, correctly rounded.

    Computed from the integer counts rather than as 1 - density(mask), which can be off by an ulp.
    """
    kept, total = _totals(mask)
    return (total - kept) / total


def mask_hash(mask: Mapping[str, torch.Tensor]) -> str:
    """A short, stable hex digest of the mask's names, shapes and bits (for run IDs).

    Names are hashed in sorted order, so the digest does not depend on how the dict was built;
    bits are packed with numpy (big-endian bit order, row-major), independent of torch's storage.
    """
    check_mask(mask)
    digest = hashlib.sha256(_HASH_VERSION)
    for name in sorted(mask):
        bits = mask[name].detach().cpu().numpy().reshape(-1)
        digest.update(b"\0" + name.encode() + b"\0")
        digest.update(repr(tuple(mask[name].shape)).encode() + b"\0")
        digest.update(np.packbits(bits).tobytes())
    return digest.hexdigest()[:HASH_HEX_DIGITS]


def apply_mask(state_dict: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor]
               ) -> dict[str, torch.Tensor]:
    """A new state dict with every pruned weight set to zero.

    Masked entries are new tensors; all other entries are the input's own tensor objects.
    Pruned entries become exactly 0 even where the weight was NaN or inf (a product with the mask
    would leave NaN).
    """
    check_mask(mask, state_dict)
    return {name: t.masked_fill(~mask[name].to(t.device), 0) if name in mask else t
            for name, t in state_dict.items()}


def check_mask(mask: Mapping[str, torch.Tensor],
               tensors: Mapping[str, torch.Tensor] | None = None) -> None:
    """Raise ConfigError unless `mask` is a non-empty name -> bool tensor mapping whose names all
    appear in `tensors` (when given) with the same shapes."""
    if not isinstance(mask, Mapping) or not mask:
        raise ConfigError("the mask is empty or not a dict of tensors",
                          "build one with full_mask(model)")
    for name, m in mask.items():
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise ConfigError(f"mask entry {name!r} is not a bool tensor",
                              "masks hold torch.bool tensors, True = kept")
        if tensors is None:
            continue
        if name not in tensors:
            raise ConfigError(f"mask names {name!r}, which the weights do not have",
                              f"weights have: {', '.join(tensors)}")
        if tuple(tensors[name].shape) != tuple(m.shape):
            raise ConfigError(f"mask for {name!r} has shape {tuple(m.shape)} but the weight has "
                              f"{tuple(tensors[name].shape)}",
                              "was the mask made for a different model or width?")


def _totals(mask: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    counts = layer_report(mask).values()
    total = sum(t for _, t in counts)
    if total == 0:
        raise ConfigError("the mask covers no weights (every tensor is empty)")
    return sum(k for k, _ in counts), total
