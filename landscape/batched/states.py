"""Checking what callers hand in: endpoint state dicts against the template, data, options.

Every check raises ConfigError with what is wrong and what to do, before any computation, so a
mismatched checkpoint fails in milliseconds rather than halfway through a curve.
"""
from __future__ import annotations

import copy
import operator
from typing import Mapping

import torch
from torch import nn

from ..errors import ConfigError

State = dict[str, torch.Tensor]

SAME_ARCHITECTURE = ("compare checkpoints of one architecture: the same model name, input shape, "
                     "class count and width as the template")


def working_copy(template: nn.Module, device: torch.device) -> nn.Module:
    """A private copy of `template` on `device`.

    Evaluation switches train/eval modes and BatchNorm momenta and loads weights; doing that on a
    copy leaves the caller's module exactly as it was.
    """
    return copy.deepcopy(template).to(device)


def endpoint(reference: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], label: str,
             device: torch.device) -> State:
    """`state` checked against the template's state dict `reference`, on `device`, in its dtypes.

    Casting to the template's dtypes is what `load_state_dict` would do; doing it once here keeps
    the two evaluation methods on identical tensors.
    """
    if not isinstance(state, Mapping):
        raise ConfigError(f"{label} is a {type(state).__name__}, not a state dict",
                          "pass model.state_dict() (parameters and buffers by name)")
    missing = [k for k in reference if k not in state]
    unexpected = [k for k in state if k not in reference]
    wrong = [f"{k} is {tuple(state[k].shape)}, the template has {tuple(v.shape)}"
             for k, v in reference.items()
             if k in state and (not torch.is_tensor(state[k]) or state[k].shape != v.shape)]
    problems = ([f"missing {_names(missing)}"] if missing else []) \
        + ([f"unexpected {_names(unexpected)}"] if unexpected else []) + wrong[:3]
    if problems:
        raise ConfigError(f"{label} does not match the template: {'; '.join(problems)}",
                          SAME_ARCHITECTURE)
    return {k: state[k].detach().to(device=device, dtype=v.dtype) for k, v in reference.items()}


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_data(x, y, label: str = "x") -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and integer labels of equal length; labels moved to the inputs' device."""
    check_inputs(x, label)
    if not torch.is_tensor(y) or y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise ConfigError("y must be a 1-D tensor of integer class labels")
    if len(y) != len(x):
        raise ConfigError(f"{label} has {len(x)} examples but y has {len(y)} labels")
    return x, y.to(x.device)


def check_inputs(x, label: str) -> torch.Tensor:
    if not torch.is_tensor(x) or x.dim() < 2 or len(x) == 0:
        raise ConfigError(f"{label} must be a non-empty tensor of inputs [N, ...]")
    return x


def check_choice(value, choices: tuple[str, ...], label: str) -> str:
    if value not in choices:
        raise ConfigError(f"{label}={value!r} is not one of {', '.join(map(repr, choices))}")
    return value


def check_positive(value, label: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < 1:
        raise ConfigError(f"{label}={value!r} is not a positive integer")
    return number
