"""Pruning at initialisation into the store: `landscape prune`.

A prune run (kind "prune") is an index over ordinary training runs, like an IMP run: for every
requested density and replicate, the method prunes the replicate's θ0 once (SNIP, GraSP, SynFlow,
magnitude or random; `landscape.prune.at_init`), and the pruned network trains with the normal
training options beside the Frankle et al. (2021) ablations:
- shuffle: the method's mask shuffled within each layer (same per-layer counts), the same θ0;
- reinit: the method's mask, fresh weights from the init distribution.
If a control matches the method, the method found no more than per-layer densities.

Densities are not part of the run's identity: asking for more densities adds them; each density
is recorded (and resumable) on its own. The pruning examples (`examples_per_class` per class of the
training split, 10 as in Synaptic-Flow) are drawn with a seed derived from the replicate's init
seed, and recorded.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..data import device_splits
from ..environment import describe
from ..errors import ConfigError
from ..models import build_model
from ..prune import SCOPES, layer_report, mask_hash, prune_at_init, random_mask_like
from ..prune.at_init import DATA_METHODS, balanced_sample, check_iterations, check_method
from ..prune.counts import exact_rate
from ..store import Run, Store
from ..train.config import Seeds, TrainConfig
from ..train.rng import derive_seed, generator
from .train import TrainOptions, load_for, plan_for, resolve_device, resolve_val_size, train

PRUNE_CONTROLS = ("shuffle", "reinit")
ROLES = ("ticket", *PRUNE_CONTROLS)
_STREAM = 0x5A1  # pruning-at-init draws: examples, random scores, controls


@dataclass(frozen=True)
class PruneInitConfig:
    train: TrainConfig
    method: str = "synflow"
    scope: str = "global"
    examples_per_class: int = 10
    iterations: int = 100
    controls: tuple[str, ...] = ()
    replicates: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"train": self.train.to_dict(), "method": self.method, "scope": self.scope,
                "examples_per_class": self.examples_per_class, "iterations": self.iterations,
                "controls": list(self.controls), "replicates": self.replicates}

    def run_id(self) -> str:
        text = json.dumps({"kind": "prune", **self.to_dict()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def default_name(self) -> str:
        return f"prune-{self.method}-{self.train.model.name}-{self.train.data.dataset.split(':')[0]}"

    def validate(self) -> "PruneInitConfig":
        check_method(self.method)
        check_iterations(self.iterations)
        if self.scope not in SCOPES:
            raise ConfigError(f"unknown pruning scope {self.scope!r}", f"choose one of {', '.join(SCOPES)}")
        if isinstance(self.examples_per_class, bool) or not isinstance(self.examples_per_class, int) \
                or self.examples_per_class < 1:
            raise ConfigError(f"--examples-per-class {self.examples_per_class!r} must be at least 1", "e.g. 10")
        unknown = [c for c in self.controls if c not in PRUNE_CONTROLS]
        if unknown:
            raise ConfigError(f"unknown control {unknown[0]!r}", f"choose from {', '.join(PRUNE_CONTROLS)}")
        if self.replicates < 1:
            raise ConfigError(f"--replicates {self.replicates} must be at least 1")
        return replace(self, train=self.train.validate(), controls=tuple(dict.fromkeys(self.controls)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PruneInitConfig":
        return cls(train=TrainConfig.from_dict(data["train"]), method=data["method"], scope=data["scope"],
                   examples_per_class=data["examples_per_class"], iterations=data["iterations"],
                   controls=tuple(data["controls"]), replicates=data["replicates"])

    def replicate(self, r: int) -> TrainConfig:
        s = self.train.seeds
        return replace(self.train, seeds=Seeds(s.init + r, s.data_order + r, s.augment + r))


def density_key(density: float) -> str:
    return f"{float(density):.6g}"


def check_densities(densities) -> list[float]:
    values = [float(d) for d in densities] if densities is not None else []
    if not values:
        raise ConfigError("no density given", "e.g. --density 0.2,0.05,0.01")
    for d in values:
        exact_rate(d, "density")
    return list(dict.fromkeys(values))


def prune(config: PruneInitConfig, densities, options: TrainOptions | None = None, **option_values) -> Run:
    """Prune at init to each density, train each pruned network (and its controls) into the store;
    return the prune run."""
    options = replace(options or TrainOptions(), **option_values)
    densities = check_densities(densities)
    config = config.validate()
    store = Store(options.store)
    store.ensure_writable()
    device = resolve_device(options.device)
    dataset = load_for(config.train, options.data_dir)
    base = resolve_val_size(config.train, dataset)
    plan_for(base, dataset)  # every schedule problem is refused before anything is written
    config = replace(config, train=base)

    run_id = config.run_id()
    with store.writer(run_id) as writer:
        if not store.exists(run_id):
            writer.create(name=options.name or config.default_name(), kind="prune", config=config.to_dict(),
                          environment=describe(device), plan={"replicates": config.replicates})
        run = store.open(run_id)
        done = set(run.sections("densities"))
        writer.write_section("request", attrs={"densities": densities}, run_attrs={"status": "running"})
        examples = _pruning_examples(config, dataset, device)
        for density in densities:
            if density_key(density) in done:
                continue
            _one_density(config, density, dataset, examples, device, writer, options, run.name)
        writer.write_section("request", attrs={"densities": densities}, run_attrs={"status": "complete"})
    return store.open(run_id)


def _pruning_examples(config: PruneInitConfig, dataset, device) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """Per replicate: the pruning examples from the training split (None for data-free methods)."""
    if config.method not in DATA_METHODS:
        return [None] * config.replicates
    t = config.train
    train_split, _, _ = device_splits(dataset, t.data.val_size, t.data.split_seed, device)
    out = []
    for r in range(config.replicates):
        index = balanced_sample(train_split.y, config.examples_per_class,
                                generator(_STREAM, config.replicate(r).seeds.init, 1)).to(device)
        out.append((train_split.x[index], train_split.y[index]))
    return out


def _one_density(config: PruneInitConfig, density: float, dataset, examples, device, writer, options, name) -> None:
    members, masks, roles, names, seconds, reports = [], [], [], [], [], []
    for r in range(config.replicates):
        rep = config.replicate(r)
        model = build_model(rep.model.name, dataset.input_shape, dataset.num_classes, seed=rep.seeds.init,
                            init=rep.model.init, width=rep.model.width).to(device)
        x, y = examples[r] if examples[r] is not None else (None, None)
        started = time.perf_counter()
        mask = prune_at_init(model, config.method, density, scope=config.scope, x=x, y=y,
                             batch_size=rep.batch_size, iterations=config.iterations,
                             seed=derive_seed(_STREAM, rep.seeds.init, 2) % (2**31))
        seconds.append(time.perf_counter() - started)
        mask = {n: m.cpu() for n, m in mask.items()}
        reports.append(layer_report(mask))
        ticket = replace(rep, mask=mask_hash(mask))
        branch = [("ticket", ticket, mask)]
        for role in config.controls:
            seed = derive_seed(_STREAM, rep.seeds.init, 3 + PRUNE_CONTROLS.index(role), int(density * 1e9)) % (2**31)
            if role == "shuffle":
                shuffled = random_mask_like(mask, seed=seed)
                branch.append((role, replace(ticket, mask=mask_hash(shuffled)), shuffled))
            else:
                branch.append((role, replace(ticket, seeds=replace(ticket.seeds, init=seed), reinit="reinit"), mask))
        for role, cfg, m in branch:
            members.append(cfg)
            masks.append(m)
            roles.append((role, r))
            names.append(f"{name}-d{density_key(density)}-{role}-r{r}")
    runs = train(members, replace(options, name=None), masks=masks, names=names)
    record = {role: [run.id for (rl, _), run in zip(roles, runs) if rl == role]
              for role in ROLES if any(rl == role for rl, _ in roles)}
    counts = reports[0]
    kept, total = sum(k for k, _ in counts.values()), sum(t for _, t in counts.values())
    writer.write_section(
        f"densities/{density_key(density)}",
        attrs={**record, "requested": density, "density": kept / total, "layers": list(counts),
               "kept": [counts[n][0] for n in counts], "total": [counts[n][1] for n in counts],
               "score_seconds": seconds,
               "pruning_examples": 0 if examples[0] is None else int(len(examples[0][1]))})
