"""Model names, and building a model with a seeded θ0."""
from __future__ import annotations

import copy
from functools import partial
from typing import Callable

import torch

from ..errors import ConfigError
from .base import Network, check_build_args
from .conv import ConvNet
from ..plugins import CodeSource, entry_points, resolve_source
from .custom import ENTRY_GROUP, OWN_INIT, build_custom
from .init import check_init, check_seed, init_names, reinitialize
from .lenet import LeNet5
from .mlp import MLP, LeNet300100
from .mnist1d import CNN1d, MLP1d
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
    "mnist1d_cnn": CNN1d,
    "mnist1d_mlp": MLP1d,
    "mlp_3x512": MLP,   # Ainsworth et al. (2023)'s MNIST MLP, for alignment
}


def model_names() -> list[str]:
    """Every zoo name `build_model` accepts (besides import paths and entry-point names)."""
    return list(_MODELS)


def model_catalog() -> list[tuple[str, str]]:
    """(name, origin) of every named model: the zoo's, then those packages register."""
    zoo = [(name, "zoo") for name in _MODELS]
    plugins = [(name, f"{s.origin}: {s.target}") for name, s in sorted(entry_points(ENTRY_GROUP).items())
               if name not in _MODELS]
    return zoo + plugins


def model_source(name: str) -> CodeSource | None:
    """The outside code a model name stands for (None for the zoo); ConfigError if unknown."""
    if name in _MODELS:
        return None
    source = resolve_source(name, ENTRY_GROUP, set(_MODELS))
    if source is None:
        raise ConfigError(f"unknown model {name!r}", f"choose one of: {', '.join(model_names())}, "
                          "a registered name (`landscape models`) or package.module:factory")
    return source


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, *, seed: int,
                init: str = "kaiming_normal", width: float = 1.0) -> Network:
    """Build `name` for inputs of shape (C, H, W) with `num_classes` outputs, θ0 drawn from `seed`.

    `width` scales every hidden width and channel count (not the output layer). The model is
    on the CPU, in training mode. Raises ConfigError for an unknown name or initialisation or an
    invalid shape, class count or width.
    """
    source = model_source(name)
    check_seed(seed)
    if source is not None:
        return _build_outside(source, input_shape, num_classes, seed=seed, init=init, width=width)
    constructor = _MODELS[name]
    if init == OWN_INIT:
        raise ConfigError(f"init {OWN_INIT!r} keeps a module's own initialisation, but {name} is a zoo model",
                          f"use one of: {', '.join(init_names())}")
    check_init(init)
    input_shape, num_classes, width = check_build_args(input_shape, num_classes, width)

    # Built on the meta device: the layers' own default initialisation would draw from (and so
    # advance) the global RNG and is overwritten anyway; reinitialize fills every tensor.
    with torch.device("meta"):
        model = constructor(input_shape, num_classes, width)
    model.to_empty(device="cpu")
    reinitialize(model, seed=seed, init=init)
    return model


def _build_outside(source: CodeSource, input_shape, num_classes, *, seed: int, init: str, width: float):
    if init != OWN_INIT:
        check_init(init)
    input_shape, num_classes, width = check_build_args(input_shape, num_classes, width)
    model = build_custom(source, input_shape, num_classes, width, seed)
    if init != OWN_INIT:
        # The tool's θ0, as for the zoo; tensors it has no rule for keep the seeded own draw.
        reinitialize(model, seed=seed, init=init, strict=False)
    model.landscape_rebuild = partial(_build_outside, source, input_shape, num_classes, init=init, width=width)
    return model


def redraw(template: torch.nn.Module, *, seed: int, init: str) -> torch.nn.Module:
    """A fresh network of `template`'s architecture with θ drawn from `seed` (reinit controls)."""
    rebuild = getattr(template, "landscape_rebuild", None)
    if rebuild is not None:
        return rebuild(seed=seed)
    fresh = copy.deepcopy(template)
    reinitialize(fresh, seed=seed, init=init)
    return fresh
