"""Difficulty scores of every training example into the store: `landscape scores`.

    import landscape.api.scores as S
    run = S.scores(ScoresConfig(ls.recipe("lenet_300_100", "mnist"), method="el2n", at="1ep", runs=10),
                   store="runs", data_dir="../shared/data")
    run.arrays("scores")["score"]        # one per training example; higher is harder

A scores run (kind "scores") holds the mean score over the S scoring runs, each run's scores, the
labels, and a gallery of the easiest and hardest images of each class (so reports need no dataset).
Its ID hashes its configuration, so asking again reuses it, and any number of diet runs can pick
subsets from it. EL2N, GraNd and LMC scoring runs are ordinary training runs in the store (reused
and resumable); forgetting is counted while its S runs train, and is recomputed if interrupted.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from ..data import data_root, device_splits
from ..data.splits import split_train_val
from ..diet import DESCRIPTIONS, ForgettingCounter, ScoresConfig, el2n_scores, grand_scores
from ..environment import describe
from ..errors import ConfigError
from ..models import build_model
from ..steps import Step
from ..store import Run
from ..train.engine import Member, NoHooks, Plan, train_population
from .context import Context
from .lmc import LmcSettings, lmc
from .provenance import data_provenance
from .siblings import siblings
from .names import check_name, claim, generated
from .train import TrainOptions, load_for, plan_for, resolve_val_size, tell_names, train

GALLERY_IMAGES = 40  # per side (easiest, hardest), spread evenly over the classes


def scores(config: ScoresConfig, options: TrainOptions | None = None, **option_values) -> Run:
    """Compute (or reuse) the difficulty scores `config` asks for; return the scores run."""
    options = replace(options or TrainOptions(), **option_values)
    check_name(options.name)   # before the store is touched
    context = Context.of(options)
    store = context.store
    dataset = load_for(config.train, options.data_dir)
    config = replace(config, train=resolve_val_size(config.train, dataset)).validate()
    # Every size and step, before anything is trained: `at` against the full schedule first.
    _check_steps(config, plan_for(replace(config.train, stop=None), dataset))
    plan_for(config.train, dataset)
    run_id = config.run_id()
    claim(store, run_id, options.name, options.rename)
    if store.exists(run_id) and store.open(run_id).complete:
        tell_names(store, [store.open(run_id)], [options.name], options)
        return store.open(run_id)

    device = context.device
    data = config.train.data
    train_split, _, _ = device_splits(dataset, data.val_size, data.split_seed, device)
    started = time.perf_counter()
    member_options = replace(options, name=None)
    per_run, members = _COMPUTE[config.method](config, train_split, dataset, member_options, device)
    seconds = time.perf_counter() - started

    labels = train_split.y.cpu().numpy()
    mean = np.nanmean(per_run, axis=0) if np.isnan(per_run).any() else per_run.mean(axis=0)
    train_idx, _ = split_train_val(len(dataset.train_y), data.val_size, data.split_seed)
    gallery = _gallery(mean, labels, dataset.train_x[train_idx])
    provenance = data_provenance(dataset, data, mean=train_split.mean, std=train_split.std)
    with store.writer(run_id) as writer:
        if store.exists(run_id) and store.open(run_id).complete:  # finished while we waited
            return store.open(run_id)
        writer.create(name=options.name or generated(store, run_id, config.default_name()), kind="scores", config=config.to_dict(),
                      environment={**describe(device), "data_dir": str(data_root(options.data_dir))})
        writer.write_section("data", attrs=provenance[0], arrays=provenance[1])
        writer.write_section("scores", attrs={
            "method": config.method, "description": DESCRIPTIONS[config.method], "higher_is_harder": True,
            "n_train": len(labels), "classes": list(dataset.classes), "members": members,
            "index": "positions in the training split (the training set less the validation examples); "
                     "dataset_index[i] is position i's index in the dataset's training set",
            "at": config.at, "steps": config.train.steps},
            arrays={"score": mean, "per_run": per_run, "label": labels, "dataset_index": train_idx.numpy()})
        if not members and config.method in ("el2n", "grand"):
            # At step 0 there are no scoring runs to hold the scored networks: keep them here.
            for s, model in enumerate(_fresh_models(config, dataset, torch.device("cpu"))):
                writer.write_section(f"networks/r{s}", attrs={"seed": config.member(s).seeds.init, "step": 0},
                                     arrays={k: v.numpy() for k, v in model.state_dict().items()})
        writer.write_section("gallery", arrays=gallery)
        writer.finish(curves={}, metrics={
            "time_s": seconds, "mean": float(np.nanmean(mean)), "median": float(np.nanmedian(mean)),
            "runs": float(config.runs), "n_train": float(len(labels)),
            # How much the S runs agree: the mean Spearman correlation of each run with the mean.
            "rank_agreement": _rank_agreement(per_run, mean)})
    return store.open(run_id)


def _check_steps(config: ScoresConfig, plan: Plan) -> None:
    at = Step.parse(config.at).resolve(plan.iters_per_epoch)
    if config.method == "forgetting" and plan.total_steps < 2 * plan.iters_per_epoch:
        raise ConfigError(f"forgetting needs every example presented at least twice, but --steps {config.train.steps} "
                          f"is {plan.total_steps}it (an epoch is {plan.iters_per_epoch}it)", "train for --steps 2ep or more")
    if config.method in ("el2n", "grand") and at > plan.total_steps:
        raise ConfigError(f"--at {config.at} ({at}it) is beyond the end of training: --steps {config.train.steps} "
                          f"is {plan.total_steps}it", "score at a step within --steps, or train longer with --steps")
    if config.method == "lmc" and at >= plan.total_steps:
        raise ConfigError(f"--at {config.at} is not before the end of training ({plan.total_steps}it): "
                          "the siblings would not train", "spawn earlier, or train longer with --steps")


# -- the methods --------------------------------------------------------------------------------

def _fresh_models(config: ScoresConfig, dataset, device) -> list:
    """The S scoring networks at initialisation (seed s of each is its run's)."""
    t = config.train
    return [build_model(t.model.name, dataset.input_shape, dataset.num_classes, seed=config.member(s).seeds.init,
                        init=t.model.init, width=t.model.width).to(device) for s in range(config.runs)]


def _scored_models(config: ScoresConfig, dataset, options: TrainOptions, device) -> tuple[list, list[str]]:
    """The S networks at step `at`: fresh inits at 0, else the final weights of S stored runs."""
    models = _fresh_models(config, dataset, device)
    if Step.parse(config.at).value == 0:
        return models, []
    runs = train([config.member(s) for s in range(config.runs)], options,
                 names=[f"{config.default_name()}-r{s}" for s in range(config.runs)])
    for model, run in zip(models, runs):
        state = run.checkpoint(run.checkpoint_steps[-1]).model
        model.load_state_dict({k: v.to(device) for k, v in state.items()})
    return models, [r.id for r in runs]


def _el2n(config, split, dataset, options, device):
    models, members = _scored_models(config, dataset, options, device)
    return np.stack([el2n_scores(m, split.x, split.y).cpu().numpy() for m in models]), members


def _grand(config, split, dataset, options, device):
    models, members = _scored_models(config, dataset, options, device)
    return np.stack([grand_scores(m, split.x, split.y).cpu().numpy() for m in models]), members


class _Forgetting(NoHooks):
    """Feeds each training batch's per-example correctness to the counter."""

    def __init__(self, counter: ForgettingCounter, total: int, progress):
        self.counter, self.total, self.progress = counter, total, progress

    def on_batch(self, step, idx, correct):
        self.counter.update(idx, correct)

    def on_progress(self, step):
        if self.progress:
            self.progress(step, self.total)


def _forgetting(config, split, dataset, options, device):
    t = config.train
    plan = Plan.make(t, len(split.y))
    members = [Member(build_model(t.model.name, dataset.input_shape, dataset.num_classes, seed=c.seeds.init,
                                  init=t.model.init, width=t.model.width).to(device), c.seeds.data_order, c.seeds.augment)
               for c in (config.member(s) for s in range(config.runs))]
    hooks = _Forgetting(ForgettingCounter(len(members), len(split.y), device), plan.total_steps, options.progress)
    train_population(plan, members, split.x, split.y, [], hooks=hooks, path=options.path)
    return hooks.counter.scores().cpu().numpy(), []


def _lmc(config, split, dataset, options, device):
    parents = train([config.member(s) for s in range(config.runs)], options,
                    names=[f"{config.default_name()}-r{s}" for s in range(config.runs)])
    at = Step.parse(config.at).resolve(int(parents[0].plan["iters_per_epoch"]))
    per_run, members = [], []
    for parent in parents:
        a, b = siblings(f"{parent.id}:{at}it", 2, options)
        result = lmc(a.id, b.id, LmcSettings(per_example=True), options)
        per_example = result.arrays("per_example")
        barrier = np.full(len(split.y), np.nan)
        barrier[per_example["index"]] = per_example["barrier"]
        per_run.append(barrier)
        members += [parent.id, result.id]
    return np.stack(per_run), members


_COMPUTE = {"el2n": _el2n, "grand": _grand, "forgetting": _forgetting, "lmc": _lmc}


# -- what the report shows without the dataset ----------------------------------------------

def _gallery(score: np.ndarray, labels: np.ndarray, images: torch.Tensor) -> dict[str, np.ndarray]:
    """The easiest and hardest images of each class (the same number per class), easiest first."""
    classes = np.unique(labels)
    per_class = max(1, GALLERY_IMAGES // len(classes))
    out: dict[str, list] = {f"{side}_{k}": [] for side in ("easy", "hard") for k in ("index", "label", "score")}
    for c in classes:
        members = np.flatnonzero(labels == c)
        ranked = members[np.lexsort((members, np.nan_to_num(score[members], nan=np.inf)))]
        for side, chosen in (("easy", ranked[:per_class]), ("hard", ranked[::-1][:per_class])):
            out[f"{side}_index"] += chosen.tolist()
            out[f"{side}_label"] += [int(c)] * len(chosen)
            out[f"{side}_score"] += score[chosen].tolist()
    arrays = {k: np.asarray(v, dtype=np.float64 if k.endswith("score") else np.int64) for k, v in out.items()}
    for side in ("easy", "hard"):
        arrays[f"{side}_x"] = images[torch.as_tensor(arrays[f"{side}_index"])].numpy()
    return arrays


def _rank_agreement(per_run: np.ndarray, mean: np.ndarray) -> float:
    if len(per_run) < 2:
        return float("nan")
    from scipy.stats import spearmanr

    values = [spearmanr(run, mean, nan_policy="omit").statistic for run in per_run]
    return float(np.nanmean(values))
