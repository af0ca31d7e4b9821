"""Curvature of the training loss into the store: `landscape hessian REF`.

    from landscape.api.hessian import hessian
    run = hessian("7be204@3", top_k=3, per_layer=True, store="runs", data_dir="../shared/data")
    run.metrics["top_eigenvalue"], run.metrics["trace"]

REF is any network reference `landscape lmc` accepts (RUN, RUN:STEP, IMP@L[/ROLE][/rR][:STEP]) or a
whole IMP run: then every level's ticket and controls are measured, each under its own mask, and
the report draws top eigenvalue and trace against weights remaining. The loss is the mean
cross-entropy on a seeded sample of `examples` training examples with BatchNorm in evaluation mode
and the network's own running statistics (or, with bn_recompute, statistics recomputed on training
batches first). A result is a run of kind "hessian" whose ID hashes the request.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace, fields
from typing import Any

import numpy as np
import torch

from ..batched.batchnorm import batchnorm_layers, recompute_module_, statistics_batches
from ..data import data_root
from ..environment import describe
from ..errors import ConfigError
from ..geometry import HessianOperator, hutchinson_trace, per_layer, slq_density, top_eigen
from ..geometry.spectrum import EIGEN_METHODS
from ..store import Run, Store
from ..store.networks import read_networks
from ..train.rng import derive_seed, generator
from .probes import DEFAULT_EXAMPLES, Network, check_examples, imp_members, load_network, sample_index
from .refs import ROLES, Endpoint, resolve_endpoint
from .requests import DataCache, request_id
from .train import TrainOptions, resolve_device

_STREAM = 0x4E55  # the example sample, the BatchNorm sample and the probes of a hessian request
BN_NOTE = {True: "BatchNorm statistics recomputed on training batches first, then evaluation mode",
           False: "BatchNorm in evaluation mode with the network's own running statistics"}


@dataclass(frozen=True)
class HessianSettings:
    """How to measure. All but `progress`-like options are part of the request's identity."""

    top_k: int = 1
    method: str = "lanczos"          # or "power" (PyHessian's power iteration with deflation)
    steps: int = 100                 # at most this many Lanczos steps, or power iterations per eigenvalue
    tol: float | None = None         # stop when the top-k move by less (relative); None: 1e-6 Lanczos, 1e-3 power
    probes: int = 100                # Hutchinson probes for the trace
    density: bool = False            # SLQ spectral density
    density_probes: int = 8
    density_steps: int = 60
    per_layer: bool = False
    examples: int | None = DEFAULT_EXAMPLES      # seeded sample of training examples; None: the whole split
    seed: int = 0
    bn_recompute: bool = False
    bn_batches: int = 10
    batch_size: int = 1000
    roles: tuple[str, ...] | None = None  # for a whole IMP run: which roles (None: all)
    save_vectors: bool = False       # store the top-k eigenvectors (k × weights floats per network)

    def identity(self) -> dict[str, Any]:
        return {f.name: (list(getattr(self, f.name)) if f.name == "roles" and self.roles else getattr(self, f.name))
                for f in fields(self)}

    def validate(self) -> "HessianSettings":
        def positive(value, label, low=1):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{label} {value!r} must be an integer of at least {low}")

        positive(self.top_k, "--top-k")
        positive(self.steps, "--steps")
        positive(self.probes, "--probes", 2)
        positive(self.density_probes, "--density-probes")
        positive(self.density_steps, "--density-steps", 2)
        positive(self.seed, "--seed", 0)
        positive(self.bn_batches, "--bn-batches")
        positive(self.batch_size, "--batch-size")
        if self.examples is not None:
            positive(self.examples, "--examples")
        if self.tol is not None and not (isinstance(self.tol, (int, float)) and 0 <= self.tol < 1):
            raise ConfigError(f"--tol {self.tol!r} must be a number in [0, 1)")
        if self.method not in EIGEN_METHODS:
            raise ConfigError(f"unknown method {self.method!r}", f"choose {' or '.join(EIGEN_METHODS)}")
        for role in self.roles or ():
            if role not in ROLES:
                raise ConfigError(f"unknown role {role!r}", f"choose from {', '.join(ROLES)}")
        return self


