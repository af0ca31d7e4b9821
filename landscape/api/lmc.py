"""Linear mode connectivity into the store: `landscape lmc` between two networks.

    from landscape.api.lmc import lmc
    result = lmc("A", "B", store="runs", data_dir="../shared/data")
    result.metrics["test/error_barrier"]          # Frankle et al.'s instability; < 0.02 is stable

An LMC result is a run of kind "lmc" whose ID hashes the request (endpoints as run ID and
iteration, points, train subset, seed, BatchNorm option, per-example): asking again reuses it.
References are those of `landscape.api.refs`; siblings live in `landscape.api.siblings`, the
instability analysis (barrier vs spawning step) in `landscape.api.instability`.
"""
from __future__ import annotations

import math
import time
from functools import partial
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from ..align.repair import repaired_curve
from ..batched.batchnorm import batchnorm_layers
from ..data import data_root
from ..environment import describe
from ..errors import ConfigError
from ..lmc import (METHODS, STABILITY_THRESHOLD, angular_distance, barrier, connected_fraction,
                   disagreement, interpolation_curve, l2_distance, mask_overlap, normalized_l2_distance,
                   per_example_barrier)
from ..lmc.distances import complete_masks
from ..lmc.masks import apply_masks
from ..models import build_model
from ..store import Run, Store
from ..train.rng import generator
from .context import readable_store
from .refs import Endpoint, common_parent, resolve_endpoint
from .requests import DataCache, EvalData, request_id
from .names import claim, generated
from .train import TrainOptions, resolve_device, tell_names

_SAMPLE_STREAM = 0x1AC0   # the train subset and the BatchNorm sample of an LMC request



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
    repair: bool = False             # REPAIR each θ(α) on the BatchNorm sample (networks without BatchNorm)
    # Not part of the identity: they change how the result is computed or summarised, not the result.
    # An example is linearly connected when its loss barrier is <= this. Not 0: in float32 about half
    # of the examples on a convex path show barriers of ~1e-8 from rounding alone.
    example_threshold: float = 1e-3
    alpha_chunk: int | None = None   # most α per vmapped pass (None: as many as fit)
    method: str = "batched"          # or "sequential": one α at a time

    def identity(self) -> dict[str, Any]:
        return {"points": self.points, "train_subset": self.train_subset, "seed": self.seed,
                "bn_recompute": self.bn_recompute, "bn_batches": self.bn_batches,
                "batch_size": self.batch_size, "per_example": self.per_example,
                **({"repair": True} if self.repair else {})}  # absent when off: earlier IDs stay

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


