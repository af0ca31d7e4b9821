"""Model names, and building a model with a seeded θ0."""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch

from ..errors import ConfigError
from .base import Network, check_build_args
from .conv import ConvNet
from .init import check_init, check_seed, reinitialize
from .lenet import LeNet5
from .mlp import MLP, LeNet300100
from .resnet import RESNET18_PLAN, ResNet, cifar_plan
from .vgg import VGG

_MODELS: dict[str, Callable[..., Network]] = {
    "lenet_300_100": LeNet300100,
    "lenet5": LeNet5,
    "conv2": partial(ConvNet, stages=1),
    "conv4": partial(ConvNet, stages=2),
    "conv6": partial(ConvNet, stages=3),
    "vgg11": partial(VGG, depth=11),
    "vgg16": partial(VGG, depth=16),
    "vgg19": partial(VGG, depth=19),
    "resnet20": partial(ResNet, plan=cifar_plan(20)),
    "resnet32": partial(ResNet, plan=cifar_plan(32)),
    "resnet56": partial(ResNet, plan=cifar_plan(56)),
    "resnet18": partial(ResNet, plan=RESNET18_PLAN),
    "mlp_3x512": MLP,   # Ainsworth et al. (2023)'s MNIST MLP, for alignment
}


def model_names() -> list[str]:
    """Every name `build_model` accepts."""
    return list(_MODELS)


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, *, seed: int,
                init: str = "kaiming_normal", width: float = 1.0) -> Network:
    """Build `name` for inputs of shape (C, H, W) with `num_classes` outputs, θ0 drawn from `seed`.

    `width` scales every hidden width and channel count (not the output layer). The model is
    on the CPU, in training mode. Raises ConfigError for an unknown name or initialisation or an
    invalid shape, class count or width.
    """
    constructor = _MODELS.get(name)
    if constructor is None:
        raise ConfigError(f"unknown model {name!r}", f"choose one of: {', '.join(model_names())}")
    check_init(init)
    check_seed(seed)
    input_shape, num_classes, width = check_build_args(input_shape, num_classes, width)

    # Built on the meta device: the layers' own default initialisation would draw from (and so
    # advance) the global RNG and is overwritten anyway; reinitialize fills every tensor.
    with torch.device("meta"):
        model = constructor(input_shape, num_classes, width)
    model.to_empty(device="cpu")
    reinitialize(model, seed=seed, init=init)
    return model
