"""The training engine: one loop for every phase of every experiment.

`train_population` trains K members that share architecture, data and schedule, and may differ in
initial weights, mask, data-order seed and augmentation seed. It knows nothing about files: it
reports evaluations and checkpoints through `Hooks`, and whoever called it decides what to keep.
It can start at any step (from a checkpoint) and continue the schedule from there; because every
random draw is keyed by (seed, epoch or step), a continued run is the uninterrupted run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch
from torch import nn

from ..data.augment import augment_batch
from .config import TrainConfig
from .population import Mask, MemberState, choose_path, make_population
from .rng import augment_generator, epoch_permutation
from .schedule import LRSchedule
from ..steps import Step, resolve_step_list


@dataclass
class Member:
    """One network to train: its starting weights and what makes its run its own."""

    model: nn.Module
    data_seed: int
    augment_seed: int
    mask: Mask | None = None
    optimizer_state: dict | None = None


@dataclass(frozen=True)
class Plan:
    """A `TrainConfig` resolved against a dataset: every step is an iteration number."""

    config: TrainConfig
    iters_per_epoch: int
    total_steps: int  # where training stops: the end of the schedule, or `config.stop`
    checkpoint_steps: tuple[int, ...]
    eval_steps: tuple[int, ...]
    schedule: LRSchedule

    @classmethod
    def make(cls, config: TrainConfig, n_train: int) -> "Plan":
        from ..errors import ConfigError

        if config.batch_size > n_train:
            raise ConfigError(f"batch size {config.batch_size} is larger than the training set ({n_train} examples)",
                              "use a smaller --batch-size")
        ipe = n_train // config.batch_size  # the last partial batch of each epoch is dropped
        length = Step.parse(config.steps).resolve(ipe)  # the schedule's length
        if length < 1:
            raise ConfigError(f"--steps {config.steps} is less than one iteration", "train for at least 1it")
        total = length if config.stop is None else Step.parse(config.stop).resolve(ipe)  # where training stops
        if total > length:
            raise ConfigError(f"stopping at {config.stop} ({total}it) is beyond the end of training: --steps "
                              f"{config.steps} is {length}it", "stop within --steps, or train longer with --steps")
        if total < 1:
            raise ConfigError(f"stopping at {config.stop} is less than one iteration", "stop after at least 1it")
        every = max(1, Step.parse(config.eval_every).resolve(ipe))
        evals = sorted(set(range(0, total + 1, every)) | {total})
        o = config.optim
        warmup = Step.parse(o.warmup).resolve(ipe)
        if warmup > length:
            raise ConfigError(f"the warm-up of {o.warmup} ({warmup}it) is longer than training ({length}it)",
                              "shorten --warmup, or train longer with --steps")
        milestones = tuple(sorted(Step.parse(m).resolve(ipe) for m in o.milestones))
        if o.schedule == "step" and milestones[-1:] and milestones[-1] > length:
            raise ConfigError(f"learning-rate milestone {milestones[-1]}it is past the end of training ({length}it; "
                              f"milestones {', '.join(o.milestones)})", "give --milestones within --steps "
                              "(recipes' milestones assume their full length), or --schedule constant")
        schedule = LRSchedule(o.lr, o.schedule, length, warmup, milestones, o.gamma)
        # The final weights are always kept, whatever else was asked for.
        checkpoints = sorted(set(resolve_step_list(config.checkpoint_at, ipe, total)) | {total})
        return cls(config, ipe, total, tuple(checkpoints), tuple(evals), schedule)

    def describe(self) -> dict[str, int]:
        out = {"iters_per_epoch": self.iters_per_epoch, "total_steps": self.total_steps}
        if self.schedule.total_steps != self.total_steps:
            out["schedule_steps"] = self.schedule.total_steps  # stopped early under a longer schedule
        return out


class Hooks(Protocol):
    """What the engine reports. A hooks object may also define `on_batch(step, idx, correct)`:
    each member's batch positions in the training set [K, B] and whether each example was
    classified correctly in that training step [K, B] (forgetting events are counted from these)."""

    def on_eval(self, step: int, metrics: list[dict[str, float]]) -> None: ...
    def on_checkpoint(self, step: int, states: list[MemberState], *, requested: bool) -> None: ...
    def on_progress(self, step: int) -> None: ...


# Called with (step, population) before each training step; may change the members' masks.
MaskUpdate = Callable[[int, Any], None]


class NoHooks:
    def on_eval(self, step, metrics):
        pass

    def on_checkpoint(self, step, states, *, requested):
        pass

    def on_progress(self, step):
        pass


@dataclass
class EvalSet:
    name: str
    x: torch.Tensor
    y: torch.Tensor
    every: bool = True  # at every evaluation step; False: at the end of the plan only


@dataclass
class TrainResult:
    states: list[MemberState]
    path: str
    seconds: float
    metrics: list[dict[str, float]] = field(default_factory=list)


def train_population(plan: Plan, members: list[Member], train_x: torch.Tensor, train_y: torch.Tensor,
                     evals: list[EvalSet], *, start_step: int = 0, hooks: Hooks | None = None,
                     path: str = "auto", eval_batch: int = 1000,
                     resume_every: int | None = None, evaluate_start: bool = True,
                     mask_update: MaskUpdate | None = None) -> TrainResult:
    """Train `members` from `start_step` to the end of `plan`.

    Hooks receive: evaluations at the plan's eval steps (and the start); checkpoints at the plan's
    checkpoint steps (`requested=True`) and resume points every `resume_every` steps
    (`requested=False`; default: at each evaluation), which let a killed run continue.
    A run resumed from a resume point passes `evaluate_start=False`: that step's evaluation is
    already recorded, with the training loss of the interval before it, which cannot be redone.
    `mask_update(step, population)`, when given, is called before every training step and may
    prune members (`population.mask(i)`, `.weights(i, names)`, `.set_mask(i, mask)`); the masks
    are then part of every saved state (gradual pruning).
    """
    hooks = hooks or NoHooks()
    device = train_x.device
    chosen = choose_path(path, len(members), device)
    population = make_population(chosen, [m.model for m in members], [m.mask for m in members],
                                 plan.config.optim, [m.optimizer_state for m in members])
    population.masks_in_state = mask_update is not None
    data_seeds = [m.data_seed for m in members]
    augment_seeds = [m.augment_seed for m in members]
    augment = plan.config.data.augment
    batch, ipe, n = plan.config.batch_size, plan.iters_per_epoch, len(train_x)
    checkpoint_steps = set(plan.checkpoint_steps)
    eval_steps = set(plan.eval_steps) | {start_step}
    if not evaluate_start:
        eval_steps.discard(start_step)
    resume_steps = set(range(start_step, plan.total_steps + 1, resume_every)) if resume_every else eval_steps
    on_batch = getattr(hooks, "on_batch", None)

    running_loss = torch.zeros(len(members), device=device, dtype=torch.float64)
    running_correct = torch.zeros(len(members), device=device, dtype=torch.int64)
    running_count = 0
    last_metrics: list[dict[str, float]] = []
    permutations: torch.Tensor | None = None
    perm_epoch = -1
    started = time.perf_counter()

    def report(step: int) -> None:
        nonlocal running_count, last_metrics
        metrics = [dict(step=float(step), epoch=step / ipe, lr=plan.schedule(max(step - 1, 0))) for _ in members]
        if running_count:
            # The running average of the (augmented) training minibatches since the last evaluation,
            # under weights that changed at every step: not the network's accuracy on the training
            # split, which an EvalSet named "train" measures.
            for i, m in enumerate(metrics):
                m["train_running/loss"] = float(running_loss[i]) / running_count
                m["train_running/acc"] = float(running_correct[i]) / (running_count * batch)
        running_loss.zero_()
        running_correct.zero_()
        running_count = 0
        for ev in evals:
            if len(ev.x) == 0 or not (ev.every or step == plan.total_steps):
                continue
            loss_sum, correct = population.evaluate(ev.x, ev.y, eval_batch)
            for i, m in enumerate(metrics):
                m[f"{ev.name}/loss"] = float(loss_sum[i]) / len(ev.x)
                m[f"{ev.name}/acc"] = float(correct[i]) / len(ev.x)
        last_metrics = metrics
        hooks.on_eval(step, metrics)

    def save(step: int) -> None:
        requested, resume = step in checkpoint_steps, step in resume_steps
        if requested or resume:
            states = [population.member_state(i) for i in range(len(members))]
            hooks.on_checkpoint(step, states, requested=requested)

    if start_step in eval_steps:
        report(start_step)
    if start_step in checkpoint_steps:
        save(start_step)

    for step in range(start_step, plan.total_steps):
        epoch, position = divmod(step, ipe)
        if epoch != perm_epoch:
            permutations = torch.stack([epoch_permutation(n, s, epoch) for s in data_seeds]).to(device)
            perm_epoch = epoch
        if mask_update is not None:
            mask_update(step, population)
        idx = permutations[:, position * batch:(position + 1) * batch]
        xs, ys = train_x[idx], train_y[idx]  # [K, B, ...]
        if augment != "none":
            xs = torch.stack([augment_batch(xs[i], augment, augment_generator(s, step))
                              for i, s in enumerate(augment_seeds)])
        loss, correct = population.train_step(xs, ys, plan.schedule(step))
        running_loss += loss
        running_correct += correct.sum(1)
        if on_batch is not None:
            on_batch(step, idx, correct)
        running_count += 1
        done = step + 1
        if done in eval_steps:
            report(done)
        save(done)
        hooks.on_progress(done)

    states = [population.member_state(i) for i in range(len(members))]
    return TrainResult(states, chosen, time.perf_counter() - started, last_metrics)
