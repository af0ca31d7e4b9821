"""What the geometry experiments (`hessian`, `surface`) share: networks as weights and masks, the
members of a whole IMP run, and seeded samples of training examples.

A network is taken under its own mask (a ticket's pruned weights are exactly zero, whatever was
stored), on the device, with a template module of its architecture to run it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..models import build_model
from ..store import Run, Store
from ..train.rng import generator
from .refs import ROLES, Endpoint, resolve_endpoint
from .requests import EvalData

State = dict[str, torch.Tensor]


@dataclass
class Network:
    endpoint: Endpoint
    template: nn.Module
    state: State                       # under the mask, on the device
    mask: dict[str, torch.Tensor] | None
    density: float                     # share of the prunable weights that survive

    @property
    def params(self) -> list[str]:
        return [n for n, _ in self.template.named_parameters()]


def template_for(endpoint: Endpoint, data: EvalData) -> nn.Module:
    c = endpoint.config.model
    return build_model(c.name, data.input_shape, data.num_classes, seed=0, init=c.init, width=c.width).eval()


def load_network(endpoint: Endpoint, data: EvalData) -> Network:
    template = template_for(endpoint, data)
    device = data.train_x.device
    state = {k: v.to(device) for k, v in endpoint.run.checkpoint(endpoint.step).model.items()}
    mask = endpoint.run.mask()
    if mask is not None:
        mask = {k: m.to(device) != 0 for k, m in mask.items()}
        state = {k: torch.where(mask[k], v, torch.zeros((), dtype=v.dtype, device=device)) if k in mask else v
                 for k, v in state.items()}
    prunable = list(template.prunable)
    total = sum(state[n].numel() for n in prunable)
    kept = sum(int(mask[n].sum()) if mask and n in mask else state[n].numel() for n in prunable)
    return Network(endpoint, template, state, mask, kept / max(total, 1))


def imp_members(store: Store, imp: Run, roles: tuple[str, ...] | None = None) -> list[Endpoint]:
    """Every level's ticket and controls of an IMP run (every replicate), level by level."""
    out = []
    for name in imp.sections("levels"):
        level, record = int(name), imp.section(f"levels/{name}")
        for role in ROLES:
            if (level == 0 and role != "ticket") or (roles is not None and role not in roles):
                continue
            for r in range(len(record.get(role) or [])):
                out.append(resolve_endpoint(store, f"{imp.id}@{level}/{role}/r{r}"))
    if not out:
        raise ConfigError(f"IMP run {imp.id} ({imp.name}) has no finished level with the roles asked for",
                          "finish a level first, or choose other --roles")
    return out


def sample_index(n: int, count: int | None, stream: int, seed: int) -> torch.Tensor:
    """Sorted positions of a seeded sample of `count` of n examples (all of them when count is None)."""
    if count is None or count >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=generator(stream, seed, 0))[:count].sort().values


DEFAULT_EXAMPLES = 2000
"""Training examples the geometry measurements use unless told: a few thousand, as the issue asks
(and PyHessian's examples use); a training split smaller than that is used whole."""


def check_examples(count: int | None, available: int, flag: str = "--examples") -> None:
    if count is not None and count > available and count != DEFAULT_EXAMPLES:
        raise ConfigError(f"{flag} {count} is more than the {available} training examples",
                          f"use at most {available}, or 'all'")


__all__ = ["DEFAULT_EXAMPLES", "Network", "template_for", "load_network", "imp_members", "sample_index", "check_examples"]
