"""Directions in weight space for loss surfaces: random (filter-normalised), planes, trajectories.

A direction is a state dict of the network's shape: θ(x, y) = θc + x·D1 + y·D2 entry by entry.
Entries a direction leaves alone (integer buffers, and whatever it does not move) are zero.

* `random_direction` (Li et al. 2018, "Visualizing the loss landscape of neural nets"): a Gaussian
  direction rescaled so that each filter (each slice along the weight's first dimension: a
  convolution's output channel, a linear layer's output unit) has the norm of the corresponding
  filter of the network — so scale-invariant networks are compared at their own scale. `layer`
  rescales whole tensors instead, `none` leaves the Gaussian as drawn. Biases and BatchNorm
  parameters are left out (zero), as Li et al. do by default; with `include_1d` they move along
  the weights themselves (Li et al.'s code copies them). Running statistics never move. Under a
  mask the direction is zero on pruned weights, so the surface stays in the ticket's subspace.
* `plane_through(A, B, C)`: the plane through three networks in orthonormal coordinates measured in
  units of ‖B − A‖ over the parameters: A at (0, 0), B at (1, 0), C at (p, q). Buffers (BatchNorm
  running statistics) follow the same affine combination, so each network is reproduced with its
  own statistics at its marked point.
* `trajectory_plane`: the two leading principal directions of (θ_t − θ_end) over a run's
  checkpoints (Li et al. section 7), the explained variance, and the path's coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from ..errors import ConfigError

State = dict[str, torch.Tensor]
NORMS = ("filter", "layer", "none")
COLLINEAR = 1e-6  # q / ‖B − A‖ below this: the three networks span no plane


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ConfigError(f"unknown norm {norm!r}", f"choose {', '.join(NORMS)} (Li et al. use filter)")
    return norm


def _float(t: torch.Tensor) -> bool:
    return t.is_floating_point()


def random_direction(state: Mapping[str, torch.Tensor], params: Sequence[str], generator: torch.Generator, *,
                     norm: str = "filter", include_1d: bool = False,
                     mask: Mapping[str, torch.Tensor] | None = None) -> State:
    """A random direction around `state` over the parameters `params` (see the module docstring).

    Drawn on the CPU from `generator`, in the state's order, so a seed gives the same direction on
    every device. The network's weights are taken under `mask` when the norms are measured."""
    check_norm(norm)
    params = set(params)
    out: State = {}
    for name, w in state.items():
        if name not in params or not _float(w):
            out[name] = torch.zeros_like(w)
            continue
        if w.dim() <= 1:
            out[name] = w.detach().clone() if include_1d else torch.zeros_like(w)
            continue
        d = torch.randn(w.shape, generator=generator, dtype=torch.float64)
        weight = w.detach().double().cpu()
        if mask is not None and name in mask:
            keep = mask[name].cpu() != 0
            d, weight = d * keep, weight * keep
        out[name] = _normalise(d, weight, norm).to(device=w.device, dtype=w.dtype)
    return out


