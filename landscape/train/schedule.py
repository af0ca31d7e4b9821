"""Learning-rate schedules: constant, step or cosine, each with optional linear warm-up."""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LRSchedule:
    base_lr: float
    kind: str  # constant | step | cosine
    total_steps: int
    warmup_steps: int = 0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1

    def __call__(self, step: int) -> float:
        """The learning rate for the update that takes the network from `step` to `step + 1`."""
        lr = self.base_lr
        if self.kind == "step":
            lr *= self.gamma ** bisect.bisect_right(self.milestones, step)
        elif self.kind == "cosine":
            lr *= 0.5 * (1 + math.cos(math.pi * min(step, self.total_steps) / self.total_steps))
        if step < self.warmup_steps:
            lr *= (step + 1) / self.warmup_steps
        return lr
