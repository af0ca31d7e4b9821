"""Pruning: masks, pruning steps, exact counts and the lottery-ticket controls.

Pure functions on tensors and modules; nothing here trains or touches files.

    mask = full_mask(model)
    for level in range(levels):
        ...train, rewind...
        mask = prune(dict(model.named_parameters()), mask, fraction=0.2, scope="layerwise",
                     criterion="magnitude", overrides={model.output_layer: 0.1})

A mask is a dict of bool tensors by parameter name, True = kept (`masks`). A step at rate f
removes ceil(f x live weights) from each group, in exact arithmetic (`counts`); weights go by
lowest score, ties to the earlier tensor and lower index (`select`, `criteria`); `pruning` holds
the scopes; `controls` the reinit and random-pruning baselines.
"""
from __future__ import annotations

from .controls import random_mask_like, reinit, rescaled_reinit
from .counts import (
    kept_at_density, kept_schedule, layerwise_schedule, level_density, pruned_count,
)
from .criteria import CRITERIA, init_scales_of, init_std
from .masks import Mask, apply_mask, density, full_mask, layer_report, mask_hash, sparsity
from .pruning import SCOPES, keep_highest, one_shot, prune
from .at_init import METHODS, prune_at_init

__all__ = [
    "CRITERIA", "Mask", "SCOPES", "apply_mask", "density", "full_mask", "init_scales_of",
    "init_std", "keep_highest", "kept_at_density", "METHODS", "prune_at_init", "kept_schedule", "layer_report", "layerwise_schedule",
    "level_density", "mask_hash", "one_shot", "prune", "pruned_count", "random_mask_like",
    "reinit", "rescaled_reinit", "sparsity",
]
