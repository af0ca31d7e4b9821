"""Weight matching (Ainsworth et al. 2023, "Git Re-Basin", Algorithm 1).

Find permutations π of B's units maximising the summed inner products of the two networks'
weights, Σ_t ⟨θA_t, π(θB)_t⟩ over every parameter tensor a permutation group acts on. Coordinate
descent: in each pass, the groups are visited in a seeded random order; for one group, with
every other group's permutation fixed, the objective is linear in its permutation matrix, so the
best one is a linear assignment (`scipy.optimize.linear_sum_assignment`) on the cost
C[i, j] = Σ over the group's axes of ⟨row i of θA, row j of θB (other groups applied)⟩. Each
step can only raise the objective (the current permutation is one of the candidates), so it
never decreases; passes continue until one improves nothing.

Costs are computed in float64. Only parameters enter the objective (BatchNorm running
statistics are buffers; they are permuted along with their channels, but not matched on).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ..models.permutation import PermutationGroup, PermutationSpec
from .permute import Perms, identity, permute_tensor

State = dict[str, torch.Tensor]

IMPROVEMENT = 1e-12
"""A step counts as an improvement when it raises the objective by more than this, relative to
its magnitude (float64 rounding in a sum of ~10^6 products stays well below it)."""


@dataclass
class WeightMatch:
    """Permutations found, and how the search went.

    passes: passes that improved the objective (a one-group network converges in 1);
    passes_run: passes made, the last one confirming that nothing improves (or max_passes);
    objective: Σ ⟨θA, π(θB)⟩ before the first pass and after each pass (never decreasing).
    """

    perms: Perms
    passes: int
    passes_run: int
    objective: list[float] = field(default_factory=list)
    converged: bool = True


def _matrix(t: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    # Units along `dim` (each covering a block of consecutive entries) become rows.
    return t.movedim(dim, 0).reshape(size, -1)


def group_cost(group: PermutationGroup, a: State, b: State, axes_by_tensor: dict, perms: Perms,
               params: set[str]) -> torch.Tensor:
    """C[i, j] = Σ over the group's parameter axes of ⟨unit i of A, unit j of B with the other
    groups' permutations applied⟩, float64 [size, size]."""
    cost = torch.zeros(group.size, group.size, dtype=torch.float64)
    for axis in group.axes:
        if axis.tensor not in params:
            continue
        ta = a[axis.tensor].double().cpu()
        tb = permute_tensor(b[axis.tensor].double().cpu(), axis.tensor, axes_by_tensor, perms, skip=group.name)
        cost += _matrix(ta, axis.dim, group.size) @ _matrix(tb, axis.dim, group.size).T
    return cost


def objective(spec: PermutationSpec, a: State, b: State, perms: Perms, params: set[str]) -> float:
    """Σ ⟨θA_t, π(θB)_t⟩ over the parameter tensors the spec acts on, in float64."""
    axes = spec.by_tensor()
    total = 0.0
    for name in axes:
        if name in params:
            tb = permute_tensor(b[name].double().cpu(), name, axes, perms)
            total += float((a[name].double().cpu() * tb).sum())
    return total


def weight_matching(spec: PermutationSpec, state_a: State, state_b: State, params: set[str], *,
                    generator: torch.Generator, max_passes: int = 100) -> WeightMatch:
    """Permutations of B's units bringing its weights close to A's (see the module docstring).

    state_a, state_b: the networks as they compute (masked weights where masked); `params`: the
    state keys that are parameters. The group order of each pass is drawn from `generator`.
    """
    axes = spec.by_tensor()
    perms = identity(spec)
    history = [objective(spec, state_a, state_b, perms, params)]
    passes = passes_run = 0
    converged = False
    while passes_run < max_passes:
        passes_run += 1
        improved = False
        for index in torch.randperm(len(spec.groups), generator=generator).tolist():
            group = spec.groups[index]
            cost = group_cost(group, state_a, state_b, axes, perms, params).numpy()
            rows = np.arange(group.size)
            _, cols = linear_sum_assignment(cost, maximize=True)
            old, new = cost[rows, perms[group.name].numpy()].sum(), cost[rows, cols].sum()
            if new > old + IMPROVEMENT * max(1.0, abs(old)):
                perms[group.name] = torch.as_tensor(cols, dtype=torch.long)
                improved = True
        history.append(objective(spec, state_a, state_b, perms, params))
        if not improved:
            converged = True
            break
        passes += 1
    return WeightMatch(perms, passes, passes_run, history, converged)


__all__ = ["WeightMatch", "group_cost", "objective", "weight_matching", "IMPROVEMENT"]
