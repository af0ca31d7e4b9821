"""The metric: cross-entropy and correctness of networks on a labelled set, accumulated per α.

Two ways to run networks, sharing the scoring and the accumulation:

* `stacked_forward` runs a chunk of networks (a stacked state, one member per α) in one
  vmapped `functional_call`, so one pass over the data evaluates the whole chunk;
* `evaluate_module` runs one ordinary module, the straightforward reference.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

State = dict[str, torch.Tensor]
Forward = Callable[[State, torch.Tensor], torch.Tensor]


def stacked_forward(model: nn.Module) -> Forward:
    """forward(state, x) -> logits [members, batch, classes] for a stacked state and shared x.

    Every tensor comes from `state` (parameters and buffers, as in a state dict); the module
    contributes its structure and its train/eval modes at call time.
    """
    def one(state: State, x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, state, (x,))

    return vmap(one, in_dims=(0, None))


class Scores:
    """Summed loss, number correct and (optionally) each example's loss, for P networks on N examples."""

    def __init__(self, points: int, examples: int, device: torch.device, per_example: bool):
        self.examples = examples
        self.loss_sum = torch.zeros(points, dtype=torch.float64, device=device)
        self.correct = torch.zeros(points, dtype=torch.int64, device=device)
        self.per_example = (torch.empty(points, examples, dtype=torch.float32, device=device)
                            if per_example else None)

    def add(self, rows: slice, start: int, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Score logits [members, batch, classes] of networks `rows` on examples start.. of the set."""
        members, batch, classes = logits.shape
        losses = F.cross_entropy(logits.reshape(members * batch, classes), y.repeat(members),
                                 reduction="none").view(members, batch)
        # Summed in float64: 10^4–10^5 float32 terms would otherwise lose digits the barrier needs.
        self.loss_sum[rows] += losses.sum(1, dtype=torch.float64)
        self.correct[rows] += (logits.argmax(-1) == y).sum(1)
        if self.per_example is not None:
            self.per_example[rows, start:start + batch] = losses.float()

    def loss(self) -> torch.Tensor:
        return (self.loss_sum / self.examples).cpu()

    def error(self) -> torch.Tensor:
        return (1.0 - self.correct.double() / self.examples).cpu()

    def per_example_loss(self) -> torch.Tensor | None:
        return None if self.per_example is None else self.per_example.cpu()


@torch.no_grad()
def evaluate_stacked(forward: Forward, model: nn.Module, state: State, x: torch.Tensor, y: torch.Tensor,
                     batch_size: int, scores: Scores, rows: slice) -> None:
    """Score every member of a stacked state (networks `rows` of `scores`) in eval mode."""
    model.eval()
    for start in range(0, len(x), batch_size):
        scores.add(rows, start, forward(state, x[start:start + batch_size]), y[start:start + batch_size])


@torch.no_grad()
def evaluate_module(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                    scores: Scores, row: int) -> None:
    """Score an ordinary module (network `row` of `scores`) in eval mode."""
    model.eval()
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size])
        scores.add(slice(row, row + 1), start, logits.unsqueeze(0), y[start:start + batch_size])


@torch.no_grad()
def predictions_stacked(forward: Forward, model: nn.Module, state: State, x: torch.Tensor,
                        batch_size: int) -> torch.Tensor:
    """Argmax predictions [members, N] of every member of a stacked state, in eval mode."""
    model.eval()
    return torch.cat([forward(state, x[s:s + batch_size]).argmax(-1)
                      for s in range(0, len(x), batch_size)], dim=1)
