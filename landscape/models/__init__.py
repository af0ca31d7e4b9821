"""The model zoo: the networks of the lottery-ticket literature, built for any dataset.

    model = build_model("resnet20", (3, 32, 32), 10, seed=0, width=0.5)
    masks = {name: torch.ones_like(p) for name, p in prunable_parameters(model).items()}

Every model builds for any input shape (C, H, W) and class count, and declares by parameter name
what pruning may touch (`model.prunable`) and where its output layer is (`model.output_layer`).
θ0 depends only on (name, shape, classes, width, seed, init); see `init` for the scheme.

All models are plain `nn.Module`s without in-place tricks, so a population of K models can be
run with `torch.func.stack_module_state` + `functional_call` + `vmap`, BatchNorm in training
mode included, as long as the BatchNorm running statistics are stacked along with the
parameters (one set per model): batch norm under vmap refuses to update unbatched running
statistics from batched inputs.
"""
from __future__ import annotations

from torch import nn

from .base import Network
from .custom import OWN_INIT, inferred_prunable
from .init import init_names, reinitialize
from .registry import build_model, model_catalog, model_names, model_source, redraw

__all__ = [
    "OWN_INIT", "Network", "build_model", "init_names", "model_catalog", "model_names", "model_source",
    "prunable_parameters", "redraw", "reinitialize",
]


def prunable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The prunable parameters of `model` by name, in `named_parameters` order.

    Uses the model's `prunable` declaration; a model without one (not from this zoo) gets the
    default rule: every Conv (1-D, 2-D, 3-D) and Linear weight.
    """
    names = getattr(model, "prunable", None)
    if names is None:
        names = inferred_prunable(model)
    params = dict(model.named_parameters())
    return {name: params[name] for name in names}
