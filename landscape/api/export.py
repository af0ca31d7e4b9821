"""Tickets out: a stored network as a plain state_dict file, its masks, and a JSON sidecar.

    landscape export 7be204@3 --out ticket.pt

writes
    ticket.pt           the state_dict, pruned weights exactly zero: `model.load_state_dict(torch.load(...))`
                        into a plain torch.nn model of the same layer names and shapes
    ticket.masks.pt     the masks (1 = kept), one per pruned tensor (only when the network has a mask)
    ticket.pt.json      run ID, reference, configuration, the normalisation the inputs need, masks

With `prune_naming` the masks go into the weights file in `torch.nn.utils.prune`'s naming instead:
`NAME_orig` (the weights) and `NAME_mask`, which loads into a module after
`torch.nn.utils.prune.identity(module, "weight")` (or any pruning call) on each pruned layer.

Inputs are normalised per channel as in training: x = (pixels / 255 - mean) / std for 8-bit
images (`scale` 1/255 in the sidecar), x = (x - mean) / std for float data (`scale` 1).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..data import channel_stats, split_train_val
from ..errors import ConfigError
from ..fileio import replace_durably
from ..store import Store
from ..tensorfiles import FORMATS, format_of, write_tensors
from .refs import resolve_endpoint
from .train import load_for, resolve_val_size

SIDECAR_FORMAT = 1


def export_network(ref: str, out: str | Path, *, fmt: str | None = None, prune_naming: bool = False,
                   store: str | None = None, data_dir: str | None = None) -> dict[str, Any]:
    """Write the network `ref` names (see api/refs.py) to `out`; return the sidecar's content."""
    out = Path(out)
    fmt = fmt or format_of(out)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    if not out.parent.is_dir():
        raise ConfigError(f"folder {out.parent} does not exist", "create it, or write --out somewhere else")
    endpoint = resolve_endpoint(Store(store), ref)
    run = endpoint.run
    weights = dict(run.checkpoint(endpoint.step).model)
    mask = run.mask() or {}
    for name, m in mask.items():  # pruned weights exactly zero, whatever the file held
        weights[name] = weights[name] * m.to(weights[name].dtype)
    config = endpoint.config
    dataset = load_for(config, data_dir)
    config = resolve_val_size(config, dataset)
    train_idx, _ = split_train_val(len(dataset.train_y), config.data.val_size, config.data.split_seed)
    mean, std = channel_stats(dataset.train_x[train_idx])

    files = {"weights": out.name}
    if prune_naming:
        for name, m in mask.items():
            weights[f"{name}_orig"] = weights.pop(name)
            weights[f"{name}_mask"] = m.to(torch.float32)
    sidecar = {
        "format": SIDECAR_FORMAT, "run_id": run.id, "run_name": run.name, "ref": endpoint.ref,
        "step": endpoint.step, "kind": run.kind, "config": run.config,
        "normalisation": {"scale": 1 / 255 if dataset.train_x.dtype == torch.uint8 else 1.0,
                          "mean": list(mean), "std": list(std)},
        "input_shape": list(dataset.input_shape), "classes": list(dataset.classes),
        "file_format": fmt, "prune_naming": prune_naming,
        "masks": {name: {"kept": int(m.sum()), "total": m.numel()} for name, m in mask.items()},
    }
    metadata = {"landscape_run_id": run.id, "landscape_ref": endpoint.ref}
    write_tensors(out, weights, fmt, metadata)
    if mask and not prune_naming:
        masks_path = out.with_name(f"{out.stem}.masks{out.suffix}")
        write_tensors(masks_path, {k: v.to(torch.bool) for k, v in mask.items()}, fmt, metadata)
        files["masks"] = masks_path.name
    sidecar["files"] = files
    side = out.with_name(out.name + ".json")
    tmp = side.with_name(f".{side.name}.tmp")
    tmp.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    replace_durably(tmp, side)
    return sidecar
