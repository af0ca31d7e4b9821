"""Training configuration as frozen dataclasses.

A `TrainConfig` says everything that determines a training run's result; its canonical JSON form
is hashed into the run ID, so two runs with the same configuration are the same run. Fields that
only say *where* things are (data directory, store, device) are not part of it.

Defaults come in two layers, as in open_lth's hparams: the dataclass defaults are neutral, and
`recipe(model, dataset)` fills in the published hyperparameters for a model (Frankle & Carbin 2019
for the LeNets and Conv-2/4/6, open_lth / Frankle et al. 2020 for the CIFAR VGGs and ResNets).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..errors import ConfigError
from ..steps import Step, parse_step_list

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine")
AUGMENTS = ("none", "flip", "crop", "crop-flip")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "lenet_300_100"
    init: str = "kaiming_normal"
    width: float = 1.0


@dataclass(frozen=True)
class SubsetSpec:
    """Train on a subset of the training split (Paul et al. 2022's data diet): the `size` examples
    at positions `offset`..`offset+size` of an ordering — by a scores run's difficulty ("easy":
    lowest first, "hard": highest first) or a seeded random permutation ("random") — taken within
    each class in proportion to its frequency when `balanced`."""

    order: str
    size: int
    scores: str | None = None  # the scores run; None for a random subset
    offset: int = 0
    balanced: bool = True
    seed: int = 0  # of the random order, and of the tie-break between equal scores


# Fields added after runs were first stored: omitted from a configuration's dict while they hold
# their default None, so every run stored before they existed keeps its ID.
_OMIT_IF_NONE = {"omit_if_none": True}


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"
    # None until resolved against the dataset: 10% of the training set, at most 5,000 (the
    # lottery-ticket paper holds 5,000 of MNIST's 60,000 out).
    val_size: int | None = None
    split_seed: int = 0
    augment: str = "none"
    # Adapt the images to another input shape "CxHxW" (e.g. "1x28x28" to train an MNIST ticket on
    # CIFAR-10): channels averaged or repeated, then resized with antialiasing. None = as stored.
    adapt: str | None = None
    subset: SubsetSpec | None = field(default=None, metadata=_OMIT_IF_NONE)


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    milestones: tuple[str, ...] = ()  # for `step`: the lr is multiplied by gamma at each
    gamma: float = 0.1
    warmup: str = "0it"  # linear warm-up from 0 to lr over this many steps


@dataclass(frozen=True)
class Seeds:
    """One seed per source of randomness, so each can be varied alone (e.g. siblings share init)."""

    init: int = 0
    data_order: int = 0
    augment: int = 0


@dataclass(frozen=True)
class StartFrom:
    """Start from a stored checkpoint instead of a fresh init: `run` at iteration `step`."""

    run: str
    step: int
    with_optimizer: bool = True
    # Tensors not taken from the checkpoint but from this run's own fresh init (e.g. a new output
    # layer when a ticket moves to a dataset with another number of classes).
    fresh: tuple[str, ...] = ()
    # The schedule step this run starts at, when not the checkpoint's own: LR rewinding replays
    # the schedule from k on trained weights; a transferred trained network starts at 0.
    at: int | None = field(default=None, metadata=_OMIT_IF_NONE)


@dataclass(frozen=True)
class GmpSpec:
    """Gradual magnitude pruning inside the run (Zhu & Gupta 2017): from step `start` to `end`,
    every `every` steps, the weights are pruned by magnitude among the alive ones to the density
    1 - s_t, s_t = s_f + (s_i - s_f)(1 - (t - start) / (end - start))^3, s = 1 - density."""

    final_density: float
    start: str = "0it"
    end: str = "1ep"
    every: str = "100it"
    initial_density: float = 1.0
    scope: str = "global"


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    steps: str = "10ep"
    batch_size: int = 128
    seeds: Seeds = field(default_factory=Seeds)
    checkpoint_at: tuple[str, ...] = ("0", "end")
    eval_every: str = "1ep"
    start: StartFrom | None = None
    # A hash of the pruning mask this run trains under (the mask itself is stored with the run).
    mask: str | None = None
    # Replace the starting weights by a fresh draw from the init distribution (seeds.init):
    # "reinit", or "rescaled-reinit" (rescaled so each unit's input variance survives the mask).
    reinit: str | None = None
    # Stop here, before the end of `steps`: the run is then the first `stop` steps of the run that
    # `steps` describes (the learning rate at step t is that schedule's), as scoring runs (EL2N,
    # GraNd at step t) and data-diet pre-training need. None: train to the end of `steps`.
    stop: str | None = field(default=None, metadata=_OMIT_IF_NONE)
    # Evaluate the network on the un-augmented training split at every evaluation step (True), not
    # only at the end (None). Either way `train/*` is the network's own accuracy and loss on the
    # training split; the running average of the training minibatches is `train_running/*`.
    eval_train: bool | None = field(default=None, metadata=_OMIT_IF_NONE)
    gmp: GmpSpec | None = field(default=None, metadata=_OMIT_IF_NONE)

    # -- identity ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def run_id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]

    def default_name(self) -> str:
        model, dataset = self.short_names()
        gmp = f"-gmp{self.gmp.final_density:g}" if self.gmp else ""
        return f"{model}-{dataset}-{self.optim.optimizer}{gmp}-s{self.seeds.init}"

    def short_names(self) -> tuple[str, str]:
        """Model and dataset as run names use them: no colon, which references read as RUN:STEP
        (`package.module:factory` gives its factory's name, `imagefolder:PATH` gives imagefolder)."""
        dataset = self.data.dataset.split(":")[0]
        if dataset != "imagefolder" and ":" in self.data.dataset:
            dataset = self.data.dataset.rpartition(":")[2]
        return self.model.name.rpartition(":")[2], dataset

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        start = data.get("start")
        return cls(
            model=ModelConfig(**data["model"]),
            data=DataConfig(**{**data["data"], "subset": _subset(data["data"].get("subset"))}),
            optim=OptimConfig(**{**data["optim"], "milestones": tuple(data["optim"].get("milestones", ()))}),
            steps=data["steps"],
            batch_size=data["batch_size"],
            seeds=Seeds(**data["seeds"]),
            checkpoint_at=tuple(data["checkpoint_at"]),
            eval_every=data["eval_every"],
            start=StartFrom(**{**start, "fresh": tuple(start.get("fresh", ()))}) if start else None,
            mask=data.get("mask"),
            reinit=data.get("reinit"),
            stop=data.get("stop"),
            eval_train=data.get("eval_train"),
            gmp=GmpSpec(**data["gmp"]) if data.get("gmp") else None,
        )

    # -- checks -----------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Check every value a user can get wrong; return a canonicalised copy."""
        o = self.optim
        if o.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {o.optimizer!r}", f"choose one of {', '.join(OPTIMIZERS)}")
        if o.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {o.schedule!r}", f"choose one of {', '.join(SCHEDULES)}")
        if not (math.isfinite(o.lr) and o.lr > 0):
            raise ConfigError(f"learning rate {o.lr} must be a positive number", "e.g. --lr 0.1")
        if not (0 <= o.momentum < 1):
            raise ConfigError(f"momentum {o.momentum} must be in [0, 1)")
        if o.nesterov and (o.optimizer != "sgd" or o.momentum == 0):
            raise ConfigError("Nesterov momentum needs --optimizer sgd and --momentum > 0")
        if not (math.isfinite(o.weight_decay) and o.weight_decay >= 0):
            raise ConfigError(f"weight decay {o.weight_decay} must be >= 0")
        if not (0 < o.gamma <= 1):
            raise ConfigError(f"gamma {o.gamma} must be in (0, 1]")
        if o.schedule == "step" and not o.milestones:
            raise ConfigError("the step schedule needs milestones", "e.g. --milestones 80ep,120ep")
        if self.batch_size < 1:
            raise ConfigError(f"batch size {self.batch_size} must be at least 1")
        if self.data.augment not in AUGMENTS:
            raise ConfigError(f"unknown augmentation {self.data.augment!r}", f"choose one of {', '.join(AUGMENTS)}")
        if self.data.val_size is not None and self.data.val_size < 0:
            raise ConfigError(f"validation size {self.data.val_size} must be >= 0")
        if self.reinit not in (None, "reinit", "rescaled-reinit"):
            raise ConfigError(f"unknown reinit mode {self.reinit!r}", "use reinit or rescaled-reinit")
        if self.data.adapt is not None:
            parse_shape(self.data.adapt)
        if self.data.subset is not None:
            check_subset(self.data.subset)
        if self.model.width <= 0:
            raise ConfigError(f"width {self.model.width} must be positive")
        if Step.parse(self.steps).value <= 0:
            raise ConfigError(f"training length {self.steps} must be positive", "e.g. --steps 2ep")
        if self.stop is not None and Step.parse(self.stop).value <= 0:
            raise ConfigError(f"stopping point {self.stop} must be positive", "stop after at least 1it")
        if Step.parse(self.eval_every).value <= 0:
            raise ConfigError(f"--eval-every {self.eval_every} must be positive", "e.g. 1ep or 500it")
        for seed in dataclasses.astuple(self.seeds):
            if seed < 0:
                raise ConfigError(f"seed {seed} must be >= 0")
        gmp = self.gmp and check_gmp(self.gmp)
        # Canonical spellings, so `2ep` and `2.0ep` hash alike.
        return replace(
            self, gmp=gmp,
            steps=str(Step.parse(self.steps)),
            stop=None if self.stop is None else str(Step.parse(self.stop)),
            eval_train=True if self.eval_train else None,
            eval_every=str(Step.parse(self.eval_every)),
            checkpoint_at=parse_step_list(",".join(self.checkpoint_at)),
            optim=replace(o, warmup=str(Step.parse(o.warmup)),
                          milestones=tuple(str(Step.parse(m)) for m in o.milestones)),
        )


def _subset(value: dict | None) -> SubsetSpec | None:
    return SubsetSpec(**value) if value else None


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in fields(value)
                if not (f.metadata.get("omit_if_none") and getattr(value, f.name) is None)}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


