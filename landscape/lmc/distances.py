"""How far apart two networks are: in weight space, in function space, and in their masks.

Weight-space distances take state dicts and the names of the tensors to compare. Pass the
weights you mean — `model.prunable` for the conv/linear weights (Maene et al.), or
`[n for n, _ in model.named_parameters()]` for every parameter. State dicts also hold
BatchNorm running statistics, which are not weights, so there is deliberately no default.
All sums run in float64.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import torch
from torch import nn

from ..batched.evaluate import predictions_stacked, stacked_forward
from ..batched.states import check_inputs, check_positive, endpoint, working_copy
from ..errors import ConfigError

State = Mapping[str, torch.Tensor]


def _flat(state: State, names: list[str], label: str) -> torch.Tensor:
    missing = [n for n in names if n not in state]
    if missing:
        raise ConfigError(f"{label} has no tensor named {missing[0]!r}",
                          "pass names that both state dicts hold, e.g. model.prunable")
    return torch.cat([state[n].detach().reshape(-1).to("cpu", torch.float64) for n in names])


def _pair(a: State, b: State, names: Iterable[str]) -> tuple[torch.Tensor, torch.Tensor]:
    names = list(names)
    if not names:
        raise ConfigError("no tensor names given to compare", "pass e.g. model.prunable")
    va, vb = _flat(a, names, "the first state"), _flat(b, names, "the second state")
    if va.shape != vb.shape:
        raise ConfigError("the two states' tensors differ in size", "compare networks of one architecture")
    return va, vb


def l2_distance(state_a: State, state_b: State, names: Iterable[str]) -> float:
    """‖θA − θB‖₂ over the named tensors, flattened and concatenated."""
    va, vb = _pair(state_a, state_b, names)
    return float(torch.linalg.vector_norm(va - vb))


def normalized_l2_distance(state_a: State, state_b: State, parent: State, names: Iterable[str], *,
                           parent_b: State | None = None) -> float:
    """‖(θA − PA) − (θB − PB)‖ / mean(‖θA − PA‖, ‖θB − PB‖): how far apart two children's
    displacements are, in units of how far they travelled from where they started.

    PA = `parent` is where A started and PB = `parent_b` (default: `parent`) where B started; two
    children of one parent under different masks start from its two masked copies. With one start
    this is ‖θA − θB‖ / mean travel. The normaliser makes runs of different lengths and learning
    rates comparable. By the triangle inequality the value lies in [0, 2]: 0 when the children
    moved alike, about √2 when their displacements are orthogonal and equally long (independent
    noise in high dimension), 2 when they went in opposite directions. The gap between two
    different starts is not counted (it is not travel; with it the ratio is unbounded). NaN when
    neither child moved (0/0).
    """
    names = list(names)
    va, vb = _pair(state_a, state_b, names)
    pa = _flat(parent, names, "the parent state")
    pb = pa if parent_b is None else _flat(parent_b, names, "the second parent state")
    da, db = va - pa, vb - pb
    travel = (torch.linalg.vector_norm(da) + torch.linalg.vector_norm(db)) / 2
    apart = torch.linalg.vector_norm(da - db)
    return math.nan if travel == 0 else float(apart / travel)


def angular_distance(a: State, b: State, names: Iterable[str]) -> float:
    """2·angle/π between the flattened weight vectors (Maene et al.), in [0, 2]:
    0 = same direction, 1 = orthogonal, 2 = opposite. NaN if either vector is zero.

    The scale puts orthogonality at 1 because that is where independently trained (or
    initialised) networks sit in high dimension: values near 1 mean "as unrelated as two
    independent networks", values near 0 mean "still pointing the same way".

    The angle is computed as 2·atan2(‖â − b̂‖, ‖â + b̂‖) on the unit vectors (Kahan) rather than
    acos of the cosine, which loses half its digits near 0 and π: a vector against itself is
    exactly 0 and against its negation exactly 2.
    """
    va, vb = _pair(a, b, names)
    na, nb = torch.linalg.vector_norm(va), torch.linalg.vector_norm(vb)
    if na == 0 or nb == 0:
        return math.nan
    ua, ub = va / na, vb / nb
    angle = 2 * torch.atan2(torch.linalg.vector_norm(ua - ub), torch.linalg.vector_norm(ua + ub))
    return float(2 * angle / math.pi)


@torch.no_grad()
def disagreement(template: nn.Module, state_a: State, state_b: State, x: torch.Tensor, *,
                 batch_size: int = 1000) -> float:
    """Fraction of examples on which the two networks' argmax predictions differ (Evci et al.).

    Both networks run in one vmapped pass per batch, in eval mode with their own BatchNorm
    statistics (they are trained networks, not points inside a path).
    """
    x = check_inputs(x, "x")
    batch_size = check_positive(batch_size, "batch_size")
    model = working_copy(template, x.device)
    reference = model.state_dict()
    a = endpoint(reference, state_a, "state_a", x.device)
    b = endpoint(reference, state_b, "state_b", x.device)
    stacked = {k: torch.stack([a[k], b[k]]) for k in reference}
    predictions = predictions_stacked(stacked_forward(model), model, stacked, x, batch_size)
    return float((predictions[0] != predictions[1]).double().mean())


def complete_masks(mask_a: Mapping[str, torch.Tensor] | None, mask_b: Mapping[str, torch.Tensor] | None
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Both masks over the union of the layers either names, as bool tensors; a layer a mask does
    not name (or a mask of None) is dense."""
    mask_a, mask_b = dict(mask_a or {}), dict(mask_b or {})
    names = list(mask_a) + [n for n in mask_b if n not in mask_a]
    full_a = {n: (mask_a[n] != 0) if n in mask_a else torch.ones_like(mask_b[n], dtype=torch.bool) for n in names}
    full_b = {n: (mask_b[n] != 0) if n in mask_b else torch.ones_like(mask_a[n], dtype=torch.bool) for n in names}
    for n in names:
        if full_a[n].shape != full_b[n].shape:
            raise ConfigError(f"the masks' {n!r} entries differ in shape: {tuple(full_a[n].shape)} "
                              f"against {tuple(full_b[n].shape)}", "compare masks of one architecture")
    return full_a, full_b


def jaccard(a: torch.Tensor, b: torch.Tensor) -> float:
    """|a ∧ b| / |a ∨ b| for bool tensors; 1.0 when both are empty (they are the same set)."""
    union = int((a | b.to(a.device)).sum())
    return 1.0 if union == 0 else int((a & b.to(a.device)).sum()) / union


def mask_overlap(mask_a: Mapping[str, torch.Tensor] | None, mask_b: Mapping[str, torch.Tensor] | None
                 ) -> dict[str, float]:
    """Jaccard overlap of the kept weights: {"overall": over all masked layers, name: per layer}.

    "overall" pools the weights of every layer (large layers weigh more); it is not the mean of
    the per-layer values. Layers only one mask names count as dense in the other.
    """
    full_a, full_b = complete_masks(mask_a, mask_b)
    if not full_a:
        return {"overall": 1.0}
    per_layer = {n: jaccard(full_a[n], full_b[n]) for n in full_a}
    both = sum(int((full_a[n] & full_b[n].to(full_a[n].device)).sum()) for n in full_a)
    either = sum(int((full_a[n] | full_b[n].to(full_a[n].device)).sum()) for n in full_a)
    return {"overall": 1.0 if either == 0 else both / either, **per_layer}
