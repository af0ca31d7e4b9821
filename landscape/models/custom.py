"""Networks from outside the zoo: `package.module:factory` import paths and `landscape.models`
entry points, so a lab's own architecture runs through every command without editing landscape.

The protocol, all a factory has to follow:

    def factory(input_shape, num_classes, width) -> torch.nn.Module

`input_shape` is the dataset's (C, H, W) (1-D signals come as (C, 1, L)), `num_classes` its class
count, `width` the --width multiplier (ignore it if the network has no notion of width). The module
may declare, as attributes or properties:

* `prunable`: the parameter names pruning may touch. Default: the weight of every Linear and
  Conv1d/2d/3d layer, in `named_parameters` order.
* `output_layer`: the parameter name of the output layer's weight. Default: the last Linear's.
* `permutation_spec`: how hidden units may be permuted for weight matching (optional; whatever
  the alignment code accepts; kept with the module untouched).

θ0 is drawn by landscape from the seed with the zoo's rules (`init`): every Linear, Conv and
BatchNorm tensor is redrawn. Tensors of layers landscape has no rule for (LayerNorm, embeddings,
bare Parameters) keep the module's own initialisation, which is seeded: the factory runs under
`torch.random.fork_rng` seeded from the same seed, so it never moves the caller's random stream.
`init="own"` keeps the module's own (seeded) initialisation for every tensor.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..plugins import CodeSource, one_line

ENTRY_GROUP = "landscape.models"
OWN_INIT = "own"
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
PROTOCOL = "factory(input_shape, num_classes, width) must return a torch.nn.Module"


# -- building ------------------------------------------------------------------------------------
def build_custom(source: CodeSource, input_shape: tuple[int, int, int], num_classes: int, width: float,
                 seed: int) -> nn.Module:
    """Call the factory (seeded, the caller's RNG untouched), check what it returned, and give it
    the declarations algorithms ask for. θ0 is not drawn here (see `landscape.models.build_model`)."""
    factory = source.load("model")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = factory(tuple(input_shape), int(num_classes), float(width))
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"--model {source.name}: the factory failed for input {tuple(input_shape)}, "
                              f"{num_classes} classes ({type(exc).__name__}: {one_line(exc)})",
                              PROTOCOL) from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model {source.name}: the factory returned a {type(model).__name__}, "
                          "not a torch.nn.Module", PROTOCOL)
    declare(model, source.name)
    model.to("cpu").train()
    return model


def declare(model: nn.Module, name: str) -> None:
    """Check the module's own `prunable`/`output_layer` or set the inferred ones on it."""
    params = dict(model.named_parameters())
    prunable = getattr(model, "prunable", None)
    prunable = tuple(prunable) if prunable is not None else inferred_prunable(model)
    unknown = [p for p in prunable if p not in params]
    if unknown:
        raise ConfigError(f"--model {name} declares prunable tensor {unknown[0]!r}, which is not one of its "
                          "parameters", "list names from model.named_parameters()")
    if not prunable:
        raise ConfigError(f"--model {name} has no prunable tensors (no Linear or Conv weights, none declared)",
                          "give the module Linear/Conv layers, or a `prunable` tuple of parameter names")
    output = getattr(model, "output_layer", None) or inferred_output_layer(model)
    if output is None or output not in params:
        raise ConfigError(f"--model {name} has no output layer "
                          + ("(no Linear layer)" if output is None else f"{output!r} among its parameters"),
                          "end the network with a Linear layer, or declare `output_layer` (a parameter name)")
    _set(model, "prunable", prunable)
    _set(model, "output_layer", output)
    if getattr(model, "permutation_spec", None) is None:
        _set(model, "permutation_spec", None)


def _set(model: nn.Module, attr: str, value: Any) -> None:
    if isinstance(getattr(type(model), attr, None), property):
        return  # the class computes it (and its value was checked above)
    object.__setattr__(model, attr, value)


def inferred_prunable(model: nn.Module) -> tuple[str, ...]:
    """The weight of every Linear and Conv layer, in `named_parameters` order."""
    owners = {name for name, m in model.named_modules() if isinstance(m, (nn.Linear, *_CONVS))}
    return tuple(name for name, _ in model.named_parameters()
                 if name.endswith("weight") and name.rpartition(".")[0] in owners)


def inferred_output_layer(model: nn.Module) -> str | None:
    """The weight of the Linear layer registered last."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        return None
    return f"{linears[-1]}.weight" if linears[-1] else "weight"