def _normalise(d: torch.Tensor, w: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "none":
        return d
    if norm == "layer":
        dn = d.norm()
        return d * (w.norm() / dn) if dn > 0 else d
    dn = d.flatten(1).norm(dim=1)
    wn = w.flatten(1).norm(dim=1)
    # A filter with no surviving weights (or a zero filter) gets a zero direction, not a NaN.
    factor = torch.where(dn > 0, wn / dn.clamp_min(1e-300), torch.zeros_like(dn))
    return d * factor.view(-1, *([1] * (d.dim() - 1)))


def filter_norms(t: torch.Tensor) -> torch.Tensor:
    """The norm of each filter (slice along the first dimension) of a weight."""
    return t.detach().double().flatten(1).norm(dim=1)


def _dot(a: State, b: State, names: Sequence[str]) -> float:
    return float(sum((a[n].double() * b[n].double()).sum() for n in names))


@dataclass
class Plane:
    """θ(x, y) = origin + x·D1 + y·D2, and the coordinates of the three networks."""

    origin: State
    d1: State
    d2: State
    points: torch.Tensor  # [3, 2]: (0, 0), (1, 0), (p, q)
    unit: float           # ‖B − A‖ over the parameters: one coordinate unit in weight space


def plane_through(a: State, b: State, c: State, params: Sequence[str]) -> Plane:
    """The plane through networks A, B, C (state dicts of one architecture, each under its own mask)."""
    keys = list(a)
    if list(b) != keys or list(c) != keys or any(a[k].shape != b[k].shape or a[k].shape != c[k].shape
                                                 for k in keys):
        raise ConfigError("the three networks of --plane have different architectures",
                          "choose three networks of one model, width and input shape")
    names = [n for n in params if _float(a[n])]
    u = {k: (b[k].double() - a[k].double()) if _float(a[k]) else torch.zeros_like(a[k]) for k in keys}
    v = {k: (c[k].double() - a[k].double()) if _float(a[k]) else torch.zeros_like(a[k]) for k in keys}
    uu = _dot(u, u, names)
    if uu <= 0:
        raise ConfigError("the first two networks of --plane are the same point",
                          "choose three distinct networks (e.g. rewind point, ticket, dense network)")
    p = _dot(u, v, names) / uu
    rest = {k: v[k] - p * u[k] if _float(a[k]) else v[k] for k in keys}
    q = (_dot(rest, rest, names) / uu) ** 0.5
    if q < COLLINEAR:
        raise ConfigError("the three networks of --plane lie on one line, so they span no plane",
                          "choose three networks that are not collinear")
    d2 = {k: (rest[k] / q).to(a[k].dtype) if _float(a[k]) else rest[k] for k in keys}
    d1 = {k: u[k].to(a[k].dtype) if _float(a[k]) else u[k] for k in keys}
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [p, q]], dtype=torch.float64)
    return Plane({k: t.clone() for k, t in a.items()}, d1, d2, points, uu ** 0.5)


@dataclass
class TrajectoryPlane:
    end: State                # the run's final weights: the origin
    d1: State                 # unit principal directions over the parameters
    d2: State
    path: torch.Tensor        # [T, 2] each checkpoint's coordinates, in checkpoint order
    explained: torch.Tensor   # [2] share of the variance of (θ_t − θ_end) each direction explains


def trajectory_plane(states: Sequence[State], params: Sequence[str]) -> TrajectoryPlane:
    """PCA of the checkpoints' offsets from the last one (Li et al. 2018, section 7)."""
    if len(states) < 3:
        raise ConfigError(f"--trajectory needs at least 3 checkpoints, the run has {len(states)}",
                          "train with more --checkpoint-at steps, e.g. --checkpoint-at 0,1ep,2ep,end")
    end = states[-1]
    names = [n for n in params if _float(end[n])]
    rows = torch.stack([torch.cat([(s[n].double() - end[n].double()).flatten() for n in names])
                        for s in states[:-1]])
    centred = rows - rows.mean(0, keepdim=True)  # as sklearn's PCA, which Li et al. use
    _, sv, vt = torch.linalg.svd(centred, full_matrices=False)
    if len(sv) < 2 or sv[1] <= 1e-12 * max(float(sv[0]), 1e-300):
        raise ConfigError("the run's checkpoints lie on one line, so they span no plane",
                          "choose a run with more varied checkpoints")
    explained = (sv[:2] ** 2) / (sv ** 2).sum()
    dirs = []
    for row in vt[:2]:
        d, offset = {}, 0
        for k, t in end.items():
            if k in names:
                d[k] = row[offset:offset + t.numel()].view(t.shape).to(t.dtype)
                offset += t.numel()
            else:
                d[k] = torch.zeros_like(t)
        dirs.append(d)
    path = torch.cat([rows, torch.zeros(1, rows.shape[1], dtype=rows.dtype)]) @ vt[:2].T
    return TrajectoryPlane({k: t.clone() for k, t in end.items()}, dirs[0], dirs[1], path, explained)
