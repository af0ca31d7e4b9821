"""Training runs into the store: the Python API behind `landscape train`.

    import landscape as ls
    runs = ls.train(ls.recipe("lenet_300_100", "mnist", steps="2ep"), data_dir="../shared/data")

A run is computed once: asking for a configuration that is already complete returns the stored
run, and one that was interrupted continues from its last resume point to the same result.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import torch

from ..data import data_root, device_splits, load_dataset
from ..data.adapt import adapt_dataset
from ..environment import describe
from ..errors import ConfigError
from ..interrupts import note_step
from ..models import build_model
from ..store import Run, RunWriter, Store
from ..prune import full_mask, reinit as reinit_weights, rescaled_reinit
from ..prune.gmp import GmpSchedule
from ..steps import Step
from ..train.config import TrainConfig, default_val_size, parse_shape
from ..train.engine import EvalSet, Member, Plan, train_population
from ..train.population import MemberState, choose_path
from .code import code_record, warn_if_changed
from .provenance import data_provenance
from .context import Context
from .names import adopt, check_name, claim, generated
from .subsets import subset_index

# train/*: the network evaluated on the un-augmented training split (at the end; at every evaluation
# with eval_train). train_running/*: the running average over the training minibatches since the
# last evaluation (runs stored before issue 9 hold that average under train/*).
CURVE_KEYS = ("step", "epoch", "lr", "time", "train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc",
              "train_running/loss", "train_running/acc")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainOptions:
    """Where and how to compute. None of these change a run's result, so none is in its ID."""

    store: str | None = None
    data_dir: str | None = None
    device: str = "auto"
    path: str = "auto"  # population layout: auto | loop | vmap
    name: str | None = None  # a population's members are named NAME-r0, NAME-r1...
    progress: Progress | None = None
    rename: bool = False  # move `name` from the run that holds it (else that is an error)
    notify: Callable[[str], None] | None = None  # told what happened to names, in words
    # The least time between resume points that are not requested checkpoints: each is a rewrite of
    # the run file, so they are spaced out in time rather than in steps.
    save_interval_s: float = field(default_factory=lambda: float(os.environ.get("LANDSCAPE_SAVE_INTERVAL", 5.0)))
    # How long to wait for a run that another live process is writing ("default": $LANDSCAPE_WAIT,
    # else no limit; 0: fail at once). The finished run is then reused.
    wait_s: float | None | str = "default"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but this machine has no CUDA GPU", "use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}", "use cpu, cuda or auto") from None


def phase(options: TrainOptions, text: str) -> None:
    """Tell the progress display where a long request is (`options.progress.phase`, if it has one)."""
    say = getattr(options.progress, "phase", None)
    if say is not None:
        say(text)


def population_key(config: TrainConfig) -> str:
    """What members of one population must share: everything but seeds, start point, mask and
    how the starting weights are drawn."""
    return replace(config, seeds=type(config.seeds)(), start=None, mask=None, reinit=None).canonical_json()


class _StoreHooks:
    """Engine hooks that keep each member's curves and write them, with checkpoints, to its run."""

    def __init__(self, writers: list[RunWriter], curves: list[dict[str, list[float]]], plan: Plan,
                 interval_s: float, time_offsets: list[float], progress: Progress | None):
        self.writers, self.curves, self.plan = writers, curves, plan
        self.interval_s, self.progress = interval_s, progress
        self.time_offsets = time_offsets
        self.started = time.perf_counter()
        self.last_save = self.started

    def on_eval(self, step: int, metrics: list[dict[str, float]]) -> None:
        elapsed = time.perf_counter() - self.started
        for curves, m, offset in zip(self.curves, metrics, self.time_offsets):
            row = {**m, "time": offset + elapsed}
            for key in CURVE_KEYS:
                curves[key].append(float(row.get(key, math.nan)))

    def on_checkpoint(self, step: int, states: list[MemberState], *, requested: bool) -> None:
        now = time.perf_counter()
        resume = step == self.plan.total_steps or requested or now - self.last_save >= self.interval_s
        if not (requested or resume):
            return
        for writer, curves, state in zip(self.writers, self.curves, states):
            writer.save(step, curves=curves, model=state.model, optimizer=state.optimizer,
                        checkpoint=requested, resume=resume, mask=state.mask)
        self.last_save = time.perf_counter()

    def on_progress(self, step: int) -> None:
        note_step(step)
        if self.progress:
            self.progress(step, self.plan.total_steps)