# -- recipes ------------------------------------------------------------------------------------
# Published hyperparameters, per model. A recipe fills every field a user did not set.
_LENET = dict(optimizer="adam", lr=1.2e-3, batch_size=60, steps="50k")  # Frankle & Carbin 2019
_CIFAR_SGD = dict(  # open_lth cifar_resnet_20 / cifar_vgg_16 (He et al. 2016 schedule)
    optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="step",
    milestones=("80ep", "120ep"), gamma=0.1, batch_size=128, steps="160ep",
)
RECIPES: dict[str, dict[str, Any]] = {
    "lenet_300_100": _LENET,
    "lenet5": _LENET,
    "conv2": dict(optimizer="adam", lr=2e-4, batch_size=60, steps="20k"),
    "conv4": dict(optimizer="adam", lr=3e-4, batch_size=60, steps="25k"),
    "conv6": dict(optimizer="adam", lr=3e-4, batch_size=60, steps="30k"),
    # Greydanus & Kobak 2020, MNIST-1D: Adam, lr 1e-2, batches of 100, 6,000 steps
    "mnist1d_cnn": dict(optimizer="adam", lr=1e-2, batch_size=100, steps="6000it"),
    "mnist1d_mlp": dict(optimizer="adam", lr=1e-2, batch_size=100, steps="6000it"),
    **{name: _CIFAR_SGD for name in ("vgg11", "vgg16", "vgg19", "resnet20", "resnet32", "resnet56", "resnet18")},
}
_OPTIM_FIELDS = {f.name for f in fields(OptimConfig)}


