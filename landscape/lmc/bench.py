"""Timing the batched method against the sequential one, for the experiments script."""
from __future__ import annotations

import time

import torch
from torch import nn

from .curve import interpolation_curve


def _timed(device: torch.device, run) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def time_interpolation(template: nn.Module, a: dict, b: dict, x: torch.Tensor, y: torch.Tensor,
                       points: int = 30, **options) -> tuple[float, float]:
    """(batched_seconds, sequential_seconds) for one `points`-point curve on (x, y).

    Extra keyword arguments go to `interpolation_curve` (bn_x for BatchNorm models, batch_size,
    alpha_chunk...). Each method first runs once on a small slice, so one-time costs (kernel
    selection, allocator growth, CUDA context) do not count against whichever runs first.
    """
    timings = []
    for method in ("batched", "sequential"):
        interpolation_curve(template, a, b, x[:64], y[:64], alphas=2, method=method, **options)
        timings.append(_timed(x.device, lambda: interpolation_curve(
            template, a, b, x, y, alphas=points, method=method, **options)))
    return timings[0], timings[1]
