"""Loss and error over a grid of networks θ(x, y) = θc + x·D1 + y·D2 (or a line, θc + x·D1).

Grid points are the members of a stacked state: a chunk of them runs as one vmapped
`functional_call` through `landscape.batched` (the LMC engine: `stacked_forward`,
`evaluate_stacked`, `auto_alpha_chunk`, `chunks`), and with `bn_recompute` each point's BatchNorm
statistics are recomputed on training inputs before it is scored (`recompute_stacked_`) — without
it every point keeps the statistics the directions carry (the centre's for random directions).
`method="sequential"` evaluates one point at a time through an ordinary module: the reference.

A coefficient of exactly 0 adds exactly nothing, so the grid point (0, 0) is the centre network
bit for bit; `grid_axis` puts 0 exactly on the grid whenever the span contains it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from ..batched.batchnorm import batchnorm_layers, recompute_module_, recompute_stacked_, statistics_batches
from ..batched.chunking import auto_alpha_chunk, chunks
from ..batched.evaluate import Scores, evaluate_module, evaluate_stacked, stacked_forward
from ..batched.states import working_copy
from ..errors import ConfigError

State = dict[str, torch.Tensor]
SURFACE_METHODS = ("batched", "sequential")


def grid_axis(count: int, low: float, high: float) -> torch.Tensor:
    """`count` evenly spaced coordinates from low to high (float64), 0 exactly when it is on the grid."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise ConfigError(f"a grid of {count!r} points per axis is too small", "use at least 2, e.g. --grid 25x25")
    if not (high - low > 0):
        raise ConfigError(f"the span {low:g}:{high:g} has no width", "give LOW:HIGH with LOW < HIGH, e.g. --span -1:1")
    axis = torch.linspace(low, high, count, dtype=torch.float64)
    step = (high - low) / (count - 1)
    axis[axis.abs() < 1e-9 * step] = 0.0
    return axis


@dataclass
class Grid:
    xs: torch.Tensor               # [nx]
    ys: torch.Tensor | None = None  # [ny], None for a 1-D line

    def coefficients(self) -> torch.Tensor:
        """[points, dims]: row-major over (y, x), so values reshape to [ny, nx]."""
        if self.ys is None:
            return self.xs[:, None]
        yy, xx = torch.meshgrid(self.ys, self.xs, indexing="ij")
        return torch.stack([xx.flatten(), yy.flatten()], dim=1)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.xs),) if self.ys is None else (len(self.ys), len(self.xs))


@dataclass
class Surface:
    loss: torch.Tensor   # grid.shape, float64
    error: torch.Tensor
    grid: Grid
    bn_recompute: bool
    points_per_pass: int
    method: str
    num_examples: int


def stacked_points(center: State, directions: Sequence[State], coefficients: torch.Tensor) -> State:
    """θc + Σ_k c_k·D_k for each row c of `coefficients` [P, dims], stacked along a new first dimension."""
    out: State = {}
    for name, base in center.items():
        if not base.is_floating_point():
            out[name] = base.expand(len(coefficients), *base.shape).clone()
            continue
        value = base.unsqueeze(0).expand(len(coefficients), *base.shape).clone()
        for k, d in enumerate(directions):
            c = coefficients[:, k].to(device=base.device, dtype=base.dtype).view(-1, *([1] * base.dim()))
            value = value + c * d[name].to(base.device).unsqueeze(0)
        out[name] = value
    return out


@torch.no_grad()
def surface(template: nn.Module, center: State, directions: Sequence[State], grid: Grid, x: torch.Tensor,
            y: torch.Tensor, *, bn_recompute: bool = False, bn_x: torch.Tensor | None = None, bn_batches: int = 10,
            batch_size: int = 1000, chunk: int | None = None, method: str = "batched",
            progress: Callable[[int, int], None] | None = None) -> Surface:
    """Mean loss and error of θc + x·D1 (+ y·D2) at every grid point, on (x, y)."""
    if method not in SURFACE_METHODS:
        raise ConfigError(f"unknown method {method!r}", f"choose {' or '.join(SURFACE_METHODS)}")
    if len(directions) != (1 if grid.ys is None else 2):
        raise ConfigError("a 1-D grid takes one direction and a 2-D grid two")
    model = working_copy(template, x.device)
    center = {k: v.to(x.device) for k, v in center.items()}
    directions = [{k: v.to(x.device) for k, v in d.items()} for d in directions]
    recompute = bool(bn_recompute) and bool(batchnorm_layers(model))
    if recompute and bn_x is None:
        raise ConfigError("BatchNorm recomputation needs training inputs (bn_x)")
    batches = statistics_batches(bn_x.to(x.device), batch_size, bn_batches) if recompute else []
    coefficients = grid.coefficients()
    scores = Scores(len(coefficients), len(x), x.device, per_example=False)
    if method == "batched":
        size = chunk or auto_alpha_chunk(model, center, x, batch_size, len(coefficients))
        forward = stacked_forward(model)
        parts = chunks(len(coefficients), size)
        for rows in parts:
            state = stacked_points(center, directions, coefficients[rows])
            if batches:
                recompute_stacked_(forward, state, model, batches)
            evaluate_stacked(forward, model, state, x, y, batch_size, scores, rows)
            if progress:
                progress(rows.stop, len(coefficients))
        used = max(p.stop - p.start for p in parts)
    else:
        for row in range(len(coefficients)):
            state = {k: v[0] for k, v in stacked_points(center, directions, coefficients[row:row + 1]).items()}
            model.load_state_dict(state)
            if batches:
                recompute_module_(model, batches)
            evaluate_module(model, x, y, batch_size, scores, row)
            if progress:
                progress(row + 1, len(coefficients))
        used = 1
    return Surface(scores.loss().view(grid.shape), scores.error().view(grid.shape), grid, recompute, used, method,
                   len(x))
