"""One IMP level as a set of branches: training configurations that differ from the dense run only
in where they start, which mask they train under and how their weights are drawn (open_lth's
branch-as-a-function idea).

At level L of replicate r, the ticket trains under the L-th mask from the dense run's weights at
the rewind step (reset to θ0 when the rewind step is 0), continuing the schedule from there.
The controls train beside it in the same population:
- reinit: the ticket's mask, fresh weights from the init distribution (a new seed per level);
- random-prune: a random mask with the ticket's per-layer sparsity, the ticket's rewound weights;
- rescaled-reinit: the reinit control's very draw, each unit's weights rescaled by
  sqrt(fan-in / surviving inputs) so its input variance is what it was in the dense network; the
  pair differs only in scale, which is the reviewers' question.
Rewinding restores weights, not optimizer state, as open_lth does: momentum starts at zero.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..prune import Mask, init_scales_of, mask_hash, prune, random_mask_like
from ..train.config import Seeds, StartFrom, TrainConfig
from ..train.rng import derive_seed
from .config import CONTROLS, ImpConfig

_STREAM = 0x1A9  # keeps control seeds apart from every other derived seed


@dataclass(frozen=True)
class Branch:
    role: str  # "ticket" or a control
    replicate: int
    config: TrainConfig
    mask: Mask


def control_seed(seeds: Seeds, level: int, role: str) -> int:
    """The seed of a control's random draw, from the replicate's own training seeds, the level and
    the role: `imp --seed 0` and `--seed 1` draw independent controls, and the same command draws
    the same ones bit for bit. The two reinit controls share theirs (see the module docstring)."""
    role = "reinit" if role == "rescaled-reinit" else role
    return derive_seed(_STREAM, *_seed_parts(seeds), level, CONTROLS.index(role)) % (2**31)


def _seed_parts(seeds: Seeds) -> tuple[int, int, int]:
    return seeds.init, seeds.data_order, seeds.augment


def draw_seed(seeds: Seeds, level: int, purpose: int) -> int:
    """A seed for another random draw of a level (random pruning, a transferred output layer's
    mask), derived from the replicate's own seeds as the controls' are."""
    return derive_seed(_STREAM, *_seed_parts(seeds), level, purpose) % (2**31)


def next_masks(weights: dict[str, torch.Tensor], mask: Mask, imp: ImpConfig, template: torch.nn.Module,
               level: int, replicate: int) -> Mask:
    """The mask of `level`: prune the previous level's trained weights under its mask."""
    p = imp.prune
    scales = init_scales_of(template, init=imp.train.model.init) if p.criterion == "rescaled-magnitude" else None
    return prune(weights, mask, fraction=p.fraction, scope=p.scope, criterion=p.criterion,
                 overrides=dict(p.overrides), exclude=p.exclude, init_scale=scales,
                 seed=draw_seed(imp.replicate(replicate).seeds, level, 99))


def level_branches(imp: ImpConfig, level: int, replicate: int, base: TrainConfig, start: StartFrom,
                   mask: Mask) -> list[Branch]:
    """The ticket and its controls for one replicate at one level."""
    ticket = replace(base, start=start, mask=mask_hash(mask))
    branches = [Branch("ticket", replicate, ticket, mask)]
    for role in imp.controls:
        seed = control_seed(base.seeds, level, role)
        if role == "random-prune":
            random_mask = random_mask_like(mask, seed=seed)
            branches.append(Branch(role, replicate, replace(ticket, mask=mask_hash(random_mask)), random_mask))
        else:
            config = replace(ticket, seeds=replace(ticket.seeds, init=seed), reinit=role)
            branches.append(Branch(role, replicate, config, mask))
    return branches
