"""Checkpoints in: a state_dict trained elsewhere becomes a run of kind `imported`.

    landscape import their-net.pt --model mylab.nets:small_cnn --dataset mnist1d --name theirs

The run holds the weights as its one checkpoint, at step 0, and the training configuration of
`--model` on `--dataset` with the recipe's defaults (or the flags given), which is what runs
started from it train with. Its ID hashes that configuration and the file's sha256, so importing
the same file again finds the same run. It is a network like any other: an LMC endpoint
(`IMPORTED` or `IMPORTED:0`), a sibling source, a start point (`train --from IMPORTED:0`) and the
start and rewind point of IMP (`imp --from IMPORTED`).

Files in `torch.nn.utils.prune`'s naming (`NAME_orig`, `NAME_mask`) import as the masked weights,
and their masks become the run's mask.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from pathlib import Path

import torch

from ..data import device_splits
from ..environment import describe
from ..errors import ConfigError
from ..models import build_model
from ..store import Run, Store
from ..tensorfiles import format_of, read_tensors
from ..train.config import TrainConfig
from ..train.engine import Plan
from .code import code_record
from .requests import request_id
from .train import CURVE_KEYS, TrainOptions, load_weights, load_for, resolve_device, resolve_val_size

KIND = "imported"


def import_network(path: str | Path, config: TrainConfig, options: TrainOptions | None = None,
                   **option_values) -> Run:
    """Store the state_dict in `path` as a network of `config`'s model on its dataset; return the run."""
    options = replace(options or TrainOptions(), **option_values)
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no file {path}", "give the path of a saved state_dict (.pt, .safetensors, .npz)")
    fmt = format_of(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    weights, mask = _unprune(read_tensors(path))

    dataset = load_for(config.validate(), options.data_dir)
    config = resolve_val_size(config.validate(), dataset)
    model = build_model(config.model.name, dataset.input_shape, dataset.num_classes, seed=config.seeds.init,
                        init=config.model.init, width=config.model.width)
    weights = _with_batch_counters(weights, model)
    load_weights(model, weights, f"{path.name}")  # shapes and names checked before anything is written
    prunable = set(model.prunable)
    stray = sorted(set(mask) - prunable)
    if stray:
        raise ConfigError(f"{path.name} masks {stray[0]}, which {config.model.name} does not prune",
                          f"masks may cover: {', '.join(model.prunable)}")
    if mask:
        mask = {n: mask.get(n, torch.ones_like(p, dtype=torch.bool))
                for n, p in model.named_parameters() if n in prunable}

    store = Store(options.store)
    store.ensure_writable()
    identity = {"config": config.to_dict(), "file_sha256": digest}
    run_id = request_id(KIND, identity)
    if store.exists(run_id) and store.open(run_id).complete:
        return store.open(run_id)
    device = resolve_device(options.device)
    plan = Plan.make(config, len(dataset.train_y) - config.data.val_size)
    metrics = _evaluate(model.to(device), dataset, config, device)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    stored = {**config.to_dict(), **code_record(config),
              "imported": {"file": str(path.resolve()), "file_sha256": digest, "format": fmt}}
    with store.writer(run_id) as writer:
        writer.create(name=options.name or f"imported-{path.stem}", kind=KIND, config=stored,
                      environment=describe(device), plan={"total_steps": 0, "iters_per_epoch": plan.iters_per_epoch},
                      mask=mask or None)
        curves = {key: [math.nan] for key in CURVE_KEYS}
        curves["step"], curves["epoch"], curves["time"] = [0.0], [0.0], [0.0]
        for key, value in metrics.items():
            curves[key] = [value]
        writer.save(0, curves=curves, model=state, optimizer={}, checkpoint=True, resume=False)
        writer.finish(curves=curves, metrics={"steps": 0.0, "iters_per_epoch": float(plan.iters_per_epoch),
                                              **{f"final/{k}": v for k, v in metrics.items()}})
    return store.open(run_id)


def _unprune(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """`NAME_orig` * `NAME_mask` as NAME, and the masks; other tensors as they are."""
    weights, masks = {}, {}
    for key, value in tensors.items():
        if key.endswith("_orig") and f"{key[:-5]}_mask" in tensors:
            name = key[:-5]
            mask = tensors[f"{name}_mask"]
            if mask.shape != value.shape:
                raise ConfigError(f"{name}_mask has shape {tuple(mask.shape)} but {key} {tuple(value.shape)}",
                                  "a mask must have its weight's shape")
            masks[name] = mask != 0
            weights[name] = value * masks[name].to(value.dtype)
        elif not (key.endswith("_mask") and f"{key[:-5]}_orig" in tensors):
            weights[key] = value
    return weights, masks


def _with_batch_counters(weights: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """BatchNorm's `num_batches_tracked` (not a weight; some exporters drop it) filled in when missing."""
    own = model.state_dict()
    extra = {k: own[k] for k in own if k.endswith("num_batches_tracked") and k not in weights}
    return {**weights, **extra}


@torch.no_grad()
def _evaluate(model: torch.nn.Module, dataset, config: TrainConfig, device: torch.device) -> dict[str, float]:
    """Loss and accuracy of the imported network on the validation and test splits."""
    _, val, test = device_splits(dataset, config.data.val_size, config.data.split_seed, device)
    model.eval()
    out = {}
    for split, data in (("val", val), ("test", test)):
        if not len(data):
            continue
        loss, correct = 0.0, 0
        for start in range(0, len(data), 1000):
            logits = model(data.x[start:start + 1000])
            y = data.y[start:start + 1000]
            loss += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
        out[f"{split}/loss"], out[f"{split}/acc"] = loss / len(data), correct / len(data)
    return out
