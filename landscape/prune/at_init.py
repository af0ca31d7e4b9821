"""Pruning at initialisation: SNIP, GraSP and SynFlow scores, and masks exact to a density.

Scores are float64, one per prunable weight, lower = pruned first (the `criteria` convention), so
every method ends in the same exact selection as IMP (`keep_highest`: floor(d x T) kept per group,
ties to the earlier tensor and lower index).

* "snip" (Lee et al. 2019): |∂L/∂m| at m = 1, which is |g ⊙ θ| with g the gradient of the loss
  summed over the pruning batches (as Synaptic-Flow's implementation accumulates it).
* "grasp" (Wang et al. 2020): θ ⊙ Hg, with g and H of the cross-entropy of logits / T (T = 200)
  over the prunable weights. GraSP prunes the highest -θ⊙Hg, i.e. keeps the highest θ⊙Hg, so the
  score is θ⊙Hg itself; "grasp-abs" is Frankle et al. (2021)'s |θ⊙Hg|.
* "synflow" (Tanaka et al. 2020): every parameter and buffer replaced by its absolute value,
  BatchNorm in eval mode, an all-ones input, R = Σ f(1), score |θ ⊙ ∂R/∂θ|; iterated n times
  with the exponential schedule d_k = d^(k/n), the last step exactly at d. Float64: deep
  networks multiply many |θ| and overflow float32 (VGG-19's R is beyond 1e38 at width 1).
* "magnitude" |θ0| and "random" come from `criteria`.

The network passed in is never modified: scores are computed on a copy.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models import prunable_parameters
from .masks import Mask, full_mask
from .pruning import keep_highest, one_shot

METHODS = ("random", "magnitude", "snip", "grasp", "grasp-abs", "synflow")
DATA_METHODS = ("snip", "grasp", "grasp-abs")
GRASP_TEMPERATURE = 200.0


def _batches(x: torch.Tensor, y: torch.Tensor, batch_size: int):
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size], y[start:start + batch_size]


def _scoring_copy(model: nn.Module, dtype=None) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    net = copy.deepcopy(model)
    if dtype is not None:
        net = net.to(dtype)
    net.zero_grad(set_to_none=True)
    return net, prunable_parameters(net)


def loss_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                  temperature: float = 1.0) -> dict[str, torch.Tensor]:
    """g = ∇ Σ_batches CE(f(x_b) / T, y_b) over the prunable weights (BatchNorm in train mode)."""
    net, params = _scoring_copy(model)
    net.train()
    grads = {name: torch.zeros_like(p) for name, p in params.items()}
    for xb, yb in _batches(x, y, batch_size):
        loss = F.cross_entropy(net(xb) / temperature, yb)
        for name, g in zip(params, torch.autograd.grad(loss, list(params.values()))):
            grads[name] += g
    return grads


def snip_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int
                ) -> dict[str, torch.Tensor]:
    """|g ⊙ θ| per prunable weight, g summed over the pruning batches."""
    grads = loss_gradient(model, x, y, batch_size=batch_size)
    weights = prunable_parameters(model)
    return {name: (g * weights[name].detach()).double().abs() for name, g in grads.items()}


def hessian_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                     temperature: float = GRASP_TEMPERATURE) -> dict[str, torch.Tensor]:
    """Hg over the prunable weights for the loss Σ_b CE(f(x_b) / T, y_b): the gradient of
    gᵀ stop(g), one double-backward per batch (Wang et al. 2020's two passes)."""
    g = loss_gradient(model, x, y, batch_size=batch_size, temperature=temperature)
    net, params = _scoring_copy(model)
    net.train()
    hg = {name: torch.zeros_like(p) for name, p in params.items()}
    for xb, yb in _batches(x, y, batch_size):
        loss = F.cross_entropy(net(xb) / temperature, yb)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        z = sum((gi * g[name]).sum() for name, gi in zip(params, grads))
        for name, h in zip(params, torch.autograd.grad(z, list(params.values()))):
            hg[name] += h
    return hg


def grasp_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                 absolute: bool = False) -> dict[str, torch.Tensor]:
    """θ ⊙ Hg (kept highest, so the highest -θ⊙Hg go first), or |θ ⊙ Hg| with `absolute`."""
    hg = hessian_gradient(model, x, y, batch_size=batch_size)
    weights = prunable_parameters(model)
    scores = {name: (h * weights[name].detach()).double() for name, h in hg.items()}
    return {name: s.abs() for name, s in scores.items()} if absolute else scores