def recipe(model: str, dataset: str, **overrides: Any) -> TrainConfig:
    """The published configuration for `model` on `dataset`, with `overrides` applied.

    Overrides use flat names (`lr`, `batch_size`, `steps`, `optimizer`, `augment`, `seed`...);
    a value of None means "keep the recipe's".
    """
    values = {**RECIPES.get(model, {}), **{k: v for k, v in overrides.items() if v is not None}}
    optim = OptimConfig(**{k: values[k] for k in _OPTIM_FIELDS if k in values})
    seed = values.get("seed", 0)
    seeds = Seeds(init=values.get("init_seed", seed), data_order=values.get("data_seed", seed),
                  augment=values.get("augment_seed", seed))
    data = DataConfig(dataset=dataset, val_size=values.get("val_size"),
                      split_seed=values.get("split_seed", 0),
                      augment=values.get("augment", default_augment(dataset)), adapt=values.get("adapt"))
    model_cfg = ModelConfig(name=model, init=values.get("init", "kaiming_normal"), width=values.get("width", 1.0))
    top = {k: values[k] for k in ("steps", "batch_size", "eval_every", "checkpoint_at", "eval_train") if k in values}
    if "checkpoint_at" in top and isinstance(top["checkpoint_at"], str):
        top["checkpoint_at"] = parse_step_list(top["checkpoint_at"])
    return TrainConfig(model=model_cfg, data=data, optim=optim, seeds=seeds, **top).validate()


