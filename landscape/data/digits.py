"""scikit-learn's bundled 8×8 handwritten digits (1,797 images): real data that needs no download.

The images hold values 0..16; they are scaled to 0..255 so that they look like every other dataset.
There is no official split, so a fixed one is used: a permutation from numpy's legacy RandomState
with seed 0 (its stream is frozen across numpy versions) puts the first 300 images in the test set
and the other 1,497 in the training set.
"""
from __future__ import annotations

import numpy as np
import torch

from .dataset import Dataset

TEST_SIZE = 300
SPLIT_SEED = 0
CLASSES = tuple(str(d) for d in range(10))


def read_digits() -> Dataset:
    from sklearn.datasets import load_digits  # deferred: importing sklearn takes most of a second

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # [N, 1, 8, 8]
    labels = bunch.target.astype(np.int64)
    order = np.random.RandomState(SPLIT_SEED).permutation(len(labels))
    test, train = order[:TEST_SIZE], order[TEST_SIZE:]
    return Dataset("digits",
                   torch.from_numpy(images[train]), torch.from_numpy(labels[train]),
                   torch.from_numpy(images[test]), torch.from_numpy(labels[test]),
                   CLASSES)
