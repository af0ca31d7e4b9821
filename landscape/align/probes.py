"""Reading the outputs of named modules (a spec's probes) batch by batch, in eval mode.

Each probe's output is seen as per-unit samples: a conv map [N, C, H, W] gives N·H·W samples of
C channels (Jordan et al. 2022 treat channels the same way), a linear output [N, C] gives N.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


def per_unit(output: torch.Tensor) -> torch.Tensor:
    """[N, C, ...] as float64 samples [N·..., C]."""
    return output.detach().movedim(1, -1).reshape(-1, output.shape[1]).double()


@contextmanager
def recording(model: nn.Module, probes: list[str]) -> Iterator[dict[str, torch.Tensor]]:
    """While active, `model(x)` leaves each probe's output in the yielded dict."""
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for name in probes:
        def hook(_module, _inputs, output, name=name):
            seen[name] = output
        hooks.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


class Moments:
    """Running float64 sums of one probe's units over batches: means and standard deviations."""

    def __init__(self):
        self.n = 0
        self.s = self.ss = None

    def add(self, u: torch.Tensor) -> None:
        s, ss = u.sum(0), (u * u).sum(0)
        self.s = s if self.s is None else self.s + s
        self.ss = ss if self.ss is None else self.ss + ss
        self.n += len(u)

    @property
    def mean(self) -> torch.Tensor:
        return self.s / self.n

    @property
    def std(self) -> torch.Tensor:
        return (self.ss / self.n - self.mean ** 2).clamp_min(0).sqrt()


@torch.no_grad()
def probe_moments(model: nn.Module, probes: list[str], x: torch.Tensor, batch_size: int) -> dict[str, Moments]:
    """Per-unit mean and standard deviation of each probe's output over `x` (population std)."""
    model.eval()
    moments = {p: Moments() for p in probes}
    with recording(model, probes) as seen:
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size])
            for p in probes:
                moments[p].add(per_unit(seen[p]))
    return moments


__all__ = ["per_unit", "recording", "Moments", "probe_moments"]
