"""REPAIR (Jordan et al. 2022): renormalise the interpolated network's units.

Interpolating two (aligned) networks shrinks the variance of their hidden units ("variance
collapse"), which alone can raise the barrier. REPAIR rescales each unit of θ(α) so that its
activation mean and standard deviation on training data equal the interpolation of the
endpoints': μ_t = (1 − α)·μ_A + α·μ_B, σ_t = (1 − α)·σ_A + α·σ_B.

Here the correction is fused into the layer that produces the unit (a probe of the model's
permutation spec that is a Conv/Linear with a bias): W ← W·σ_t/σ, b ← (b − μ)·σ_t/σ + μ_t, one
probe at a time in forward order, each measured with the probes before it already corrected, so
after the last one every probe's statistics equal their targets on the data used (up to float32
rounding). A unit that never varies (σ = 0) cannot be rescaled: only its mean is moved.

In BatchNorm networks, recomputing the BatchNorm statistics at each α (landscape.batched) already
renormalises every channel (Jordan et al.'s "RESET"); that is what the api uses for them, and
this module refuses them.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..batched.batchnorm import batchnorm_layers
from ..batched.chunking import auto_alpha_chunk, chunks
from ..batched.evaluate import Scores, evaluate_stacked, stacked_forward
from ..batched.states import check_data, check_positive, endpoint, working_copy
from ..errors import ConfigError
from ..lmc.curve import Curve
from ..lmc.interpolate import LinearPath, alpha_grid
from ..lmc.masks import apply_masks
from ..models.permutation import spec_of
from .probes import Moments, per_unit, probe_moments

State = dict[str, torch.Tensor]
CONSTANT = 1e-12  # a unit whose standard deviation is below this is taken as constant


class _Stop(Exception):
    """Raised by a probe hook once its output is recorded: nothing after it needs computing."""


def repair_probes(model: nn.Module) -> list[str]:
    """The probes REPAIR corrects, in forward order; ConfigError where REPAIR does not apply."""
    if batchnorm_layers(model):
        raise ConfigError(f"{type(model).__name__} has BatchNorm layers: REPAIR's correction for them is the "
                          "BatchNorm recomputation at each α", "leave out --repair; --bn-recompute (the default) "
                          "renormalises every channel")
    probes = [p for g in spec_of(model).groups for p in g.probes]
    for p in probes:
        m = model.get_submodule(p)
        if not isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) or m.bias is None:
            raise ConfigError(f"REPAIR cannot fuse a correction into probe {p!r} ({type(m).__name__})",
                              "it needs each probe to be a Conv/Linear layer with a bias")
    return _forward_order(model, probes)


@torch.no_grad()
def _forward_order(model: nn.Module, probes: list[str]) -> list[str]:
    """The probes in the order a forward pass reaches them (one example of zeros)."""
    order: list[str] = []
    hooks = [model.get_submodule(p).register_forward_hook(
        lambda _m, _i, _o, p=p: order.append(p) if p not in order else None) for p in probes]
    try:
        model.eval()
        device = next(model.parameters()).device
        model(torch.zeros(1, *model.input_shape, device=device))
    finally:
        for h in hooks:
            h.remove()
    return order


@torch.no_grad()
def _probe_moments_until(model: nn.Module, probe: str, x: torch.Tensor, batch_size: int) -> Moments:
    """One probe's moments over x, stopping each forward pass at that probe."""
    moments = Moments()

    def hook(_module, _inputs, output):
        moments.add(per_unit(output))
        raise _Stop

    handle = model.get_submodule(probe).register_forward_hook(hook)
    try:
        model.eval()
        for start in range(0, len(x), batch_size):
            try:
                model(x[start:start + batch_size])
            except _Stop:
                pass
    finally:
        handle.remove()
    return moments


