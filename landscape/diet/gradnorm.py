"""Per-example gradient norms from one batched backward pass, without per-example gradients.

For the layers of the model zoo the norm of each example's parameter gradient follows from what
an ordinary backward pass already has — the layer's input a and the gradient δ at its output:
- Linear: ∇W_i = δ_i a_iᵀ, so ‖∇W_i‖² = ‖a_i‖²‖δ_i‖² (Goodfellow 2015), and ‖∇b_i‖² = ‖δ_i‖².
- Conv2d: ∇W_i = D_i A_iᵀ with A_i the unfolded input patches; this one is formed per example
  (one batched matmul), since conv weights are small next to the activations.
- BatchNorm in eval mode: ∇γ_i = Σ δ_i x̂_i and ∇β_i = Σ δ_i over positions, per channel.
With the loss summed (not averaged) over the batch, δ_i is example i's own gradient, because in
eval mode no example's output depends on another's. This is what `vmap(grad(...))` computes, at
the memory of one backward pass instead of one gradient per example.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)


def supports(model: nn.Module) -> bool:
    """Whether every parameter of `model` belongs to a layer this module knows."""
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if own and not isinstance(module, SUPPORTED):
            return False
        if isinstance(module, nn.Conv2d) and module.groups != 1:
            return False
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and own and not module.track_running_stats:
            return False
    return True


def _linear(module: nn.Linear, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    if a.dim() == 2:
        norm2 = a.pow(2).sum(1) * d.pow(2).sum(1)
    else:  # tokens: the sum over positions does not factor
        norm2 = torch.einsum("b...o,b...i->boi", d, a).pow(2).flatten(1).sum(1)
        d = d.flatten(1, -2).sum(1)
    if module.bias is not None:
        norm2 = norm2 + d.flatten(1).pow(2).sum(1) if a.dim() == 2 else norm2 + d.pow(2).sum(1)
    return norm2


def _conv(module: nn.Conv2d, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    if isinstance(module.padding, str):
        raise NotImplementedError("string padding")
    patches = F.unfold(a, module.kernel_size, dilation=module.dilation, padding=module.padding, stride=module.stride)
    delta = d.flatten(2)  # [B, out, T]
    norm2 = torch.bmm(delta, patches.transpose(1, 2)).pow(2).flatten(1).sum(1)
    if module.bias is not None:
        norm2 = norm2 + delta.sum(2).pow(2).sum(1)
    return norm2


def _batchnorm(module: nn.modules.batchnorm._BatchNorm, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    shape = (1, -1) + (1,) * (a.dim() - 2)
    x_hat = (a - module.running_mean.view(shape)) / torch.sqrt(module.running_var.view(shape) + module.eps)
    reduce = tuple(range(2, a.dim()))
    gw = (d * x_hat).sum(reduce) if reduce else d * x_hat
    gb = d.sum(reduce) if reduce else d
    norm2 = torch.zeros(a.shape[0], dtype=d.dtype, device=d.device)
    if module.weight is not None:
        norm2 = norm2 + gw.pow(2).sum(1)
    if module.bias is not None:
        norm2 = norm2 + gb.pow(2).sum(1)
    return norm2


def _rule(module: nn.Module):
    if isinstance(module, nn.Linear):
        return _linear
    if isinstance(module, nn.Conv2d):
        return _conv
    return _batchnorm


def grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """‖∇_θ ℓ(f(x_i), y_i)‖₂ for each example of the batch, in float64. The model must be in eval
    mode and `supports(model)` true."""
    layers = [m for m in model.modules() if list(m.parameters(recurse=False))]
    total = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    calls: dict[nn.Module, int] = {}
    handles = []

    def forward_hook(module, inputs, output):
        calls[module] = calls.get(module, 0) + 1
        a = inputs[0].detach()
        rule = _rule(module)

        def backward(d):
            nonlocal total
            total = total + rule(module, a, d.detach()).double()

        output.register_hook(backward)
        # A new tensor for the layers after this one, so an in-place activation cannot change the
        # output whose gradient the hook reads.
        return output.clone()

    for layer in layers:
        handles.append(layer.register_forward_hook(forward_hook))
    try:
        loss = F.cross_entropy(model(x), y, reduction="sum")
        if any(count > 1 for count in calls.values()):
            raise NotImplementedError("a layer is used twice in one forward pass")
        params = [p for p in model.parameters() if p.requires_grad]
        torch.autograd.grad(loss, params, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    return total.sqrt()
