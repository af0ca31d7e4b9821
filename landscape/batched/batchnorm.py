"""BatchNorm statistics for networks that were never trained: the points inside the path.

A BatchNorm layer in eval mode normalises with running statistics collected during training.
Interpolating the endpoints' statistics does not give the statistics of the interpolated
network: its activations have a different mean and (typically smaller) variance, and using
stale statistics inflates the barrier (Jordan et al. 2022, "REPAIR"). So at each α the running
statistics are reset and recomputed in train mode over a few batches of training inputs, as a
cumulative average (the semantics of momentum=None), before evaluating in eval mode.

Two implementations, one per evaluation method:

* `recompute_module_` runs an ordinary module with momentum=None: PyTorch's own cumulative
  average, the reference.
* `recompute_stacked_` runs a vmapped functional model over a chunk of α at once. momentum=None
  cannot run under vmap (BatchNorm converts the batched `num_batches_tracked` to a Python float),
  so it sets momentum = 1/k before the k-th batch, which is the same update:
  r_k = (1 − 1/k)·r_{k−1} + (1/k)·s_k, the running mean of s_1..s_k.

Only the BatchNorm layers are put in train mode; every other layer stays in eval mode so that
nothing else (dropout, say) changes behaviour during the recomputation.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import ConfigError

State = dict[str, torch.Tensor]
RECOMPUTE_MODES = ("auto", "on", "off")


def batchnorm_layers(model: nn.Module) -> dict[str, _BatchNorm]:
    """The BatchNorm layers with running statistics, by module name."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, _BatchNorm) and m.track_running_stats}


def resolve_recompute(mode: str, model: nn.Module, bn_x: torch.Tensor | None) -> bool:
    """Whether to recompute: "auto" and "on" recompute when the model has BatchNorm layers.

    "on" for a model without BatchNorm is not an error: there is nothing to recompute, and the
    Curve records that none was done.
    """
    if mode == "off" or not batchnorm_layers(model):
        return False
    if bn_x is None:
        raise ConfigError(
            f"bn_recompute={mode!r}: the model has BatchNorm layers, whose statistics must be "
            "recomputed at each α, but no bn_x was given",
            "pass bn_x (training inputs), or bn_recompute='off' to use interpolated statistics")
    return True


def statistics_batches(bn_x: torch.Tensor, batch_size: int, max_batches: int | None) -> list[torch.Tensor]:
    """The batches the statistics are computed over: the first `max_batches` of `bn_x`, in order.

    A trailing partial batch is dropped when there is a full one: the cumulative average weights
    batches equally, so a small last batch would count as much as a full one. The caller
    shuffles bn_x if it wants a random sample.
    """
    batches = list(torch.split(bn_x, batch_size))
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches[:max_batches] if max_batches is not None else batches


@contextmanager
def batchnorm_training(model: nn.Module) -> Iterator[dict[str, _BatchNorm]]:
    """BatchNorm layers in train mode, everything else in eval mode; all of it in eval mode after."""
    layers = batchnorm_layers(model)
    model.eval()
    for layer in layers.values():
        layer.train()
    try:
        yield layers
    finally:
        model.eval()


@torch.no_grad()
def recompute_module_(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Reset and recompute the running statistics of an ordinary module (the reference)."""
    with batchnorm_training(model) as layers:
        for layer in layers.values():
            layer.reset_running_stats()
            layer.momentum = None
        for batch in batches:
            model(batch)


@torch.no_grad()
def recompute_stacked_(forward: Callable[[State, torch.Tensor], torch.Tensor], state: State,
                       model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Reset and recompute the running statistics in a stacked state, for every member at once.

    `forward(state, x)` is the vmapped functional model built on `model`; the statistics are
    written into `state`'s running-stat tensors (one set per member).
    """
    with batchnorm_training(model) as layers:
        for name in layers:
            for buffer, value in (("running_mean", 0), ("running_var", 1), ("num_batches_tracked", 0)):
                key = f"{name}.{buffer}"
                if key in state:  # replaced, never written in place: entries may share storage
                    state[key] = torch.full_like(state[key], value)
        for k, batch in enumerate(batches, start=1):
            for layer in layers.values():
                layer.momentum = 1.0 / k
            forward(state, batch)