def synflow_objective(model: nn.Module, input_shape: tuple[int, ...], mask: Mapping[str, torch.Tensor] | None = None
                      ) -> tuple[torch.Tensor, nn.Module]:
    """R = Σ f(1) of the network with |θ| (masked), in float64; returns R and the network it ran."""
    net, params = _scoring_copy(model, torch.float64)
    net.eval()
    with torch.no_grad():
        for tensor in [*net.parameters(), *net.buffers()]:
            if tensor.is_floating_point():
                tensor.abs_()
        for name, m in (mask or {}).items():
            params[name].mul_(m.to(params[name].device, torch.float64))
    device = next(net.parameters()).device
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    return net(ones).sum(), net


def synflow_scores(model: nn.Module, input_shape: tuple[int, ...], mask: Mapping[str, torch.Tensor] | None = None
                   ) -> dict[str, torch.Tensor]:
    """|θ ⊙ ∂R/∂θ| per prunable weight of the |θ|-network (pruned weights score 0)."""
    r, net = synflow_objective(model, input_shape, mask)
    params = prunable_parameters(net)
    grads = torch.autograd.grad(r, list(params.values()))
    return {name: (g * p.detach()).abs() for (name, p), g in zip(params.items(), grads)}


def synflow_mask(model: nn.Module, input_shape: tuple[int, ...], *, density: float, scope: str,
                 iterations: int = 100) -> Mask:
    """Iterative SynFlow: rescore and prune to d^(k/n) for k = 1..n, the last exactly to d."""
    check_iterations(iterations)
    mask = full_mask(model)
    for k in range(1, iterations + 1):
        target = density if k == iterations else density ** (k / iterations)
        mask = keep_highest(synflow_scores(model, input_shape, mask), mask, target_density=target, scope=scope)
    return mask


def check_iterations(iterations) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ConfigError(f"SynFlow iterations {iterations!r} must be a whole number >= 1",
                          "e.g. --iterations 100 (Tanaka et al. 2020)")


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown pruning method {method!r}", f"choose one of: {', '.join(METHODS)}")


def prune_at_init(model: nn.Module, method: str, density: float, *, scope: str = "global",
                  x: torch.Tensor | None = None, y: torch.Tensor | None = None, batch_size: int = 256,
                  iterations: int = 100, seed: int = 0) -> Mask:
    """The mask `method` keeps at `density` of `model`'s prunable weights (see the module docstring).

    `x`, `y` are the pruning examples for the data-dependent methods; `seed` drives "random".
    """
    check_method(method)
    weights = {name: p.detach() for name, p in prunable_parameters(model).items()}
    mask = full_mask(model)
    if method in ("random", "magnitude"):
        return one_shot(weights, mask, target_density=density, scope=scope, criterion=method, seed=seed)
    if method == "synflow":
        return synflow_mask(model, tuple(model.input_shape), density=density, scope=scope, iterations=iterations)
    if x is None or y is None or len(x) == 0:
        raise ConfigError(f"{method} needs pruning examples", "pass x and y (e.g. 10 per class)")
    if method == "snip":
        scores = snip_scores(model, x, y, batch_size=batch_size)
    else:
        scores = grasp_scores(model, x, y, batch_size=batch_size, absolute=method == "grasp-abs")
    return keep_highest(scores, mask, target_density=density, scope=scope)


def balanced_sample(labels: torch.Tensor, per_class: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of `per_class` examples of every class (all of a class that has fewer), each class's
    chosen by a seeded permutation; sorted, so the batches do not depend on class order."""
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ConfigError(f"--examples-per-class {per_class!r} must be at least 1", "e.g. 10 (Synaptic-Flow's)")
    labels = labels.cpu()
    chosen = []
    for c in torch.unique(labels).tolist():
        where = (labels == c).nonzero().squeeze(1)
        chosen.append(where[torch.randperm(len(where), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values
