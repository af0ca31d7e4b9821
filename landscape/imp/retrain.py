"""How an IMP level retrains its pruned network (Renda et al. 2020, "Comparing Rewinding and
Fine-tuning in Neural Network Pruning"), as the training configuration and start point of its
ticket. T is the training length, k the rewind step, R the retraining budget (T - k by default):

* "weight-rewind": the survivors' weights rewound to step k of the dense run, the schedule
  replayed from k (Frankle et al. 2020; this project's default, R = T - k).
* "lr-rewind": the previous level's trained weights, the schedule's last R steps replayed (from
  T - R, i.e. from k by default): the learning rates stored are the original run's from there.
* "finetune": the previous level's trained weights, R steps at the schedule's final rate.
Optimizer state is never carried over (momentum starts at zero), as for rewinding.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..train.config import StartFrom, TrainConfig


@dataclass(frozen=True)
class Retraining:
    mode: str
    total: int      # T
    rewind: int     # k
    budget: int     # R
    final_lr: float

    def branch(self, base: TrainConfig, *, dense_run: str, trained_run: str, trained_step: int
               ) -> tuple[TrainConfig, StartFrom]:
        """The ticket's configuration and start point at a level (controls share both)."""
        if self.mode == "weight-rewind":
            return base, StartFrom(dense_run, self.rewind, with_optimizer=False)
        if self.mode == "lr-rewind":
            return base, StartFrom(trained_run, trained_step, with_optimizer=False, at=self.total - self.budget)
        finetune = replace(base, steps=f"{self.budget}it", checkpoint_at=("end",),
                           optim=replace(base.optim, schedule="constant", lr=self.final_lr, warmup="0it",
                                         milestones=()))
        return finetune.validate(), StartFrom(trained_run, trained_step, with_optimizer=False, at=0)

    def iterations(self, level: int) -> int:
        """Training iterations spent to reach the ticket of `level` (the dense run included)."""
        return self.total + level * self.budget
