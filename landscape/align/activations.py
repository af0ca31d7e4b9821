"""Activation matching (Ainsworth et al. 2023, section 3.1; Li et al. 2015).

Run A and B on the same N training examples; for each permutation group, correlate every unit of
A with every unit of B at the group's probes (Pearson correlation in float64 over the examples,
and over positions for conv maps; a group seen at several probes, such as a residual stream,
sums its probes' correlation matrices), then assign B's units to A's by one linear assignment
maximising the summed correlation. B's activations do not depend on how B is permuted, so each
group is solved once, independently of the others.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from ..errors import ConfigError
from ..models.permutation import PermutationSpec
from .permute import Perms
from .probes import per_unit, recording


@dataclass
class ActivationMatch:
    """perms; correlation[group]: mean correlation of matched unit pairs, before (identity) and after."""

    perms: Perms
    correlation_before: dict[str, float]
    correlation_after: dict[str, float]
    examples: int


class _Cross:
    """Float64 running sums for the correlation of two probes' units."""

    def __init__(self):
        self.n, self.sa, self.sb, self.saa, self.sbb, self.sab = 0, 0.0, 0.0, 0.0, 0.0, 0.0

    def add(self, a: torch.Tensor, b: torch.Tensor) -> None:
        self.n += len(a)
        self.sa, self.sb = self.sa + a.sum(0), self.sb + b.sum(0)
        self.saa, self.sbb = self.saa + (a * a).sum(0), self.sbb + (b * b).sum(0)
        self.sab = self.sab + a.T @ b

    def correlation(self) -> torch.Tensor:
        ma, mb = self.sa / self.n, self.sb / self.n
        cov = self.sab / self.n - ma[:, None] * mb[None, :]
        sa = (self.saa / self.n - ma ** 2).clamp_min(0).sqrt()
        sb = (self.sbb / self.n - mb ** 2).clamp_min(0).sqrt()
        # A unit that never varies (dead after ReLU) correlates with nothing: 0 rather than NaN.
        return torch.nan_to_num(cov / (sa[:, None] * sb[None, :]), nan=0.0, posinf=0.0, neginf=0.0)


@torch.no_grad()
def activation_matching(spec: PermutationSpec, model_a: nn.Module, model_b: nn.Module, x: torch.Tensor,
                        batch_size: int = 1000) -> ActivationMatch:
    """Permutations of B's units maximising the correlation of its activations with A's on `x`."""
    missing = [g.name for g in spec.groups if not g.probes]
    if missing:
        raise ConfigError(f"permutation group(s) {', '.join(missing)} name no probe (a module whose output "
                          "carries the units)", "declare probes in the model's permutation_spec()")
    probes = sorted({p for g in spec.groups for p in g.probes})
    cross = {p: _Cross() for p in probes}
    model_a.eval()
    model_b.eval()
    with recording(model_a, probes) as seen_a, recording(model_b, probes) as seen_b:
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            model_a(batch)
            model_b(batch)
            for p in probes:
                cross[p].add(per_unit(seen_a[p]).cpu(), per_unit(seen_b[p]).cpu())
    perms, before, after = {}, {}, {}
    for group in spec.groups:
        corr = sum(cross[p].correlation() for p in group.probes) / len(group.probes)
        _, cols = linear_sum_assignment(corr.numpy(), maximize=True)
        perms[group.name] = torch.as_tensor(cols, dtype=torch.long)
        rows = np.arange(group.size)
        before[group.name] = float(corr.numpy()[rows, rows].mean())
        after[group.name] = float(corr.numpy()[rows, cols].mean())
    return ActivationMatch(perms, before, after, len(x))


__all__ = ["ActivationMatch", "activation_matching"]
