"""Applying a permutation to a network's state dict (weights, biases, BatchNorm parameters and
running statistics) and to its pruning masks, as a model's `PermutationSpec` describes.

A permutation of a group is an index tensor `perm` of its units: unit i of the permuted network
is unit perm[i] of the original (new = old.index_select(dim, perm) on every axis of the group).
Permuting every group of a spec leaves the function the network computes unchanged.
"""
from __future__ import annotations

from typing import Mapping

import torch

from ..errors import ConfigError
from ..models.permutation import Axis, PermutationSpec

State = dict[str, torch.Tensor]
Perms = dict[str, torch.Tensor]


def identity(spec: PermutationSpec) -> Perms:
    return {g.name: torch.arange(g.size) for g in spec.groups}


def random_permutation(spec: PermutationSpec, generator: torch.Generator) -> Perms:
    """A uniformly random permutation of every group, drawn in spec order from `generator`."""
    return {g.name: torch.randperm(g.size, generator=generator) for g in spec.groups}


def inverse(perms: Perms) -> Perms:
    return {name: torch.argsort(p) for name, p in perms.items()}


def check_perms(spec: PermutationSpec, perms: Mapping[str, torch.Tensor]) -> Perms:
    out = {}
    for g in spec.groups:
        p = perms.get(g.name)
        if p is None:
            raise ConfigError(f"no permutation given for group {g.name!r}")
        p = torch.as_tensor(p).long().cpu()
        if p.shape != (g.size,) or not torch.equal(p.sort().values, torch.arange(g.size)):
            raise ConfigError(f"the permutation of group {g.name!r} is not a permutation of {g.size} units")
        out[g.name] = p
    return out


def axis_index(perm: torch.Tensor, axis: Axis) -> torch.Tensor:
    """The indices along the tensor's axis: each unit's block of `axis.block` entries moves together."""
    if axis.block == 1:
        return perm
    return (perm[:, None] * axis.block + torch.arange(axis.block)).reshape(-1)


def permute_tensor(tensor: torch.Tensor, name: str, spec_axes: dict[str, list], perms: Perms,
                   skip: str | None = None) -> torch.Tensor:
    """`tensor` (state key `name`) with every group's permutation applied on its axis, except `skip`'s."""
    for group, axis in spec_axes.get(name, ()):
        if group.name == skip:
            continue
        index = axis_index(perms[group.name], axis).to(tensor.device)
        tensor = tensor.index_select(axis.dim, index)
    return tensor


def apply_permutation(state: Mapping[str, torch.Tensor], spec: PermutationSpec, perms: Perms) -> State:
    """A new state dict: `state` with every group permuted. Keys the spec does not name are copied."""
    perms = check_perms(spec, perms)
    axes = spec.by_tensor()
    return {name: permute_tensor(t, name, axes, perms) if name in axes else t.clone() for name, t in state.items()}


def permute_mask(mask: Mapping[str, torch.Tensor] | None, spec: PermutationSpec, perms: Perms) -> State | None:
    """The mask of the permuted network: each mask tensor moves with its weight."""
    if mask is None:
        return None
    return apply_permutation(mask, spec, perms)


__all__ = ["identity", "random_permutation", "inverse", "check_perms", "axis_index", "permute_tensor",
           "apply_permutation", "permute_mask"]