def default_augment(dataset: str) -> str:
    """Crop and flip for natural-image datasets (as in the CIFAR papers); none for digits."""
    name = dataset.split(":")[0]
    if name in ("cifar10", "cifar100", "imagefolder"):
        return "crop-flip"
    if name == "svhn":
        return "crop"  # flipping digits changes their meaning
    return "none"


def parse_shape(text: str) -> tuple[int, int, int]:
    """`1x28x28` as (1, 28, 28)."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"cannot read {text!r} as an input shape", "write CxHxW, e.g. 1x28x28")
    c, h, w = (int(p) for p in parts)
    if c not in (1, 3):
        raise ConfigError(f"input shape {text!r} has {c} channels", "adapt to 1 (grey) or 3 (colour) channels")
    return c, h, w


SUBSET_ORDERS = ("easy", "hard", "random")


def check_subset(spec: SubsetSpec) -> None:
    """What can be checked without the data; sizes against the training split are checked in
    landscape.diet.subset."""
    if spec.order not in SUBSET_ORDERS:
        raise ConfigError(f"unknown subset {spec.order!r}", f"choose one of {', '.join(SUBSET_ORDERS)}")
    if isinstance(spec.size, bool) or not isinstance(spec.size, int) or spec.size < 1:
        raise ConfigError(f"subset size {spec.size!r} must be a positive number of examples", "e.g. --size 5000")
    if isinstance(spec.offset, bool) or not isinstance(spec.offset, int) or spec.offset < 0:
        raise ConfigError(f"subset offset {spec.offset!r} must be a number of examples >= 0")
    if spec.order != "random" and not spec.scores:
        raise ConfigError(f"an {spec.order} subset needs difficulty scores", "give --scores-from RUN or --score NAME")
    if spec.seed < 0:
        raise ConfigError(f"subset seed {spec.seed} must be >= 0")


def check_gmp(spec: GmpSpec) -> GmpSpec:
    """What can be checked before the data is known (start < end is checked in iterations by the
    plan); returns the spec with canonical step spellings."""
    for what, value in (("--final-density", spec.final_density), ("--initial-density", spec.initial_density)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ConfigError(f"{what} {value!r} must be in (0, 1]", "e.g. --final-density 0.05")
    if spec.final_density >= spec.initial_density:
        raise ConfigError(f"final density {spec.final_density} is not below the initial density "
                          f"{spec.initial_density}", "GMP prunes: choose a final density below the initial one")
    if spec.scope not in ("global", "layerwise"):
        raise ConfigError(f"unknown pruning scope {spec.scope!r}", "choose global or layerwise")
    start, end, every = (Step.parse(v) for v in (spec.start, spec.end, spec.every))
    if every.value <= 0:
        raise ConfigError(f"--every {spec.every} must be positive", "e.g. --every 100it")
    if start.unit == end.unit and start.value >= end.value:
        raise ConfigError(f"GMP start {spec.start} is not before its end {spec.end}", "e.g. --start 1ep --end 5ep")
    return replace(spec, start=str(start), end=str(end), every=str(every),
                   final_density=float(spec.final_density), initial_density=float(spec.initial_density))


def default_val_size(n_train: int) -> int:
    return min(5000, round(0.1 * n_train))
