"""Linear mode connectivity into the store: siblings, `landscape lmc`, instability analysis.

    import landscape.api.lmc as L
    kids = L.siblings("parent:0", count=2, store="runs", data_dir="../shared/data")
    result = L.lmc(kids[0].id, kids[1].id, store="runs", data_dir="../shared/data")
    result.metrics["test/error_barrier"]          # Frankle et al.'s instability; < 0.02 is stable
    L.instability("parent", at=["0", "100it", "500it"], siblings=2, store="runs")
    L.instability("parent", find_onset=True, threshold=0.02, store="runs")

References to networks (A, B, sibling sources, the instability run):

    RUN                    a training run's final weights (RUN is an ID, a unique ID prefix or a name)
    RUN:STEP               its checkpoint at STEP: 500it, 2ep, 5k or end
    IMP@L                  level L of an IMP run: the ticket of replicate 0, final weights
                           (IMP@0 is the dense network)
    IMP@L/r1               ... of replicate 1
    IMP@L/reinit           ... a control instead of the ticket (reinit, random-prune, rescaled-reinit)
    IMP@L/reinit/r1:STEP   all of it, at a checkpoint of that member

For spawning siblings a step is required (`RUN:STEP`), except for an IMP level: `IMP@L` spawns from
the level's starting point (the dense run's weights at the rewind step, under the level's mask),
and `IMP@L:STEP` from a checkpoint of the ticket.

Siblings are training runs whose configuration is the parent's with `start` at the parent's
checkpoint (the optimizer state and the rest of the schedule continue from there) and different
data-order and augmentation seeds, derived from the parent's seeds and the sibling's index; the
init seed, mask and everything else are the parent's. K siblings train together as one population.

An LMC result is a run of kind "lmc" whose ID hashes the request (endpoints as run ID and
iteration, points, train subset, seed, BatchNorm option, per-example): asking again reuses it.
An instability analysis is a run of kind "instability" over sibling sets and their LMC runs.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..data import data_root, device_splits
from ..environment import describe
from ..errors import ConfigError, StoreError
from ..lmc import (METHODS, STABILITY_THRESHOLD, angular_distance, barrier, connected_fraction,
                   disagreement, interpolation_curve, l2_distance, mask_overlap, per_example_barrier)
from ..lmc.batchnorm import batchnorm_layers
from ..lmc.distances import complete_masks
from ..lmc.masks import apply_masks
from ..models import build_model
from ..steps import Step
from ..store import Run, Store
from ..train.config import Seeds, StartFrom, TrainConfig, default_val_size
from ..train.rng import derive_seed, generator
from .train import TrainOptions, load_for, resolve_device, train

ROLES = ("ticket", "reinit", "random-prune", "rescaled-reinit")
_SIBLING_STREAM = 0x51B1  # sibling seeds: their own stream, apart from every other derived seed
_SAMPLE_STREAM = 0x1AC0   # the train subset and the BatchNorm sample of an LMC request

REFERENCE_SYNTAX = "RUN, RUN:STEP (e.g. 3f9a1c:500it, run:end) or IMP@LEVEL[/ROLE][/rR][:STEP] (e.g. 7be204@3, 7be204@3/r1)"


# ------------------------------------------------------------------------------------------------
# References
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    """A network in the store: a training run and one of its checkpoints."""

    ref: str            # as written
    run: Run            # the training run whose weights these are
    step: int           # the iteration of the checkpoint
    step_given: bool    # whether the reference named a step
    imp: Run | None = None   # for IMP@L references: the IMP run, level, role and replicate
    level: int | None = None
    role: str | None = None
    replicate: int | None = None

    @property
    def canonical(self) -> str:
        return f"{self.run.id}:{self.step}it"

    @property
    def label(self) -> str:
        where = f"{self.run.name} ({self.run.id}) at {self.step}it"
        if self.imp is None:
            return where
        member = self.role if self.level else "dense"
        return f"{self.imp.name}@{self.level} {member} r{self.replicate}: {where}"

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.run.config)


def resolve_endpoint(store: Store, text: str) -> Endpoint:
    """The network a reference names (see the module docstring for the syntax)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("empty network reference", f"write {REFERENCE_SYNTAX}")
    text = text.strip()
    run_text, colon, step_text = text.rpartition(":")
    if not colon:
        run_text, step_text = text, None
    if not run_text:
        raise ConfigError(f"cannot read {text!r} as a network reference", f"write {REFERENCE_SYNTAX}")
    run_text, at, level_text = run_text.rpartition("@")
    if not at:
        run_text, level_text = level_text, None
    run = store.open(run_text)
    imp = level = role = replicate = None
    if level_text is not None:
        if run.kind != "imp":
            raise ConfigError(f"{run_text} is a {run.kind} run, but RUN@LEVEL names a level of an IMP run",
                              f"write {REFERENCE_SYNTAX}")
        imp, (level, role, replicate) = run, _parse_level(level_text, text)
        run = _imp_member(store, imp, level, role, replicate)
    elif run.kind == "imp":
        raise ConfigError(f"{run_text} is an IMP run: name one of its levels",
                          f"e.g. {run_text}@1 for the level-1 ticket, {run_text}@0 for the dense network")
    elif run.kind != "train":
        raise ConfigError(f"{run_text} is a {run.kind} run, not a trained network",
                          "name a training run or an IMP level")
    total = int(run.plan.get("total_steps", max(run.checkpoint_steps, default=0)))
    if step_text is None or step_text.strip().lower() == "end":
        step = total
    else:
        step = Step.parse(step_text).resolve(int(run.plan.get("iters_per_epoch", 1)))
    if step not in run.checkpoint_steps:
        have = ", ".join(f"{s}it" for s in run.checkpoint_steps) or "none"
        what = "has not finished: it has no final checkpoint" if step == total and step_text is None \
            else f"has no checkpoint at {step}it"
        raise StoreError(f"run {run.id} ({run.name}) {what} (it has: {have})",
                         "choose a stored step, or retrain with --checkpoint-at")
    return Endpoint(text, run, step, step_text is not None, imp, level, role, replicate)


