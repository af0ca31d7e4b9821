"""Permutation alignment into the store: `landscape align` and `landscape lmc --align`.

    from landscape.api.align import align, lmc_aligned
    aligned = align("A", "B", method="weights", store="runs")     # B permuted towards A: a run of kind aligned
    lmc("A", aligned.id, store="runs")                              # an aligned run is a network reference
    result = lmc_aligned("A", "B", method="weights", repair=False, store="runs", data_dir="../shared/data")
    result.metrics["after/test/loss_barrier"], result.metrics["before/test/loss_barrier"]

An aligned run holds B's weights and mask permuted (checkpoint at B's step), the permutations
(arrays `alignment/perms/<group>`), and what the search found. Its ID hashes the request (A, B,
method, seed, examples), so asking again reuses it. `lmc_aligned` measures A~B and A~π(B) with
`lmc_between` (and A~π(B) REPAIRed with `repair`) and records the comparison as a run of kind
lmc_align whose report draws both curves on one figure.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from typing import Any

import torch

from ..align import activation_matching, apply_permutation, permute_mask, spec_of, weight_matching
from ..align.repair import repair_probes
from ..batched.batchnorm import batchnorm_layers
from ..batched.states import working_copy
from ..data import data_root
from ..environment import describe
from ..errors import ConfigError
from ..lmc import l2_distance, mask_overlap
from ..models import build_model
from ..store import Run, Store
from ..train.rng import generator
from .lmc import LmcSettings, check_pair, lmc_between, split_values
from .refs import Endpoint, resolve_endpoint
from .requests import DataCache, EvalData, request_id
from .train import TrainOptions, resolve_device

METHODS = ("weights", "activations")
_ALIGN_STREAM = 0xA119   # the coordinate-descent order and the activation sample of an alignment


@dataclass(frozen=True)
class AlignSettings:
    """How to align. `method`, `seed` and the method's own settings are the aligned run's identity."""

    method: str = "weights"
    seed: int = 0              # order of the coordinate descent; the training examples activations use
    examples: int = 5000       # activations: training examples correlated (a seeded sample)
    max_passes: int = 100      # weights: stop after this many passes even if still improving
    batch_size: int = 1000

    def identity(self) -> dict[str, Any]:
        own = {"max_passes": self.max_passes} if self.method == "weights" else {"examples": self.examples}
        return {"method": self.method, "seed": self.seed, **own}

    def validate(self) -> "AlignSettings":
        if self.method not in METHODS:
            raise ConfigError(f"--method {self.method!r} is not an alignment method", "choose weights or activations")
        for label, value, low in (("--examples", self.examples, 1), ("--seed", self.seed, 0),
                                  ("--max-passes", self.max_passes, 1), ("--batch-size", self.batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{label} {value!r} must be an integer of at least {low}")
        return self


def _split(values: dict[str, Any]) -> tuple[dict, dict, dict]:
    names = {f.name for f in fields(AlignSettings)}
    own = {k: v for k, v in values.items() if k in names and k != "batch_size"}
    settings, options = split_values({k: v for k, v in values.items() if k not in own})
    if "batch_size" in values:
        own["batch_size"] = values["batch_size"]
    return own, settings, options


def align(a: str, b: str, settings: AlignSettings | None = None, options: TrainOptions | None = None,
          **values) -> Run:
    """Permute B's units to match A (weights or activations); store π(B) as a run of kind aligned.

    Keywords: `AlignSettings` fields (method=, seed=, examples=) or `TrainOptions` fields
    (store=, data_dir=, device=, name=).
    """
    own, _, option_values = _split(values)
    settings = replace(settings or AlignSettings(), **own).validate()
    options = replace(options or TrainOptions(), **option_values)
    store = Store(options.store)
    ea, eb = resolve_endpoint(store, a), resolve_endpoint(store, b)
    return align_between(store, ea, eb, settings, options, None)


def _template(a: Endpoint, data: EvalData) -> torch.nn.Module:
    cfg = a.config
    return build_model(cfg.model.name, data.input_shape, data.num_classes, seed=0, init=cfg.model.init,
                       width=cfg.model.width)


def _masked(state: dict[str, torch.Tensor], mask) -> dict[str, torch.Tensor]:
    if not mask:
        return state
    return {k: v * mask[k].to(v.dtype) if k in mask else v for k, v in state.items()}


def align_between(store: Store, a: Endpoint, b: Endpoint, settings: AlignSettings, options: TrainOptions,
                  cache: DataCache | None) -> Run:
    """The aligned run π(B) for resolved endpoints: reused when stored, else searched and written."""
    check_pair(a, b)
    device = resolve_device(options.device)
    cache = cache or DataCache(options.data_dir, device)
    data = cache.get(a.config)
    template = _template(a, data)
    spec = spec_of(template)  # a model without a spec fails here, before anything is written
    if settings.method == "activations" and settings.examples > len(data.train_y):
        raise ConfigError(f"--examples {settings.examples} is more than the {len(data.train_y)} training examples",
                          "use fewer")
    identity = {"a": {"run": a.run.id, "step": a.step}, "b": {"run": b.run.id, "step": b.step},
                **settings.identity()}
    run_id = request_id("aligned", identity)
    if store.exists(run_id) and store.open(run_id).complete:
        return store.open(run_id)
    with store.writer(run_id) as writer:
        if store.exists(run_id) and store.open(run_id).complete:
            return store.open(run_id)
        state_a, state_b = a.run.checkpoint(a.step).model, b.run.checkpoint(b.step).model
        mask_a, mask_b = a.run.mask(), b.run.mask()
        live_a, live_b = _masked(state_a, mask_a), _masked(state_b, mask_b)
        params = {n for n, _ in template.named_parameters()}
        started = time.perf_counter()
        found: dict[str, Any]
        if settings.method == "weights":
            match = weight_matching(spec, live_a, live_b, params, max_passes=settings.max_passes,
                                    generator=generator(_ALIGN_STREAM, settings.seed, 0))
            perms = match.perms
            found = {"passes": match.passes, "passes_run": match.passes_run, "converged": match.converged,
                     "objective_before": match.objective[0], "objective_after": match.objective[-1]}
            curves = {"pass": list(range(len(match.objective))), "objective": match.objective}
        else:
            index = torch.randperm(len(data.train_y), generator=generator(_ALIGN_STREAM, settings.seed, 1))
            x = data.train_x[index[:settings.examples].to(data.train_x.device)]
            model_a, model_b = working_copy(template, device), working_copy(template, device)
            model_a.load_state_dict(live_a)
            model_b.load_state_dict(live_b)
            match = activation_matching(spec, model_a, model_b, x, settings.batch_size)
            perms = match.perms
            groups = [g.name for g in spec.groups]
            found = {"examples": match.examples,
                     "correlation_before": sum(match.correlation_before.values()) / len(groups),
                     "correlation_after": sum(match.correlation_after.values()) / len(groups)}
            curves = {"group": list(range(len(groups))),
                      "correlation_before": [match.correlation_before[g] for g in groups],
                      "correlation_after": [match.correlation_after[g] for g in groups]}
        seconds = time.perf_counter() - started
        aligned, aligned_mask = apply_permutation(state_b, spec, perms), permute_mask(mask_b, spec, perms)
        names = list(template.prunable)
        metrics = {"seconds": seconds, "l2_before": l2_distance(live_a, live_b, names),
                   "l2_after": l2_distance(live_a, _masked(aligned, aligned_mask), names),
                   **{k: float(v) for k, v in found.items()}}
        if mask_a is not None or mask_b is not None:
            metrics["jaccard_before"] = mask_overlap(mask_a, mask_b)["overall"]
            metrics["jaccard_after"] = mask_overlap(mask_a, aligned_mask)["overall"]
        plan = {"total_steps": b.step, "iters_per_epoch": int(b.run.plan.get("iters_per_epoch", 1))}
        name = options.name or f"{b.run.name}-aligned-{settings.method}-to-{a.run.name}"
        writer.create(name=name, kind="aligned", config={**identity, "network": b.run.config},
                      environment={**describe(device), "data_dir": str(data_root(options.data_dir))},
                      parent=b.run.id, plan=plan, mask=aligned_mask)
        writer.save(b.step, curves={}, model=aligned, optimizer={}, checkpoint=True, resume=False)
        writer.write_section("alignment", attrs={
            "method": settings.method, "a_label": a.label, "b_label": b.label, "groups": [g.name for g in spec.groups],
            "sizes": [g.size for g in spec.groups],
            "note": ("B's units permuted (weights, biases, BatchNorm parameters and running statistics, and the "
                     "mask) so that it computes the same function as B, closer to A")},
            arrays={f"perms/{g}": p.numpy() for g, p in perms.items()})
        writer.finish(curves=curves, metrics=metrics)
    return store.open(run_id)


# ---------------------------------------------------------------------------------------------
# LMC before and after alignment
# ---------------------------------------------------------------------------------------------

def correction_for(template: torch.nn.Module, settings: LmcSettings, repair: bool) -> str:
    """What renormalises the path's units: "repair", "bn-recompute" or "none" (ConfigError when
    --repair cannot apply)."""
    if batchnorm_layers(template):
        if repair and not settings.bn_recompute:
            raise ConfigError("--repair with --no-bn-recompute: for a BatchNorm network REPAIR's correction is the "
                              "recomputation of its statistics at each α", "drop --no-bn-recompute")
        return "bn-recompute" if settings.bn_recompute else "none"
    if repair:
        repair_probes(template)  # a one-line error where the correction cannot be fused
        return "repair"
    return "none"


def lmc_aligned(a: str, b: str, method: str = "weights", repair: bool = False,
                settings: LmcSettings | None = None, align_settings: AlignSettings | None = None,
                options: TrainOptions | None = None, **values) -> Run:
    """Barrier and distances between A and B before and after aligning B to A, in one call.

    Returns a run of kind lmc_align that links the LMC runs (before; after; after with REPAIR
    where asked and the network has no BatchNorm: with BatchNorm, the recomputation of its
    statistics at each α is the correction, as in every LMC run) and the aligned run.
    """
    own, setting_values, option_values = _split(values)
    align_settings = replace(align_settings or AlignSettings(), **{**own, "method": method}).validate()
    settings = replace(settings or LmcSettings(), **setting_values).validate()
    options = replace(options or TrainOptions(), **option_values)
    store = Store(options.store)
    ea, eb = resolve_endpoint(store, a), resolve_endpoint(store, b)
    cache = DataCache(options.data_dir, resolve_device(options.device))
    return lmc_aligned_between(store, ea, eb, repair, settings, align_settings, options, cache)


def lmc_aligned_between(store: Store, ea: Endpoint, eb: Endpoint, repair: bool, settings: LmcSettings,
                        align_settings: AlignSettings, options: TrainOptions, cache: DataCache) -> Run:
    check_pair(ea, eb)
    data = cache.get(ea.config)
    template = _template(ea, data)
    spec_of(template)
    correction = correction_for(template, settings, repair)
    if settings.train_subset is not None and settings.train_subset > len(data.train_y):
        raise ConfigError(f"--train-subset {settings.train_subset} is more than the {len(data.train_y)} "
                          "training examples", "use a smaller subset, or leave it out to use them all")
    quiet = replace(options, name=None)
    before = lmc_between(store, ea, eb, settings, quiet, cache)
    aligned = align_between(store, ea, eb, align_settings, quiet, cache)
    eal = resolve_endpoint(store, aligned.id)
    after = lmc_between(store, ea, eal, settings, quiet, cache)
    repaired = lmc_between(store, ea, eal, replace(settings, repair=True), quiet, cache) \
        if correction == "repair" else None
    identity = {"before": before.id, "after": after.id, "aligned": aligned.id,
                "repaired": repaired.id if repaired else None}
    run_id = request_id("lmc_align", identity)
    if store.exists(run_id) and store.open(run_id).complete:
        return store.open(run_id)
    metrics: dict[str, float | None] = {}
    for label, run in (("before", before), ("after", after), ("repaired", repaired)):
        if run is None:
            continue
        for key, value in run.metrics.items():
            if "barrier" in key and not key.endswith(("_alpha", "_straight")) or key.startswith("distance/"):
                metrics[f"{label}/{key}"] = value
    for key in ("jaccard_before", "jaccard_after", "seconds", "passes"):
        if key in aligned.metrics:
            metrics[f"align/{key}"] = aligned.metrics[key]
    with store.writer(run_id) as writer:
        writer.create(name=options.name or f"lmc-align-{align_settings.method}-{ea.run.name}--{eb.run.name}",
                      kind="lmc_align", config=identity, environment=describe(resolve_device(options.device)))
        writer.write_section("comparison", attrs={
            "a_label": ea.label, "b_label": eb.label, "method": align_settings.method, "correction": correction,
            "correction_note": {"repair": "REPAIR (Jordan et al. 2022) at each α, on the BatchNorm sample",
                                "bn-recompute": "BatchNorm statistics recomputed at each α (REPAIR's correction "
                                                "for BatchNorm networks), before and after alignment alike",
                                "none": "none: the interpolated network is evaluated as it is"}[correction]})
        writer.finish(curves={}, metrics=metrics)
    return store.open(run_id)


def comparison_runs(store: Store, run: Run) -> dict[str, Run]:
    """The runs an lmc_align run links: before, after, aligned and (where measured) repaired."""
    return {k: store.open(v) for k, v in run.config.items() if v}


__all__ = ["METHODS", "AlignSettings", "align", "align_between", "correction_for", "lmc_aligned",
           "lmc_aligned_between", "comparison_runs"]
