"""K networks trained at once, as a Python loop over modules or as one vmapped functional model.

Both layouts expose the same operations, so the engine does not care which it drives:
`train_step` takes one batch per member (and returns each member's mean loss and which of its
examples it classified correctly), `evaluate` runs every member on shared data, and
`member_state` exports one member's weights and optimizer state. They give the same results as
training each member alone, to float tolerance (tests/test_population.py checks this).

Masks are enforced by zeroing the gradient and the weight at pruned positions around every update:
a pruned weight is then exactly zero in every forward pass, is never updated, and its momentum or
Adam moments stay zero (weight decay on a zero weight adds nothing).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .config import OptimConfig
from .optim import OptimizerState, export_state, import_state, make_optimizer, set_lr

Mask = dict[str, torch.Tensor]


@dataclass
class MemberState:
    """One member's weights (parameters and buffers) and optimizer state, on the CPU."""

    model: dict[str, torch.Tensor]
    optimizer: OptimizerState
    # The mask, when it changes during training (gradual pruning) and so is part of the state.
    mask: Mask | None = None


def _apply_masks_(tensors: dict[str, torch.Tensor], masks: Mask) -> None:
    with torch.no_grad():
        for name, mask in masks.items():
            tensors[name].mul_(mask)


class LoopPopulation:
    """One module and one optimizer per member; each step loops over them."""

    path = "loop"
    masks_in_state = False  # set by the engine when masks change during training

    def __init__(self, models: list[nn.Module], masks: list[Mask | None], cfg: OptimConfig,
                 optimizer_states: list[OptimizerState | None]):
        self.models = models
        self.params = [dict(m.named_parameters()) for m in models]
        self.masks = [{k: v.to(dtype=p[k].dtype) for k, v in (mk or {}).items()} for mk, p in zip(masks, self.params)]
        self.optimizers = [make_optimizer(p.values(), cfg) for p in self.params]
        for i, opt in enumerate(self.optimizers):
            import_state(opt, self._names(i), [optimizer_states[i]], stacked=False)
            self._mask_optimizer_state(i)
            _apply_masks_(self.params[i], self.masks[i])

    def _names(self, i: int) -> dict[int, str]:
        return {id(p): n for n, p in self.params[i].items()}

    def _mask_optimizer_state(self, i: int) -> None:
        for name, mask in self.masks[i].items():
            for buf in self.optimizers[i].state.get(self.params[i][name], {}).values():
                if torch.is_tensor(buf) and buf.shape == mask.shape:
                    buf.mul_(mask)

    def __len__(self) -> int:
        return len(self.models)

    # -- masks that change during training (see `train_population(mask_update=...)`) ----------
    def mask(self, i: int) -> Mask:
        return {name: m.bool() for name, m in self.masks[i].items()}

    def weights(self, i: int, names: list[str]) -> dict[str, torch.Tensor]:
        return {name: self.params[i][name].detach() for name in names}

    def set_mask(self, i: int, mask: Mask) -> None:
        """Prune member i to `mask` now: weights and their optimizer state zeroed where it is False."""
        p = self.params[i]
        self.masks[i] = {name: m.to(device=p[name].device, dtype=p[name].dtype) for name, m in mask.items()}
        self._mask_optimizer_state(i)
        _apply_masks_(p, self.masks[i])

    def train_step(self, xs: torch.Tensor, ys: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        losses, correct = [], []
        for i, (model, opt) in enumerate(zip(self.models, self.optimizers)):
            set_lr(opt, lr)
            logits = model(xs[i])
            loss = F.cross_entropy(logits, ys[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            masks = self.masks[i]
            if masks:
                for name, mask in masks.items():
                    self.params[i][name].grad.mul_(mask)
            opt.step()
            if masks:
                _apply_masks_(self.params[i], masks)
            losses.append(loss.detach())
            correct.append(logits.detach().argmax(1) == ys[i])
        return torch.stack(losses), torch.stack(correct)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed loss and number correct on (x, y), per member."""
        loss_sum = torch.zeros(len(self), device=x.device, dtype=torch.float64)
        correct = torch.zeros(len(self), device=x.device, dtype=torch.int64)
        for i, model in enumerate(self.models):
            model.eval()
            for start in range(0, len(x), batch):
                logits = model(x[start:start + batch])
                target = y[start:start + batch]
                loss_sum[i] += F.cross_entropy(logits, target, reduction="sum").double()
                correct[i] += (logits.argmax(1) == target).sum()
            model.train()
        return loss_sum, correct

    def member_state(self, i: int) -> MemberState:
        model = {k: v.detach().to("cpu", copy=True) for k, v in self.models[i].state_dict().items()}
        mask = {k: v.bool().cpu() for k, v in self.masks[i].items()} if self.masks_in_state else None
        return MemberState(model, export_state(self.optimizers[i], self._names(i)), mask)


class VmapPopulation:
    """All members' weights stacked along a leading dimension and run with `torch.func.vmap`.

    One optimizer updates the stacked tensors. The optimizers offered are elementwise, so this is
    the same arithmetic as K separate optimizers; the summed loss gives each member exactly the
    gradient of its own mean loss because members share no weights.
    """

    path = "vmap"
    masks_in_state = False

    def __init__(self, models: list[nn.Module], masks: list[Mask | None], cfg: OptimConfig,
                 optimizer_states: list[OptimizerState | None]):
        self.k = len(models)
        params, buffers = stack_module_state(models)
        self.params: dict[str, torch.Tensor] = params
        self.buffers: dict[str, torch.Tensor] = buffers
        self.base = copy.deepcopy(models[0]).to("meta")
        self.masks = self._stack_masks(masks)
        self.optimizer = make_optimizer(self.params.values(), cfg)
        import_state(self.optimizer, self._names(), optimizer_states, stacked=True)
        for name, mask in self.masks.items():
            for buf in self.optimizer.state.get(self.params[name], {}).values():
                if torch.is_tensor(buf) and buf.shape == mask.shape:
                    buf.mul_(mask)
        _apply_masks_(self.params, self.masks)

        def forward(p, b, x):
            return functional_call(self.base, (p, b), (x,))

        self._train_forward = vmap(forward, in_dims=(0, 0, 0))
        self._shared_forward = vmap(forward, in_dims=(0, 0, None))

    def _stack_masks(self, masks: list[Mask | None]) -> Mask:
        names = sorted({n for m in masks if m for n in m})
        stacked = {}
        for name in names:
            p = self.params[name]
            stacked[name] = torch.stack([
                (m[name].to(device=p.device, dtype=p.dtype) if m and name in m else torch.ones_like(p[0]))
                for m in masks])
        return stacked

    def _names(self) -> dict[int, str]:
        return {id(p): n for n, p in self.params.items()}

    def __len__(self) -> int:
        return self.k

    def mask(self, i: int) -> Mask:
        return {name: m[i].bool() for name, m in self.masks.items()}

    def weights(self, i: int, names: list[str]) -> dict[str, torch.Tensor]:
        return {name: self.params[name][i].detach() for name in names}

    def set_mask(self, i: int, mask: Mask) -> None:
        with torch.no_grad():
            for name, m in mask.items():
                stacked = self.masks[name]
                stacked[i] = m.to(device=stacked.device, dtype=stacked.dtype)
                self.params[name][i].mul_(stacked[i])
                for buf in self.optimizer.state.get(self.params[name], {}).values():
                    if torch.is_tensor(buf) and buf.shape == stacked.shape:
                        buf[i].mul_(stacked[i])

    def train_step(self, xs: torch.Tensor, ys: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        set_lr(self.optimizer, lr)
        logits = self._train_forward(self.params, self.buffers, xs)  # [K, B, classes]
        k, b = ys.shape
        per_example = F.cross_entropy(logits.reshape(k * b, -1), ys.reshape(-1), reduction="none")
        losses = per_example.view(k, b).mean(1)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        for name, mask in self.masks.items():
            self.params[name].grad.mul_(mask)
        self.optimizer.step()
        _apply_masks_(self.params, self.masks)
        correct = logits.detach().argmax(-1) == ys
        return losses.detach(), correct

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        loss_sum = torch.zeros(self.k, device=x.device, dtype=torch.float64)
        correct = torch.zeros(self.k, device=x.device, dtype=torch.int64)
        self.base.eval()
        for start in range(0, len(x), batch):
            logits = self._shared_forward(self.params, self.buffers, x[start:start + batch])
            target = y[start:start + batch]
            k, b, c = logits.shape
            per = F.cross_entropy(logits.reshape(k * b, c), target.repeat(k), reduction="none").view(k, b)
            loss_sum += per.sum(1).double()
            correct += (logits.argmax(-1) == target).sum(1)
        self.base.train()
        return loss_sum, correct

    def member_state(self, i: int) -> MemberState:
        model = {k: v[i].detach().to("cpu", copy=True) for k, v in {**self.params, **self.buffers}.items()}
        mask = {k: v[i].bool().cpu() for k, v in self.masks.items()} if self.masks_in_state else None
        return MemberState(model, export_state(self.optimizer, self._names(), member=i), mask)


def choose_path(requested: str, k: int, device: torch.device) -> str:
    """The faster layout, as measured by experiments/bench_engine.py.

    On a 2-core CPU the networks of this field already saturate the cores one at a time, and the
    batched matmuls vmap produces are slower than K plain ones; on a GPU small networks are
    launch-bound, so fusing K members into one kernel launch wins.
    """
    if requested in ("loop", "vmap"):
        return requested
    if k == 1 or device.type == "cpu":
        return "loop"
    return "vmap"


def make_population(path: str, models: list[nn.Module], masks: list[Mask | None], cfg: OptimConfig,
                    optimizer_states: list[OptimizerState | None]):
    cls = VmapPopulation if path == "vmap" else LoopPopulation
    return cls(models, masks, cfg, optimizer_states)