def _parse_level(spec: str, text: str) -> tuple[int, str, int]:
    parts = [p.strip() for p in spec.split("/")]
    if not parts[0].isdigit():
        raise ConfigError(f"cannot read {text!r}: {parts[0]!r} is not a level number", f"write {REFERENCE_SYNTAX}")
    level, role, replicate = int(parts[0]), "ticket", 0
    for part in parts[1:]:
        if part[:1] == "r" and part[1:].isdigit():
            replicate = int(part[1:])
        elif part in ROLES or part == "dense":
            role = "ticket" if part == "dense" else part
        else:
            raise ConfigError(f"cannot read {text!r}: {part!r} is neither a replicate (r0, r1...) nor a role "
                              f"({', '.join(ROLES)})", f"write {REFERENCE_SYNTAX}")
    return level, role, replicate


def _imp_member(store: Store, imp: Run, level: int, role: str, replicate: int) -> Run:
    levels = sorted(int(n) for n in imp.sections("levels"))
    if level not in levels:
        raise StoreError(f"IMP run {imp.id} ({imp.name}) has no level {level} (it has levels "
                         f"{', '.join(map(str, levels)) or 'none'})", "choose a finished level")
    record = imp.section(f"levels/{level:03d}")
    ids = record.get(role) or []
    if not ids:
        have = [r for r in ROLES if record.get(r)]
        raise StoreError(f"level {level} of IMP run {imp.id} has no {role} (it has: {', '.join(have)})",
                         "choose the ticket or a control it trained")
    if replicate >= len(ids):
        raise StoreError(f"IMP run {imp.id} has {len(ids)} replicate(s); r{replicate} does not exist",
                         "use r0" if len(ids) == 1 else f"use r0..r{len(ids) - 1}")
    return store.open(ids[replicate])


# ------------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LmcSettings:
    """How to measure a path. All but the last three are part of an LMC run's identity."""

    points: int = 30                 # evenly spaced α in [0, 1], endpoints included (Frankle et al.: 30)
    train_subset: int | None = None  # evaluate on this many training examples (a seeded sample); None: all
    seed: int = 0                    # of the train subset and of the BatchNorm statistics sample
    bn_recompute: bool = True        # recompute BatchNorm statistics at each α (REPAIR), if the net has BN
    bn_batches: int = 10             # ... over this many batches of `batch_size` training inputs
    batch_size: int = 1000
    per_example: bool = False        # each training example's loss barrier (Paul et al. 2022)
    # Not part of the identity: they change how the result is computed or summarised, not the result.
    # An example is linearly connected when its loss barrier is <= this. Not 0: in float32 about half
    # of the examples on a convex path show barriers of ~1e-8 from rounding alone.
    example_threshold: float = 1e-3
    alpha_chunk: int | None = None   # most α per vmapped pass (None: as many as fit)
    method: str = "batched"          # or "sequential": one α at a time

    def identity(self) -> dict[str, Any]:
        return {"points": self.points, "train_subset": self.train_subset, "seed": self.seed,
                "bn_recompute": self.bn_recompute, "bn_batches": self.bn_batches,
                "batch_size": self.batch_size, "per_example": self.per_example}

    def validate(self) -> "LmcSettings":
        def integer(value, label, low):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{label} {value!r} must be an integer of at least {low}")

        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points < 2:
            raise ConfigError(f"--points {self.points!r}: an interpolation needs at least 2 points (the endpoints)",
                              "Frankle et al. use 30")
        if self.train_subset is not None:
            integer(self.train_subset, "--train-subset", 1)
        integer(self.seed, "--seed", 0)
        integer(self.bn_batches, "--bn-batches", 1)
        integer(self.batch_size, "--batch-size", 1)
        if self.alpha_chunk is not None:
            integer(self.alpha_chunk, "--alpha-chunk", 1)
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}", f"choose {' or '.join(METHODS)}")
        if not math.isfinite(self.example_threshold):
            raise ConfigError(f"--example-threshold {self.example_threshold} must be a finite number")
        return self