def summarize(curves: dict[str, list[float]], plan: Plan) -> dict[str, float]:
    """Final and best figures from a run's curves, as the lottery-ticket papers report them."""
    def col(key):
        return curves.get(key, [])

    metrics: dict[str, float] = {"steps": float(plan.total_steps), "iters_per_epoch": float(plan.iters_per_epoch)}
    for split in ("train", "val", "test", "train_running"):
        for m in ("loss", "acc"):
            values = col(f"{split}/{m}")
            if values and not math.isnan(values[-1]):
                metrics[f"final/{split}/{m}"] = values[-1]
    val_loss, val_acc, steps = col("val/loss"), col("val/acc"), col("step")
    measured = [i for i, v in enumerate(val_loss) if not math.isnan(v)]
    if measured:
        # The early-stopping iteration of Frankle & Carbin: where validation loss is lowest.
        best = min(measured, key=lambda i: (val_loss[i], i))
        metrics["min_val_loss/step"] = steps[best]
        metrics["min_val_loss/val/loss"] = val_loss[best]
        if not math.isnan(col("test/acc")[best]):
            metrics["min_val_loss/test/acc"] = col("test/acc")[best]
        top = max(measured, key=lambda i: (val_acc[i], -i))
        metrics["best/val/acc"] = val_acc[top]
        metrics["best/val/acc/step"] = steps[top]
    if col("time"):
        metrics["train_time_s"] = col("time")[-1]
    return metrics


def load_for(config: TrainConfig, data_dir: str | None):
    """The dataset a configuration trains on, adapted to its input shape if it asks for one."""
    dataset = load_dataset(config.data.dataset, data_root(data_dir))
    if config.data.adapt:
        dataset = adapt_dataset(dataset, parse_shape(config.data.adapt))
    return dataset


def resolve_val_size(config: TrainConfig, dataset) -> TrainConfig:
    if config.data.val_size is not None:
        return config
    return replace(config, data=replace(config.data, val_size=default_val_size(len(dataset.train_y))))


def plan_for(config: TrainConfig, dataset) -> Plan:
    """The resolved schedule of `config` on `dataset`, without training (to check a request first)."""
    config = resolve_val_size(config.validate(), dataset)
    if config.data.val_size >= len(dataset.train_y):
        raise ConfigError(f"validation size {config.data.val_size} leaves no training data "
                          f"({len(dataset.train_y)} examples)", "use a smaller --val-size")
    n_train = len(dataset.train_y) - config.data.val_size
    return Plan.make(config, config.data.subset.size if config.data.subset else n_train)


def gmp_schedule(spec, plan: Plan) -> GmpSchedule | None:
    """The engine's mask update for gradual magnitude pruning, its steps resolved by the plan."""
    if spec is None:
        return None
    start, end, every = (Step.parse(v).resolve(plan.iters_per_epoch) for v in (spec.start, spec.end, spec.every))
    if every < 1:
        raise ConfigError(f"GMP --every {spec.every} is less than one iteration", "e.g. --every 100it")
    if start >= end:
        raise ConfigError(f"GMP start {spec.start} ({start}it) is not before its end {spec.end} ({end}it)",
                          "e.g. --start 1ep --end 5ep")
    if end >= plan.total_steps:
        raise ConfigError(f"GMP ends at {end}it, not before the end of training ({plan.total_steps}it)",
                          "end the pruning earlier, leaving steps to recover")
    return GmpSchedule(start=start, end=end, every=every, initial=spec.initial_density,
                       final=spec.final_density, scope=spec.scope)


def _check_population(configs: list[TrainConfig]) -> None:
    keys = {population_key(c) for c in configs}
    if len(keys) > 1:
        raise ConfigError("members of one population must share model, data, optimizer and schedule",
                          "train differing configurations in separate calls")


