"""Permutation specs: how a network's hidden units may be permuted without changing its function.

Hidden units (neurons, channels) can be reordered if every tensor that reads or writes them is
reordered along with them (Entezari et al. 2022; Ainsworth et al. 2023). A model declares this
next to its definition as a `PermutationSpec`: a list of groups, each one permutation, each naming
the (tensor, axis) pairs it acts on. Alignment algorithms (landscape.align) read specs generically
and never test a model's name.

    spec = model.permutation_spec()
    spec.groups[0]    # PermutationGroup("fc1", 300, (Axis("fc1.weight", 0), Axis("fc1.bias", 0),
                      #                               Axis("fc2.weight", 1)), probes=("fc1",))

* An `Axis` may carry a `block`: a linear layer that reads a flattened conv map (channel-major)
  sees each channel as `block` = H·W consecutive inputs, which move together.
* BatchNorm layers list their weight, bias, running mean and running variance; the batch counter
  is not per channel.
* `probes` name the modules whose output carries the group's units, one per place they appear
  (a residual stream appears after every block of its stage). Activation matching correlates
  these outputs; REPAIR rescales them (where the probe is a Conv/Linear with a bias, it fuses the
  correction into that layer).
* In a residual network every tensor on the residual stream of a stage must share one
  permutation, since the skip connections add the stream to itself: one group per stage.

Helpers below build specs from layer names; `spec_of(model)` returns a model's spec, or raises
ConfigError naming what to declare.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ConfigError

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Axis:
    """Axis `dim` of tensor `tensor` (a state-dict key) is indexed by the group's units.

    `block` > 1: each unit covers `block` consecutive entries of that axis (a flattened conv map).
    """

    tensor: str
    dim: int
    block: int = 1


@dataclass(frozen=True)
class PermutationGroup:
    """One permutation of `size` units, acting on every listed axis at once."""

    name: str
    size: int
    axes: tuple[Axis, ...]
    probes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PermutationSpec:
    groups: tuple[PermutationGroup, ...]
    notes: str = field(default="", compare=False)

    def by_tensor(self) -> dict[str, list[tuple[PermutationGroup, Axis]]]:
        """For each tensor, the groups acting on it and the axis each acts on."""
        out: dict[str, list[tuple[PermutationGroup, Axis]]] = {}
        for group in self.groups:
            for axis in group.axes:
                out.setdefault(axis.tensor, []).append((group, axis))
        return out

    def check(self, state: State) -> "PermutationSpec":
        """Every axis exists with size = group size · block, and no axis is claimed twice."""
        seen: dict[tuple[str, int], str] = {}
        for group in self.groups:
            for axis in group.axes:
                if axis.tensor not in state:
                    raise ConfigError(f"permutation group {group.name!r} names {axis.tensor!r}, which the "
                                      "network does not have", "fix the model's permutation_spec()")
                shape = tuple(state[axis.tensor].shape)
                if axis.dim >= len(shape) or shape[axis.dim] != group.size * axis.block:
                    raise ConfigError(f"permutation group {group.name!r} ({group.size} units) does not fit axis "
                                      f"{axis.dim} of {axis.tensor} {shape}", "fix the model's permutation_spec()")
                key = (axis.tensor, axis.dim)
                if key in seen:
                    raise ConfigError(f"axis {axis.dim} of {axis.tensor} is claimed by groups {seen[key]!r} and "
                                      f"{group.name!r}", "one axis belongs to one permutation group")
                seen[key] = group.name
        return self


# -- building blocks, by layer name ----------------------------------------------------------------

def out_axes(module: nn.Module, prefix: str) -> list[Axis]:
    """The output side of a Conv/Linear/BatchNorm layer: its weight's axis 0 and every per-unit vector."""
    names = [n for n, _ in module.named_parameters(recurse=False)]
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
        names += ["running_mean", "running_var"]
    return [Axis(f"{prefix}.{n}", 0) for n in names]


def in_axes(prefix: str, block: int = 1) -> list[Axis]:
    """The input side of a Conv/Linear layer: its weight's axis 1."""
    return [Axis(f"{prefix}.weight", 1, block)]


def group(model: nn.Module, name: str, size: int, writers: list[str], readers: list[str | tuple[str, int]],
          probes: tuple[str, ...] | list[str] = ()) -> PermutationGroup:
    """A group whose units are written by the layers `writers` (and their BatchNorms) and read by
    `readers` (layer names, or (layer, block) for a linear layer reading a flattened map)."""
    axes: list[Axis] = []
    for w in writers:
        axes += out_axes(model.get_submodule(w), w)
    for r in readers:
        prefix, block = (r, 1) if isinstance(r, str) else r
        axes += in_axes(prefix, block)
    return PermutationGroup(name, size, tuple(axes), tuple(probes))


def chain(model: nn.Module, layers: list[str], probes: list[str] | None = None,
          norms: dict[str, str] | None = None) -> PermutationSpec:
    """A plain feed-forward network: one group per hidden layer of `layers` (Conv/Linear names in
    order, the last being the output layer). `norms` maps a layer to the BatchNorm after it.

    A linear layer reading a flattened conv map gets its block size from the shapes
    (in_features / channels), so spatial sizes never need declaring.
    """
    norms = norms or {}
    groups = []
    for i, (writer, reader) in enumerate(zip(layers[:-1], layers[1:])):
        w, r = model.get_submodule(writer), model.get_submodule(reader)
        size = w.weight.shape[0]
        block = r.weight.shape[1] // size if isinstance(r, nn.Linear) else 1
        writers = [writer] + ([norms[writer]] if writer in norms else [])
        probe = probes[i] if probes else writer
        groups.append(group(model, writer, size, writers, [(reader, block)], [probe]))
    return PermutationSpec(tuple(groups))


def spec_of(model: nn.Module) -> PermutationSpec:
    """The model's permutation spec, checked against its state dict."""
    declare = getattr(model, "permutation_spec", None)
    if declare is None:
        raise ConfigError(f"model {type(model).__name__} declares no permutation spec, so its units cannot be "
                          "aligned", "give it a permutation_spec() method returning a "
                          "landscape.models.permutation.PermutationSpec (see that module)")
    spec = declare() if callable(declare) else declare
    if not isinstance(spec, PermutationSpec):
        raise ConfigError(f"{type(model).__name__}.permutation_spec() returned a {type(spec).__name__}",
                          "return a landscape.models.permutation.PermutationSpec")
    return spec.check(model.state_dict())


__all__ = ["Axis", "PermutationGroup", "PermutationSpec", "out_axes", "in_axes", "group", "chain", "spec_of"]
