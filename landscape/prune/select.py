"""Choosing which live weights to remove: the `count` lowest scores across a group of tensors.

Order is total and deterministic: by score, then tensor order, then row-major flat index (the
order of a stable sort over the live weights laid end to end). So among equal scores the earlier
tensor and the lower index go first, identically on every run, and a weight already pruned is
never a candidate again.
"""
from __future__ import annotations

import torch


def remove_lowest(scores: dict[str, torch.Tensor], alive: dict[str, torch.Tensor],
                  count: int) -> dict[str, torch.Tensor]:
    """New masks for the tensors of `scores` (in its order) with their `count` lowest-scoring live
    weights turned off. `alive[name]` is the tensor's current bool mask, on its score's device."""
    names = list(scores)
    live_index = [alive[name].reshape(-1).nonzero().squeeze(1) for name in names]
    live_scores = torch.cat([scores[name].reshape(-1)[index]
                             for name, index in zip(names, live_index)])
    if not 0 <= count <= len(live_scores):
        raise ValueError(f"cannot remove {count} of {len(live_scores)} live weights")
    if live_scores.isnan().any():
        raise ValueError("pruning scores contain NaN (did training diverge?)")

    doomed = lowest(live_scores, count)
    new = {}
    per_tensor = doomed.split([len(index) for index in live_index])
    for name, index, doomed_here in zip(names, live_index, per_tensor):
        flat = alive[name].reshape(-1).clone()
        flat[index[doomed_here]] = False
        new[name] = flat.reshape(alive[name].shape)
    return new


def lowest(values: torch.Tensor, count: int) -> torch.Tensor:
    """Bool over the 1-D `values`: the `count` smallest, ties going to the lower position.

    Equal to taking the first `count` of a stable sort, in linear time: everything below the
    count-th smallest value goes, then as many of the values equal to it as are still needed.
    (A full sort of a ResNet-18's 11M scores takes seconds; this takes a fraction of one.)
    """
    doomed = torch.zeros_like(values, dtype=torch.bool)
    if count == 0:
        return doomed
    threshold = values.kthvalue(count).values
    doomed |= values < threshold
    ties = (values == threshold).nonzero().squeeze(1)
    doomed[ties[: count - int(doomed.sum())]] = True
    return doomed
