"""Barriers: how much worse the path's interior is than its endpoints.

The headline is Frankle et al.'s (2020) instability: max over α of value(α) minus the mean of
the endpoint values. Two networks are linearly mode connected ("stable") when the error barrier
is below 2 percentage points.

The "straight-line" variant subtracts the straight line between the endpoint values instead of
their mean: max over α of value(α) − ((1 − α)·value(0) + α·value(1)). It differs from the
headline when the endpoints differ (it does not count the gap between them as barrier).
Paul et al. (2022) use it per example, on the loss.

Both take the max over the whole grid including the endpoints, so neither is ever negative.
When the maximum lies at an endpoint (no interior α reaches it), the headline is half the gap
between the endpoints, not a rise along the path: `barrier` says so (`error_at_endpoint`), and
the straight-line variant is then 0.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .curve import Curve

STABILITY_THRESHOLD = 0.02
"""Frankle et al.'s criterion: an error barrier below this (2%) counts as stable."""


def _endpoint_rows(alphas: torch.Tensor) -> tuple[int, int]:
    rows = []
    for value in (0.0, 1.0):
        hits = (alphas == value).nonzero()
        if len(hits) == 0:
            raise ConfigError(f"the curve's α grid has no α = {value:g}, which a barrier is measured against",
                              "evaluate a grid that includes both endpoints, e.g. alphas=30")
        rows.append(int(hits[0]))
    return rows[0], rows[1]


def _straight_line(alphas: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    # lerp is exact at both ends and when start == end (see interpolate.py), so identical
    # networks get a barrier of exactly zero. alphas [P] broadcast against start/end [...].
    weight = alphas.to(start.dtype).view(-1, *([1] * start.dim()))
    return torch.lerp(start.unsqueeze(0), end.unsqueeze(0), weight)


def barrier(curve: Curve) -> dict:
    """Error and loss barriers of a curve; "error" is the headline (Frankle et al.'s instability).

    Returns floats:
      error, loss: max_α v(α) − (v(0) + v(1)) / 2 — the headline definition;
      error_alpha, loss_alpha: the α where that maximum lies (an interior α when one attains it);
      error_at_endpoint, loss_at_endpoint: True when only an endpoint attains the maximum, so the
        headline measures the gap between the endpoints, not a barrier;
      error_straight, loss_straight: max_α v(α) − ((1 − α)·v(0) + α·v(1));
    and stable: error < STABILITY_THRESHOLD.
    """
    i0, i1 = _endpoint_rows(curve.alphas)
    out: dict = {}
    for key in ("error", "loss"):
        values = getattr(curve, key)
        top_value = values.max()
        interior = torch.ones(len(values), dtype=torch.bool)
        interior[[i0, i1]] = False
        reached = (values == top_value) & interior
        at_endpoint = not bool(reached.any())
        top = int(values.argmax()) if at_endpoint else int(reached.nonzero()[0])
        out[key] = float(top_value - (values[i0] + values[i1]) / 2)
        out[f"{key}_alpha"] = float(curve.alphas[top])
        out[f"{key}_at_endpoint"] = at_endpoint
        out[f"{key}_straight"] = float((values - _straight_line(curve.alphas, values[i0], values[i1])).max())
    out["stable"] = out["error"] < STABILITY_THRESHOLD
    return out


def endpoint_note(alpha: float, at_endpoint: bool, value: float) -> str:
    """The warning to print beside a barrier whose maximum is an endpoint ("" otherwise)."""
    if not at_endpoint or value <= 0:
        return ""
    return f"max at α={alpha:g}: this is the endpoint gap, not a barrier"


def per_example_barrier(curve: Curve) -> torch.Tensor:
    """[N] float32: each example's loss barrier above the straight line (Paul et al. 2022),
    max_α loss_i(α) − ((1 − α)·loss_i(0) + α·loss_i(1))."""
    if curve.per_example_loss is None:
        raise ConfigError("the curve has no per-example losses",
                          "compute it with interpolation_curve(..., per_example=True)")
    i0, i1 = _endpoint_rows(curve.alphas)
    losses = curve.per_example_loss
    return (losses - _straight_line(curve.alphas, losses[i0], losses[i1])).amax(0)


def connected_fraction(per_example: torch.Tensor, threshold: float) -> float:
    """Fraction of examples whose barrier is at most `threshold` (linearly connected on them)."""
    if per_example.numel() == 0:
        raise ConfigError("no per-example barriers to summarise")
    return float((per_example <= threshold).double().mean())