def train(configs: TrainConfig | Sequence[TrainConfig], options: TrainOptions | None = None, *,
          masks: Sequence[dict[str, torch.Tensor] | None] | None = None,
          names: Sequence[str] | None = None, **option_values) -> list[Run]:
    """Train each configuration into the store (as one population) and return the stored runs.

    Options may be given as a `TrainOptions` or as keywords (`store=`, `data_dir=`, `device=`...).
    `masks` are the pruning masks of the members, `names` their names (default: from the options'
    name, or from each configuration). Complete runs are returned as they are; interrupted ones
    continue where they stopped.
    """
    options = replace(options or TrainOptions(), **option_values)
    configs = [configs] if isinstance(configs, TrainConfig) else list(configs)
    if not configs:
        raise ConfigError("nothing to train: no configuration given")
    configs = [c.validate() for c in configs]
    masks = list(masks) if masks is not None else [None] * len(configs)
    _check_population(configs)
    check_name(options.name)
    context = Context.of(options)
    store = context.store
    chosen = [options.name and (options.name if len(configs) == 1 else f"{options.name}-r{i}")
              for i in range(len(configs))]
    for config, name in zip(configs, chosen):
        claim(store, config.run_id(), name, options.rename)
    device = context.device

    dataset = load_for(configs[0], options.data_dir)
    configs = [resolve_val_size(c, dataset) for c in configs]
    val_size = configs[0].data.val_size
    train_split, val_split, test_split = device_splits(dataset, val_size, configs[0].data.split_seed, device)
    train_x, train_y = train_split.x, train_split.y
    if configs[0].data.subset is not None:
        # Normalised with the statistics of the whole training split, as the full-data runs are.
        index = torch.as_tensor(subset_index(store, configs[0].data, train_y.cpu().numpy()), device=device)
        train_x, train_y = train_x[index], train_y[index]
    plan = Plan.make(configs[0], len(train_y))
    provenance = data_provenance(dataset, configs[0].data, mean=train_split.mean, std=train_split.std)
    if configs[0].data.subset is not None:
        provenance[0]["trained_on"] = f"{len(train_y)} positions of the training split (data.subset)"
    # The data the network trains on (the subset, for a diet pre-training), without augmentation.
    mask_update = gmp_schedule(configs[0].gmp, plan)  # refused here, before anything is written
    evals = [EvalSet("train", train_x, train_y, every=bool(configs[0].eval_train)),
             EvalSet("val", val_split.x, val_split.y), EvalSet("test", test_split.x, test_split.y)]

    pending: dict[tuple[int, bool], list[tuple[int, Member, RunWriter, dict, float]]] = {}
    writers: list[RunWriter] = []
    try:
        # Locks are taken in run-ID order, so two processes sharing members never wait for each other.
        for index, (config, mask) in sorted(enumerate(zip(configs, masks)), key=lambda item: item[1][0].run_id()):
            run_id = config.run_id()
            if store.exists(run_id) and store.open(run_id).complete:
                warn_if_changed(store.open(run_id), config, "reusing")
                continue
            writer = store.writer(run_id)
            if store.exists(run_id) and store.open(run_id).complete:  # finished while we waited for it
                writer.close()
                continue
            writers.append(writer)
            name = chosen[index] or generated(store, run_id, names[index] if names else config.default_name())
            member, start, curves, offset = _prepare(config, mask, writer, store, dataset, plan, device, options,
                                                     len(configs), name, provenance)
            resuming = bool(curves["step"]) and curves["step"][-1] == start
            pending.setdefault((start, resuming), []).append((index, member, writer, curves, offset))

        # Members resume from the step their file reached; members at the same step train together.
        for (start, resuming), group in sorted(pending.items()):
            group.sort(key=lambda g: g[0])
            group_writers = [g[2] for g in group]
            group_curves = [g[3] for g in group]
            hooks = _StoreHooks(group_writers, group_curves, plan, options.save_interval_s,
                                [g[4] for g in group], options.progress)
            train_population(plan, [g[1] for g in group], train_x, train_y, evals,
                             start_step=start, hooks=hooks, path=options.path, evaluate_start=not resuming,
                             mask_update=mask_update)
            for writer, curves in zip(group_writers, group_curves):
                writer.finish(curves=curves, metrics=summarize(curves, plan))
    finally:
        for writer in writers:
            writer.close()
    runs = [store.open(c.run_id()) for c in configs]
    tell_names(store, runs, chosen, options)
    return [store.open(r.id) for r in runs]