def _split(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword arguments as (settings fields, options fields)."""
    setting_names = {f.name for f in fields(LmcSettings)}
    option_names = {f.name for f in fields(TrainOptions)}
    unknown = sorted(set(values) - setting_names - option_names)
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    return ({k: v for k, v in values.items() if k in setting_names},
            {k: v for k, v in values.items() if k in option_names})


def _request_id(kind: str, identity: dict[str, Any]) -> str:
    text = json.dumps({"kind": kind, **identity}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------
# Data, shared by the LMC runs of one call
# ------------------------------------------------------------------------------------------------

@dataclass
class _EvalData:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    input_shape: tuple[int, int, int]
    num_classes: int


class _DataCache:
    """Evaluation splits by (dataset, adaptation, split, device): loaded once per call."""

    def __init__(self, data_dir: str | None, device: torch.device):
        self.data_dir, self.device = data_dir, device
        self._cache: dict[tuple, _EvalData] = {}

    def get(self, config: TrainConfig) -> _EvalData:
        d = config.data
        key = (d.dataset, d.adapt, d.val_size, d.split_seed)
        if key not in self._cache:
            dataset = load_for(config, self.data_dir)
            val_size = d.val_size if d.val_size is not None else default_val_size(len(dataset.train_y))
            train_split, _, test_split = device_splits(dataset, val_size, d.split_seed, self.device)
            if len(test_split) == 0:
                raise ConfigError(f"dataset {d.dataset} has no test split to evaluate the path on")
            self._cache[key] = _EvalData(train_split.x, train_split.y, test_split.x, test_split.y,
                                         tuple(dataset.input_shape), int(dataset.num_classes))
        return self._cache[key]


# ------------------------------------------------------------------------------------------------
# Siblings
# ------------------------------------------------------------------------------------------------

def sibling_seeds(base: Seeds, index: int) -> Seeds:
    """Sibling `index`'s seeds: the parent's init seed; its own data-order and augmentation seeds."""
    return Seeds(init=base.init,
                 data_order=derive_seed(_SIBLING_STREAM, 1, base.data_order, index) % (2**31),
                 augment=derive_seed(_SIBLING_STREAM, 2, base.augment, index) % (2**31))


@dataclass(frozen=True)
class SiblingPlan:
    """Where siblings start and what they train: K configurations differing only in their seeds."""

    source: Endpoint
    step: int                      # the iteration they start at
    configs: list[TrainConfig]
    mask: dict[str, torch.Tensor] | None

    @property
    def parent(self) -> str:
        return self.configs[0].start.run


def plan_siblings(store: Store, source: Endpoint | str, count: int) -> SiblingPlan:
    """The configurations of `count` siblings spawned from `source` (nothing is trained or written).

    `RUN:STEP` starts at that checkpoint and continues the schedule, optimizer state included;
    `IMP@L` starts where the level's member started (its rewind point, under its mask).
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise ConfigError(f"-k {count!r}: spawn at least 2 siblings (a pair to interpolate between)")
    if isinstance(source, str):
        source = resolve_endpoint(store, source)
    run = source.run
    base = source.config
    total = int(run.plan.get("total_steps", 0))
    if source.imp is not None and not source.step_given:
        if base.start is None:  # level 0: the dense run starts at its init
            start = StartFrom(run.id, 0)
        elif base.reinit or base.start.fresh:  # its own start weights are a fresh draw: its own checkpoint
            start = StartFrom(run.id, base.start.step)
        else:  # the ticket's start: the dense run at the rewind step, under the ticket's mask
            start = base.start
    elif not source.step_given:
        raise ConfigError(f"{source.ref}: say which checkpoint to spawn siblings from",
                          f"write RUN:STEP, e.g. {source.ref}:0 or {source.ref}:500it")
    else:
        start = StartFrom(run.id, source.step, with_optimizer=True)
    if start.step >= total:
        raise ConfigError(f"{source.ref} is at the end of training ({total}it): siblings would have nothing to train",
                          "spawn from an earlier checkpoint")
    if start.run == run.id and start.step not in run.checkpoint_steps:
        raise StoreError(f"run {run.id} has no checkpoint at {start.step}it", "choose a stored step")
    configs = [replace(base, start=start, reinit=None, seeds=sibling_seeds(base.seeds, i),
                       checkpoint_at=(str(Step(start.step)), "end")).validate() for i in range(count)]
    return SiblingPlan(source, start.step, configs, run.mask())


def siblings(source: str, count: int = 2, options: TrainOptions | None = None, **option_values) -> list[Run]:
    """Spawn `count` siblings from a stored checkpoint and train them to the end, as one population.

    Complete siblings are reused (their runs are named by their configuration), interrupted ones
    resume. Returns the sibling runs, each with `parent` set to the run it started from.
    """
    options = replace(options or TrainOptions(), **option_values)
    store = Store(options.store)
    plan = plan_siblings(store, source, count)
    name = options.name or f"{plan.source.run.name}-sib{plan.step}it"
    return _train_siblings(plan, replace(options, name=name))


def _train_siblings(plan: SiblingPlan, options: TrainOptions) -> list[Run]:
    return train(plan.configs, options, masks=[plan.mask] * len(plan.configs))


# ------------------------------------------------------------------------------------------------
# One path: `landscape lmc`
# ------------------------------------------------------------------------------------------------

def lmc(a: str, b: str, settings: LmcSettings | None = None, options: TrainOptions | None = None,
        **values) -> Run:
    """Interpolate between networks A and B, store the curves, barriers and distances; return the run.

    Keywords may be `LmcSettings` fields (points=, train_subset=, per_example=...) or
    `TrainOptions` fields (store=, data_dir=, device=, name=). Asking again for the same request
    returns the stored run without computing anything.
    """
    setting_values, option_values = _split(values)
    settings = replace(settings or LmcSettings(), **setting_values).validate()
    options = replace(options or TrainOptions(), **option_values)
    store = Store(options.store)
    ea, eb = resolve_endpoint(store, a), resolve_endpoint(store, b)
    check_pair(ea, eb)
    return _lmc(store, ea, eb, settings, options, None)


def check_pair(a: Endpoint, b: Endpoint) -> None:
    """A and B must be one architecture on one input: a one-line error otherwise."""
    ca, cb = a.config, b.config
    if (ca.model.name, ca.model.width) != (cb.model.name, cb.model.width):
        raise ConfigError(f"A is a {ca.model.name} (width {ca.model.width:g}) and B a {cb.model.name} "
                          f"(width {cb.model.width:g}): different architectures cannot be interpolated",
                          "compare two networks of the same model and width")
    if ca.data.adapt != cb.data.adapt:
        raise ConfigError(f"A and B have different input shapes ({ca.data.adapt or 'as stored'} against "
                          f"{cb.data.adapt or 'as stored'})", "compare networks trained on the same input")
    if ca.data.dataset != cb.data.dataset:
        raise ConfigError(f"A was trained on {ca.data.dataset} and B on {cb.data.dataset}",
                          "compare networks trained on the same dataset")


def _lmc(store: Store, a: Endpoint, b: Endpoint, settings: LmcSettings, options: TrainOptions,
         cache: _DataCache | None) -> Run:
    identity = {"a": {"run": a.run.id, "step": a.step}, "b": {"run": b.run.id, "step": b.step},
                **settings.identity()}
    run_id = _request_id("lmc", identity)
    if store.exists(run_id) and store.open(run_id).complete:
        return store.open(run_id)
    device = resolve_device(options.device)
    cache = cache or _DataCache(options.data_dir, device)
    data = cache.get(a.config)
    if settings.train_subset is not None and settings.train_subset > len(data.train_y):
        raise ConfigError(f"--train-subset {settings.train_subset} is more than the {len(data.train_y)} "
                          "training examples", "use a smaller subset, or leave it out to use them all")
    with store.writer(run_id) as writer:
        if store.exists(run_id) and store.open(run_id).complete:  # finished while we waited
            return store.open(run_id)
        result = measure_pair(store, a, b, settings, data)
        name = options.name or f"lmc-{a.run.name}-{a.step}it--{b.run.name}-{b.step}it"
        writer.create(name=name, kind="lmc", config=identity,
                      environment={**describe(device), "data_dir": str(data_root(options.data_dir))})
        writer.write_section("lmc", attrs=result.attrs(a, b, settings))
        if result.layer_jaccard:
            writer.write_section("masks", attrs={"layers": list(result.layer_jaccard),
                                                 "jaccard": list(result.layer_jaccard.values())})
        if result.per_example is not None:
            writer.write_section("per_example", attrs={"threshold": settings.example_threshold,
                                                       "connected_fraction": result.connected,
                                                       "index": "positions in the training split (the training "
                                                                "set less the validation examples), as trained on"},
                                 arrays={"barrier": result.per_example.numpy(),
                                         "index": result.train_index.numpy()})
        writer.finish(curves=result.curves(), metrics=result.metrics())
    return store.open(run_id)


@dataclass
class PairResult:
    """What one path measured: curves on test and train, their barriers, and the distances."""

    alphas: np.ndarray
    test: dict[str, np.ndarray]       # error, loss at each α
    train: dict[str, np.ndarray]
    test_barrier: dict
    train_barrier: dict
    bn_recompute: bool
    bn_examples: int
    mask_mode: str
    mask_jaccard: float | None
    method: str
    alpha_chunk: int
    num_test: int
    num_train: int
    train_total: int
    seconds: float
    distances: dict[str, float | None]
    parent: tuple[str, int] | None
    layer_jaccard: dict[str, float] = field(default_factory=dict)
    per_example: torch.Tensor | None = None
    train_index: torch.Tensor | None = None
    connected: float | None = None

    def curves(self) -> dict[str, list[float]]:
        out = {"alpha": self.alphas.tolist()}
        for split, values in (("test", self.test), ("train", self.train)):
            for key in ("error", "loss"):
                out[f"{split}/{key}"] = values[key].tolist()
        return out

    def metrics(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for split, b in (("test", self.test_barrier), ("train", self.train_barrier)):
            for key in ("error", "loss"):
                out[f"{split}/{key}_barrier"] = b[key]
                out[f"{split}/{key}_barrier_alpha"] = b[f"{key}_alpha"]
                out[f"{split}/{key}_barrier_straight"] = b[f"{key}_straight"]
        for split, values in (("test", self.test), ("train", self.train)):
            for key in ("error", "loss"):
                out[f"{split}/{key}_a"] = float(values[key][0])
                out[f"{split}/{key}_b"] = float(values[key][-1])
        out["stable"] = float(self.test_barrier["error"] < STABILITY_THRESHOLD)
        out.update({f"distance/{k}": v for k, v in self.distances.items()})
        if self.connected is not None:
            out["per_example/connected_fraction"] = self.connected
        out["time_s"] = self.seconds
        return out

    def attrs(self, a: Endpoint, b: Endpoint, settings: LmcSettings) -> dict[str, Any]:
        notes = {
            "none": "no masks: the path runs between the dense networks",
            "shared": "A and B have the same mask: every point of the path lies in that subnetwork",
            "union": (f"A and B have different masks (Jaccard overlap {self.mask_jaccard:.3f}): each endpoint "
                      "is masked by its own mask, so interior points keep the union of the two supports "
                      "and are denser than either endpoint") if self.mask_jaccard is not None else "",
        }
        return {
            "a_ref": a.ref, "a_run": a.run.id, "a_step": a.step, "a_label": a.label,
            "b_ref": b.ref, "b_run": b.run.id, "b_step": b.step, "b_label": b.label,
            "model": a.config.model.name, "width": a.config.model.width, "dataset": a.config.data.dataset,
            "parent_run": self.parent[0] if self.parent else "", "parent_step": self.parent[1] if self.parent else -1,
            "bn_recompute_requested": settings.bn_recompute, "bn_recompute": self.bn_recompute,
            "bn_examples": self.bn_examples, "mask_mode": self.mask_mode, "mask_jaccard": self.mask_jaccard,
            "mask_note": notes[self.mask_mode], "method": self.method, "alpha_chunk": self.alpha_chunk,
            "num_test": self.num_test, "num_train": self.num_train, "train_total": self.train_total,
            "example_threshold": settings.example_threshold,
        }


def measure_pair(store: Store, a: Endpoint, b: Endpoint, settings: LmcSettings, data: _EvalData) -> PairResult:
    """Interpolate A→B on the test set and the training set (or its seeded subset); distances."""
    cfg = a.config
    template = build_model(cfg.model.name, data.input_shape, data.num_classes, seed=0, init=cfg.model.init,
                           width=cfg.model.width)
    state_a, state_b = a.run.checkpoint(a.step).model, b.run.checkpoint(b.step).model
    mask_a, mask_b = a.run.mask(), b.run.mask()
    masks = None if mask_a is None and mask_b is None else (mask_a, mask_b)
    device = data.train_x.device

    n = len(data.train_y)
    if settings.train_subset is not None:
        index = torch.randperm(n, generator=generator(_SAMPLE_STREAM, settings.seed, 0))[:settings.train_subset]
        index = index.sort().values
    else:
        index = torch.arange(n)
    train_x, train_y = data.train_x[index.to(device)], data.train_y[index.to(device)]
    bn_x = None
    if settings.bn_recompute and batchnorm_layers(template):
        sample = torch.randperm(n, generator=generator(_SAMPLE_STREAM, settings.seed, 1))
        bn_x = data.train_x[sample[:settings.bn_batches * settings.batch_size].to(device)]
    common = dict(alphas=settings.points, masks=masks, bn_recompute="auto" if settings.bn_recompute else "off",
                  bn_x=bn_x, bn_batches=settings.bn_batches, batch_size=settings.batch_size,
                  alpha_chunk=settings.alpha_chunk, method=settings.method)
    started = time.perf_counter()
    test_curve = interpolation_curve(template, state_a, state_b, data.test_x, data.test_y, **common)
    train_curve = interpolation_curve(template, state_a, state_b, train_x, train_y,
                                      per_example=settings.per_example, **common)
    seconds = time.perf_counter() - started

    distances, parent, layers = pair_distances(store, a, b, template, state_a, state_b, mask_a, mask_b,
                                               data.test_x, settings.batch_size)
    result = PairResult(
        alphas=test_curve.alphas.numpy(),
        test={"error": test_curve.error.numpy(), "loss": test_curve.loss.numpy()},
        train={"error": train_curve.error.numpy(), "loss": train_curve.loss.numpy()},
        test_barrier=barrier(test_curve), train_barrier=barrier(train_curve),
        bn_recompute=test_curve.bn_recompute, bn_examples=test_curve.bn_examples, mask_mode=test_curve.mask_mode,
        mask_jaccard=test_curve.mask_jaccard, method=test_curve.method,
        alpha_chunk=max(test_curve.alpha_chunk, train_curve.alpha_chunk),
        num_test=len(data.test_y), num_train=len(train_y), train_total=n, seconds=seconds,
        distances=distances, parent=parent, layer_jaccard=layers)
    if settings.per_example:
        result.per_example = per_example_barrier(train_curve)
        result.train_index = index
        result.connected = connected_fraction(result.per_example, settings.example_threshold)
    return result


def _masked(state: dict[str, torch.Tensor], mask: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    if not mask:
        return state
    return {k: v * mask[k].to(v.dtype) if k in mask else v for k, v in state.items()}


def pair_distances(store: Store, a: Endpoint, b: Endpoint, template, state_a, state_b, mask_a, mask_b,
                   test_x: torch.Tensor, batch_size: int) -> tuple[dict, tuple[str, int] | None, dict]:
    """L2 (raw, and normalised by the travel from the common parent), angular distance on the
    shared weights, test-set disagreement, and mask overlap; all over the masked networks.

    Weight-space distances are over the conv/linear weights (`template.prunable`). The angular
    distance is 2·angle/π (0 same direction, 1 orthogonal, 2 opposite) over the weights both
    masks keep. The normalised L2 divides ‖θA − θB‖ by the mean of ‖θA − θP‖ and ‖θB − θP‖,
    where P is the latest point both runs' histories share (each child's travel measured from
    P under its own mask, the point it actually started from); None when they share none.
    """
    names = list(template.prunable)
    masks = None if mask_a is None and mask_b is None else (mask_a, mask_b)
    params = {n for n, _ in template.named_parameters()}
    ma, mb, _, _ = apply_masks(dict(state_a), dict(state_b), masks, params)
    full_a, full_b = complete_masks(mask_a, mask_b)
    shared = {n: full_a[n] & full_b[n] for n in full_a}
    out: dict[str, float | None] = {"l2": l2_distance(ma, mb, names)}
    out["angular"] = angular_distance(_masked(ma, shared), _masked(mb, shared), names)
    parent = common_parent(store, a, b)
    out["l2_normalized"] = None
    if parent is not None:
        p = store.open(parent[0]).checkpoint(parent[1]).model
        travel = (l2_distance(ma, _masked(p, full_a), names) + l2_distance(mb, _masked(p, full_b), names)) / 2
        out["l2_normalized"] = out["l2"] / travel if travel > 0 else None
    out["disagreement"] = disagreement(template, ma, mb, test_x, batch_size=batch_size)
    layers: dict[str, float] = {}
    out["mask_jaccard"] = None
    if masks is not None:
        overlap = mask_overlap(mask_a, mask_b)
        out["mask_jaccard"] = overlap.pop("overall")
        layers = overlap
        out["density_a"] = _density(full_a, mask_a)
        out["density_b"] = _density(full_b, mask_b)
    return out, parent, layers


def _density(full: dict[str, torch.Tensor], mask) -> float:
    if mask is None:
        return 1.0
    return float(sum(int(m.sum()) for m in full.values()) / sum(m.numel() for m in full.values()))


def lineage(store: Store, run: Run, step: int) -> list[tuple[str, int, int]]:
    """The segments of training that led to (run, step), oldest first: (run ID, from, to).

    A run that started from another run's checkpoint continues that run's history; one whose
    start weights were redrawn (reinit controls) or partly replaced (a fresh output layer) starts
    a history of its own.
    """
    segments = []
    while True:
        start = run.config.get("start")
        linked = bool(start) and not run.config.get("reinit") and not start.get("fresh")
        segments.append((run.id, int(start["step"]) if start else 0, step))
        if not linked or not store.exists(start["run"]):
            break
        run, step = store.open(start["run"]), int(start["step"])
    return segments[::-1]


def common_parent(store: Store, a: Endpoint, b: Endpoint) -> tuple[str, int] | None:
    """The latest checkpoint on both histories (siblings: where they were spawned; an IMP ticket
    and its dense run: the rewind point), or None."""
    parent = None
    for (ra, _, ta), (rb, _, tb) in zip(lineage(store, a.run, a.step), lineage(store, b.run, b.step)):
        if ra != rb:
            break
        parent = (ra, min(ta, tb))
        if ta != tb:
            break
    if parent is not None and parent[1] not in store.open(parent[0]).checkpoint_steps:
        return None
    return parent


# ------------------------------------------------------------------------------------------------
# Instability analysis
# ------------------------------------------------------------------------------------------------

@dataclass
class Point:
    """Siblings spawned at one step, and the barriers between every pair of them."""

    step: int
    siblings: list[str]
    lmc: list[str]
    pairs: list[list[int]]
    barriers: dict[str, list[float]]  # "test/error" etc. -> one per pair

    KEYS = ("test/error", "train/error", "test/loss", "train/loss")

    def mean(self, key: str = "test/error") -> float:
        return float(np.mean(self.barriers[key]))

    def stable(self, threshold: float) -> bool:
        return self.mean("test/error") < threshold

    def attrs(self) -> dict[str, Any]:
        return {"step": self.step, "siblings": self.siblings, "lmc": self.lmc,
                "pairs": [f"{i}-{j}" for i, j in self.pairs],
                **{k: list(v) for k, v in self.barriers.items()}}

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> "Point":
        pairs = [[int(x) for x in p.split("-")] for p in attrs["pairs"]]
        return cls(int(attrs["step"]), list(attrs["siblings"]), list(attrs["lmc"]), pairs,
                   {k: [float(v) for v in attrs[k]] for k in cls.KEYS})


@dataclass
class _Context:
    store: Store
    source: Endpoint
    count: int
    settings: LmcSettings
    options: TrainOptions
    cache: _DataCache
    trained: list[int] = field(default_factory=list)  # steps this call measured (siblings trained or reused)


def bisect_onset(candidates: Sequence[int], is_stable: Callable[[int], bool]) -> tuple[int | None, list[int]]:
    """The earliest candidate that is stable, assuming stability is monotone in the step (unstable
    before the onset, stable from it on); and the candidates tested, in order.

    Tests ceil(log2(n + 1)) of n candidates. None when even the last one is unstable.
    """
    lo, hi = 0, len(candidates)
    tested = []
    while lo < hi:
        mid = (lo + hi) // 2
        tested.append(candidates[mid])
        if is_stable(candidates[mid]):
            hi = mid
        else:
            lo = mid + 1
    return (candidates[lo] if lo < len(candidates) else None), tested


def scan_onset(points: Sequence[Point], threshold: float) -> int | None:
    """The earliest measured step from which every later measured step is stable."""
    onset = None
    for point in sorted(points, key=lambda p: p.step, reverse=True):
        if not point.stable(threshold):
            break
        onset = point.step
    return onset


def instability(run: str, at: Sequence[str | int] | None = None, *, siblings: int = 2, find_onset: bool = False,
                threshold: float = STABILITY_THRESHOLD, settings: LmcSettings | None = None,
                options: TrainOptions | None = None, on_point: Callable[[Point], None] | None = None,
                **values) -> Run:
    """Barrier against the step siblings are spawned at (Frankle et al. 2020's instability analysis).

    `run` is a training run (or IMP@L: its ticket). At each step k in `at` (stored checkpoints;
    default: every stored checkpoint before the end) `siblings` siblings are spawned and trained to
    the end, and every pair is interpolated. With `find_onset`, only as many steps are measured
    as a bisection over them needs to find the earliest stable one (mean test-error barrier below
    `threshold`), assuming stability does not come and go. Points already measured are reused.
    """
    setting_values, option_values = _split(values)
    settings = replace(settings or LmcSettings(), **setting_values).validate()
    options = replace(options or TrainOptions(), **option_values)
    store = Store(options.store)
    if isinstance(siblings, bool) or not isinstance(siblings, int) or siblings < 2:
        raise ConfigError(f"--siblings {siblings!r}: at least 2 siblings are needed for a pair")
    if not (isinstance(threshold, (int, float)) and 0 < threshold < 1):
        raise ConfigError(f"--threshold {threshold!r} must be between 0 and 1", "Frankle et al. use 0.02 (2%)")
    source = resolve_endpoint(store, run)
    if source.step_given:
        raise ConfigError(f"--run {run}: name the run without a step", "the steps to spawn at go in --at")
    candidates = _candidate_steps(source, at)
    device = resolve_device(options.device)
    cache = _DataCache(options.data_dir, device)
    data = cache.get(source.config)  # a missing or unreadable dataset fails here, before anything is written
    if settings.train_subset is not None and settings.train_subset > len(data.train_y):
        raise ConfigError(f"--train-subset {settings.train_subset} is more than the {len(data.train_y)} "
                          "training examples", "use a smaller subset, or leave it out to use them all")
    for k in candidates:
        plan_siblings(store, replace(source, step=k, step_given=True), siblings)

    identity = {"run": source.run.id, "steps": candidates, "siblings": siblings, "find_onset": find_onset,
                "threshold": threshold, "lmc": settings.identity()}
    inst_id = _request_id("instability", identity)
    if store.exists(inst_id) and store.open(inst_id).complete:
        return store.open(inst_id)
    ctx = _Context(store, source, siblings, settings, options, cache)
    with store.writer(inst_id) as writer:
        if not store.exists(inst_id):
            writer.create(name=options.name or f"instability-{source.run.name}", kind="instability",
                          config=identity, environment={**describe(device),
                                                        "data_dir": str(data_root(options.data_dir))},
                          parent=source.run.id)
        points = {int(p.step): p for p in (Point.from_attrs(store.open(inst_id).section(f"points/{name}"))
                                           for name in store.open(inst_id).sections("points"))}

        def measure(k: int) -> Point:
            if k not in points:
                points[k] = _measure_point(ctx, k)
                writer.write_section(f"points/{k:09d}", attrs=points[k].attrs())
                if on_point:
                    on_point(points[k])
            return points[k]

        if find_onset:
            onset, tested = bisect_onset(candidates, lambda k: measure(k).stable(threshold))
        else:
            tested = [measure(k).step for k in candidates]
            onset = scan_onset([points[k] for k in candidates], threshold)
        measured = [points[k] for k in sorted(set(tested))]
        writer.write_section("summary", attrs={
            "candidates": candidates, "tested": tested, "onset": -1 if onset is None else onset,
            "method": "bisection" if find_onset else "scan", "threshold": threshold,
            "sibling_sets_measured": len(ctx.trained)})
        writer.finish(curves=_summary_curves(measured), metrics={
            "onset": math.nan if onset is None else float(onset), "threshold": threshold,
            "siblings": float(siblings), "sibling_sets": float(len(measured)),
            "candidates": float(len(candidates))})
    return store.open(inst_id)


def _candidate_steps(source: Endpoint, at: Sequence[str | int] | None) -> list[int]:
    run = source.run
    total = int(run.plan.get("total_steps", 0))
    ipe = int(run.plan.get("iters_per_epoch", 1))
    stored = [s for s in run.checkpoint_steps if s < total]
    if not at:
        if not stored:
            raise StoreError(f"run {run.id} has no checkpoint before the end of training",
                             "retrain it with --checkpoint-at, e.g. 0,100it,500it,end")
        return stored
    steps = []
    for item in at:
        text = str(item).strip()
        if text.lower() == "end":
            raise ConfigError("--at end: siblings spawned at the end of training have nothing to train",
                              "choose steps before the end")
        step = Step.parse(int(text) if isinstance(item, int) else text).resolve(ipe)
        if step not in run.checkpoint_steps:
            have = ", ".join(f"{s}it" for s in run.checkpoint_steps) or "none"
            raise StoreError(f"run {run.id} ({run.name}) has no checkpoint at {step}it (it has: {have})",
                             "choose stored steps, or retrain with --checkpoint-at")
        if step >= total:
            raise ConfigError(f"--at {text}: siblings spawned at the end of training have nothing to train",
                              "choose steps before the end")
        steps.append(step)
    return sorted(set(steps))


def _measure_point(ctx: _Context, k: int) -> Point:
    """Spawn and train the siblings at step k, and interpolate between every pair."""
    source = replace(ctx.source, step=k, step_given=True)
    plan = plan_siblings(ctx.store, source, ctx.count)
    runs = _train_siblings(plan, replace(ctx.options, name=f"{ctx.source.run.name}-sib{plan.step}it"))
    ctx.trained.append(k)
    ends = [resolve_endpoint(ctx.store, f"{r.id}:end") for r in runs]
    pairs = [list(p) for p in itertools.combinations(range(len(ends)), 2)]
    lmc_ids, barriers = [], {key: [] for key in Point.KEYS}
    for i, j in pairs:
        result = _lmc(ctx.store, ends[i], ends[j], ctx.settings, replace(ctx.options, name=None), ctx.cache)
        lmc_ids.append(result.id)
        for key in Point.KEYS:
            barriers[key].append(float(result.metrics[f"{key}_barrier"]))
    return Point(k, [r.id for r in runs], lmc_ids, pairs, barriers)


def _summary_curves(points: list[Point]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"step": [float(p.step) for p in points]}
    for key in Point.KEYS:
        values = [np.asarray(p.barriers[key], dtype=float) for p in points]
        out[f"{key}_barrier/mean"] = [float(v.mean()) for v in values]
        out[f"{key}_barrier/std"] = [float(v.std()) for v in values]
        out[f"{key}_barrier/min"] = [float(v.min()) for v in values]
        out[f"{key}_barrier/max"] = [float(v.max()) for v in values]
    return out


def read_points(run: Run) -> list[Point]:
    """The measured points of an instability run, by step."""
    return sorted((Point.from_attrs(run.section(f"points/{name}")) for name in run.sections("points")),
                  key=lambda p: p.step)


__all__ = ["Endpoint", "resolve_endpoint", "LmcSettings", "SiblingPlan", "plan_siblings", "siblings",
           "sibling_seeds", "lmc", "check_pair", "measure_pair", "pair_distances", "lineage", "common_parent",
           "Point", "bisect_onset", "scan_onset", "instability", "read_points", "REFERENCE_SYNTAX"]
