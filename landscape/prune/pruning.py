"""One pruning step (`prune`, for iterative magnitude pruning) and one-shot pruning (`one_shot`).

Both take weights and a mask and return a new mask nested in the old one (no weight comes back
to life); inputs are never modified.

Scope:
* "layerwise": each tensor loses its own share (Frankle & Carbin 2019; their LeNet prunes the
  output layer at half the rate, e.g. `overrides={"fc3.weight": 0.1}` with fraction 0.2).
* "global": one threshold over all the tensors being pruned (Frankle et al. 2020; Morcos et al.
  2019), so layers lose different shares. A tensor named in `overrides` is taken out of the
  global pool and pruned on its own at its own rate; the rest share the threshold, and the
  pool's count is computed on the pool alone.

Excluded tensors keep their mask as it is and count nowhere: neither in the pool's live weights
nor in its total. Counts follow `counts` (ceil of the exact product); the choice of weights
follows `select` (lowest score, ties to the earlier tensor and lower index).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from fractions import Fraction

import torch

from ..errors import ConfigError
from .counts import exact_rate
from .criteria import CRITERIA, scores
from .masks import Mask, check_mask
from .select import remove_lowest

SCOPES = ("global", "layerwise")

# (rate, live weights, total weights) of a group of tensors -> how many live weights to remove.
_Count = Callable[[Fraction, int, int], int]


def prune(weights: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor], *,
          fraction: float, scope: str, criterion: str,
          overrides: Mapping[str, float] | None = None, exclude: Collection[str] = (),
          init_scale: Mapping[str, float] | None = None, seed: int = 0) -> Mask:
    """Remove `fraction` of the weights still alive in the tensors being pruned.

    Each group (a tensor, or the global pool) with n live weights loses ceil(rate x n) of them.
    `weights` maps names to tensors (a whole state dict is fine; only the mask's names are read).
    `overrides` gives named tensors their own rate, `exclude` leaves named tensors untouched.
    `init_scale` (per-tensor init std, see `init_scales_of`) is needed by "rescaled-magnitude";
    `seed` is used by "random". Raises ConfigError for an invalid rate, scope, criterion or name.
    """
    rate = exact_rate(fraction)

    def count(rate: Fraction, alive: int, total: int) -> int:
        return math.ceil(rate * alive)

    return _prune_groups(weights, mask, rate=rate, rate_what="override fraction", count=count,
                         scope=scope, criterion=criterion, overrides=overrides, exclude=exclude,
                         init_scale=init_scale, seed=seed)


def one_shot(weights: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor] | None, *,
             target_density: float, scope: str, criterion: str,
             overrides: Mapping[str, float] | None = None, exclude: Collection[str] = (),
             init_scale: Mapping[str, float] | None = None, seed: int = 0) -> Mask:
    """Prune straight to `target_density` (fraction of weights kept) in one step.

    Each group of T weights keeps floor(density x T) — the count one `prune` step at rate
    1 - density would keep from a full mask. Density is of all the group's weights, not of those
    still alive, so a sparse `mask` is pruned further to the same end point; a group already
    sparser than its target raises ConfigError. `overrides` here are per-tensor target
    densities. `mask=None` means every tensor of `weights` fully alive, and then `weights` must
    hold only conv/linear weights (pass `full_mask(model)` to prune a whole state dict).
    """
    density = exact_rate(target_density, "target density")
    if mask is None:
        mask = _full_mask_of(weights)

    def count(density: Fraction, alive: int, total: int) -> int:
        keep = math.floor(density * total)
        if keep > alive:
            raise ConfigError(f"the mask keeps {alive} of {total} weights, fewer than the "
                              f"{keep} that density {float(density)} keeps",
                              "choose a lower target density or start from a denser mask")
        return alive - keep

    return _prune_groups(weights, mask, rate=density, rate_what="override density", count=count,
                         scope=scope, criterion=criterion, overrides=overrides, exclude=exclude,
                         init_scale=init_scale, seed=seed)


def keep_highest(score: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor] | None, *,
                 target_density: float, scope: str, exclude: Collection[str] = ()) -> Mask:
    """`one_shot` with scores given: keep the highest-scoring weights, exactly floor(density x T)
    of each group's T weights (the IMP counting and tie rules). For pruning-at-init criteria
    (SNIP, GraSP, SynFlow), whose scores need a network and data rather than the weights alone.
    `score` holds float tensors shaped like the mask's (NaN is refused)."""
    density = exact_rate(target_density, "target density")
    if mask is None:
        mask = _full_mask_of(score)

    def count(density: Fraction, alive: int, total: int) -> int:
        keep = math.floor(density * total)
        if keep > alive:
            raise ConfigError(f"the mask keeps {alive} of {total} weights, fewer than the "
                              f"{keep} that density {float(density)} keeps",
                              "choose a lower target density or start from a denser mask")
        return alive - keep

    return _prune_groups(score, mask, rate=density, rate_what="override density", count=count,
                         scope=scope, criterion="given", overrides=None, exclude=exclude,
                         init_scale=None, seed=0, given={n: s.double() for n, s in score.items()})


def _prune_groups(weights, mask, *, rate: Fraction, rate_what: str, count: _Count, scope: str,
                  criterion: str, overrides, exclude, init_scale, seed, given=None) -> Mask:
    check_mask(mask, weights)
    if scope not in SCOPES:
        raise ConfigError(f"unknown pruning scope {scope!r}", f"choose one of: {', '.join(SCOPES)}")
    if given is None and criterion not in CRITERIA:
        raise ConfigError(f"unknown pruning criterion {criterion!r}",
                          f"choose one of: {', '.join(CRITERIA)}")
    overrides, exclude = _check_names(mask, overrides, exclude, rate_what)

    pruned = [name for name in mask if name not in exclude]
    alone = [name for name in pruned if scope == "layerwise" or name in overrides]
    pool = [name for name in pruned if name not in alone]
    groups = [([name], overrides.get(name, rate)) for name in alone]
    if pool:
        groups.append((pool, rate))

    score = given if given is not None else scores(
        criterion, weights, pruned, init_scale=init_scale, seed=seed, draw_order=list(mask))
    new = {name: m.clone() for name, m in mask.items()}
    for group, group_rate in groups:
        alive = {name: mask[name].to(score[name].device) for name in group}
        n_alive = sum(int(a.sum()) for a in alive.values())
        n_total = sum(a.numel() for a in alive.values())
        kept = remove_lowest({name: score[name] for name in group}, alive,
                             count(group_rate, n_alive, n_total))
        new.update({name: m.to(mask[name].device) for name, m in kept.items()})
    return new


def _check_names(mask, overrides, exclude, rate_what: str
                 ) -> tuple[dict[str, Fraction], frozenset[str]]:
    """Validated overrides (as exact rates) and exclusions; see `prune` for the rules."""
    overrides = dict(overrides or {})
    exclude = frozenset([exclude] if isinstance(exclude, str) else exclude)
    valid = ", ".join(mask)
    for name in [*overrides, *sorted(exclude)]:
        if name not in mask:
            raise ConfigError(f"{name!r} is not a prunable tensor of this mask",
                              f"prunable tensors are: {valid}")
    both = sorted(exclude.intersection(overrides))
    if both:
        raise ConfigError(f"{both[0]!r} is both excluded and given an override",
                          "drop it from one of them")
    if exclude.issuperset(mask):
        raise ConfigError("every prunable tensor is excluded, so nothing can be pruned",
                          "exclude fewer tensors")
    rates = {name: exact_rate(r, f"{rate_what} for {name!r}") for name, r in overrides.items()}
    return rates, exclude


def _full_mask_of(weights: Mapping[str, torch.Tensor]) -> Mask:
    low = [name for name, w in weights.items() if w.dim() < 2]
    if low:
        raise ConfigError(f"weights include {low[0]!r}, which is not a conv or linear weight",
                          "pass full_mask(model) as the mask to say which tensors are prunable")
    return {name: torch.ones_like(w, dtype=torch.bool) for name, w in weights.items()}