def tell_names(store: Store, runs: Sequence[Run], chosen: Sequence[str | None], options: TrainOptions) -> None:
    """Give each run the name asked for (an alias if it existed under another) and say so."""
    for run, name in zip(runs, chosen):
        note = adopt(store, run, name, options.rename)
        if note and options.notify:
            options.notify(note)


def _prepare(config: TrainConfig, mask, writer: RunWriter, store: Store, dataset, plan: Plan,
             device: torch.device, options: TrainOptions, population: int, name: str, provenance=None):
    """The member to train for `config`, the step it starts at, and the curves it has so far."""
    run_id = config.run_id()
    model = build_model(config.model.name, dataset.input_shape, dataset.num_classes, seed=config.seeds.init,
                        init=config.model.init, width=config.model.width).to(device)
    if config.gmp is not None and mask is None:
        mask = full_mask(model)  # gradual pruning starts dense and prunes this mask as it trains
    member = Member(model, config.seeds.data_order, config.seeds.augment, mask=mask)
    empty = {key: [] for key in CURVE_KEYS}

    if store.exists(run_id):
        run = store.open(run_id)
        state = run.resume_state()
        if state is not None:
            warn_if_changed(run, config, "continuing")
            load_weights(model, state.model, f"run {run_id}")
            member.optimizer_state = state.optimizer
            if state.mask is not None:
                member.mask = state.mask
            keep = [i for i, s in enumerate(run.curves.get("step", [])) if s <= state.step]
            curves = {key: [float(run.curves[key][i]) for i in keep] if key in run.curves else [math.nan] * len(keep)
                      for key in CURVE_KEYS}
            offset = curves["time"][-1] if curves["time"] else 0.0
            return member, state.step, curves, offset

    start = 0
    parent = None
    if config.start is not None:
        parent_run = store.open(config.start.run)
        checkpoint = parent_run.checkpoint(config.start.step)
        load_weights(model, checkpoint.model, f"checkpoint {parent_run.id}@{checkpoint.step}it",
                      keep=config.start.fresh)
        if config.start.with_optimizer and not config.start.fresh:
            member.optimizer_state = checkpoint.optimizer
        start, parent = (checkpoint.step if config.start.at is None else config.start.at), parent_run.id
        if start > plan.total_steps:
            raise ConfigError(f"the start checkpoint is at {start}it, beyond this run's {plan.total_steps}it",
                              "train for longer or start from an earlier checkpoint")
    if config.reinit:
        draw = rescaled_reinit if config.reinit == "rescaled-reinit" else reinit_weights
        fresh = draw(model, mask if mask is not None else full_mask(model), seed=config.seeds.init,
                     init=config.model.init)
        load_weights(model, fresh, f"the {config.reinit} draw")
    environment = {**describe(device), "population_path": choose_path(options.path, population, device),
                   "population_size": population, "data_dir": str(data_root(options.data_dir))}
    writer.create(name=name, kind="train", config={**config.to_dict(), **code_record(config)},
                  environment=environment, parent=parent, plan=plan.describe(), mask=mask)
    if provenance is not None:
        writer.write_section("data", attrs=provenance[0], arrays=provenance[1])
    return member, start, empty, 0.0


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: str,
                  keep: tuple[str, ...] = ()) -> None:
    """Copy `weights` into `model`, except the tensors named in `keep` (and any shape check on them)."""
    own = {k: v for k, v in (dict(model.named_parameters()) | dict(model.named_buffers())).items() if k not in keep}
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own) - set(keep))
    mismatched = [k for k in own if k in weights and tuple(own[k].shape) != tuple(weights[k].shape)]
    if missing or extra or mismatched:
        detail = (missing or extra or mismatched)[0]
        raise ConfigError(f"{source} does not fit this model (first difference: {detail})",
                          "start from a run of the same model, width and dataset shape")
    with torch.no_grad():
        for name, tensor in own.items():
            tensor.copy_(weights[name].to(tensor.device))
