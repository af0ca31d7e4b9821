"""Seeded, explicit initialisation: θ0 is a function of (architecture, seed, init) alone.

All random draws come from one `torch.Generator` seeded with `seed`, taken parameter by
parameter in `named_parameters` order, and never from torch's global RNG. So the same seed gives
the same θ0 bitwise whatever the global RNG state, whatever was built before, and without
disturbing the caller's random stream. (Lottery-ticket rewinding and linear mode connectivity
compare networks by their θ0, so θ0 must be reproducible from the seed alone.)

* Conv and linear weights: Kaiming normal by default — N(0, 2 / fan_in), the ReLU gain with
  fan_in mode, as in He et al. (2015) and open_lth, which the lottery-ticket results use. The
  output layer gets the same rule, as in open_lth. Alternatives: "kaiming_uniform"
  (U(±sqrt(6 / fan_in))), "glorot_normal" (N(0, 2 / (fan_in + fan_out))) and "glorot_uniform"
  (U(±sqrt(6 / (fan_in + fan_out)))), Glorot & Bengio (2010) with gain 1.
* Biases: zero (open_lth keeps torch's random default; zero keeps every draw in the weights).
* BatchNorm: weight 1, bias 0, running mean 0, running variance 1, batch counter 0 (open_lth's
  default draws BN weights from U(0, 1); the standard constant init is used here).

Fan-in and fan-out are torch's: in_channels x kernel area for a convolution, in_features for
a linear layer.
"""
from __future__ import annotations

import operator
from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError

_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

_WEIGHT_INITS: dict[str, Callable[[torch.Tensor, torch.Generator], object]] = {
    "kaiming_normal": lambda w, g: nn.init.kaiming_normal_(
        w, mode="fan_in", nonlinearity="relu", generator=g),
    "kaiming_uniform": lambda w, g: nn.init.kaiming_uniform_(
        w, mode="fan_in", nonlinearity="relu", generator=g),
    "glorot_normal": lambda w, g: nn.init.xavier_normal_(w, gain=1.0, generator=g),
    "glorot_uniform": lambda w, g: nn.init.xavier_uniform_(w, gain=1.0, generator=g),
}


def init_names() -> list[str]:
    """The initialisation schemes `build_model` and `reinitialize` accept."""
    return list(_WEIGHT_INITS)


def check_init(init: str) -> str:
    if init not in _WEIGHT_INITS:
        raise ConfigError(
            f"unknown initialisation {init!r}", f"choose one of: {', '.join(init_names())}")
    return init


def check_seed(seed) -> int:
    """`seed` as a Python int (numpy and torch integers accepted)."""
    try:
        if not isinstance(seed, bool):
            return operator.index(seed)
    except TypeError:
        pass
    raise ConfigError(f"seed {seed!r} is not an integer")


def reinitialize(model: nn.Module, *, seed: int, init: str = "kaiming_normal", strict: bool = True) -> None:
    """Re-draw every parameter and reset every buffer of `model` in place, deterministically.

    Raises ConfigError for an unknown `init`, and TypeError for a parameter or buffer of a kind
    of layer this module does not know how to initialise (rather than leaving it as it was).
    With `strict=False` (networks from outside the zoo) such tensors are left as they are.
    """
    draw = _WEIGHT_INITS[check_init(init)]
    generator = torch.Generator(device="cpu")
    generator.manual_seed(check_seed(seed))
    with torch.no_grad():
        for name, param in model.named_parameters():
            module_name, _, kind = name.rpartition(".")
            module = model.get_submodule(module_name)
            if isinstance(module, _WEIGHTED) and kind == "weight":
                _draw_on_cpu(draw, param, generator)
            elif isinstance(module, _WEIGHTED) and kind == "bias":
                param.zero_()
            elif isinstance(module, _BATCHNORM) and kind == "weight":
                param.fill_(1.0)
            elif isinstance(module, _BATCHNORM) and kind == "bias":
                param.zero_()
            elif strict:
                raise TypeError(f"reinitialize: no rule for parameter {name!r} "
                                f"of a {type(module).__name__}")
        for name, _ in model.named_buffers():
            module = model.get_submodule(name.rpartition(".")[0])
            if strict and not isinstance(module, _BATCHNORM):
                raise TypeError(f"reinitialize: no rule for buffer {name!r} "
                                f"of a {type(module).__name__}")
        for module in model.modules():
            if isinstance(module, _BATCHNORM):
                module.reset_running_stats()


def _draw_on_cpu(draw, param: torch.Tensor, generator: torch.Generator) -> None:
    # The generator is a CPU one so θ0 is the same whichever device the model lives on.
    if param.device.type == "cpu":
        draw(param, generator)
    else:
        tmp = torch.empty(param.shape, dtype=param.dtype)
        draw(tmp, generator)
        param.copy_(tmp)
