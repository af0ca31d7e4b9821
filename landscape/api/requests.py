"""What the experiments that evaluate stored networks share: request IDs and evaluation data.

A measurement (an LMC path, an instability analysis, and those to come) is a run whose ID hashes
its request, so asking again reuses it; its data are loaded once per call, per dataset and split.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..data import device_splits
from ..errors import ConfigError
from ..train.config import TrainConfig, default_val_size
from .provenance import data_provenance
from .train import load_for


def request_id(kind: str, identity: dict[str, Any]) -> str:
    """The run ID of a measurement: a hash of its kind and its identity (endpoints, settings)."""
    text = json.dumps({"kind": kind, **identity}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]

@dataclass
class EvalData:
    """A dataset's training split (the training set less the validation examples) and test set, on the device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    input_shape: tuple[int, int, int]
    num_classes: int
    provenance: tuple[dict, dict] | None = None  # the split and normalisation (landscape.api.provenance)


class DataCache:
    """Evaluation splits by (dataset, adaptation, split, device): loaded once per call."""

    def __init__(self, data_dir: str | None, device: torch.device):
        self.data_dir, self.device = data_dir, device
        self._cache: dict[tuple, EvalData] = {}

    def get(self, config: TrainConfig) -> EvalData:
        d = config.data
        key = (d.dataset, d.adapt, d.val_size, d.split_seed)
        if key not in self._cache:
            dataset = load_for(config, self.data_dir)
            val_size = d.val_size if d.val_size is not None else default_val_size(len(dataset.train_y))
            train_split, _, test_split = device_splits(dataset, val_size, d.split_seed, self.device)
            if len(test_split) == 0:
                raise ConfigError(f"dataset {d.dataset} has no test split to evaluate the path on")
            provenance = data_provenance(dataset, replace(d, val_size=val_size), mean=train_split.mean,
                                         std=train_split.std)
            self._cache[key] = EvalData(train_split.x, train_split.y, test_split.x, test_split.y,
                                        tuple(dataset.input_shape), int(dataset.num_classes), provenance)
        return self._cache[key]


__all__ = ["request_id", "EvalData", "DataCache"]
