"""Configuration of a difficulty-scores computation.

Scores come from S scoring runs of `train`, the s-th with every seed shifted by s (as IMP's
replicates): EL2N and GraNd score each run's network at step `at` of the full `train.steps` run
(the runs follow that schedule and stop at `at`, so the network and its learning rate at step t
are those of a normal training run, as Paul et al. 2021 score them; at 0 they are the initial
networks, untrained); forgetting counts events over the whole of `train`; the LMC score spawns two siblings from each run at `at`, trains them to the end
of `train` and takes each training example's loss barrier between them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError
from ..steps import Step
from ..train.config import Seeds, TrainConfig
from .scores import METHODS

# Paul et al. 2021 score EL2N early in training (epoch 20 of 200 on CIFAR-10) and GraNd at
# initialisation; the LMC score spawns at initialisation, where instability is highest.
DEFAULT_AT = {"el2n": "1ep", "grand": "0it", "forgetting": "0it", "lmc": "0it"}
DEFAULT_RUNS = {"el2n": 10, "grand": 10, "forgetting": 4, "lmc": 2}


@dataclass(frozen=True)
class ScoresConfig:
    train: TrainConfig
    method: str = "el2n"
    at: str | None = None   # None: the method's default
    runs: int | None = None  # S; None: the method's default

    def validate(self) -> "ScoresConfig":
        if self.method not in METHODS:
            raise ConfigError(f"unknown score {self.method!r}", f"choose one of {', '.join(METHODS)}")
        runs = DEFAULT_RUNS[self.method] if self.runs is None else self.runs
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
            raise ConfigError(f"--runs {runs!r} must be at least 1", "Paul et al. average over 10 runs")
        at = str(Step.parse(self.at if self.at is not None else DEFAULT_AT[self.method]))
        if self.method == "forgetting":
            at = "0it"  # counted over the whole training run
        train = self.train
        if self.method in ("el2n", "grand") and Step.parse(at).value > 0:
            train = replace(train, stop=at)  # the scoring runs stop where they are scored, on the full schedule
        if self.method == "lmc":
            train = replace(train, checkpoint_at=tuple(dict.fromkeys(train.checkpoint_at + (at,))))
        if train.data.subset is not None:
            raise ConfigError("scores are computed on the whole training split, not a subset")
        return replace(self, train=train.validate(), at=at, runs=runs)

    def member(self, s: int) -> TrainConfig:
        """Scoring run s: every seed shifted by s."""
        seeds = self.train.seeds
        return replace(self.train, seeds=Seeds(seeds.init + s, seeds.data_order + s, seeds.augment + s))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "at": self.at, "runs": self.runs, "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ScoresConfig":
        return cls(TrainConfig.from_dict(data["train"]), data["method"], data["at"], data["runs"])

    def run_id(self) -> str:
        text = json.dumps({"kind": "scores", **self.to_dict()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def default_name(self) -> str:
        t = self.train
        model, dataset = t.short_names()
        return f"scores-{self.method}-{model}-{dataset}-at{self.at}-S{self.runs}"
