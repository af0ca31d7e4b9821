"""Which training examples a data-diet run trains on.

A subset is a window of an ordering of the training split: the examples ranked `offset` to
`offset + size` from the easiest ("easy"), from the hardest ("hard"), or in a seeded random order
("random"). Balanced subsets take that window within each class, each class contributing in
proportion to its share of the training split (largest-remainder rounding, so the counts add up
to exactly `size`), which keeps an "easy" subset from being all of one easy class.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..train.config import SubsetSpec
from ..train.rng import generator

_ORDER_STREAM = 0xD1E7  # the random order: its own stream, apart from every other derived seed


def proportional_counts(total: int, class_sizes: np.ndarray) -> np.ndarray:
    """`total` split across classes in proportion to `class_sizes`, summing exactly to `total`."""
    share = total * class_sizes / class_sizes.sum()
    counts = np.floor(share).astype(np.int64)
    short = total - int(counts.sum())
    # Largest remainders first; ties go to the lower class index, so the split is deterministic.
    order = np.lexsort((np.arange(len(share)), -(share - counts)))
    counts[order[:short]] += 1
    return counts


def ranking(spec: SubsetSpec, scores: np.ndarray | None, n: int) -> np.ndarray:
    """Positions 0..n-1 from first to last in the subset's order (ties: lower position first)."""
    if spec.order == "random":
        return torch.randperm(n, generator=generator(_ORDER_STREAM, spec.seed, 0)).numpy()
    if scores is None:
        raise ConfigError(f"an {spec.order} subset needs difficulty scores", "give --scores-from RUN or --score NAME")
    key = scores if spec.order == "easy" else -scores
    return np.lexsort((np.arange(n), key))


def select_subset(spec: SubsetSpec, labels: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """The sorted positions in the training split that `spec` picks."""
    labels = np.asarray(labels)
    n = len(labels)
    if scores is not None and len(scores) != n:
        raise ConfigError(f"the scores cover {len(scores)} examples but the training split has {n}",
                          "compute scores on the same dataset and validation split")
    if spec.size + spec.offset > n:
        what = f"a subset of {spec.size:,}" + (f" after skipping {spec.offset:,}" if spec.offset else "")
        raise ConfigError(f"{what} needs more than the {n:,} examples of the training split",
                          "use a smaller --size or --fraction (or a smaller --offset)")
    order = ranking(spec, scores, n)
    if not spec.balanced:
        return np.sort(order[spec.offset:spec.offset + spec.size])
    classes = int(labels.max()) + 1 if n else 0
    sizes = np.bincount(labels, minlength=classes)
    present = sizes > 0
    take = np.zeros(classes, dtype=np.int64)
    skip = np.zeros(classes, dtype=np.int64)
    take[present] = proportional_counts(spec.size, sizes[present])
    skip[present] = proportional_counts(spec.offset, sizes[present])
    ranked_labels = labels[order]
    chosen = []
    for c in np.flatnonzero(present):
        in_class = order[ranked_labels == c]
        chosen.append(in_class[skip[c]:skip[c] + take[c]])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def size_from(size: int | None, fraction: float | None, n: int) -> int:
    """`--size N` or `--fraction F` (exactly one) as a number of examples of an n-example split."""
    if (size is None) == (fraction is None):
        raise ConfigError("give the subset's size as either --size N or --fraction F", "e.g. --fraction 0.1")
    if fraction is not None:
        if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
            raise ConfigError(f"--fraction {fraction} must be in (0, 1]", "e.g. --fraction 0.1 for 10% of the data")
        size = max(1, round(fraction * n))
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"--size {size!r} must be a positive number of examples", "e.g. --size 5000")
    if size > n:
        raise ConfigError(f"--size {size:,} is larger than the training split ({n:,} examples)",
                          f"use --size {n} or less, or --fraction")
    return size