def split_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword arguments as (settings fields, options fields)."""
    setting_names = {f.name for f in fields(LmcSettings)}
    option_names = {f.name for f in fields(TrainOptions)}
    unknown = sorted(set(values) - setting_names - option_names)
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    return ({k: v for k, v in values.items() if k in setting_names},
            {k: v for k, v in values.items() if k in option_names})


def lmc(a: str, b: str, settings: LmcSettings | None = None, options: TrainOptions | None = None,
        **values) -> Run:
    """Interpolate between networks A and B, store the curves, barriers and distances; return the run.

    Keywords may be `LmcSettings` fields (points=, train_subset=, per_example=...) or
    `TrainOptions` fields (store=, data_dir=, device=, name=). Asking again for the same request
    returns the stored run without computing anything.
    """
    setting_values, option_values = split_values(values)
    settings = replace(settings or LmcSettings(), **setting_values).validate()
    options = replace(options or TrainOptions(), **option_values)
    store = readable_store(options.store)
    ea, eb = resolve_endpoint(store, a), resolve_endpoint(store, b)
    check_pair(ea, eb)
    check_stored_splits(ea, eb)
    return lmc_between(store, ea, eb, settings, options, None)


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
    split_a, split_b = (ca.data.val_size, ca.data.split_seed), (cb.data.val_size, cb.data.split_seed)
    if split_a != split_b:
        # The training side is evaluated on A's training split: B's validation examples would count
        # as training data, and the inputs would be normalised with statistics B never saw.
        raise ConfigError(f"A and B hold out different validation splits (--val-size {split_a[0]}, --split-seed "
                          f"{split_a[1]} against {split_b[0]}, {split_b[1]})",
                          "compare networks trained with the same validation split")


def check_stored_splits(a: Endpoint, b: Endpoint) -> None:
    """Runs that store their split (landscape.api.provenance) must have stored the same one."""
    ha, hb = (e.run.section("data").get("split_hash") for e in (a, b))
    if ha and hb and ha != hb:
        raise ConfigError(f"A and B were trained on different train/validation splits (stored split hashes {ha} "
                          f"and {hb})", "compare networks trained with the same validation split")


def lmc_between(store: Store, a: Endpoint, b: Endpoint, settings: LmcSettings, options: TrainOptions,
                cache: DataCache | None) -> Run:
    """The LMC run between two resolved endpoints: reused when stored, else measured and written."""
    identity = {"a": {"run": a.run.id, "step": a.step}, "b": {"run": b.run.id, "step": b.step},
                **settings.identity()}
    run_id = request_id("lmc", identity)
    claim(store, run_id, options.name, options.rename)
    if store.exists(run_id) and store.open(run_id).complete:
        tell_names(store, [store.open(run_id)], [options.name], options)
        return store.open(run_id)
    device = resolve_device(options.device)
    cache = cache or DataCache(options.data_dir, device)
    data = cache.get(a.config)
    if settings.train_subset is not None and settings.train_subset > len(data.train_y):
        raise ConfigError(f"--train-subset {settings.train_subset} is more than the {len(data.train_y)} "
                          "training examples", "use a smaller subset, or leave it out to use them all")
    with store.writer(run_id) as writer:
        if store.exists(run_id) and store.open(run_id).complete:  # finished while we waited
            return store.open(run_id)
        result = measure_pair(store, a, b, settings, data)
        name = options.name or generated(store, run_id, f"lmc-{a.run.name}-{a.step}it--{b.run.name}-{b.step}it")
        writer.create(name=name, kind="lmc", config=identity,
                      environment={**describe(device), "data_dir": str(data_root(options.data_dir))})
        writer.write_section("lmc", attrs=result.attrs(a, b, settings))
        if data.provenance is not None:
            writer.write_section("data", attrs=data.provenance[0], arrays=data.provenance[1])
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
                out[f"{split}/{key}_barrier_at_endpoint"] = float(b[f"{key}_at_endpoint"])
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
            "example_threshold": settings.example_threshold, "repair": settings.repair,
        }


def measure_pair(store: Store, a: Endpoint, b: Endpoint, settings: LmcSettings, data: EvalData) -> PairResult:
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
    sample = torch.randperm(n, generator=generator(_SAMPLE_STREAM, settings.seed, 1))
    if settings.bn_recompute and batchnorm_layers(template):
        bn_x = data.train_x[sample[:settings.bn_batches * settings.batch_size].to(device)]
    common = dict(alphas=settings.points, masks=masks, bn_recompute="auto" if settings.bn_recompute else "off",
                  bn_x=bn_x, bn_batches=settings.bn_batches, batch_size=settings.batch_size,
                  alpha_chunk=settings.alpha_chunk, method=settings.method)
    curve = interpolation_curve
    if settings.repair:  # REPAIR's statistics come from the sample BatchNorm would use
        curve = partial(repaired_curve, repair_x=data.train_x[sample[:settings.bn_batches * settings.batch_size]
                                                              .to(device)])
        common = {k: common[k] for k in ("alphas", "masks", "batch_size", "alpha_chunk")}
    started = time.perf_counter()
    test_curve = curve(template, state_a, state_b, data.test_x, data.test_y, **common)
    train_curve = curve(template, state_a, state_b, train_x, train_y, per_example=settings.per_example, **common)
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
    masks keep. The normalised L2 is ‖(θA − PA) − (θB − PB)‖ / mean(‖θA − PA‖, ‖θB − PB‖), where
    P is the latest point both runs' histories share and PA = P ⊙ mA, PB = P ⊙ mB are the points
    each actually started from: how far apart their displacements are, in units of how far they
    travelled. With one mask (or none) PA = PB and it is ‖θA − θB‖ / travel; with different masks
    the gap between the starting points, ‖PA − PB‖, is left out (stored as start_gap), so the value
    stays in [0, 2] and comparable. None when the runs share no point.
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
        start_a, start_b = _masked(p, full_a), _masked(p, full_b)
        value = normalized_l2_distance(ma, mb, start_a, names, parent_b=start_b)
        out["l2_normalized"] = None if math.isnan(value) else value
        out["start_gap"] = l2_distance(start_a, start_b, names)
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


__all__ = ["LmcSettings", "split_values", "lmc", "lmc_between", "check_pair", "PairResult", "measure_pair",
           "pair_distances"]
