"""What every network in the zoo shares: its pruning declarations and the sizing rules.

Sizing rules, applied the same way by every architecture so that each builds for every dataset:

* Widths scale by the `width` multiplier and round to the nearest integer, never below 1. The
  output layer is never scaled: its size is the dataset's class count.
* A 2x2 max-pool is kept only where both spatial sides are at least 2 when it is reached; on
  small inputs (8x8 digits) the pools that would shrink the map below 1x1 are skipped, so the
  network keeps every layer and every parameter of the original.
* Flatten sizes are computed from the input shape, never hard-coded for 28x28 or 32x32.

Whether a pool is kept is decided at construction, so parameter names (and the order of
`named_parameters`, which the seeded initialisation walks) never depend on the input shape.
"""
from __future__ import annotations

import math
import operator

from torch import nn

from ..errors import ConfigError


class Network(nn.Module):
    """A classifier built for one input shape (C, H, W) and one class count.

    Subclasses set `output_layer`, the parameter name of the output layer's weight.
    `prunable` lists, in `named_parameters` order, the parameters that pruning may remove: the
    weights of every convolution and linear layer, the output layer included (Frankle & Carbin
    prune it at half the rate of the other fc layers; open_lth's VGG leaves it out — both are
    the pruning strategy's call, made by name through `output_layer`). Biases and BatchNorm
    parameters are never prunable.
    """

    output_layer: str

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: float):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.width = width

    @property
    def prunable(self) -> tuple[str, ...]:
        return conv_linear_weights(self)


def conv_linear_weights(model: nn.Module) -> tuple[str, ...]:
    """Names of the weights of every Conv2d and Linear in `model`, in `named_parameters` order."""
    prefixes = {name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    return tuple(
        name for name, _ in model.named_parameters()
        if name.endswith(".weight") and name[: -len(".weight")] in prefixes
    )


def scale(n: int, width: float) -> int:
    """`n` channels or hidden units scaled by `width`, at least 1."""
    return max(1, round(n * width))


def pool_fits(h: int, w: int) -> bool:
    """Whether a 2x2 max-pool keeps the map at least 1x1 (see the module docstring)."""
    return h >= 2 and w >= 2


def check_build_args(input_shape, num_classes, width) -> tuple[tuple[int, int, int], int, float]:
    """Validate what a dataset and a config hand to a model; return them as plain Python numbers.

    Integers may be numpy or torch scalars (datasets often report their shape that way).
    """
    try:
        shape = tuple(operator.index(s) for s in input_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(
            f"input shape {input_shape!r} is not three positive integers",
            "pass (channels, height, width), e.g. (1, 28, 28)",
        )
    try:
        classes = operator.index(num_classes)
    except TypeError:
        classes = 0
    if isinstance(num_classes, bool) or classes < 1:
        raise ConfigError(f"class count {num_classes!r} is not a positive integer")
    try:
        scale_by = float(width)
    except (TypeError, ValueError):
        scale_by = math.nan
    if isinstance(width, (bool, str)) or not math.isfinite(scale_by) or scale_by <= 0:
        raise ConfigError(f"width {width!r} is not a positive number", "use e.g. 1.0, 0.5 or 0.25")
    return shape, classes, scale_by