def hessian(ref: str, settings: HessianSettings | None = None, options: TrainOptions | None = None,
            **values) -> Run:
    """Measure the curvature at REF (a network, or every member of an IMP run); return the stored run.

    Keywords may be `HessianSettings` fields or `TrainOptions` fields (store=, data_dir=, device=,
    name=, progress=). Asking again for the same request returns the stored run."""
    setting_names = {f.name for f in fields(HessianSettings)}
    settings = replace(settings or HessianSettings(), **{k: v for k, v in values.items() if k in setting_names})
    if settings.roles is not None:
        settings = replace(settings, roles=tuple(settings.roles))
    settings = settings.validate()
    options = replace(options or TrainOptions(), **{k: v for k, v in values.items() if k not in setting_names})
    store = Store(options.store)
    imp, members = resolve_members(store, ref, settings)
    identity = {"networks": [{"run": e.run.id, "step": e.step} for e in members],
                "imp": imp.id if imp else None, **settings.identity()}
    run_id = request_id("hessian", identity)
    if store.exists(run_id) and store.open(run_id).complete:
        return store.open(run_id)
    device = resolve_device(options.device)
    cache = DataCache(options.data_dir, device)
    data = cache.get(members[0].config)
    check_examples(settings.examples, len(data.train_y))
    networks = [load_network(e, data) for e in members]
    for network in networks:  # checked for every network before anything is written
        dim = sum(int(network.mask[n].sum()) if network.mask and n in network.mask else network.state[n].numel()
                  for n in network.params)
        if settings.top_k > dim:
            raise ConfigError(f"--top-k {settings.top_k} is more than the {dim} weights {network.endpoint.ref} "
                              "keeps", f"ask for at most {dim}")
    index = sample_index(len(data.train_y), settings.examples, _STREAM, settings.seed).to(device)
    x, y = data.train_x[index], data.train_y[index]
    with store.writer(run_id) as writer:
        if store.exists(run_id) and store.open(run_id).complete:
            return store.open(run_id)
        name = options.name or (f"hessian-{imp.name}" if imp else f"hessian-{members[0].run.name}-{members[0].step}it")
        cfg = members[0].config
        writer.create(name=name, kind="hessian", config=identity,
                      environment={**describe(device), "data_dir": str(data_root(options.data_dir))})
        results = []
        for i, network in enumerate(networks):
            result = measure(network, x, y, data.train_x, settings, derive_seed(_STREAM, settings.seed, i + 1))
            results.append(result)
            writer.write_section(f"networks/{i:03d}", attrs=result.attrs(), arrays=result.arrays())
            if options.progress:
                options.progress(i + 1, len(members))
        writer.write_section("hessian", attrs={
            "ref": ref, "imp": imp.id if imp else "", "imp_name": imp.name if imp else "",
            "model": cfg.model.name, "width": cfg.model.width, "dataset": cfg.data.dataset,
            "examples": len(index), "train_total": len(data.train_y), "bn_note": BN_NOTE[settings.bn_recompute],
            "method": settings.method, "networks": len(members),
            "mask_note": "each network's Hessian is restricted to the weights its mask keeps (probe vectors are "
                         "zero on pruned weights): the curvature of the subnetwork that trains"})
        writer.finish(curves=_curves(results), metrics=_metrics(results))
    return store.open(run_id)


def resolve_members(store: Store, ref: str, settings: HessianSettings) -> tuple[Run | None, list[Endpoint]]:
    """(the IMP run, its members) for a whole IMP run, else (None, [the network])."""
    text = ref.strip() if isinstance(ref, str) else ref
    if isinstance(text, str) and text and "@" not in text and ":" not in text:
        run = store.open(text)
        if run.kind == "imp":
            return run, imp_members(store, run, settings.roles)
    return None, [resolve_endpoint(store, ref)]


