"""What a stored run's numbers were computed on, written into the run so that a reader of the HDF5
file can reproduce an evaluation without this tool: the train/validation split and the input
normalisation.

Every training, scores, diet and LMC run gets a group `data` with:
- attrs `dataset`, `adapt` (the input adaptation, "" for none), `n_train_set` (images in the
  dataset's training set), `val_size`, `split_seed`;
- `split_hash`: sha256 (first 16 hex digits) of the sorted training positions then the sorted
  validation positions, each as little-endian int64 bytes (`split_hash_of`);
- `mean`, `std`: the per-channel statistics the inputs were normalised with,
  x = (pixel / 255 − mean) / std per channel (a std of 0 is taken as 1), and `normalised_on`,
  which images they were computed on (the training split: the validation images never inform
  the inputs);
- array `val_index`: the validation positions in the dataset's training set (the training split
  is every other position, in order).
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from ..data.dataset import channel_stats
from ..data.splits import split_train_val
from ..train.config import DataConfig

NORMALISATION = "x = (pixel / 255 - mean) / std, per channel (std 0 taken as 1)"


def split_hash_of(train_idx: torch.Tensor, val_idx: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for index in (train_idx, val_idx):
        digest.update(np.asarray(index, dtype="<i8").tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]


def data_provenance(dataset, data: DataConfig, *, mean: tuple[float, ...] | None = None,
                    std: tuple[float, ...] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(attrs, arrays) of the `data` group for a run on `dataset` (already adapted) split as `data`
    says (its validation size resolved). `mean`/`std`, when the caller has them, save recomputing."""
    n = len(dataset.train_y)
    train_idx, val_idx = split_train_val(n, data.val_size, data.split_seed)
    if mean is None or std is None:
        mean, std = channel_stats(dataset.train_x[train_idx])
    attrs = {
        "dataset": data.dataset, "adapt": data.adapt or "", "n_train_set": n, "val_size": int(data.val_size),
        "split_seed": int(data.split_seed), "split_hash": split_hash_of(train_idx, val_idx),
        "split_hash_note": "sha256 of the sorted training then validation positions, each as little-endian int64 "
                           "bytes followed by '|'; first 16 hex digits",
        "mean": [float(v) for v in mean], "std": [float(v) for v in std], "normalisation": NORMALISATION,
        "normalised_on": f"the training split: the {len(train_idx)} images of the training set not held out for "
                         "validation" + (f", adapted to {data.adapt}" if data.adapt else ""),
    }
    return attrs, {"val_index": val_idx.numpy().astype(np.int64)}


__all__ = ["data_provenance", "split_hash_of", "NORMALISATION"]
