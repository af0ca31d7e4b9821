"""The instability analysis before and after alignment: `landscape instability ... --align weights`.

    from landscape.api.instability_align import align_instability
    run = align_instability(analysis.id, method="weights", store="runs")
    run.curves["step"], run.curves["before/test/error_barrier/mean"], run.curves["after/test/error_barrier/mean"]

For every step k of a finished instability analysis and every pair of its siblings, the pair is
measured again after aligning one sibling to the other (`lmc_aligned_between`, with the analysis's
own LMC settings, so the "before" LMC runs are the analysis's). The result is a run of kind
instability_align: barrier vs k before and after alignment.
"""
from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from ..environment import describe
from ..errors import ConfigError
from ..store import Run, Store
from .align import AlignSettings, lmc_aligned_between
from .instability import Point, read_points
from .lmc import LmcSettings
from .refs import resolve_endpoint
from .requests import DataCache, request_id
from .train import TrainOptions, resolve_device

STAGES = ("before", "after")


def align_instability(analysis: str | Run, method: str = "weights", align_settings: AlignSettings | None = None,
                      options: TrainOptions | None = None, on_point: Callable[[dict], None] | None = None,
                      **option_values) -> Run:
    """Barrier vs k before and after aligning each sibling pair (see the module docstring)."""
    options = replace(options or TrainOptions(), **option_values)
    align_settings = replace(align_settings or AlignSettings(), method=method).validate()
    store = Store(options.store)
    source = analysis if isinstance(analysis, Run) else store.open(analysis)
    if source.kind != "instability" or not source.complete:
        raise ConfigError(f"{source.id} is not a finished instability analysis", "run `landscape instability` first")
    settings = LmcSettings(**source.config["lmc"]).validate()
    identity = {"instability": source.id, **align_settings.identity()}
    run_id = request_id("instability_align", identity)
    if store.exists(run_id) and store.open(run_id).complete:
        return store.open(run_id)
    cache = DataCache(options.data_dir, resolve_device(options.device))
    quiet = replace(options, name=None)
    points = []
    for point in read_points(source):
        record = _measure(store, point, settings, align_settings, quiet, cache)
        points.append(record)
        if on_point:
            on_point(record)
    with store.writer(run_id) as writer:
        writer.create(name=options.name or f"{source.name}-aligned-{method}", kind="instability_align",
                      config=identity, environment=describe(resolve_device(options.device)), parent=source.id)
        for record in points:
            writer.write_section(f"points/{record['step']:09d}", attrs=record)
        writer.finish(curves=_curves(points), metrics={"points": float(len(points))})
    return store.open(run_id)


def _measure(store: Store, point: Point, settings: LmcSettings, align_settings: AlignSettings,
             options: TrainOptions, cache: DataCache) -> dict[str, Any]:
    ends = [resolve_endpoint(store, f"{sibling}:end") for sibling in point.siblings]
    record: dict[str, Any] = {"step": point.step, "comparisons": [],
                              **{f"{s}/{k}": [] for s in STAGES for k in Point.KEYS}}
    for i, j in itertools.combinations(range(len(ends)), 2):
        result = lmc_aligned_between(store, ends[i], ends[j], False, settings, align_settings, options, cache)
        record["comparisons"].append(result.id)
        for stage in STAGES:
            for key in Point.KEYS:
                record[f"{stage}/{key}"].append(float(result.metrics[f"{stage}/{key}_barrier"]))
    return record


def _curves(points: list[dict[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"step": [float(p["step"]) for p in points]}
    for stage in STAGES:
        for key in Point.KEYS:
            values = [np.asarray(p[f"{stage}/{key}"], dtype=float) for p in points]
            out[f"{stage}/{key}_barrier/mean"] = [float(v.mean()) for v in values]
            out[f"{stage}/{key}_barrier/min"] = [float(v.min()) for v in values]
            out[f"{stage}/{key}_barrier/max"] = [float(v.max()) for v in values]
    return out


def read_aligned_points(run: Run) -> list[dict[str, Any]]:
    return sorted((run.section(f"points/{n}") for n in run.sections("points")), key=lambda p: int(p["step"]))


__all__ = ["align_instability", "read_aligned_points"]
