"""IMP configuration: what to prune, how far to rewind, which controls to train.

The number of levels is not part of an IMP run's identity: asking for more levels of the same
configuration extends the run. Replicate r of an IMP run is the same experiment with every seed
of the training configuration shifted by r.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigError
from ..prune import CRITERIA, SCOPES
from ..steps import Step
from ..train.config import Seeds, TrainConfig

CONTROLS = ("reinit", "random-prune", "rescaled-reinit")
# How a level retrains its pruned network (Renda et al. 2020): rewind the weights to step k and
# replay the schedule from k; keep the trained weights and replay the schedule's last R steps
# ("lr-rewind", R = T - k by default); keep them and train R steps at the final rate ("finetune").
RETRAIN = ("weight-rewind", "lr-rewind", "finetune")
TRANSFER_INIT = ("ticket", "trained")


@dataclass(frozen=True)
class PruneConfig:
    fraction: float = 0.2
    scope: str = "layerwise"
    criterion: str = "magnitude"
    overrides: tuple[tuple[str, float], ...] = ()  # (tensor name, its own fraction)
    exclude: tuple[str, ...] = ()

    def validate(self) -> "PruneConfig":
        if not (isinstance(self.fraction, (int, float)) and 0 < self.fraction < 1):
            raise ConfigError(f"prune fraction {self.fraction} must be between 0 and 1", "e.g. --prune-fraction 0.2")
        if self.scope not in SCOPES:
            raise ConfigError(f"unknown pruning scope {self.scope!r}", f"choose one of {', '.join(SCOPES)}")
        if self.criterion not in CRITERIA:
            raise ConfigError(f"unknown pruning criterion {self.criterion!r}", f"choose one of {', '.join(CRITERIA)}")
        for name, fraction in self.overrides:
            if not 0 <= fraction < 1:
                raise ConfigError(f"the fraction {fraction} for {name} must be in [0, 1)")
        return replace(self, overrides=tuple(sorted((n, float(f)) for n, f in self.overrides)),
                       exclude=tuple(sorted(set(self.exclude))))


@dataclass(frozen=True)
class TicketSource:
    """A ticket found by another IMP run: its level, and what to do with its output layer when the
    new dataset has another number of classes ("pruned": a fresh layer pruned to the ticket's
    output density; "dense": a fresh dense layer)."""

    run: str
    level: int
    output: str = "pruned"
    # "ticket": the source ticket's rewound weights; "trained": its trained, pruned weights
    # (the fine-tuned pruned network of a transfer baseline).
    init: str = "ticket"

    def to_dict(self) -> dict[str, Any]:
        data = vars(self).copy()
        if self.init == "ticket":
            del data["init"]  # older IDs unchanged
        return data


@dataclass(frozen=True)
class ImpConfig:
    train: TrainConfig
    prune: PruneConfig = field(default_factory=PruneConfig)
    rewind: str = "0it"
    controls: tuple[str, ...] = ()
    replicates: int = 1
    ticket_from: TicketSource | None = None
    # Data-diet IMP (Paul et al. 2022): replicate r's dense run starts from the final weights of
    # training run pretrained[r] (a pre-training, e.g. on a subset), and tickets rewind there.
    pretrained: tuple[str, ...] = ()
    retrain: str = "weight-rewind"
    retrain_steps: str | None = None  # R; None = T - k

    def to_dict(self) -> dict[str, Any]:
        extra = {"pretrained": list(self.pretrained)} if self.pretrained else {}  # older IDs unchanged
        if self.controls or self.prune.criterion == "random" or self.ticket_from:
            # Control, random-pruning and transferred-output draws are seeded from the run's own seeds
            # since issue 9 (they depended on replicate and level alone): such runs get new IDs, so an
            # old run is never extended with levels drawn the new way.
            extra["draws"] = "run-seeds"
        if self.retrain != "weight-rewind":
            extra["retrain"] = self.retrain
        if self.retrain_steps is not None:
            extra["retrain_steps"] = self.retrain_steps
        return {**extra,
            "train": self.train.to_dict(),
            "prune": {"fraction": self.prune.fraction, "scope": self.prune.scope, "criterion": self.prune.criterion,
                      "overrides": [list(o) for o in self.prune.overrides], "exclude": list(self.prune.exclude)},
            "rewind": self.rewind, "controls": list(self.controls), "replicates": self.replicates,
            "ticket_from": None if self.ticket_from is None else self.ticket_from.to_dict(),
        }

    def run_id(self) -> str:
        text = json.dumps({"kind": "imp", **self.to_dict()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def default_name(self) -> str:
        model, dataset = self.train.short_names()
        base = f"imp-{model}-{dataset}-rw{self.rewind}"
        return (base + ("-transfer" if self.ticket_from else "")
                + ("-trained" if self.ticket_from and self.ticket_from.init == "trained" else "")
                + ("-pretrained" if self.pretrained else "")
                + ("" if self.retrain == "weight-rewind" else f"-{self.retrain}"))

    def validate(self) -> "ImpConfig":
        train = self.train.validate()
        unknown = [c for c in self.controls if c not in CONTROLS]
        if unknown:
            raise ConfigError(f"unknown control {unknown[0]!r}", f"choose from {', '.join(CONTROLS)}")
        if self.replicates < 1:
            raise ConfigError(f"--replicates {self.replicates} must be at least 1")
        rewind = str(Step.parse(self.rewind))
        retrain_steps = self._check_retrain()
        if self.ticket_from and self.ticket_from.output not in ("pruned", "dense"):
            raise ConfigError(f"unknown output-layer rule {self.ticket_from.output!r}", "use pruned or dense")
        if self.pretrained and self.ticket_from:
            raise ConfigError("a transferred ticket already has its rewind point", "drop --rewind-from or --ticket-from")
        if self.pretrained and len(self.pretrained) != self.replicates:
            raise ConfigError(f"{len(self.pretrained)} pre-trained run(s) for {self.replicates} replicate(s)",
                              "give one pre-trained run per replicate")
        if self.ticket_from and self.ticket_from.level < 1:
            raise ConfigError(f"ticket level {self.ticket_from.level} must be at least 1", "write RUN@LEVEL, e.g. 3f9a1c@5")
        # The dense run must keep the rewind point; the final weights are always kept.
        checkpoints = tuple(dict.fromkeys(train.checkpoint_at + (rewind,)))
        train = replace(train, checkpoint_at=checkpoints).validate()
        return replace(self, train=train, prune=self.prune.validate(), rewind=rewind,
                       controls=tuple(dict.fromkeys(self.controls)), retrain_steps=retrain_steps)

    def _check_retrain(self) -> str | None:
        if self.retrain not in RETRAIN:
            raise ConfigError(f"unknown retraining mode {self.retrain!r}", f"choose one of {', '.join(RETRAIN)}")
        if self.ticket_from and self.ticket_from.init not in TRANSFER_INIT:
            raise ConfigError(f"unknown --transfer-init {self.ticket_from.init!r}",
                              f"choose one of {', '.join(TRANSFER_INIT)}")
        if self.retrain != "weight-rewind" and (self.ticket_from or self.pretrained):
            raise ConfigError(f"--retrain {self.retrain} retrains IMP's own levels",
                              "drop --ticket-from / --rewind-from, or use weight-rewind")
        if self.retrain_steps is None:
            return None
        if self.retrain == "weight-rewind":
            raise ConfigError("--retrain-steps sets the budget of lr-rewind and finetune",
                              "with weight-rewind the budget is T - k: set it with --rewind")
        steps = Step.parse(self.retrain_steps)
        if steps.value <= 0:
            raise ConfigError(f"--retrain-steps {self.retrain_steps} must be positive", "e.g. --retrain-steps 2ep")
        return str(steps)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImpConfig":
        p = data["prune"]
        return cls(train=TrainConfig.from_dict(data["train"]),
                   prune=PruneConfig(p["fraction"], p["scope"], p["criterion"],
                                     tuple((n, f) for n, f in p["overrides"]), tuple(p["exclude"])),
                   rewind=data["rewind"], controls=tuple(data["controls"]), replicates=data["replicates"],
                   ticket_from=TicketSource(**data["ticket_from"]) if data.get("ticket_from") else None,
                   pretrained=tuple(data.get("pretrained", ())),
                   retrain=data.get("retrain", "weight-rewind"), retrain_steps=data.get("retrain_steps"))

    def replicate(self, r: int) -> TrainConfig:
        """The dense training configuration of replicate r: every seed shifted by r."""
        s = self.train.seeds
        return replace(self.train, seeds=Seeds(s.init + r, s.data_order + r, s.augment + r))


def nominal_density(fraction: float, level: int) -> float:
    return math.pow(1 - fraction, level)
