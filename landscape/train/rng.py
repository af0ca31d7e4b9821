"""Counter-based seeding.

Every random draw in training is keyed by (seed, counter) - the data order by (data seed, epoch),
augmentation by (augment seed, step) - instead of by a generator's running state. So a run resumed
from any checkpoint draws exactly what the uninterrupted run drew, with no generator state to save,
and the draws are the same on every device because they are made on the CPU.
"""
from __future__ import annotations

import torch

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part and their order."""
    h = 0
    for part in parts:
        h = _splitmix64(h ^ _splitmix64(int(part) & _MASK64))
    return h >> 1


def generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


# Distinct streams, so a data-order seed and an augmentation seed of the same value never coincide.
STREAM_ORDER = 1
STREAM_AUGMENT = 2


def epoch_permutation(n: int, data_seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=generator(STREAM_ORDER, data_seed, epoch))


def augment_generator(augment_seed: int, step: int) -> torch.Generator:
    return generator(STREAM_AUGMENT, augment_seed, step)
