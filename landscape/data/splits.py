"""Holding part of the training set out for validation.

The lottery-ticket experiments (Frankle & Carbin, 2019) hold 5,000 of MNIST's 60,000 training images
out and never train on them; early stopping and the iteration at which a ticket is judged are chosen
on them, so that the test set stays untouched.
"""
from __future__ import annotations

import torch

from ..errors import DataError


def split_train_val(n_train: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices `(train_idx, val_idx)` into a training set of `n_train`: disjoint, covering it, sorted.

    The split depends only on `(n_train, val_size, seed)`: it draws from its own generator, never
    from torch's global one, so neither model initialisation nor data order shifts it. Indices are
    sorted so that gathering them reads memory in order; shuffling is the batcher's job.
    """
    if val_size < 0:
        raise DataError(f"validation size {val_size} is negative", "use 0 for no validation set")
    if val_size >= n_train:
        raise DataError(f"validation size {val_size} leaves nothing to train on: "
                        f"the training set has {n_train} images", f"use a validation size below {n_train}")
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    return order[val_size:].sort().values, order[:val_size].sort().values
