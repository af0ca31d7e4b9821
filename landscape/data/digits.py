"""scikit-learn's bundled 8×8 handwritten digits (1,797 images): real data that needs no download.

The images hold values 0..16; they are scaled to 0..255 so that they look like every other dataset.
There is no official split, so a fixed one is used: a permutation from numpy's legacy RandomState
with seed 0 (its stream is frozen across numpy versions) puts the first 300 images in the test set
and the other 1,497 in the training set.
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from .dataset import Dataset

TEST_SIZE = 300
SPLIT_SEED = 0
CLASSES = tuple(str(d) for d in range(10))


def bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images [N, 8, 8] as 0..16 floats, labels) from scikit-learn's own file, as `load_digits()`
    reads it, without importing scikit-learn (seconds of imports for a 1,797-line file)."""
    spec = importlib.util.find_spec("sklearn")   # finds the package; runs none of it
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the 8x8 digits come with scikit-learn, which is not installed",
                          "pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)


def read_digits() -> Dataset:
    pixels, labels = bundled_digits()
    images = np.rint(pixels * (255.0 / 16.0)).astype(np.uint8)[:, None]  # [N, 1, 8, 8]
    order = np.random.RandomState(SPLIT_SEED).permutation(len(labels))
    test, train = order[:TEST_SIZE], order[TEST_SIZE:]
    return Dataset("digits",
                   torch.from_numpy(images[train]), torch.from_numpy(labels[train]),
                   torch.from_numpy(images[test]), torch.from_numpy(labels[test]),
                   CLASSES)