@dataclass
class NetworkResult:
    network: Network
    loss: float
    dim: int
    eigenvalues: np.ndarray
    residuals: np.ndarray
    eigen_steps: int
    trace: float
    trace_stderr: float
    trace_samples: np.ndarray
    seconds: dict[str, float]
    products: int
    bn_recompute: bool
    vectors: np.ndarray | None = None
    density: Any = None
    layers: dict[str, dict] | None = None

    def attrs(self) -> dict[str, Any]:
        e = self.network.endpoint
        out = {"ref": e.ref, "label": e.label, "run": e.run.id, "step": e.step,
               "level": -1 if e.level is None else e.level, "role": e.role or "",
               "replicate": -1 if e.replicate is None else e.replicate, "weights_remaining": self.network.density,
               "dim": self.dim, "loss": self.loss, "eigenvalues": self.eigenvalues.tolist(),
               "residuals": self.residuals.tolist(), "eigen_steps": self.eigen_steps, "trace": self.trace,
               "trace_stderr": self.trace_stderr, "products": self.products, "bn_recompute": self.bn_recompute,
               "seconds": self.seconds}
        if self.layers:
            names = list(self.layers)
            out["layers"] = {"names": names, "dims": [self.layers[n]["dim"] for n in names],
                             "top_eigenvalue": [float(self.layers[n]["eigenvalues"][0]) for n in names],
                             "eigenvalues": [self.layers[n]["eigenvalues"].tolist() for n in names],
                             "trace": [self.layers[n]["trace"] for n in names],
                             "trace_stderr": [self.layers[n]["trace_stderr"] for n in names]}
        if self.density is not None:
            out["density_sigma"] = self.density.sigma
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"trace_samples": self.trace_samples}
        if self.vectors is not None:
            out["eigenvectors"] = self.vectors
        if self.density is not None:
            out.update({"density_nodes": self.density.nodes.numpy(), "density_weights": self.density.weights.numpy(),
                        "density_grid": self.density.grid.numpy(), "density": self.density.smoothed.numpy()})
        return out


def measure(network: Network, x: torch.Tensor, y: torch.Tensor, train_x: torch.Tensor, settings: HessianSettings,
            seed: int) -> NetworkResult:
    """Top-k, trace, and optionally density and per-layer spectra of one network."""
    model, state = network.template.to(x.device), dict(network.state)
    recompute = settings.bn_recompute and bool(batchnorm_layers(model))
    if recompute:
        sample = sample_index(len(train_x), settings.bn_batches * settings.batch_size, _STREAM + 1, settings.seed)
        model.load_state_dict(state)
        recompute_module_(model, statistics_batches(train_x[sample.to(x.device)], settings.batch_size,
                                                    settings.bn_batches))
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    op = HessianOperator(model, state, x, y, mask=network.mask, batch_size=settings.batch_size)
    if settings.top_k > op.dim:
        raise ConfigError(f"--top-k {settings.top_k} is more than the {op.dim} weights {network.endpoint.ref} keeps",
                          f"ask for at most {op.dim}")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    eig = top_eigen(op, settings.top_k, method=settings.method, steps=settings.steps, tol=settings.tol,
                    generator=generator(seed, 1), vectors=settings.save_vectors)
    seconds["eigen"] = time.perf_counter() - started
    started = time.perf_counter()
    trace = hutchinson_trace(op, settings.probes, generator=generator(seed, 2))
    seconds["trace"] = time.perf_counter() - started
    density = layers = None
    if settings.density:
        started = time.perf_counter()
        density = slq_density(op, settings.density_probes, settings.density_steps, generator=generator(seed, 3))
        seconds["density"] = time.perf_counter() - started
    if settings.per_layer:
        started = time.perf_counter()
        layers = per_layer(model, state, x, y, mask=network.mask, batch_size=settings.batch_size,
                           k=settings.top_k, method=settings.method, steps=settings.steps, probes=settings.probes,
                           seed_generator=lambda i: generator(seed, 4, i))
        seconds["per_layer"] = time.perf_counter() - started
    return NetworkResult(network, op.loss(), op.dim, eig.values.numpy(), eig.residuals.numpy(), eig.steps,
                         trace.estimate, trace.stderr, trace.samples.numpy(), seconds, op.products, recompute,
                         None if eig.vectors is None else eig.vectors.float().cpu().numpy(), density, layers)


def _curves(results: list[NetworkResult]) -> dict[str, list[float]]:
    return {"weights_remaining": [r.network.density for r in results],
            "top_eigenvalue": [float(r.eigenvalues[0]) for r in results],
            "trace": [r.trace for r in results], "trace_stderr": [r.trace_stderr for r in results],
            "loss": [r.loss for r in results]}


def _metrics(results: list[NetworkResult]) -> dict[str, float]:
    first = results[0]
    return {"top_eigenvalue": float(first.eigenvalues[0]), "trace": first.trace, "trace_stderr": first.trace_stderr,
            "loss": first.loss, "networks": len(results),
            "time_s": sum(sum(r.seconds.values()) for r in results)}


__all__ = ["HessianSettings", "hessian", "resolve_members", "measure", "NetworkResult", "read_networks", "BN_NOTE"]