def targets(stats_a: dict[str, Moments], stats_b: dict[str, Moments], alpha: float) -> dict[str, tuple]:
    """The interpolated mean and standard deviation of each probe at α."""
    return {p: ((1 - alpha) * stats_a[p].mean + alpha * stats_b[p].mean,
                (1 - alpha) * stats_a[p].std + alpha * stats_b[p].std) for p in stats_a}


@torch.no_grad()
def repair_state(model: nn.Module, state: State, probes: list[str], goal: dict[str, tuple], x: torch.Tensor,
                 batch_size: int) -> State:
    """`state` with each probe's layer rescaled so its units reach `goal` (mean, std) on x."""
    state = dict(state)
    for p in probes:
        model.load_state_dict(state)
        moments = _probe_moments_until(model, p, x, batch_size)
        mean_t, std_t = goal[p]
        std = moments.std
        scale = torch.where(std > CONSTANT, std_t / std.clamp_min(CONSTANT), torch.ones_like(std))
        w, b = state[f"{p}.weight"], state[f"{p}.bias"]
        shape = (-1,) + (1,) * (w.dim() - 1)
        state[f"{p}.weight"] = (w.double() * scale.to(w.device).view(shape)).to(w.dtype)
        state[f"{p}.bias"] = ((b.double() - moments.mean.to(b.device)) * scale.to(b.device)
                              + mean_t.to(b.device)).to(b.dtype)
    return state


@torch.no_grad()
def repaired_curve(template: nn.Module, state_a: State, state_b: State, x: torch.Tensor, y: torch.Tensor, *,
                   repair_x: torch.Tensor, alphas: torch.Tensor | Sequence[float] | int = 30,
                   masks: tuple | None = None, batch_size: int = 1000, alpha_chunk: int | None = None,
                   per_example: bool = False) -> Curve:
    """Like `interpolation_curve`, with each θ(α) REPAIRed on `repair_x` (training inputs) first.

    The endpoints are left as they are (at α = 0 and 1 the targets are their own statistics, so
    the correction is the identity up to rounding). Evaluation is batched over α.
    """
    grid = alpha_grid(alphas)
    batch_size = check_positive(batch_size, "batch_size")
    alpha_chunk = check_positive(alpha_chunk, "alpha_chunk", optional=True)
    x, y = check_data(x, y)
    model = working_copy(template, x.device)
    probes = repair_probes(model)
    reference = model.state_dict()
    a = endpoint(reference, state_a, "state_a", x.device)
    b = endpoint(reference, state_b, "state_b", x.device)
    a, b, mask_mode, jaccard = apply_masks(a, b, masks, {n for n, _ in model.named_parameters()})
    repair_x = repair_x.to(x.device)

    model.load_state_dict(a)
    stats_a = probe_moments(model, probes, repair_x, batch_size)
    model.load_state_dict(b)
    stats_b = probe_moments(model, probes, repair_x, batch_size)
    path = LinearPath(a, b)
    corrected = []
    for alpha in grid.tolist():
        point = path.at(alpha)
        if 0.0 < alpha < 1.0:
            point = repair_state(model, point, probes, targets(stats_a, stats_b, alpha), repair_x, batch_size)
        corrected.append(point)

    scores = Scores(len(grid), len(x), x.device, per_example)
    chunk = alpha_chunk or auto_alpha_chunk(model, a, x, batch_size, len(grid))
    forward = stacked_forward(model)
    parts = chunks(len(grid), chunk)
    for rows in parts:
        stacked = {k: torch.stack([c[k] for c in corrected[rows]]) for k in a}
        evaluate_stacked(forward, model, stacked, x, y, batch_size, scores, rows)
    return Curve(alphas=grid, loss=scores.loss(), error=scores.error(), per_example_loss=scores.per_example_loss(),
                 bn_recompute=False, method="batched", alpha_chunk=max(p.stop - p.start for p in parts),
                 mask_mode=mask_mode, mask_jaccard=jaccard, num_examples=len(x), bn_examples=len(repair_x))


__all__ = ["repair_probes", "targets", "repair_state", "repaired_curve"]
