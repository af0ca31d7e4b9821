"""Loss and error over a grid of networks θ(x, y) = θc + x·D1 + y·D2 (or a line, θc + x·D1).

Grid points are the members of a stacked state: a chunk of them runs as one vmapped
`functional_call` through `landscape.batched` (the LMC engine: `stacked_forward`,
`evaluate_stacked`, `auto_alpha_chunk`, `chunks`), and with `bn_recompute` each point's BatchNorm
statistics are recomputed on training inputs before it is scored (`recompute_stacked_`) — without
it every point keeps the statistics the directions carry (the centre's for random directions).
`method="sequential"` evaluates one point at a time through an ordinary module: the reference.

A coefficient of exactly 0 adds exactly nothing, so the grid point (0, 0) is the centre network
bit for bit; `grid_axis` puts 0 exactly on the grid whenever the span contains it.

The input layer is evaluated once for the whole grid (`InputLayer`). A Linear or convolution that
reads the input is linear in its weight and bias jointly, so at θc + Σ c_k·D_k its output is
layer(x; θc) + Σ c_k·layer(x; D_k): three layer evaluations per batch serve every grid point,
where evaluating point by point costs one per point. On LeNet-300-100 the input layer holds 88%
of the multiply-adds, so this is most of the work of a surface on a CPU, where batching points
in one pass saves only per-pass overhead. It applies when the first module with parameters that
runs is a Linear or convolution, called once (so its input depends on x alone); otherwise (and
when BatchNorm statistics are recomputed, which needs the ordinary forward) every point runs the
whole network.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

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
    input_layer_once: bool = False  # the input layer evaluated once for all points (the shortcut)


def stacked_points(center: State, directions: Sequence[State], coefficients: torch.Tensor) -> State:
    """θc + Σ_k c_k·D_k for each row c of `coefficients` [P, dims], stacked along a new first dimension."""
    out: State = {}
    for name, base in center.items():
        if not base.is_floating_point():
            out[name] = base.expand(len(coefficients), *base.shape).clone()
            continue
        out[name] = combine(base, [d[name] for d in directions], coefficients)
    return out


def combine(base: torch.Tensor, directions: Sequence[torch.Tensor], coefficients: torch.Tensor) -> torch.Tensor:
    """base + Σ_k c_k·D_k for each row c of coefficients, stacked: one fused multiply-add (addmm)
    rather than a pass over memory per direction. A zero row gives base exactly."""
    c = coefficients.to(device=base.device, dtype=base.dtype)
    d = torch.stack([t.to(base.device).reshape(-1) for t in directions])
    flat = torch.addmm(base.reshape(1, -1), c, d)
    return flat.view(len(c), *base.shape)


LINEAR_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class _Stop(Exception):
    pass


class InputLayer:
    """The network's input layer, evaluated once per batch for every grid point (module docstring)."""

    def __init__(self, model: nn.Module, name: str, module: nn.Module):
        self.model, self.name, self.module = model, name, module

    @staticmethod
    def find(model: nn.Module, example: torch.Tensor) -> "InputLayer | None":
        """The input layer if the shortcut applies: the first module with parameters of its own that
        runs is a Linear or convolution, and it runs once."""
        owners = {name: m for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))}
        calls: list[str] = []
        hooks = [m.register_forward_pre_hook(lambda _m, _i, name=name: calls.append(name)) for name, m in owners.items()]
        try:
            with torch.no_grad():
                model.eval()
                model(example)
        finally:
            for hook in hooks:
                hook.remove()
        if not calls or not isinstance(owners[calls[0]], LINEAR_LAYERS) or calls.count(calls[0]) != 1:
            return None
        return InputLayer(model, calls[0], owners[calls[0]])

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """What the input layer receives for the batch x (the forward stops there)."""
        seen: list[torch.Tensor] = []

        def grab(_module, args):
            seen.append(args[0])
            raise _Stop

        hook = self.module.register_forward_pre_hook(grab)
        try:
            self.model(x)
        except _Stop:
            pass
        finally:
            hook.remove()
        return seen[0]

    def params(self, state: State) -> State:
        prefix = self.name + "."
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

    def outputs(self, x: torch.Tensor, center: State, directions: Sequence[State]) -> list[torch.Tensor]:
        """layer(x; θc) and layer(x; D_k) for each direction."""
        inp = self.inputs(x)
        return [functional_call(self.module, self.params(s), (inp,)) for s in [center, *directions]]

    @contextmanager
    def replaced(self, value: list) -> Iterator[None]:
        """Within: the input layer returns value[0] instead of computing (the rest of the net runs)."""
        original = self.module.forward
        self.module.forward = lambda *_args, **_kw: value[0]
        try:
            yield
        finally:
            self.module.forward = original


def _evaluate_shortcut(layer: InputLayer, model: nn.Module, state: State, coefficients: torch.Tensor, center: State,
                       directions: Sequence[State], x: torch.Tensor, y: torch.Tensor, batch_size: int,
                       scores: Scores, rows: slice, cache: dict) -> None:
    """Score a chunk of grid points, the input layer's output composed from three evaluations per
    batch, kept in `cache` for the next chunks."""
    current: list = [None]

    def one(member: State, z: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        current[0] = z
        return functional_call(model, member, (xb,))

    forward = vmap(one, in_dims=(0, 0, None))
    model.eval()
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        if start not in cache:
            cache[start] = layer.outputs(xb, center, directions)
        base, *dirs = cache[start]
        z = combine(base, dirs, coefficients)
        with layer.replaced(current):
            logits = forward(state, z, xb)
        scores.add(rows, start, logits, y[start:start + batch_size])


@torch.no_grad()
def surface(template: nn.Module, center: State, directions: Sequence[State], grid: Grid, x: torch.Tensor,
            y: torch.Tensor, *, bn_recompute: bool = False, bn_x: torch.Tensor | None = None, bn_batches: int = 10,
            batch_size: int = 1000, chunk: int | None = None, method: str = "batched",
            shortcut: bool = True, progress: Callable[[int, int], None] | None = None) -> Surface:
    """Mean loss and error of θc + x·D1 (+ y·D2) at every grid point, on (x, y).

    shortcut: evaluate the input layer once for all points when it applies (module docstring)."""
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
        layer = InputLayer.find(model, x[:1]) if shortcut and not batches else None
        parts = chunks(len(coefficients), size)
        cache: dict = {}
        for rows in parts:
            state = stacked_points(center, directions, coefficients[rows])
            if batches:
                recompute_stacked_(forward, state, model, batches)
            if layer is not None:
                _evaluate_shortcut(layer, model, state, coefficients[rows], center, directions, x, y, batch_size,
                                   scores, rows, cache)
            else:
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
        used, layer = 1, None
    return Surface(scores.loss().view(grid.shape), scores.error().view(grid.shape), grid, recompute, used, method,
                   len(x), method == "batched" and layer is not None)
