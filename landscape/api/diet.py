"""Data-diet pre-training into the store: `landscape diet` (Paul et al. 2022).

    import landscape.api.diet as D
    run = D.diet(ls.recipe("lenet_300_100", "mnist"), D.DietRequest(subset="easy", fraction=0.1,
                 pretrain_steps="500it", then_imp=ImpPlan(levels=8)), store="runs", data_dir="../shared/data")

The protocol: pre-train the dense network from θ0 for T steps on a subset of the training data
(the easiest, the hardest or a random sample, by a scores run), then run IMP on the full training
set with every ticket rewound to the pre-trained weights — late rewinding to step T, with the
first T steps taken on the subset. Replicate r pre-trains from the θ0 of IMP's replicate r (the
same seeds), so the variants differ only in how the first T steps were spent.

A diet run (kind "diet") records the subset (its positions in the training split), the scores it
came from, the pre-training runs (ordinary training runs with a data subset) and the IMP run.
The pre-training is the first T steps of the IMP run's own training schedule: it follows the
schedule of `--steps` on the full training split (its length, milestones and warm-up in full-data
iterations) and stops at T, so the learning rate at step t is the one IMP's dense run would have
had. Epochs in T count passes over the subset; write T in iterations to compare with full-data
rewinding.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..diet import METHODS, ScoresConfig, select_subset, size_from
from ..environment import describe
from ..errors import ConfigError
from ..imp import ImpConfig, PruneConfig
from ..steps import Step
from ..store import Run
from ..train.config import SubsetSpec, TrainConfig
from .context import Context
from .imp import imp
from .provenance import data_provenance
from .scores import scores
from .subsets import load_scores
from .names import check_name, claim, generated
from .train import TrainOptions, load_for, phase, plan_for, resolve_val_size, tell_names, train


@dataclass(frozen=True)
class ImpPlan:
    """IMP to run after the pre-training (`--then-imp`)."""

    levels: int = 5
    prune: PruneConfig = field(default_factory=PruneConfig)
    controls: tuple[str, ...] = ()


@dataclass(frozen=True)
class DietRequest:
    subset: str = "easy"                 # easy | hard | random
    size: int | None = None              # examples, or
    fraction: float | None = None        # of the training split
    offset: int | float = 0              # examples skipped from the start of the order (a float < 1: a fraction)
    balanced: bool = True
    seed: int = 0                        # of a random subset
    pretrain_steps: str = "500it"
    score: str = "el2n"                  # computed when scores_from is not given (easy and hard only)
    scores_from: str | None = None
    score_at: str | None = None
    score_runs: int | None = None
    replicates: int = 1
    then_imp: ImpPlan | None = None


def diet(train_config: TrainConfig, request: DietRequest, options: TrainOptions | None = None, *,
         on_level: Callable[[Run, int], None] | None = None, **option_values) -> Run:
    """Pick the subset, pre-train on it (and run IMP from there when asked); return the diet run.

    `on_level(imp_run, level)` is called as each IMP level is recorded (see `api.imp.imp`)."""
    options = replace(options or TrainOptions(), **option_values)
    check_name(options.name)
    context = Context.of(options)
    store = context.store
    dataset = load_for(train_config, options.data_dir)
    # IMP gets the configuration as asked for (its validation size left to default as `landscape
    # imp` leaves it), so that it compares with IMP runs made by `landscape imp`.
    requested = train_config.validate()
    train_config = resolve_val_size(requested, dataset)
    full_plan = plan_for(train_config, dataset)
    total = full_plan.total_steps
    schedule = _in_iterations(train_config, full_plan)
    n = len(dataset.train_y) - train_config.data.val_size
    spec = _subset_spec(request, n)
    # T checked against the subset's size before any scoring (the order does not matter to it).
    if request.subset != "random" and request.scores_from is None and request.score not in METHODS:
        raise ConfigError(f"unknown score {request.score!r}", f"choose one of {', '.join(METHODS)}")
    if request.subset != "random" and request.scores_from is not None:
        load_scores(store, request.scores_from, train_config.data)  # the right dataset and split, first
    probe = _pretrain_configs(schedule, replace(spec, order="random"), request)[0]
    sub_plan = plan_for(replace(probe, stop=None), dataset)
    t = Step.parse(probe.stop).resolve(sub_plan.iters_per_epoch)
    if t > total:
        raise ConfigError(f"--pretrain-steps {request.pretrain_steps} ({t}it) is beyond the end of training: --steps "
                          f"is {total}it", "the pre-training is the first T steps of --steps: choose T within it")
    plan_for(probe, dataset)
    if request.then_imp is not None:
        _imp_config(requested, request, ()).validate()
        if request.then_imp.levels < 1:
            raise ConfigError(f"--levels {request.then_imp.levels} must be at least 1")
        if t >= total:
            raise ConfigError(f"--pretrain-steps {request.pretrain_steps} ({t}it) leaves nothing for IMP to train: "
                              f"--steps is {total}it", "pre-train for fewer steps than IMP trains")

    # Scores: given, or computed now (the one long step before the pre-training).
    score_values = None
    if request.subset != "random":
        if not request.scores_from:
            phase(options, f"scores ({request.score}, {request.score_runs} runs)")
        ref = request.scores_from or scores(
            ScoresConfig(replace(train_config, checkpoint_at=("0", "end")), request.score, request.score_at,
                         request.score_runs), replace(options, name=None)).id
        scores_id, score_values, _ = load_scores(store, ref, train_config.data)
        spec = replace(spec, scores=scores_id)
    pretrain = _pretrain_configs(schedule, spec, request)
    claim(store, _diet_id(spec, pretrain[0], request), options.name, options.rename)
    labels = _train_labels(dataset, train_config)
    index = select_subset(spec, labels, score_values)

    phase(options, f"pre-training on the {spec.order} subset ({spec.size:,} examples)")
    runs = train(pretrain, replace(options, name=None),
                 names=[f"diet-{spec.order}-{spec.size}-r{r}" for r in range(len(pretrain))])
    diet_id = _diet_id(spec, pretrain[0], request)
    name = options.name or generated(
        store, diet_id, f"diet-{spec.order}-{spec.size}-{train_config.model.name}-T{runs[0].checkpoint_steps[-1]}")
    with store.writer(diet_id) as writer:
        if not store.exists(diet_id):
            writer.create(name=name, kind="diet", config=_diet_config(spec, pretrain[0], request),
                          environment=describe(context.device))
            provenance = data_provenance(dataset, train_config.data)
            writer.write_section("data", attrs=provenance[0], arrays=provenance[1])
            method = store.open(spec.scores).section("scores")["method"] if spec.scores else ""
            writer.write_section("subset", attrs={
                "order": spec.order, "size": spec.size, "offset": spec.offset, "balanced": spec.balanced,
                "seed": spec.seed, "scores": spec.scores or "", "method": method, "fraction": spec.size / n,
                "n_train": n, "class_counts": np.bincount(labels[index], minlength=len(dataset.classes)).tolist(),
                "index_note": "positions in the training split (the training set less the validation examples)"},
                arrays={"index": index})
            writer.write_section("pretrain", attrs={"runs": [r.id for r in runs], "step": runs[0].checkpoint_steps[-1]})
            writer.finish(curves={}, metrics=_pretrain_metrics(runs))
        if request.then_imp is not None:
            imp_run = imp(_imp_config(requested, request, tuple(r.id for r in runs)), request.then_imp.levels,
                          replace(options, name=f"{name}-imp"), on_level=on_level)
            writer.write_section("imp", attrs={"run": imp_run.id})
    tell_names(store, [store.open(diet_id)], [options.name], options)
    return store.open(diet_id)


def _subset_spec(request: DietRequest, n: int) -> SubsetSpec:
    if request.subset not in ("easy", "hard", "random"):
        raise ConfigError(f"unknown subset {request.subset!r}", "choose easy, hard or random")
    size = size_from(request.size, request.fraction, n)
    offset = request.offset
    if isinstance(offset, float):
        if not 0 <= offset < 1:
            raise ConfigError(f"--offset {offset} as a fraction must be in [0, 1)", "e.g. --offset 10% skips the easiest 10%")
        offset = round(offset * n)
    if request.subset == "random" and request.scores_from:
        raise ConfigError("a random subset does not use scores", "drop --scores-from, or choose --subset easy or hard")
    spec = SubsetSpec(order=request.subset, size=size, scores=None, offset=offset, balanced=request.balanced,
                      seed=request.seed)
    if spec.size + spec.offset > n:
        raise ConfigError(f"a subset of {size:,} after skipping {offset:,} needs more than the {n:,} training examples",
                          "use a smaller --size, --fraction or --offset")
    return spec


def _in_iterations(config: TrainConfig, plan) -> TrainConfig:
    """`config` with its schedule (length, milestones, warm-up) in iterations of the full training
    split, so that a run on a subset (where an epoch is shorter) follows the same schedule."""
    ipe = plan.iters_per_epoch
    optim = replace(config.optim, warmup=f"{Step.parse(config.optim.warmup).resolve(ipe)}it",
                    milestones=tuple(f"{Step.parse(m).resolve(ipe)}it" for m in config.optim.milestones))
    return replace(config, steps=f"{plan.total_steps}it", optim=optim)


def _pretrain_configs(schedule: TrainConfig, spec: SubsetSpec, request: DietRequest) -> list[TrainConfig]:
    """Replicate r: IMP's replicate r (its seeds, so its θ0), the first T steps of IMP's schedule
    (`schedule`, in full-data iterations) on the subset."""
    if request.replicates < 1:
        raise ConfigError(f"--replicates {request.replicates} must be at least 1")
    base = ImpConfig(train=schedule, replicates=request.replicates)
    return [replace(base.replicate(r), data=replace(schedule.data, subset=spec), stop=request.pretrain_steps,
                    checkpoint_at=("0", "end")).validate() for r in range(request.replicates)]


def _imp_config(train_config: TrainConfig, request: DietRequest, pretrained: tuple[str, ...]) -> ImpConfig:
    plan = request.then_imp
    return ImpConfig(train=train_config, prune=plan.prune, controls=plan.controls, replicates=request.replicates,
                     pretrained=pretrained)  # the rewind step is set from the pre-training


def _train_labels(dataset, config: TrainConfig) -> np.ndarray:
    from ..data.splits import split_train_val

    train_idx, _ = split_train_val(len(dataset.train_y), config.data.val_size, config.data.split_seed)
    return dataset.train_y[train_idx].numpy()


def _diet_config(spec: SubsetSpec, pretrain: TrainConfig, request: DietRequest) -> dict:
    return {"subset": vars(spec).copy(), "pretrain": pretrain.to_dict(), "pretrain_steps": pretrain.stop,
            "replicates": request.replicates}


def _diet_id(spec: SubsetSpec, pretrain: TrainConfig, request: DietRequest) -> str:
    text = json.dumps({"kind": "diet", **_diet_config(spec, pretrain, request)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _pretrain_metrics(runs: list[Run]) -> dict[str, float]:
    out = {}
    for key in ("final/val/acc", "final/test/acc", "final/train/acc", "final/train_running/acc", "final/val/loss"):
        values = [r.metrics[key] for r in runs if key in r.metrics]
        if values:
            out[f"pretrain/{key}"] = float(np.mean(values))
    out["pretrain/steps"] = float(runs[0].checkpoint_steps[-1])
    out["subset/size"] = float(runs[0].config["data"]["subset"]["size"])
    return out
