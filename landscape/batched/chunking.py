"""How many α to evaluate per vmapped pass: as many as fit a memory budget.

Each α in a chunk costs a copy of the weights (plus the interpolation's temporaries) and its own
activations for a batch. Activations are estimated from one example's forward pass: inference
keeps only a few activations alive at once, so the estimate is a small multiple of the largest
single activation rather than the sum over layers.

On the CPU the binding limit is not memory but the size of one activation tensor of a pass: see
CPU_ACTIVATION_BYTES.
"""
from __future__ import annotations

import math

import torch
from torch import nn

State = dict[str, torch.Tensor]

CPU_BUDGET_BYTES = 1 << 30
"""On the CPU, the memory a chunk may use (weights and activations of all its α)."""
CPU_ACTIVATION_BYTES = 24 << 20
"""On the CPU, the most bytes one activation tensor of a pass (every α of the chunk, every example
of a batch) may take. glibc serves blocks above 32 MB with fresh mmap'd pages, so a pass whose
activations are larger pays page faults in every layer: measured on a 2-core CPU with a VGG-11
of width 1/8 on CIFAR-10 (batch 1000, 10 α per pass), batched evaluation took 96 s against 36 s
one α per pass, most of it system time. Below the limit more α per pass is somewhat faster than
one at a time (LeNet-300-100 on MNIST: about 1.2x); on the CPU the work per α is the same either
way, so the gain is the per-pass overhead. Choosing a smaller batch_size lets more α share a pass."""
GPU_FREE_FRACTION = 0.5
"""On a GPU, the share of currently free memory a chunk may use: bigger chunks mean fewer,
fuller kernel launches, but other work (the data, the caller's models) shares the device."""
LIVE_ACTIVATIONS = 3  # a layer's input and output, plus a residual branch held across a block


def memory_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * GPU_FREE_FRACTION)
    return CPU_BUDGET_BYTES


@torch.no_grad()
def largest_activation(model: nn.Module, example: torch.Tensor) -> int:
    """Elements in the largest tensor any submodule outputs for one example (eval mode)."""
    sizes = [example.numel()]

    def record(_module, _inputs, output):
        if torch.is_tensor(output):
            sizes.append(output.numel())

    hooks = [m.register_forward_hook(record) for m in model.modules()]
    try:
        model.eval()
        model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return max(sizes)


def bytes_per_alpha(model: nn.Module, state: State, x: torch.Tensor, batch_size: int) -> int:
    weights = sum(t.numel() * t.element_size() for t in state.values())
    activations = largest_activation(model, x[:1]) * min(batch_size, len(x)) * x.element_size()
    return 2 * weights + LIVE_ACTIVATIONS * activations


def auto_alpha_chunk(model: nn.Module, state: State, x: torch.Tensor, batch_size: int, points: int) -> int:
    """The most α per pass that fit the device's budget, at least 1 and at most `points`."""
    fit = memory_budget(x.device) // max(1, bytes_per_alpha(model, state, x, batch_size))
    if x.device.type != "cuda":
        activation = largest_activation(model, x[:1]) * min(batch_size, len(x)) * x.element_size()
        fit = min(fit, CPU_ACTIVATION_BYTES // max(1, activation))
    return int(max(1, min(points, fit)))


def chunks(points: int, size: int) -> list[slice]:
    """Split range(points) into ceil(points / size) nearly equal slices.

    Balanced rather than greedy: 30 points at size 16 run as 15 + 15, not 16 + 14, so no pass is
    much smaller (and relatively slower) than the others.
    """
    count = math.ceil(points / size)
    bounds = [round(i * points / count) for i in range(count + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])]
