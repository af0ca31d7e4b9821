"""Optimizers, and their state in a form that does not depend on how the population is laid out.

A member's optimizer state is stored as `{parameter name: {buffer name: tensor}}` (e.g.
`{"fc1.weight": {"momentum_buffer": ...}}`), whether it was trained alone, in a loop, or stacked
with others under vmap, so a checkpoint can be resumed by either path.
"""
from __future__ import annotations

from typing import Iterable

import torch

from .config import OptimConfig

OptimizerState = dict[str, dict[str, torch.Tensor]]


def make_optimizer(params: Iterable[torch.Tensor], cfg: OptimConfig) -> torch.optim.Optimizer:
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    # Fused Adam: torch's default on the CPU loops over tensors in Python, which measured 37% slower
    # per LeNet-300-100 step (experiments/bench_imp.py); for SGD the default measured fastest.
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    raise ValueError(cfg.optimizer)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def export_state(optimizer: torch.optim.Optimizer, names: dict[int, str], member: int | None = None) -> OptimizerState:
    """The state per parameter name; `member` slices stacked (vmap) state to one member."""
    out: OptimizerState = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p)
            if not state:
                continue
            entry = {}
            for key, value in state.items():
                if not torch.is_tensor(value):
                    continue
                if member is not None and value.dim() > 0:
                    value = value[member]
                entry[key] = value.detach().to("cpu", copy=True)
            out[names[id(p)]] = entry
    return out


def import_state(optimizer: torch.optim.Optimizer, names: dict[int, str], states: list[OptimizerState | None],
                 stacked: bool) -> None:
    """Load per-member states; with `stacked`, member i's buffers go to index i of each tensor."""
    if all(s is None or not s for s in states):
        return
    if any(s is None or not s for s in states):
        raise ValueError("either every member or none starts with optimizer state")
    for group in optimizer.param_groups:
        for p in group["params"]:
            name = names[id(p)]
            per_member = [s[name] for s in states]
            entry = {}
            for key in per_member[0]:
                values = [m[key].to(p.device) for m in per_member]
                if stacked and values[0].dim() > 0:
                    entry[key] = torch.stack(values)
                else:
                    # Scalars such as Adam's step count are shared by a population.
                    entry[key] = values[0].clone()
            optimizer.state[p] = entry
