"""Per-example difficulty scores: the arithmetic, on tensors, with no files or training loops.

- EL2N (Paul et al. 2021): ‖softmax(f(x)) − onehot(y)‖₂, the error vector's length.
- GraNd (Paul et al. 2021): ‖∇_θ ℓ(f(x), y)‖₂, each example's own loss gradient, all parameters.
- Forgetting events (Toneva et al. 2019): how often an example is classified correctly at one
  presentation in a training minibatch and incorrectly at its next.
- The per-example LMC barrier is computed by landscape.lmc (per_example_barrier).

Every score is "higher is harder". Networks are scored in eval mode: per-example gradients need
each example's output not to depend on the rest of its batch, which BatchNorm in training mode
breaks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .gradnorm import grad_norms, supports

METHODS = ("el2n", "grand", "forgetting", "lmc")
DESCRIPTIONS = {
    "el2n": "EL2N: the L2 norm of softmax(f(x)) - onehot(y) on the un-augmented example (Paul et al. 2021)",
    "grand": "GraNd: the L2 norm of the example's own loss gradient over all parameters (Paul et al. 2021)",
    "forgetting": "forgetting events: correct-to-incorrect transitions between consecutive presentations in "
                  "training minibatches; never-learned examples rank hardest (Toneva et al. 2019)",
    "lmc": "the example's loss barrier on the linear path between two siblings spawned at the scoring step "
           "(Paul et al. 2022)",
}
# Bytes of per-example gradients held at once by `grand` (one chunk of examples × all parameters).
GRAD_BUDGET = 256 * 2**20


def el2n(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """EL2N of each row of `logits` [N, classes] against labels `y` [N]."""
    error = torch.softmax(logits.double(), dim=1)
    error[torch.arange(len(y), device=y.device), y] -= 1.0
    return error.norm(dim=1)


@torch.no_grad()
def el2n_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    model.eval()
    out = torch.cat([el2n(model(x[i:i + batch_size]), y[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train()
    return out


def grand_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int | None = None,
                 method: str = "auto") -> torch.Tensor:
    """GraNd of every example of (x, y), in chunks. `method`: "norms" (per-example gradient norms
    from one batched backward pass, landscape.diet.gradnorm; the zoo's layers), "vmap" (per-example
    gradients by `vmap(grad(...))`, any model), or "auto" (norms where supported)."""
    if method == "norms" or (method == "auto" and supports(model)):
        return _grand_from_norms(model, x, y, chunk)
    return _grand_vmap(model, x, y, chunk)


def _grand_from_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int | None) -> torch.Tensor:
    # Convolutions form each example's weight gradient and unfolded input: smaller chunks.
    chunk = chunk or (128 if any(isinstance(m, nn.Conv2d) for m in model.modules()) else 1024)
    model.eval()
    try:
        return torch.cat([grad_norms(model, x[i:i + chunk], y[i:i + chunk]) for i in range(0, len(x), chunk)])
    finally:
        model.train()


def _grand_vmap(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int | None) -> torch.Tensor:
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    n_params = sum(p.numel() for p in params.values())
    chunk = chunk or max(1, min(1024, GRAD_BUDGET // (4 * n_params)))

    def loss(p, b, xi, yi):
        logits = functional_call(model, (p, b), (xi.unsqueeze(0),))
        return F.cross_entropy(logits, yi.unsqueeze(0))

    per_example = vmap(grad(loss), in_dims=(None, None, 0, 0))
    model.eval()
    norms = []
    try:
        for i in range(0, len(x), chunk):
            grads = per_example(params, buffers, x[i:i + chunk], y[i:i + chunk])
            squared = sum(g.double().pow(2).flatten(1).sum(1) for g in grads.values())
            norms.append(squared.sqrt())
    finally:
        model.train()
    return torch.cat(norms)


class ForgettingCounter:
    """Forgetting events of K networks trained side by side, fed one minibatch at a time.

    `update(idx, correct)` takes each member's batch positions [K, B] and whether each was
    classified correctly in that training step [K, B]; the state is three [K, n] tensors on the
    training device, updated by indexing, with no per-example Python.
    """

    def __init__(self, k: int, n: int, device: torch.device):
        self.last = torch.zeros(k, n, dtype=torch.bool, device=device)     # correct at the last presentation
        self.events = torch.zeros(k, n, dtype=torch.int32, device=device)
        self.learned = torch.zeros(k, n, dtype=torch.bool, device=device)  # ever correct
        self.seen = torch.zeros(k, n, dtype=torch.int32, device=device)
        self._rows: torch.Tensor | None = None

    def update(self, idx: torch.Tensor, correct: torch.Tensor) -> None:
        if self._rows is None or self._rows.shape != idx.shape:
            self._rows = torch.arange(idx.shape[0], device=idx.device).unsqueeze(1).expand_as(idx)
        rows = self._rows
        before = self.last[rows, idx]
        # An example appears at most once per batch (batches are slices of a permutation), so these
        # indexed writes never collide.
        self.events[rows, idx] += (before & ~correct).int()
        self.last[rows, idx] = correct
        self.learned[rows, idx] |= correct
        self.seen[rows, idx] += 1

    def scores(self) -> torch.Tensor:
        """[K, n] float64: forgetting events; a never-learned example scores one more than the most
        forgotten example of its run, so it ranks hardest (Toneva et al. count it as infinitely
        forgotten) while the mean over runs stays finite; a never-presented one is NaN."""
        events = self.events.double()
        ceiling = events.max(dim=1, keepdim=True).values + 1
        scores = torch.where(self.learned, events, ceiling.expand_as(events))
        return scores.masked_fill(self.seen == 0, float("nan"))
