"""Loss and error along the straight line between two networks: `interpolation_curve`.

Frankle et al. (2020) train two copies of a network from one starting point with different
SGD noise, then evaluate θ(α) = (1 − α)·θA + α·θB at evenly spaced α. This module walks a
`LinearPath` (interpolate.py), fixes each point's BatchNorm statistics (batchnorm.py) and
scores it (evaluate.py), by one of two methods that must agree to float tolerance:

* "batched": the interpolated weights for a chunk of α are stacked and run with
  `vmap(functional_call)`, so one pass over the data evaluates the whole chunk;
* "sequential": one α at a time through an ordinary module — the reference, and the
  baseline `time_interpolation` measures the batched method against.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..batched.batchnorm import (RECOMPUTE_MODES, recompute_module_, recompute_stacked_, resolve_recompute,
                                 statistics_batches)
from ..batched.chunking import auto_alpha_chunk, chunks
from ..batched.evaluate import Scores, evaluate_module, evaluate_stacked, stacked_forward
from ..batched.states import check_choice, check_data, check_inputs, check_positive, endpoint, working_copy
from ..errors import ConfigError
from .interpolate import LinearPath, alpha_grid
from .masks import apply_masks

METHODS = ("batched", "sequential")


@dataclass(frozen=True)
class Curve:
    """Mean loss and error at each α, with what was done to get them.

    alphas, loss, error: [P] float64 on the CPU; loss is mean cross-entropy, error is
    1 − accuracy. per_example_loss: [P, N] float32 on the CPU, when asked for.
    bn_recompute: whether BatchNorm statistics were recomputed at each α.
    method: "batched" or "sequential"; alpha_chunk: the most α evaluated per pass.
    mask_mode: "none" (no masks), "shared" (both endpoints had the same mask: the path stays in
    that subnetwork) or "union" (they differed: interior points keep the union of the supports,
    denser than either endpoint). mask_jaccard: overall Jaccard overlap of the two masks.
    """

    alphas: torch.Tensor
    loss: torch.Tensor
    error: torch.Tensor
    per_example_loss: torch.Tensor | None = None
    bn_recompute: bool = False
    method: str = "batched"
    alpha_chunk: int = 1
    mask_mode: str = "none"
    mask_jaccard: float | None = None
    num_examples: int = 0
    bn_examples: int = 0  # training inputs the BatchNorm statistics were computed over

    def metadata(self) -> dict:
        """The non-tensor fields, as plain Python values (for storing alongside the arrays)."""
        return {"bn_recompute": self.bn_recompute, "method": self.method, "alpha_chunk": self.alpha_chunk,
                "mask_mode": self.mask_mode, "mask_jaccard": self.mask_jaccard,
                "num_examples": self.num_examples, "bn_examples": self.bn_examples}


@torch.no_grad()
def interpolation_curve(
    template: nn.Module,
    state_a: dict[str, torch.Tensor],
    state_b: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    alphas: torch.Tensor | Sequence[float] | int = 30,
    masks: tuple[dict | None, dict | None] | None = None,
    bn_recompute: str = "auto",
    bn_x: torch.Tensor | None = None,
    bn_batches: int | None = 10,
    batch_size: int = 1000,
    alpha_chunk: int | None = None,
    per_example: bool = False,
    method: str = "batched",
) -> Curve:
    """Evaluate θ(α) = (1 − α)·θA + α·θB on (x, y) at each α.

    template: a module of the architecture (its own weights are not used, and it is not changed).
    state_a, state_b: state dicts (parameters and buffers) of two networks of that architecture,
    on the CPU or on x's device. Everything runs on x's device.
    alphas: a point count (evenly spaced over [0, 1], endpoints included) or explicit α values.
    masks: (mask_a, mask_b); the path then runs between θA ⊙ mA and θB ⊙ mB (see masks.py).
    bn_recompute: "auto" (when the model has BatchNorm), "on" or "off". Recomputing resets each
    α's running statistics and re-estimates them over the first `bn_batches` batches of
    `batch_size` training inputs `bn_x` (None: all of bn_x); required when recomputing.
    alpha_chunk: at most this many α per vmapped pass (None: as many as a memory budget allows).
    per_example: also keep each example's loss at each α, for `per_example_barrier`.
    method: "batched" (vmapped over α) or "sequential" (one α at a time).
    """
    grid = alpha_grid(alphas)
    check_choice(method, METHODS, "method")
    check_choice(bn_recompute, RECOMPUTE_MODES, "bn_recompute")
    batch_size = check_positive(batch_size, "batch_size")
    alpha_chunk = check_positive(alpha_chunk, "alpha_chunk", optional=True)
    bn_batches = check_positive(bn_batches, "bn_batches", optional=True)
    x, y = check_data(x, y)

    model = working_copy(template, x.device)
    reference = model.state_dict()
    a = endpoint(reference, state_a, "state_a", x.device)
    b = endpoint(reference, state_b, "state_b", x.device)
    a, b, mask_mode, jaccard = apply_masks(a, b, masks, {n for n, _ in model.named_parameters()})

    recompute = resolve_recompute(bn_recompute, model, bn_x)
    batches = [t.to(x.device) for t in statistics_batches(_training_inputs(bn_x, x), batch_size, bn_batches)] \
        if recompute else []

    path = LinearPath(a, b)
    scores = Scores(len(grid), len(x), x.device, per_example)
    if method == "batched":
        chunk = alpha_chunk or auto_alpha_chunk(model, a, x, batch_size, len(grid))
        used = _run_batched(model, path, grid, x, y, batch_size, chunk, batches, scores)
    else:
        used = _run_sequential(model, path, grid, x, y, batch_size, batches, scores)

    return Curve(alphas=grid, loss=scores.loss(), error=scores.error(),
                 per_example_loss=scores.per_example_loss(), bn_recompute=recompute, method=method,
                 alpha_chunk=used, mask_mode=mask_mode, mask_jaccard=jaccard,
                 num_examples=len(x), bn_examples=sum(len(t) for t in batches))


def _training_inputs(bn_x, x: torch.Tensor) -> torch.Tensor:
    check_inputs(bn_x, "bn_x")
    if bn_x.shape[1:] != x.shape[1:]:
        raise ConfigError(f"bn_x holds inputs of shape {tuple(bn_x.shape[1:])} but x of {tuple(x.shape[1:])}",
                          "pass training inputs of the dataset being evaluated")
    return bn_x


def _run_batched(model, path, grid, x, y, batch_size, chunk, batches, scores) -> int:
    forward = stacked_forward(model)
    parts = chunks(len(grid), chunk)
    for rows in parts:
        state = path.stacked(grid[rows])
        if batches:
            recompute_stacked_(forward, state, model, batches)
        evaluate_stacked(forward, model, state, x, y, batch_size, scores, rows)
    return max(p.stop - p.start for p in parts)


def _run_sequential(model, path, grid, x, y, batch_size, batches, scores) -> int:
    for row, alpha in enumerate(grid.tolist()):
        model.load_state_dict(path.at(alpha))
        if batches:
            recompute_module_(model, batches)
        evaluate_module(model, x, y, batch_size, scores, row)
    return 1
