"""The instability analysis (Frankle et al. 2020): barrier against the step siblings are spawned at.

    from landscape.api.instability import instability
    instability("parent", at=["0", "100it", "500it"], siblings=2, store="runs")
    instability("parent", find_onset=True, threshold=0.02, store="runs")

An instability analysis is a run of kind "instability" over sibling sets and their LMC runs.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from ..data import data_root
from ..environment import describe
from ..errors import ConfigError, StoreError
from ..lmc import STABILITY_THRESHOLD
from ..steps import Step
from ..store import Run, Store
from .context import Context, readable_store
from .lmc import LmcSettings, lmc_between, split_values
from .refs import Endpoint, resolve_endpoint
from .requests import DataCache, request_id
from .siblings import plan_siblings, train_siblings
from .names import claim, generated
from .train import TrainOptions, phase, tell_names



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
    cache: DataCache
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
    setting_values, option_values = split_values(values)
    settings = replace(settings or LmcSettings(), **setting_values).validate()
    options = replace(options or TrainOptions(), **option_values)
    context = Context(readable_store(options.store), options.device, options.data_dir)
    store = context.store
    if isinstance(siblings, bool) or not isinstance(siblings, int) or siblings < 2:
        raise ConfigError(f"--siblings {siblings!r}: at least 2 siblings are needed for a pair")
    if not (isinstance(threshold, (int, float)) and 0 < threshold < 1):
        raise ConfigError(f"--threshold {threshold!r} must be between 0 and 1", "Frankle et al. use 0.02 (2%)")
    source = resolve_endpoint(store, run)
    if source.step_given:
        raise ConfigError(f"--run {run}: name the run without a step", "the steps to spawn at go in --at")
    candidates = _candidate_steps(source, at)
    device, cache = context.device, context.data
    data = cache.get(source.config)  # a missing or unreadable dataset fails here, before anything is written
    if settings.train_subset is not None and settings.train_subset > len(data.train_y):
        raise ConfigError(f"--train-subset {settings.train_subset} is more than the {len(data.train_y)} "
                          "training examples", "use a smaller subset, or leave it out to use them all")
    for k in candidates:
        plan_siblings(store, replace(source, step=k, step_given=True), siblings)

    identity = {"run": source.run.id, "steps": candidates, "siblings": siblings, "find_onset": find_onset,
                "threshold": threshold, "lmc": settings.identity()}
    inst_id = request_id("instability", identity)
    claim(store, inst_id, options.name, options.rename)
    if store.exists(inst_id) and store.open(inst_id).complete:
        tell_names(store, [store.open(inst_id)], [options.name], options)
        return store.open(inst_id)
    ctx = _Context(store, source, siblings, settings, options, cache)
    with store.writer(inst_id) as writer:
        if not store.exists(inst_id):
            writer.create(name=options.name or generated(store, inst_id, f"instability-{source.run.name}"),
                          kind="instability",
                          config=identity, environment={**describe(device),
                                                        "data_dir": str(data_root(options.data_dir))},
                          parent=source.run.id)
        points = {int(p.step): p for p in (Point.from_attrs(store.open(inst_id).section(f"points/{name}"))
                                           for name in store.open(inst_id).sections("points"))}

        def measure(k: int) -> Point:
            if k not in points:
                count = f"{len(ctx.trained) + 1} measured, bisecting" if find_onset else \
                    f"{candidates.index(k) + 1}/{len(candidates)}"
                phase(options, f"k = {k}it ({count})")
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
    runs = train_siblings(plan, replace(ctx.options, name=None))
    ctx.trained.append(k)
    ends = [resolve_endpoint(ctx.store, f"{r.id}:end") for r in runs]
    pairs = [list(p) for p in itertools.combinations(range(len(ends)), 2)]
    lmc_ids, barriers = [], {key: [] for key in Point.KEYS}
    for i, j in pairs:
        result = lmc_between(ctx.store, ends[i], ends[j], ctx.settings, replace(ctx.options, name=None), ctx.cache)
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


__all__ = ["Point", "bisect_onset", "scan_onset", "instability", "read_points"]
